package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/eventstore"
)

func (s suite) testDurability(t *testing.T) {
	t.Run("acknowledged appends survive close and reopen", func(t *testing.T) {
		st, dir := s.open(t)
		const stream = "case-durable"
		res := mustAppend(t, st, stream, eventstore.NoStream, roundTripEvents()...)
		populate(t, st, 20, 4)
		res = mustAppend(t, st, stream, eventstore.Exact(res.Revision), someEvents(2, "last")...)
		before := snapshot(t, st)
		beforeStream := mustRead(t, st, stream, eventstore.ReadOptions{})
		closeStore(t, st)

		st = s.openDir(t, dir)
		checkUnchanged(t, st, before, "close and reopen")
		if diff := cmp.Diff(beforeStream, mustRead(t, st, stream, eventstore.ReadOptions{}), recordedOpts); diff != "" {
			t.Errorf("the stream read differently after reopening (-before +after):\n%s", diff)
		}

		// The reopened store goes on where it stopped: the next revision,
		// and a position after every one it has given out.
		all := snapshotAll(t, st)
		next := mustAppend(t, st, stream, eventstore.Exact(res.Revision), someEvents(1, "after reopen")...)
		if next.Revision != res.Revision+1 {
			t.Errorf("the first append after reopening landed at revision %d, want %d", next.Revision, res.Revision+1)
		}
		s.checkPositions(t, append(all, eventstore.RecordedEvent{Position: next.Position}))
	})

	t.Run("acknowledged appends survive a SIGKILL of the process", s.testCrash)
}
