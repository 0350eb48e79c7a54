package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/kurrentdb"
	"github.com/koers-io/koers/eventstore/kurrentdb/kurrentdbtest"
	"github.com/koers-io/koers/eventstore/relay"
)

// TestRelayFromKurrentDBThroughDropsAndKills relays kurrentdbRelayEvents
// events appended through the KurrentDB adapter, while the KurrentDB test
// double drops the relay's subscription three times and the relay is
// killed twice (its run cancelled and its NATS connection closed without
// draining, as a process dying would leave them) and started afresh. The
// drops must not end the relay's run: the adapter subscribes again by
// itself. Afterwards the JetStream stream holds every event exactly once,
// in KurrentDB's order, with the previous-position chain intact.
func TestRelayFromKurrentDBThroughDropsAndKills(t *testing.T) {
	n := kurrentdbRelayEvents
	kdb := kurrentdbtest.Start(t)
	store := openKurrentDB(t, kdb)
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	if _, err := bus.EnsureEventStream(context.Background(), js, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var appended atomic.Int64
	appendDone := make(chan error, 1)
	go func() { appendDone <- appendToKurrentDB(ctx, store, n, &appended) }()

	relayed := func(share int) func() bool {
		return func() bool {
			state, err := streamState(js, bus.DefaultStreamName)
			return err == nil && state.Msgs >= uint64(n*share/100)
		}
	}
	r := startKillable(t, store, srv)
	drops := 0
	for i, step := range []struct {
		at   int // share of the events relayed, in percent
		kill bool
	}{
		{at: 10}, {at: 25, kill: true}, {at: 40}, {at: 55, kill: true}, {at: 70},
	} {
		waitFor(t, fmt.Sprintf("%d%% of the events relayed", step.at), relayed(step.at))
		if step.kill {
			t.Logf("step %d: killing the relay with %d events appended", i, appended.Load())
			r.kill(t)
			r = startKillable(t, store, srv)
			continue
		}
		// Drop only a subscription that is delivering, and check that the
		// relay's run survives it: the adapter, not the relay, recovers.
		waitFor(t, "the relay's subscription", func() bool { return kdb.Subscriptions() > 0 })
		runs, started := r.Stats().Runs, kdb.SubscriptionsStarted()
		dropped := kdb.DropSubscriptions()
		drops++
		t.Logf("step %d: dropped %d subscriptions with %d events appended", i, dropped, appended.Load())
		waitFor(t, "the adapter to subscribe again", func() bool { return kdb.SubscriptionsStarted() > started })
		if got := r.Stats().Runs; got != runs {
			t.Errorf("step %d: the drop ended the relay's run (runs %d → %d); the adapter should have subscribed again by itself", i, runs, got)
		}
	}
	if err := <-appendDone; err != nil {
		t.Fatalf("appending: %v", err)
	}
	if appended.Load() != int64(n) {
		t.Fatalf("appended %d events, want %d", appended.Load(), n)
	}
	want := storeEvents(t, store, n)
	last := want[len(want)-1].Position
	waitFor(t, "the relay to catch up", func() bool { return r.Position() == last })
	if drops != 3 {
		t.Fatalf("the test dropped the subscription %d times, want 3", drops)
	}
	r.kill(t)
	checkStreamMirrorsSparseStore(t, want, js, bus.DefaultStreamName)
}

// openKurrentDB opens the adapter on the test double and closes it when
// the test ends.
func openKurrentDB(t testing.TB, kdb *kurrentdbtest.Server) *kurrentdb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := kurrentdb.Open(ctx, kdb.URL(), kurrentdb.Options{Logger: bustest.Logger(t, slog.LevelError)})
	if err != nil {
		t.Fatalf("opening the KurrentDB store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// killable is a relay with a NATS connection of its own, which kill
// severs.
type killable struct {
	*relay.Relay
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

func startKillable(t testing.TB, store eventstore.Store, srv *bus.Embedded) *killable {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &killable{
		Relay:  relay.New(store, js, relay.Options{Logger: bustest.Logger(t, slog.LevelError), MaxBackoff: 200 * time.Millisecond}),
		nc:     nc,
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { k.done <- k.Run(ctx) }()
	t.Cleanup(func() { k.kill(t) })
	return k
}

// kill closes the relay's NATS connection, dropping whatever it had not
// sent, and cancels its run; it waits for Run to return. It is idempotent.
func (k *killable) kill(t testing.TB) {
	t.Helper()
	k.nc.Close()
	k.cancel()
	select {
	case err, ok := <-k.done:
		if ok {
			close(k.done)
		}
		if err != nil {
			t.Errorf("the killed relay's Run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not stop within 30s of being killed")
	}
}

// appendToKurrentDB appends n events to 100 streams in batches of 10 from
// 16 goroutines, counting them in appended.
func appendToKurrentDB(ctx context.Context, store eventstore.Store, n int, appended *atomic.Int64) error {
	const streams, batch, writers = 100, 10, 16
	perStream := uint64(n / streams)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for rev := uint64(0); rev < perStream; rev += batch {
				for k := w; k < streams; k += writers {
					size := int(min(batch, perStream-rev))
					if _, err := appendBatch(ctx, store, k, rev, size); err != nil {
						errs <- fmt.Errorf("stream %d revision %d: %w", k, rev, err)
						return
					}
					appended.Add(int64(size))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return errors.Join(<-errs)
}

// checkStreamMirrorsSparseStore checks the invariant on a store whose
// positions leave gaps: the JetStream stream holds the events of want (the
// store's, in its order) exactly once, message i being event i, and each
// message's previous position is the position of the event before it.
func checkStreamMirrorsSparseStore(t testing.TB, want []eventstore.RecordedEvent, js jetstream.JetStream, streamName string) {
	t.Helper()
	n := len(want)
	for i := 1; i < n; i++ {
		if want[i].Position <= want[i-1].Position {
			t.Fatalf("the store's events %d and %d are at positions %d and %d, not in order", i-1, i, want[i-1].Position, want[i].Position)
		}
	}
	if last := want[n-1].Position; last <= eventstore.Position(n) {
		t.Errorf("the last of %d events is at position %d: the store's positions are dense, so this test does not check gaps", n, last)
	}
	state, err := streamState(js, streamName)
	if err != nil {
		t.Fatalf("stream state: %v", err)
	}
	if state.Msgs != uint64(n) || state.FirstSeq != 1 || state.LastSeq != uint64(n) {
		t.Fatalf("stream holds %d messages at sequences %d..%d, want %d at 1..%d", state.Msgs, state.FirstSeq, state.LastSeq, n, n)
	}

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
			ev, err := bus.Decode(m.Data(), m.Headers())
			if err != nil {
				t.Fatalf("message %d: %v", i+1, err)
			}
			se := want[i]
			if ev.GetPreviousPosition() != uint64(previous) {
				t.Fatalf("message %d: previous position %d, want %d (a gap or a repeat)", i+1, ev.GetPreviousPosition(), previous)
			}
			if ev.GetPosition() != uint64(se.Position) || ev.GetId() != se.ID.String() || ev.GetStream() != se.Stream ||
				ev.GetRevision() != se.Revision || ev.GetType() != se.Type || string(ev.GetData()) != string(se.Data) {
				t.Fatalf("message %d is %s %s@%d at position %d, want store event %d: %s %s@%d at position %d",
					i+1, ev.GetId(), ev.GetStream(), ev.GetRevision(), ev.GetPosition(), i, se.ID, se.Stream, se.Revision, se.Position)
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
