package relay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/relay"
)

func TestRelayPublishesEveryEventOnceInStoreOrder(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	next := map[int]uint64{}
	appendEvents(t, f.store, next, 600) // catch-up

	r := start(t, f.store, f.js, relay.Options{Window: 64})
	waitFor(t, "the catch-up to be relayed", func() bool { return r.Position() == 600 })
	appendEvents(t, f.store, next, 400) // live
	waitFor(t, "the live events to be relayed", func() bool { return r.Position() == 1000 })

	checkStreamMirrorsStore(t, f.store, f.js, bus.DefaultStreamName, 1000)
	st := r.Stats()
	if st.Published != 1000 || st.Read != 1000 || st.Runs != 1 || st.LastError != nil {
		t.Errorf("stats %+v, want 1000 published and read in one run without error", st)
	}
	if lag, ok := r.Lag(); !ok || lag != 0 {
		t.Errorf("Lag() = %d, %t; want 0, true", lag, ok)
	}
}

func TestRelayResumesFromTheStreamsLastMessage(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	next := map[int]uint64{}
	appendEvents(t, f.store, next, 300)
	first := start(t, f.store, f.js, relay.Options{})
	waitFor(t, "the first relay", func() bool { return first.Position() == 300 })
	if err := first.stop(t); err != nil {
		t.Fatalf("first relay: %v", err)
	}

	appendEvents(t, f.store, next, 200)
	second := start(t, f.store, f.js, relay.Options{})
	if lag, _ := second.Lag(); lag != 500 {
		// Before its first run a relay knows nothing of the stream.
		t.Errorf("lag of a relay that has not run = %d, want the store head 500", lag)
	}
	waitFor(t, "the second relay", func() bool { return second.Position() == 500 })
	checkStreamMirrorsStore(t, f.store, f.js, bus.DefaultStreamName, 500)
	if got := second.Stats().Published; got != 200 {
		t.Errorf("second relay published %d messages, want only the 200 after the stream's last", got)
	}
}

func TestRepublishedTailIsDropped(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	next := map[int]uint64{}
	appendEvents(t, f.store, next, 50)
	r := start(t, f.store, f.js, relay.Options{})
	waitFor(t, "the relay", func() bool { return r.Position() == 50 })

	// Another publisher, or a relay without the sequence guard, sends the
	// tail again: JetStream drops every copy by its event ID.
	events := storeEvents(t, f.store, 50)
	ctx := context.Background()
	for i := 40; i < 50; i++ {
		msg, err := bus.Message(events[i], events[i-1].Position)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := f.js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatalf("republishing position %d: %v", events[i].Position, err)
		}
		if !ack.Duplicate || ack.Sequence != uint64(i+1) {
			t.Errorf("republished position %d: ack %+v, want a duplicate of sequence %d", events[i].Position, ack, i+1)
		}
	}
	// The relay goes on after the dropped copies as if nothing happened.
	appendEvents(t, f.store, next, 25)
	waitFor(t, "the relay", func() bool { return r.Position() == 75 })
	checkStreamMirrorsStore(t, f.store, f.js, bus.DefaultStreamName, 75)
	if st := r.Stats(); st.Runs != 1 {
		t.Errorf("relay ran %d times, want 1: dropped copies must not disturb it", st.Runs)
	}
}

