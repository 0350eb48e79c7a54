package sqlite

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore"
)

// patience bounds waits for something a correct store does at once, so that
// a broken one fails with a message instead of hanging. It is no timing
// assertion.
const patience = 30 * time.Second

func openStore(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newEvent(tag string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: "test.Happened", Data: []byte(`{"tag":"` + tag + `"}`)}
}

func newEvents(n int, tag string) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = newEvent(fmt.Sprintf("%s-%d", tag, i))
	}
	return evs
}

func mustAppend(t *testing.T, s *Store, stream string, expected eventstore.ExpectedRevision, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, expected, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %v): %v", stream, expected, err)
	}
	return res
}

func mustRead(t *testing.T, s *Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	got, err := s.ReadStream(t.Context(), stream, eventstore.ReadOptions{})
	if err != nil {
		t.Fatalf("ReadStream(%q): %v", stream, err)
	}
	return got
}

// readAll returns every event up to the store's head, by SubscribeAll.
func readAll(t *testing.T, s *Store) []eventstore.RecordedEvent {
	t.Helper()
	head := s.Head()
	var all []eventstore.RecordedEvent
	if head == 0 {
		return nil
	}
	for e, err := range s.SubscribeAll(t.Context(), 0) {
		if err != nil {
			t.Fatalf("SubscribeAll: %v", err)
		}
		all = append(all, e)
		if e.Position >= head {
			break
		}
	}
	return all
}

func positions(recs []eventstore.RecordedEvent) []eventstore.Position {
	out := make([]eventstore.Position, len(recs))
	for i, r := range recs {
		out[i] = r.Position
	}
	return out
}

func idsOf(recs []eventstore.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func eventIDs(evs ...eventstore.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// waitFor waits until cond holds, failing the test after patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", patience, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// gate holds the writer before its holdAt-th batch (from 1) until it is
// opened, so that a test can queue appends that the writer then takes as one
// batch. It records the size of every batch.
type gate struct {
	holdAt int
	held   chan struct{} // closed when the writer waits at the gate
	open   chan struct{}

	mu    sync.Mutex
	sizes []int
}

func newGate(holdAt int) *gate {
	return &gate{holdAt: holdAt, held: make(chan struct{}), open: make(chan struct{})}
}

func (g *gate) beforeBatch(size int) {
	g.mu.Lock()
	g.sizes = append(g.sizes, size)
	n := len(g.sizes)
	g.mu.Unlock()
	if n == g.holdAt {
		close(g.held)
		<-g.open
	}
}

func (g *gate) batchSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

type outcome struct {
	res eventstore.AppendResult
	err error
}

// goAppend appends in a goroutine of its own and delivers the outcome.
func goAppend(ctx context.Context, s *Store, stream string, expected eventstore.ExpectedRevision, evs ...eventstore.EventData) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		res, err := s.Append(ctx, stream, expected, evs...)
		done <- outcome{res, err}
	}()
	return done
}

func await(t *testing.T, what string, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(patience):
		t.Fatalf("%s did not return within %v", what, patience)
		return outcome{}
	}
}

// plugWriter holds the writer at g with a batch of one append, and returns
// that append's outcome.
func plugWriter(t *testing.T, s *Store, g *gate) <-chan outcome {
	t.Helper()
	plug := goAppend(t.Context(), s, "case-plug", eventstore.NoStream, newEvent("plug"))
	select {
	case <-g.held:
	case <-time.After(patience):
		t.Fatalf("the writer did not reach the gate within %v", patience)
	}
	return plug
}

// queue starts the appends of calls one after another, each once the one
// before is in the writer's queue, so that they queue in order.
func queue(t *testing.T, s *Store, calls []appendCall) []<-chan outcome {
	t.Helper()
	outs := make([]<-chan outcome, len(calls))
	for i, c := range calls {
		outs[i] = goAppend(t.Context(), s, c.stream, c.expected, c.events...)
		waitFor(t, fmt.Sprintf("append %d (%s) to queue", i, c.name), func() bool { return len(s.queue) == i+1 })
	}
	return outs
}

type appendCall struct {
	name     string
	stream   string
	expected eventstore.ExpectedRevision
	events   []eventstore.EventData
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	return fi.Size()
}
