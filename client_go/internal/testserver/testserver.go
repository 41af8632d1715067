// Package testserver names the Cairn servers the test suites use. It starts
// none: the Python harness does (`python -m cairn_tools.cluster -- CMD`,
// tools/cairn_tools/cluster.py, which scripts/test_all.sh and run_tests.sh use)
// and exports them as environment variables, which this package reads.
package testserver

import (
	"fmt"
	"os"
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
