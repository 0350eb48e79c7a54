package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/relay"
	"github.com/koers-io/koers/eventstore/sqlite"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// idSpace makes event IDs deterministic: a restarted appender writes the
// very events it would have written.
var idSpace = uuid.MustParse("3c0f6a55-8f57-4c5e-9a2e-4b7f0c3d2a10")

// streamName is the name of test stream k.
func streamName(k int) string {
	return "case-" + uuid.NewSHA1(idSpace, fmt.Appendf(nil, "stream %d", k)).String()
}

// testEvent is the event at revision rev of test stream k.
func testEvent(k int, rev uint64) eventstore.EventData {
	meta, err := proto.Marshal(&eventv1.Metadata{
		TenantId:      []string{"acme", "bolt", "coda"}[k%3],
		CaseId:        streamName(k)[len("case-"):],
		Actor:         "coach-1",
		SchemaVersion: 1,
	})
	if err != nil {
		panic(err)
	}
	return eventstore.EventData{
		ID:       uuid.NewSHA1(idSpace, fmt.Appendf(nil, "event %d/%d", k, rev)),
		Type:     "koers.case.v1.NoteAdded",
		Data:     fmt.Appendf(nil, "note %d of stream %d: the coach and the client met and agreed on the next step", rev, k),
		Metadata: meta,
	}
}

// appendBatch appends events rev..rev+n-1 of test stream k.
func appendBatch(ctx context.Context, store eventstore.Store, k int, rev uint64, n int) (eventstore.AppendResult, error) {
	expected := eventstore.NoStream
	if rev > 0 {
		expected = eventstore.Exact(rev - 1)
	}
	events := make([]eventstore.EventData, n)
	for i := range events {
		events[i] = testEvent(k, rev+uint64(i))
	}
	return store.Append(ctx, streamName(k), expected, events...)
}

// appendEvents appends n events to store, spread in batches of up to
// three over seven streams, starting at the revisions next holds (and
// updates).
func appendEvents(t testing.TB, store eventstore.Store, next map[int]uint64, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; n > 0; i++ {
		k := i % 7
		size := min(1+i%3, n)
		if _, err := appendBatch(ctx, store, k, next[k], size); err != nil {
			t.Fatalf("append to stream %d at revision %d: %v", k, next[k], err)
		}
		next[k] += uint64(size)
		n -= size
	}
}

func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(path, sqlite.Options{Logger: bustest.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func newStore(t testing.TB) *sqlite.Store {
	return openStore(t, filepath.Join(t.TempDir(), "events.db"))
}

// fixture is a store and an embedded NATS server with the event stream.
type fixture struct {
	srv    *bus.Embedded
	js     jetstream.JetStream
	stream jetstream.Stream
	store  *sqlite.Store
}

func newFixture(t testing.TB, cfg bus.StreamConfig) *fixture {
	t.Helper()
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	s, err := bus.EnsureEventStream(context.Background(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, js: js, stream: s, store: newStore(t)}
}

// running is a relay whose Run goroutine the test owns.
type running struct {
	*relay.Relay
	cancel context.CancelFunc
	done   chan error
}

// start runs a relay until stop or the end of the test.
func start(t testing.TB, store eventstore.Store, js jetstream.JetStream, opts relay.Options) *running {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = bustest.Logger(t, slog.LevelError)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Relay: relay.New(store, js, opts), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- r.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the relay and waits for Run to return; it is idempotent.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("relay did not stop within 30s of its context ending")
		return nil
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// bound: the bound catches a hang, it measures nothing.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// streamState returns the stream's state, with a timeout per try so that a
// request lost in a server restart does not hang.
func streamState(js jetstream.JetStream, name string) (jetstream.StreamState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	return s.CachedInfo().State, nil
}

// storeEvents returns the store's first n events in global order.
func storeEvents(t testing.TB, store eventstore.Store, n int) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := make([]eventstore.RecordedEvent, 0, n)
	if n == 0 {
		return events
	}
	for ev, err := range store.SubscribeAll(ctx, 0) {
		if err != nil {
			t.Fatalf("reading the store after %d events: %v", len(events), err)
		}
		events = append(events, ev)
		if len(events) == n {
			break
		}
	}
	return events
}

// checkStreamMirrorsStore checks the invariant: the JetStream stream holds
// the store's events exactly once, in store order: n messages at sequences
// 1..n, message i is the store's event i as bus.Message renders it, and
// positions chain through Koers-Previous-Position without a gap.
func checkStreamMirrorsStore(t testing.TB, store eventstore.Store, js jetstream.JetStream, streamName string, n int) {
	t.Helper()
	state, err := streamState(js, streamName)
	if err != nil {
		t.Fatalf("stream state: %v", err)
	}
	if state.Msgs != uint64(n) || state.FirstSeq != 1 || state.LastSeq != uint64(n) {
		t.Fatalf("stream holds %d messages at sequences %d..%d, want %d at 1..%d", state.Msgs, state.FirstSeq, state.LastSeq, n, n)
	}
	want := storeEvents(t, store, n)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var previous eventstore.Position
	for i := 0; i < n; {
		batch, err := cons.Fetch(min(1000, n-i), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("fetching after %d messages: %v", i, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			ev, err := bus.Decode(m.Data(), m.Headers())
			if err != nil {
				t.Fatalf("message %d: %v", meta.Sequence.Stream, err)
			}
			if meta.Sequence.Stream != uint64(i+1) {
				t.Fatalf("message %d has stream sequence %d", i+1, meta.Sequence.Stream)
			}
			se := want[i]
			if ev.GetPreviousPosition() != uint64(previous) {
				t.Fatalf("message %d: previous position %d, want %d (a gap or a repeat)", i+1, ev.GetPreviousPosition(), previous)
			}
			if ev.GetPosition() != uint64(i+1) || ev.GetPosition() != uint64(se.Position) {
				t.Fatalf("message %d: position %d, want %d (store event %d)", i+1, ev.GetPosition(), i+1, se.Position)
			}
			if ev.GetId() != se.ID.String() || ev.GetStream() != se.Stream || ev.GetRevision() != se.Revision ||
				ev.GetType() != se.Type || string(ev.GetData()) != string(se.Data) {
				t.Fatalf("message %d differs from store event %d: got %s %s@%d, want %s %s@%d",
					i+1, se.Position, ev.GetId(), ev.GetStream(), ev.GetRevision(), se.ID, se.Stream, se.Revision)
			}
			if wantSubject, _ := bus.Message(se, previous); m.Subject() != wantSubject.Subject {
				t.Fatalf("message %d on subject %q, want %q", i+1, m.Subject(), wantSubject.Subject)
			}
			previous = se.Position
			i++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("fetching after %d messages: %v", i, err)
		}
		if got == 0 {
			t.Fatalf("no messages after %d of %d", i, n)
		}
	}
}
