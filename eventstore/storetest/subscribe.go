package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/eventstore"
)

func (s suite) testSubscribeAll(t *testing.T) {
	t.Run("catch-up", func(t *testing.T) {
		// The two subtests share one store of 1,000 streams; log is what it
		// holds, in global order, as ReadStream reads it.
		st, _ := s.open(t)
		streams := populate(t, st, 1000, 8)
		log := readLog(t, st, streams)

		t.Run("from the start delivers every event once in order and then live appends", func(t *testing.T) {
			sub := subscribe(t, st, 0)
			checkLog(t, log, sub.next(t, len(log)))
			live := s.appendLive(t, st, "catch-up from the start")
			checkLog(t, live, sub.next(t, len(live)))
			s.checkPositions(t, append(slices.Clone(log), live...))
			log = append(log, live...)
		})

		t.Run("from a middle position delivers the rest and then live appends", func(t *testing.T) {
			mid := len(log) / 2
			sub := subscribe(t, st, log[mid].Position)
			checkLog(t, log[mid+1:], sub.next(t, len(log)-mid-1))
			live := s.appendLive(t, st, "catch-up from the middle")
			checkLog(t, live, sub.next(t, len(live)))
		})
	})

	t.Run("started on an empty store delivers live appends", func(t *testing.T) {
		st, _ := s.open(t)
		sub := subscribe(t, st, 0)
		var log []eventstore.RecordedEvent
		for i := range 3 {
			live := s.appendLive(t, st, fmt.Sprintf("empty store %d", i))
			checkLog(t, live, sub.next(t, len(live)))
			log = append(log, live...)
		}
		s.checkPositions(t, log)
	})

	t.Run("delivers racing live appends without a gap", func(t *testing.T) {
		st, _ := s.open(t)
		sub := subscribe(t, st, 0)
		first := s.appendLive(t, st, "before the race")
		checkLog(t, first, sub.next(t, len(first)))

		streams := populate(t, st, 200, 8)
		log := readLog(t, st, append(streams, streamsOf(first)...))
		checkLog(t, log[len(first):], sub.next(t, len(log)-len(first)))
	})

	t.Run("ends when the consumer breaks out of the loop", func(t *testing.T) {
		st, _ := s.open(t)
		streams := populate(t, st, 10, 1)
		log := readLog(t, st, streams)

		during := subscribeLimit(t, st, 0, 3)
		checkLog(t, log[:3], during.next(t, 3))
		during.rest(t) // fails when the sequence panics or does not end

		live := subscribeLimit(t, st, log[len(log)-1].Position, 1)
		evs := s.appendLive(t, st, "break when live")
		checkLog(t, evs[:1], live.next(t, 1))
		live.rest(t)

		closeStore(t, st)
	})

	t.Run("ends when its context is cancelled", func(t *testing.T) {
		st, _ := s.open(t)
		streams := populate(t, st, 100, 2)
		log := readLog(t, st, streams)

		catchingUp := subscribe(t, st, 0)
		catchingUp.next(t, 5)
		catchingUp.stop(t)

		waiting := subscribe(t, st, 0)
		waiting.next(t, len(log))
		waiting.stop(t)

		closeStore(t, st)
	})

	t.Run("ends when the store closes", func(t *testing.T) {
		st, _ := s.open(t)
		live := s.appendLive(t, st, "before close")
		sub := subscribe(t, st, 0)
		checkLog(t, live, sub.next(t, len(live)))

		closeStore(t, st)
		evs, errs := sub.rest(t)
		if len(evs) > 0 {
			t.Errorf("after Close the subscription delivered %d more events", len(evs))
		}
		for _, err := range errs {
			if !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("a subscription ended by Close yielded %v, want nothing or an error wrapping eventstore.ErrClosed", err)
			}
		}
	})
}

// populate appends 1 to 4 events to each of n new streams from the given
// number of concurrent writers, so that their appends interleave in the
// global order, and returns the streams' names.
func populate(t *testing.T, st eventstore.Store, n, writers int) []string {
	t.Helper()
	streams := make([]string, n)
	for i := range streams {
		streams[i] = fmt.Sprintf("case-populated-%04d", i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				if _, err := st.Append(t.Context(), streams[i], eventstore.NoStream, someEvents(1+i%4, streams[i])...); err != nil {
					errs <- fmt.Errorf("Append(%q): %w", streams[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return streams
}

// readLog reads the given streams whole and returns their events in
// global order: what SubscribeAll must deliver.
func readLog(t *testing.T, st eventstore.Store, streams []string) []eventstore.RecordedEvent {
	t.Helper()
	var log []eventstore.RecordedEvent
	for _, stream := range streams {
		log = append(log, mustRead(t, st, stream, eventstore.ReadOptions{})...)
	}
	slices.SortFunc(log, func(a, b eventstore.RecordedEvent) int { return cmpPosition(a.Position, b.Position) })
	return log
}

func cmpPosition(a, b eventstore.Position) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func streamsOf(recs []eventstore.RecordedEvent) []string {
	var out []string
	for _, r := range recs {
		if !slices.Contains(out, r.Stream) {
			out = append(out, r.Stream)
		}
	}
	return out
}

// appendLive appends, one after another, a single event to a new stream,
// two events to another new stream and one more to the first, and returns
// the events as ReadStream reads them, in global order.
func (s suite) appendLive(t *testing.T, st eventstore.Store, tag string) []eventstore.RecordedEvent {
	t.Helper()
	a, b := "case-live-a-"+tagName(tag), "case-live-b-"+tagName(tag)
	mustAppend(t, st, a, eventstore.NoStream, someEvents(1, tag)...)
	mustAppend(t, st, b, eventstore.NoStream, someEvents(2, tag)...)
	mustAppend(t, st, a, eventstore.Exact(0), someEvents(1, tag)...)
	return readLog(t, st, []string{a, b})
}

// tagName turns a tag into something a stream name may hold.
func tagName(tag string) string {
	out := []byte(tag)
	for i, c := range out {
		if c <= ' ' || c >= 0x7f {
			out[i] = '-'
		}
	}
	return string(out)
}

// checkLog checks that a subscription delivered exactly the events of want,
// in that order, reading each the same as ReadStream does. It reports the
// first difference only, as logs can be long.
func checkLog(t *testing.T, want, got []eventstore.RecordedEvent) {
	t.Helper()
	for i := range min(len(want), len(got)) {
		if diff := cmp.Diff(want[i], got[i], recordedOpts); diff != "" {
			t.Errorf("event %d of %d delivered by SubscribeAll differs from ReadStream's (-ReadStream +SubscribeAll):\n%s", i, len(want), diff)
			return
		}
	}
	if len(want) != len(got) {
		t.Errorf("SubscribeAll delivered %d events, want %d", len(got), len(want))
	}
	checkNoDataNil(t, got)
}
