//go:build frameworktest

package graph_test

import (
	"testing"

	"github.com/smallnest/langgraphgo/graph"
	"github.com/smallnest/langgraphgo/store/redis"

	"github.com/cairn-dev/cairn/client_go/langgraphgo"
	"github.com/cairn-dev/cairn/client_go/langgraphgo/frameworktest/cairnshim"
)

// The helpers below replace, in graph/checkpointing_test.go, the calls that
// build a store (run.sh's sed, which it checks is the only change).

func TestMain(m *testing.M) { cairnshim.Main(m) }

// cairnStore replaces graph.NewMemoryCheckpointStore().
func cairnStore() *langgraphgo.Store { return cairnshim.Store() }

// cairnFileStore replaces graph.NewFileCheckpointStore(dir).
func cairnFileStore(string) (*langgraphgo.Store, error) { return cairnshim.Store(), nil }

// cairnRedisStore replaces redis.NewRedisCheckpointStore(opts).
func cairnRedisStore(redis.RedisOptions) *langgraphgo.Store { return cairnshim.Store() }

// cairnCheckpointConfig replaces graph.DefaultCheckpointConfig(), which
// builds an in-memory store, and is the config given to the graphs that
// graph.NewCheckpointableStateGraph would give that default.
func cairnCheckpointConfig() graph.CheckpointConfig {
	c := graph.DefaultCheckpointConfig()
	c.Store = cairnshim.Store()
	return c
}
