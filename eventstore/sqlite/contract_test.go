package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/sqlite"
	"github.com/koers-io/koers/eventstore/storetest"
)

// harness runs the contract suite on a store in one file per directory. The
// store is embedded, so the crash test can SIGKILL a child process that has
// it open.
var harness = storetest.Harness{
	Open: func(dir string) (eventstore.Store, error) {
		return sqlite.Open(filepath.Join(dir, "events.db"), sqlite.Options{})
	},
	DensePositions: true,
	Crash:          true,
}

func TestMain(m *testing.M) {
	if storetest.RunChild(harness) {
		return
	}
	os.Exit(m.Run())
}

// TestContract checks the store against every rule of the eventstore port.
func TestContract(t *testing.T) {
	storetest.Run(t, harness)
}
