package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore"
)

// patience bounds every wait for something a correct store does at once
// (deliver an event, end a subscription, return from Close), so that a store
// that never does it fails the test with a message instead of hanging it. It
// is no timing assertion: a correct store takes milliseconds.
const patience = 30 * time.Second

// sentinelType marks the events snapshot appends to find the end of the log.
const sentinelType = "storetest.Sentinel"

// open opens a fresh store in a directory of its own.
func (s suite) open(t *testing.T) (eventstore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	return s.openDir(t, dir), dir
}

// openDir opens the store in dir and closes it when the test ends; a test
// that closes it earlier leaves the second Close harmless.
func (s suite) openDir(t *testing.T, dir string) eventstore.Store {
	t.Helper()
	st, err := s.h.Open(dir)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	if st == nil {
		t.Fatalf("Open(%q) returned a nil store and no error", dir)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// closeStore closes st, failing the test when Close errs or does not return.
func closeStore(t *testing.T, st eventstore.Store) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- st.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(patience):
		t.Fatalf("Close did not return within %v", patience)
	}
}

// event returns an event with a fresh ID.
func event(typ string, data, metadata []byte) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: metadata}
}

// someEvents returns n small events with fresh IDs, told apart by tag.
func someEvents(n int, tag string) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = event("storetest.Happened",
			fmt.Appendf(nil, `{"tag":%q,"n":%d}`, tag, i),
			fmt.Appendf(nil, `{"correlation":%q}`, tag))
	}
	return evs
}

func mustAppend(t *testing.T, st eventstore.Store, stream string, expected eventstore.ExpectedRevision, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := st.Append(t.Context(), stream, expected, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %v, %d events): %v", stream, expected, len(evs), err)
	}
	return res
}

func mustRead(t *testing.T, st eventstore.Store, stream string, opts eventstore.ReadOptions) []eventstore.RecordedEvent {
	t.Helper()
	got, err := st.ReadStream(t.Context(), stream, opts)
	if err != nil {
		t.Fatalf("ReadStream(%q, %+v): %v", stream, opts, err)
	}
	return got
}

// stored is what a recorded event must say about the event data it came
// from: everything but where and when it landed in the global order.
type stored struct {
	ID       uuid.UUID
	Stream   string
	Type     string
	Data     []byte
	Metadata []byte
	Revision uint64
}

// want describes the events of one append as they must read back, the first
// at revision first.
func want(stream string, first uint64, evs ...eventstore.EventData) []stored {
	out := make([]stored, len(evs))
	for i, e := range evs {
		out[i] = stored{ID: e.ID, Stream: stream, Type: e.Type, Data: e.Data, Metadata: e.Metadata, Revision: first + uint64(i)}
	}
	return out
}

func shapes(recs []eventstore.RecordedEvent) []stored {
	out := make([]stored, len(recs))
	for i, r := range recs {
		out[i] = stored{ID: r.ID, Stream: r.Stream, Type: r.Type, Data: r.Data, Metadata: r.Metadata, Revision: r.Revision}
	}
	return out
}

// equateBytes compares byte slices with bytes.Equal: fast on megabytes,
// where cmp's element-wise walk takes seconds, and nil equal to empty, as an
// adapter may read missing metadata back as either. That data is never nil
// is checked apart.
var equateBytes = cmp.Comparer(bytes.Equal)

// diffStored reports how the recorded events differ from the wanted ones.
func diffStored(wantEvs []stored, got []eventstore.RecordedEvent) string {
	return cmp.Diff(wantEvs, shapes(got), equateBytes)
}

// recordedOpts compares whole recorded events: time.Time by its Equal method
// (cmp's default), metadata nil and empty alike.
var recordedOpts = cmp.Options{equateBytes}

// checkPositions checks that positions grow strictly along recs, a run of
// the global order with nothing left out, and on a dense store that they
// follow one another without a gap.
func (s suite) checkPositions(t *testing.T, recs []eventstore.RecordedEvent) {
	t.Helper()
	checkOrdered(t, recs)
	for i := 1; i < len(recs); i++ {
		prev, cur := recs[i-1].Position, recs[i].Position
		if s.h.DensePositions && cur > prev && cur != prev+1 {
			t.Errorf("dense store: position of event %d (%s) is %d, want %d", i, recs[i].ID, cur, prev+1)
		}
	}
}

// checkOrdered checks that positions grow strictly along recs, which are in
// global order but may leave events out (one stream's, for example).
func checkOrdered(t *testing.T, recs []eventstore.RecordedEvent) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		if prev, cur := recs[i-1].Position, recs[i].Position; cur <= prev {
			t.Errorf("position of event %d (%s) is %d, not after %d", i, recs[i].ID, cur, prev)
		}
	}
}

// checkNoDataNil checks that no recorded event has nil data, so that any
// event read from a store can be appended again as it is.
func checkNoDataNil(t *testing.T, recs []eventstore.RecordedEvent) {
	t.Helper()
	for _, r := range recs {
		if r.Data == nil {
			t.Errorf("event %s at %q revision %d reads back with nil data, want non-nil (empty data is []byte{})", r.ID, r.Stream, r.Revision)
		}
	}
}

// snapshot returns every event in the store, in global order, as
// SubscribeAll delivers it. It first appends a sentinel event and reads up to
// it, so it also sees anything a failed operation wrote by mistake. The
// sentinels, its own and earlier ones, are left out of the result.
func snapshot(t *testing.T, st eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	return withoutSentinels(snapshotAll(t, st))
}

