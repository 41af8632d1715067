//go:build frameworktest

package memory

import (
	"testing"

	"github.com/cairn-dev/cairn/client_go/langgraphgo"
	"github.com/cairn-dev/cairn/client_go/langgraphgo/frameworktest/cairnshim"
)

func TestMain(m *testing.M) { cairnshim.Main(m) }

// NewMemoryCheckpointStore stands in for the framework's constructor of the
// same name in store/memory/memory_test.go.
func NewMemoryCheckpointStore() *langgraphgo.Store { return cairnshim.Store() }