func TestTwoRelaysAtOnceKeepTheStreamExact(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	next := map[int]uint64{}
	appendEvents(t, f.store, next, 200)
	// Each on its own connection, racing for every sequence: each publish
	// either extends the stream by the right event or is refused.
	opts := relay.Options{Window: 16, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	a := start(t, f.store, f.js, opts)
	b := start(t, f.store, bustest.JetStream(t, f.srv), opts)
	appendEvents(t, f.store, next, 1800)
	waitFor(t, "both relays", func() bool { return a.Position() == 2000 && b.Position() == 2000 })
	checkStreamMirrorsStore(t, f.store, f.js, bus.DefaultStreamName, 2000)
	sa, sb := a.Stats(), b.Stats()
	if sa.Published+sb.Published > 2000 {
		// An abandoned run leaves acks unread, so the sum may fall short;
		// it may never exceed what the stream holds.
		t.Errorf("relays counted %d + %d stored messages, more than the 2000 the stream holds", sa.Published, sb.Published)
	}
	t.Logf("relay a: %d stored in %d runs; relay b: %d stored in %d runs", sa.Published, sa.Runs, sb.Published, sb.Runs)
}

func TestRelayRefillsAPurgedStream(t *testing.T) {
	// A short duplicate window, so that JetStream soon forgets the purged
	// IDs; until then the relay sees duplicate acks of purged sequences
	// and must retry rather than count them as stored.
	f := newFixture(t, bus.StreamConfig{Duplicates: time.Second})
	next := map[int]uint64{}
	appendEvents(t, f.store, next, 100)
	r := start(t, f.store, f.js, relay.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	waitFor(t, "the relay", func() bool { return r.Position() == 100 })
	r.stop(t)

	if err := f.stream.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, f.store, next, 10)
	r = start(t, f.store, f.js, relay.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	waitFor(t, "the refill", func() bool { return r.Position() == 110 })

	state, err := streamState(f.js, bus.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if state.Msgs != 110 || state.FirstSeq != 101 || state.LastSeq != 210 {
		t.Errorf("stream holds %d messages at %d..%d, want 110 at 101..210", state.Msgs, state.FirstSeq, state.LastSeq)
	}
	st := r.Stats()
	if st.Published != 110 {
		t.Errorf("relay stored %d messages, want 110", st.Published)
	}
	if st.Runs < 2 || !errors.Is(st.LastError, relay.ErrUnexpectedAck) {
		t.Errorf("relay ran %d times, last error %v; want duplicate acks of purged sequences to have ended runs", st.Runs, st.LastError)
	}
}

func TestRelayWillNotResumeFromAForeignMessage(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	appendEvents(t, f.store, map[int]uint64{}, 10)
	if _, err := f.js.Publish(context.Background(), "koers.events.acme.case.1", []byte("not from a relay")); err != nil {
		t.Fatal(err)
	}
	r := start(t, f.store, f.js, relay.Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	waitFor(t, "a few refused runs", func() bool { return r.Stats().Runs >= 3 })

	st := r.Stats()
	if !errors.Is(st.LastError, bus.ErrMalformedMessage) {
		t.Errorf("last error %v, want one wrapping bus.ErrMalformedMessage", st.LastError)
	}
	state, err := streamState(f.js, bus.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if state.Msgs != 1 || st.Published != 0 {
		t.Errorf("stream holds %d messages and the relay stored %d; want the foreign one alone", state.Msgs, st.Published)
	}
}

func TestRelayWaitsForTheStreamToExist(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{Name: "FIRST"})
	appendEvents(t, f.store, map[int]uint64{}, 20)
	r := start(t, f.store, f.js, relay.Options{Stream: "LATER", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	waitFor(t, "a refused run", func() bool { return r.Stats().Runs >= 2 })
	if st := r.Stats(); !errors.Is(st.LastError, jetstream.ErrStreamNotFound) {
		t.Errorf("last error %v, want one wrapping jetstream.ErrStreamNotFound", st.LastError)
	}
	// LATER cannot share FIRST's subjects; drop FIRST, as an operator
	// moving the stream would.
	if err := f.js.DeleteStream(context.Background(), "FIRST"); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureEventStream(context.Background(), f.js, bus.StreamConfig{Name: "LATER"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay", func() bool { return r.Position() == 20 })
	checkStreamMirrorsStore(t, f.store, f.js, "LATER", 20)
}

func TestRelayStopsWhenTheStoreCloses(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	appendEvents(t, f.store, map[int]uint64{}, 5)
	r := start(t, f.store, f.js, relay.Options{})
	waitFor(t, "the relay", func() bool { return r.Position() == 5 })
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Run returned %v, want an error wrapping eventstore.ErrClosed", err)
		}
		close(r.done)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the store closed")
	}
}

func TestRelayStopsWithItsContext(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	r := start(t, f.store, f.js, relay.Options{})
	waitFor(t, "the first run", func() bool { return r.Stats().Runs == 1 })
	if err := r.stop(t); err != nil {
		t.Errorf("Run returned %v after its context ended, want nil", err)
	}
}

func TestRelayComesBackAfterTheConnectionDrops(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	next := map[int]uint64{}
	nc := bustest.Connect(t, f.srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, f.store, js, relay.Options{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	for range 5 {
		appendEvents(t, f.store, next, 300)
		// Cut the connection under the relay while publishes are in
		// flight; the client reconnects by itself.
		if err := nc.ForceReconnect(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the relay", func() bool { return r.Position() == 1500 })
	checkStreamMirrorsStore(t, f.store, f.js, bus.DefaultStreamName, 1500)
	t.Logf("relay ran %d times", r.Stats().Runs)
}
