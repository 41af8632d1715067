// Package testserver names the Cairn servers the test suites use. The Python
// harness starts the shared ones (`python -m cairn_tools.cluster -- CMD`,
// tools/cairn_tools/cluster.py, which scripts/test_all.sh and run_tests.sh use)
// and exports them as environment variables, which this package reads. A test
// that needs server flags the shared server lacks gets a server of its own
// from Start, which the same harness starts too.
package testserver

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const howTo = "run the suite through the Python harness, which starts the servers and sets CAIRN_TARGET " +
	"and the rest: `python -m cairn_tools.cluster -- go test ./...` (or client_go/run_tests.sh), " +
	"after `pip install -e '.[dev]'` in the repository root"

// RepoRoot is the root of the Cairn repository (client_go's parent).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Main runs the tests of a package against $CAIRN_TARGET and exits:
//
//	func TestMain(m *testing.M) { testserver.Main(m, &target) }
func Main(m *testing.M, target *string) {
	*target = os.Getenv("CAIRN_TARGET")
	if *target == "" {
		fmt.Fprintln(os.Stderr, "no Cairn server for the tests: "+howTo)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// Env is the value of a variable the harness sets; the test fails without it.
func Env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("$%s is not set: %s", name, howTo)
	}
	return v
}

// AuthServer is the harness's server with bearer-token auth ($CAIRN_AUTH_TARGET,
// a unix: target) and its tokens, each mapped to a tenant of its own.
func AuthServer(t *testing.T) (target string, tokens []string) {
	t.Helper()
	return Env(t, "CAIRN_AUTH_TARGET"), strings.Fields(Env(t, "CAIRN_AUTH_TOKENS"))
}

// TLSServer is the harness's TLS server ($CAIRN_TLS_TARGET, localhost:port)
// and the CA certificate that signs its certificate.
func TLSServer(t *testing.T) (target, caFile string) {
	t.Helper()
	return Env(t, "CAIRN_TLS_TARGET"), filepath.Join(Env(t, "CAIRN_TLS_DIR"), "ca.crt")
}

// startScript starts `cairn serve ARGS` on the embedded store through the
// harness's CairnProcess (a free port, ready when it answers), prints its
// target, and stops it when its stdin closes: at the test's end, or when the
// test process dies (the harness's watchdog then kills the server). The
// server reads CAIRN_* variables as its settings, and the harness's (such as
// CAIRN_AUTH_TOKENS) describe other servers: only ARGS set this one.
const startScript = `import os, sys
from cairn_tools.cluster import CairnProcess
for name in [n for n in os.environ if n.startswith("CAIRN_") and n != "CAIRN_BIN" and not n.startswith("CAIRN_TEST_")]:
    del os.environ[name]
with CairnProcess.embedded(*sys.argv[1:], "--log-level", "WARNING") as server:
    print(server.target, flush=True)
    sys.stdin.read()
`

// Start starts a Cairn server of the test's own (embedded store, `cairn serve
// args...`), returns its target and stops it when the test ends. Python is
// $CAIRN_PYTHON, else python3, with the repository installed (`pip install -e
// '.[dev]'`).
func Start(t *testing.T, args ...string) string {
	t.Helper()
	python := os.Getenv("CAIRN_PYTHON")
	if python == "" {
		python = "python3"
	}
	cmd := exec.Command(python, append([]string{"-c", startScript}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting cairn serve %v through %s: %v", args, python, err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("cairn serve %v did not start (%v): %s", args, err, howTo)
	}
	return strings.TrimSpace(line)
}
