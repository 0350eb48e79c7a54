// Package storetest is the contract every eventstore.Store adapter passes.
//
// An adapter's tests wire the suite up once, with a harness that opens the
// adapter's store in a directory:
//
//	func TestMain(m *testing.M) {
//		if storetest.RunChild(harness) {
//			return
//		}
//		os.Exit(m.Run())
//	}
//
//	func TestContract(t *testing.T) { storetest.Run(t, harness) }
//
// Run checks each rule of the port as a named subtest, every one against a
// fresh store in its own t.TempDir(). RunChild lets the crash test re-execute
// the test binary as a child process that appends until it is killed.
package storetest

import (
	"testing"

	"github.com/koers-io/koers/eventstore"
)

// Harness tells the suite how to run an adapter.
type Harness struct {
	// Open opens the store whose state lives in dir: a new, empty store
	// when dir is empty, otherwise the store as it was left by Close or by a
	// crash. The suite closes every store it opens.
	Open func(dir string) (eventstore.Store, error)

	// DensePositions says the store numbers its global order 1, 2, 3, …
	// with no gaps, so the suite checks exact positions instead of only
	// their order.
	DensePositions bool

	// Crash lets the suite SIGKILL a child process while it appends and
	// then check that every acknowledged append survived. It needs a store
	// that a re-executed test binary can open from dir on its own (an
	// embedded one) and RunChild in the adapter's TestMain. Leave it false
	// for a store that lives in the test process, such as a protocol-level
	// test server; the crash test is then skipped.
	Crash bool
}

// Run checks every rule of the event store contract against the adapter h
// describes, each as a subtest named after the rule.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("storetest: Harness.Open is nil")
	}
	s := suite{h: h}
	t.Run("Append", s.testAppend)
	t.Run("ExpectedRevision", s.testExpectedRevision)
	t.Run("Idempotency", s.testIdempotency)
	t.Run("Atomicity", s.testAtomicity)
	t.Run("Concurrency", s.testConcurrency)
	t.Run("Read", s.testRead)
	t.Run("BadInput", s.testBadInput)
	t.Run("Limits", s.testLimits)
	t.Run("SubscribeAll", s.testSubscribeAll)
	t.Run("Durability", s.testDurability)
	t.Run("Close", s.testClose)
}

// suite carries the harness to the contract tests.
type suite struct {
	h Harness
}
