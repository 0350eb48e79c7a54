package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore"
)

func (s suite) testAtomicity(t *testing.T) {
	t.Run("a conflicting multi-event append writes nothing and claims no IDs", func(t *testing.T) {
		st, _ := s.open(t)
		const stream = "case-atomic"
		mustAppend(t, st, stream, eventstore.NoStream, someEvents(2, "first")...)
		before := snapshot(t, st)

		evs := someEvents(3, "conflicting")
		_, err := st.Append(t.Context(), stream, eventstore.Exact(0), evs...)
		checkWrongRevision(t, err, &eventstore.WrongRevisionError{Stream: stream, Expected: eventstore.Exact(0), Actual: 1, Exists: true})
		checkUnchanged(t, st, before, "a conflicting append")

		mustAppend(t, st, stream, eventstore.Exact(1), evs...)
		if diff := diffStored(want(stream, 2, evs...), mustRead(t, st, stream, eventstore.ReadOptions{From: 2})); diff != "" {
			t.Errorf("the same events appended at the right revision read back differently (-want +got):\n%s", diff)
		}
	})

	t.Run("a multi-event append with one used ID writes nothing and claims no IDs", func(t *testing.T) {
		st, _ := s.open(t)
		used := someEvents(1, "used")
		mustAppend(t, st, "case-user", eventstore.NoStream, used...)
		before := snapshot(t, st)

		evs := someEvents(3, "mixed")
		mixed := []eventstore.EventData{evs[0], used[0], evs[1]}
		if _, err := st.Append(t.Context(), "case-atomic", eventstore.Any, mixed...); !errors.Is(err, eventstore.ErrDuplicateEventID) {
			t.Fatalf("Append error is %v, want one wrapping eventstore.ErrDuplicateEventID", err)
		}
		checkUnchanged(t, st, before, "an append with a used ID")
		mustAppend(t, st, "case-atomic", eventstore.NoStream, evs...)
	})

	t.Run("a multi-event append with one invalid event writes nothing and claims no IDs", func(t *testing.T) {
		st, _ := s.open(t)
		before := snapshot(t, st)
		evs := someEvents(3, "invalid")
		bad := slices.Clone(evs)
		bad[2].Data = nil
		if _, err := st.Append(t.Context(), "case-atomic", eventstore.NoStream, bad...); !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Fatalf("Append error is %v, want one wrapping eventstore.ErrInvalidAppend", err)
		}
		checkUnchanged(t, st, before, "an invalid append")
		mustAppend(t, st, "case-atomic", eventstore.NoStream, evs...)
	})

	t.Run("a multi-event append is contiguous in the global order", func(t *testing.T) {
		st, _ := s.open(t)
		const writers, appends = 8, 12
		var (
			mu    sync.Mutex
			acked [][]uuid.UUID
			wg    sync.WaitGroup
			errs  = make(chan error, writers)
		)
		for w := range writers {
			wg.Go(func() {
				stream := fmt.Sprintf("case-contiguous-%d", w)
				for i := range appends {
					evs := someEvents(2+(w+i)%4, stream)
					if _, err := st.Append(t.Context(), stream, eventstore.Any, evs...); err != nil {
						errs <- fmt.Errorf("Append(%q): %w", stream, err)
						return
					}
					mu.Lock()
					acked = append(acked, ids(evs))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}

		all := snapshotAll(t, st)
		s.checkPositions(t, all)
		index := make(map[uuid.UUID]int, len(all))
		for i, r := range all {
			index[r.ID] = i
		}
		for _, group := range acked {
			first, ok := index[group[0]]
			for k, id := range group {
				if i, found := index[id]; !ok || !found || i != first+k {
					t.Errorf("event %d of an append of %d is at index %d of the global order, want %d right after the append's first",
						k, len(group), i, first+k)
				}
			}
		}
	})
}

func ids(evs []eventstore.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func (s suite) testConcurrency(t *testing.T) {
	t.Run("racing writers get exactly one winner per revision", func(t *testing.T) {
		st, _ := s.open(t)
		const (
			stream  = "case-contended"
			writers = 32
			appends = 6 // per writer
		)
		type win struct {
			id       uuid.UUID
			revision uint64
		}
		var (
			mu   sync.Mutex
			wins []win
			wg   sync.WaitGroup
			errs = make(chan error, writers)
		)
		for w := range writers {
			wg.Go(func() {
				for i := range appends {
					// The ID stays the same across retries, as a command's
					// would: a failed attempt must not have claimed it.
					e := someEvents(1, fmt.Sprintf("writer %d append %d", w, i))[0]
					res, err := appendRetrying(t, st, stream, e)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					wins = append(wins, win{e.ID, res.Revision})
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}

		got := mustRead(t, st, stream, eventstore.ReadOptions{})
		if len(got) != writers*appends {
			t.Errorf("stream has %d events, want %d (one per acknowledged append)", len(got), writers*appends)
		}
		for i, r := range got {
			if r.Revision != uint64(i) {
				t.Errorf("event %d of the stream has revision %d", i, r.Revision)
			}
		}
		winner := map[uint64]uuid.UUID{}
		for _, w := range wins {
			if other, twice := winner[w.revision]; twice {
				t.Errorf("revision %d was acknowledged to two appends: %s and %s", w.revision, other, w.id)
			}
			winner[w.revision] = w.id
			if w.revision >= uint64(len(got)) || got[w.revision].ID != w.id {
				t.Errorf("the append acknowledged at revision %d (%s) is not there", w.revision, w.id)
			}
		}
	})
}

// appendRetrying appends e at the end of stream as a command handler would:
// read the stream's last revision, append expecting it, and on a conflict
// read again and retry.
func appendRetrying(t *testing.T, st eventstore.Store, stream string, e eventstore.EventData) (eventstore.AppendResult, error) {
	for attempt := 0; ; attempt++ {
		expected := eventstore.NoStream
		last, err := st.ReadStream(t.Context(), stream, eventstore.ReadOptions{Backwards: true, From: eventstore.StreamEnd, Limit: 1})
		switch {
		case errors.Is(err, eventstore.ErrStreamNotFound):
		case err != nil:
			return eventstore.AppendResult{}, fmt.Errorf("ReadStream(%q) before attempt %d: %w", stream, attempt, err)
		case len(last) != 1:
			return eventstore.AppendResult{}, fmt.Errorf("ReadStream(%q) backwards from the end with limit 1 returned %d events", stream, len(last))
		default:
			expected = eventstore.Exact(last[0].Revision)
		}
		res, err := st.Append(t.Context(), stream, expected, e)
		var wrong *eventstore.WrongRevisionError
		switch {
		case err == nil:
			if rev, exact := expected.Revision(); (exact && res.Revision != rev+1) || (!exact && res.Revision != 0) {
				return res, fmt.Errorf("Append(%q, %v) of one event succeeded at revision %d", stream, expected, res.Revision)
			}
			return res, nil
		case errors.As(err, &wrong):
			if !wrong.Exists {
				return res, fmt.Errorf("Append(%q, %v) failed saying the stream does not exist, after it was read: %v", stream, expected, err)
			}
			if rev, exact := expected.Revision(); exact && wrong.Actual <= rev {
				return res, fmt.Errorf("Append(%q, %v) failed saying the stream is at %d, not past what was read: %v", stream, expected, wrong.Actual, err)
			}
			if attempt > 10_000 {
				return res, fmt.Errorf("Append(%q): still conflicting after %d attempts", stream, attempt)
			}
		default:
			return res, fmt.Errorf("Append(%q, %v): %w", stream, expected, err)
		}
	}
}