func withoutSentinels(recs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, r := range recs {
		if r.Type != sentinelType {
			out = append(out, r)
		}
	}
	return out
}

// snapshotAll is snapshot with the sentinels left in.
func snapshotAll(t *testing.T, st eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	sentinel := event(sentinelType, []byte("end of snapshot"), nil)
	mustAppend(t, st, "storetest-sentinel", eventstore.Any, sentinel)
	sub := subscribe(t, st, 0) // the test's cleanup stops it should next fail
	var all []eventstore.RecordedEvent
	for {
		r := sub.next(t, 1)[0]
		all = append(all, r)
		if r.ID == sentinel.ID {
			sub.stop(t)
			return all
		}
	}
}

// checkUnchanged fails the test when the store holds anything besides the
// events of before (and sentinels).
func checkUnchanged(t *testing.T, st eventstore.Store, before []eventstore.RecordedEvent, after string) {
	t.Helper()
	if diff := cmp.Diff(before, snapshot(t, st), recordedOpts); diff != "" {
		t.Errorf("after %s the store changed (-before +after):\n%s", after, diff)
	}
}

// subscriber consumes a SubscribeAll sequence in a goroutine the test owns,
// so the test can wait for events with patience and see how the sequence
// ends. Stop it with stop, or let the test's cleanup do it.
type subscriber struct {
	items  chan item
	cancel context.CancelFunc
	done   chan struct{}
	// Set by the goroutine before done is closed.
	panicked      any  // what the range loop panicked with, if it did
	yieldAfterErr bool // the sequence went on after yielding an error
}

type item struct {
	ev  eventstore.RecordedEvent
	err error
}

// subscribe starts consuming st.SubscribeAll(ctx, after). With limit > 0 the
// consumer breaks out of the range loop after that many items.
func subscribe(t *testing.T, st eventstore.Store, after eventstore.Position) *subscriber {
	return subscribeLimit(t, st, after, 0)
}

func subscribeLimit(t *testing.T, st eventstore.Store, after eventstore.Position, limit int) *subscriber {
	ctx, cancel := context.WithCancel(t.Context())
	sub := &subscriber{items: make(chan item), cancel: cancel, done: make(chan struct{})}
	go sub.run(ctx, st, after, limit)
	t.Cleanup(func() {
		cancel()
		select {
		case <-sub.done:
		case <-time.After(patience):
			t.Errorf("SubscribeAll(%d) did not end within %v of its context being cancelled", after, patience)
		}
	})
	return sub
}

func (sub *subscriber) run(ctx context.Context, st eventstore.Store, after eventstore.Position, limit int) {
	defer close(sub.done)
	defer func() { sub.panicked = recover() }()
	n, failed := 0, false
	for ev, err := range st.SubscribeAll(ctx, after) {
		if failed {
			sub.yieldAfterErr = true
			return
		}
		select {
		case sub.items <- item{ev: ev, err: err}:
		case <-ctx.Done():
			return
		}
		failed = err != nil
		n++
		if limit > 0 && n == limit {
			return
		}
	}
}

// next waits for the next n events and fails the test on an error, on the
// end of the sequence, or when they do not come.
func (sub *subscriber) next(t *testing.T, n int) []eventstore.RecordedEvent {
	t.Helper()
	timeout := time.NewTimer(patience)
	defer timeout.Stop()
	got := make([]eventstore.RecordedEvent, 0, n)
	for len(got) < n {
		select {
		case it := <-sub.items:
			if it.err != nil {
				t.Fatalf("SubscribeAll yielded an error after %d of %d events: %v", len(got), n, it.err)
			}
			got = append(got, it.ev)
		case <-sub.done:
			if sub.panicked != nil {
				t.Fatalf("SubscribeAll panicked after %d of %d events: %v", len(got), n, sub.panicked)
			}
			t.Fatalf("SubscribeAll ended after %d of %d events", len(got), n)
		case <-timeout.C:
			t.Fatalf("SubscribeAll delivered %d of %d events within %v", len(got), n, patience)
		}
	}
	return got
}

// rest collects what the sequence yields until it ends, failing the test
// when it does not end.
func (sub *subscriber) rest(t *testing.T) (evs []eventstore.RecordedEvent, errs []error) {
	t.Helper()
	timeout := time.NewTimer(patience)
	defer timeout.Stop()
	for {
		select {
		case it := <-sub.items:
			if it.err != nil {
				errs = append(errs, it.err)
			} else {
				evs = append(evs, it.ev)
			}
		case <-sub.done:
			if sub.panicked != nil {
				t.Fatalf("SubscribeAll panicked: %v", sub.panicked)
			}
			if sub.yieldAfterErr {
				t.Errorf("SubscribeAll went on yielding after it yielded an error")
			}
			return evs, errs
		case <-timeout.C:
			t.Fatalf("SubscribeAll did not end within %v", patience)
		}
	}
}

// stop cancels the subscription and checks that it ends with nothing more
// than the context's error.
func (sub *subscriber) stop(t *testing.T) {
	t.Helper()
	sub.cancel()
	_, errs := sub.rest(t) // events committed before the cancel may still arrive
	for _, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("SubscribeAll ended by its context yielded %v, want nothing or an error wrapping context.Canceled", err)
		}
	}
}
