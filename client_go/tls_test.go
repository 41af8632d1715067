package cairn_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	cairn "github.com/cairn-dev/cairn/client_go"
	"github.com/cairn-dev/cairn/client_go/internal/testserver"
)

// TestTLS uses the harness's TLS server, whose certificate a CA of the test run signs.
func TestTLS(t *testing.T) {
	addr, caFile := testserver.TLSServer(t)
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", caFile)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cairn.Dial(ctx, addr, cairn.WithTLS(&tls.Config{RootCAs: pool}), cairn.WithToken("sent-encrypted"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	th := thread(t)
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "tls", State: []byte(`"secret"`), StateType: "json"})
	if got, err := c.Load(ctx, cairn.Ref{ThreadID: th}); err != nil || string(got.State) != `"secret"` {
		t.Fatalf("load over TLS: %+v, %v", got, err)
	}

	// TLS is the default for host:port; an untrusted certificate never gets ready.
	short, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	if _, err := cairn.Dial(short, addr); err == nil {
		t.Fatal("dial with the system roots trusted a self-signed certificate")
	}
	// And plaintext against a TLS server fails too.
	if _, err := cairn.Dial(short, addr, cairn.WithInsecure()); err == nil {
		t.Fatalf("plaintext dial to TLS server %s succeeded", addr)
	}
}
