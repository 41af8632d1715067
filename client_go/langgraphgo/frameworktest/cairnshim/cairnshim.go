//go:build frameworktest

// Package cairnshim builds the Cairn stores that LangGraphGo's own tests get
// in place of the framework's stores (see ../run.sh).
//
// Every store has a namespace of its own, so the framework's tests, which use
// fixed ids ("cp-1", "exec-123") and run in parallel, share nothing on the one
// Cairn server, as they share nothing with one in-memory store each.
package cairnshim

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	cairn "github.com/cairn-dev/cairn/client_go"
	"github.com/cairn-dev/cairn/client_go/internal/testserver"
	"github.com/cairn-dev/cairn/client_go/langgraphgo"
)

var (
	target  string
	once    sync.Once
	client  *cairn.Client
	dialErr error
)

// Main runs a test package against the server $CAIRN_TARGET names, or one it
// starts.
func Main(m *testing.M) { testserver.Main(m, &target) }

// Store returns a Cairn store in a namespace of its own. It panics when the
// server cannot be reached: the framework's constructors return no error.
func Store() *langgraphgo.Store {
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		opts := []cairn.Option{cairn.WithInsecure()}
		if tok := os.Getenv("CAIRN_TOKEN"); tok != "" {
			opts = append(opts, cairn.WithToken(tok))
		}
		client, dialErr = cairn.Dial(ctx, target, opts...)
	})
	if dialErr != nil {
		panic(fmt.Sprintf("cairnshim: dial %s: %v", target, dialErr))
	}
	return langgraphgo.NewStore(client, langgraphgo.Options{Namespace: "lgg-own-tests-" + uuid.NewString()})
}
