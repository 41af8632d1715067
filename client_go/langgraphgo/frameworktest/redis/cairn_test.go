//go:build frameworktest

package redis

import (
	"testing"
	"time"

	// store/redis/redis_test.go starts a miniredis that the Cairn store does
	// not use, and asserts with testify; both imported here too so that
	// `go mod tidy` keeps them in go.mod.
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/client_go/langgraphgo"
	"github.com/cairn-dev/cairn/client_go/langgraphgo/frameworktest/cairnshim"
)

func TestMain(m *testing.M) { cairnshim.Main(m) }

// RedisOptions stands in for the framework's options; the Cairn store needs
// none of them.
type RedisOptions struct {
	Addr     string
	Password string
	DB       int
	Prefix   string
	TTL      time.Duration
}

// NewRedisCheckpointStore stands in for the framework's constructor of the
// same name in store/redis/redis_test.go.
func NewRedisCheckpointStore(RedisOptions) *langgraphgo.Store { return cairnshim.Store() }
