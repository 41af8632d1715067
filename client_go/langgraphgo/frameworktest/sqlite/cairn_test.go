//go:build frameworktest

package sqlite

import (
	"testing"

	// store/sqlite/sqlite_test.go asserts with testify; imported here too so
	// that `go mod tidy` keeps it in go.mod.
	_ "github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/client_go/langgraphgo"
	"github.com/cairn-dev/cairn/client_go/langgraphgo/frameworktest/cairnshim"
)

func TestMain(m *testing.M) { cairnshim.Main(m) }

// SqliteOptions stands in for the framework's options; the Cairn store needs
// none of them.
type SqliteOptions struct {
	Path      string
	TableName string
}

// closingStore adds the Close the SQLite store has.
type closingStore struct{ *langgraphgo.Store }

func (closingStore) Close() error { return nil }

// NewSqliteCheckpointStore stands in for the framework's constructor of the
// same name in store/sqlite/sqlite_test.go.
func NewSqliteCheckpointStore(SqliteOptions) (closingStore, error) {
	return closingStore{cairnshim.Store()}, nil
}
