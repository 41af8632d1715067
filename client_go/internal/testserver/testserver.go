// Package testserver gives the test suites a real Cairn server: the one named
// by $CAIRN_TARGET, or a `cairn serve` it starts (embedded default: in-process
// cache + a temporary SQLite file) on a free port.
package testserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ErrNoCairn means `cairn` is not on PATH.
var ErrNoCairn = errors.New("no Cairn server for the tests: set CAIRN_TARGET=host:port, " +
	"or install the server (`pip install -e '.[server]'` in the repo root) so `cairn serve` can be started")

// Server is a running Cairn server.
type Server struct {
	Target string // host:port or unix:/path
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result
	dir    string
}

// RepoRoot is the root of the Cairn repository (client_go's parent).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Main runs the tests of a package against a server and exits:
//
//	func TestMain(m *testing.M) { testserver.Main(m, &target) }
func Main(m *testing.M, target *string) {
	srv, err := FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*target = srv.Target
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// FromEnv returns the server named by $CAIRN_TARGET, or starts one.
func FromEnv() (*Server, error) {
	if t := os.Getenv("CAIRN_TARGET"); t != "" {
		return &Server{Target: t}, nil
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return Start(fmt.Sprintf("127.0.0.1:%d", port))
}

// Start runs `cairn serve --listen listen args...` on a temporary SQLite file
// and waits until it accepts connections.
func Start(listen string, args ...string) (*Server, error) {
	bin, err := exec.LookPath("cairn")
	if err != nil {
		return nil, ErrNoCairn
	}
	dir, err := os.MkdirTemp("", "cairn-go-test-")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	args = append([]string{"serve", "--listen", listen, "--sqlite-path", filepath.Join(dir, "cairn.db")}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start cairn serve: %w", err)
	}
	srv := &Server{Target: listen, cmd: cmd, dir: dir, exited: make(chan error, 1)}
	go func() { srv.exited <- cmd.Wait() }()

	network, addr := "tcp", listen
	if path, ok := strings.CutPrefix(listen, "unix:"); ok {
		network, addr = "unix", path
	}
	deadline := time.After(60 * time.Second)
	for {
		if conn, err := net.DialTimeout(network, addr, time.Second); err == nil {
			conn.Close()
			return srv, nil
		}
		select {
		case err := <-srv.exited:
			log, _ := os.ReadFile(logPath)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("cairn serve exited (%v) before accepting connections:\n%s", err, log)
		case <-deadline:
			log, _ := os.ReadFile(logPath)
			srv.Stop()
			return nil, fmt.Errorf("cairn serve did not accept connections on %s within 60s:\n%s", listen, log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// StartForTest starts an extra server for one test (TLS, auth, unix socket),
// stopped at the end of the test. Without `cairn` on PATH the test is skipped
// when $CAIRN_TARGET names the suite's server, and fails otherwise.
func StartForTest(t *testing.T, listen string, args ...string) *Server {
	t.Helper()
	srv, err := Start(listen, args...)
	if errors.Is(err, ErrNoCairn) && os.Getenv("CAIRN_TARGET") != "" {
		t.Skip("needs its own server, and `cairn` is not on PATH")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// Stop stops a server started by Start (a no-op for $CAIRN_TARGET).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
