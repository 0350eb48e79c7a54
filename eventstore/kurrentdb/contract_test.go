package kurrentdb_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/kurrentdb"
	"github.com/koers-io/koers/eventstore/kurrentdb/kurrentdbtest"
	"github.com/koers-io/koers/eventstore/storetest"
)

// urlEnv names a real KurrentDB to run the contract suite against as well,
// for example esdb://localhost:2113?tls=false.
const urlEnv = "KOERS_KURRENTDB_URL"

// harness runs the contract suite on stores at url. Every directory the
// suite opens a store in gets a namespace of its own, kept in a file there,
// so that each test sees a fresh store although all share one server, and
// a store reopened in the same directory sees what it held. The store lives
// in the server, not in the test process, so the suite's crash test, which
// kills a child process holding an embedded store, does not apply.
func harness(url string) storetest.Harness {
	return storetest.Harness{
		Open: func(dir string) (eventstore.Store, error) {
			ns, err := namespace(dir)
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return kurrentdb.Open(ctx, url, kurrentdb.Options{
				Namespace:      ns,
				StreamPrefixes: []string{""},
				Logger:         slog.New(slog.DiscardHandler),
			})
		},
		DensePositions: false,
		Crash:          false,
	}
}

// namespace returns the namespace of the store in dir, choosing a new one
// the first time.
func namespace(dir string) (string, error) {
	path := filepath.Join(dir, "namespace")
	b, err := os.ReadFile(path)
	if err == nil {
		return string(b), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	ns := "storetest-" + uuid.NewString() + "/"
	return ns, os.WriteFile(path, []byte(ns), 0o600)
}

// TestContract checks the adapter against every rule of the eventstore
// port, through the real client, against the protocol-level test double.
func TestContract(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	storetest.Run(t, harness(srv.URL()))
}

// TestContractOnKurrentDB runs the same suite against the KurrentDB that
// KOERS_KURRENTDB_URL names.
func TestContractOnKurrentDB(t *testing.T) {
	url := os.Getenv(urlEnv)
	if url == "" {
		t.Skipf("%s is not set: no real KurrentDB to run the contract suite against (the test double runs it in TestContract)", urlEnv)
	}
	storetest.Run(t, harness(url))
}
