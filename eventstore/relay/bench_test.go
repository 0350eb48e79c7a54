package relay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/relay"
)

// benchEvents is how many events each benchmark iteration carries onto a
// fresh stream.
const benchEvents = 50_000

// BenchmarkRelay measures the relay's sustained rate from a store holding
// benchEvents committed events to JetStream's ack of the last, against the
// baseline of the same messages published asynchronously straight to the
// same stream configuration without a store. Compare the events/s of the
// sub-benchmarks of one run; absolute figures depend on the machine.
func BenchmarkRelay(b *testing.B) {
	srv := bustest.StartServer(b)
	store := newStore(b)
	ctx := context.Background()
	for k := range 100 {
		for rev := uint64(0); rev < benchEvents/100; rev += 50 {
			if _, err := appendBatch(ctx, store, k, rev, 50); err != nil {
				b.Fatal(err)
			}
		}
	}
	events := storeEvents(b, store, benchEvents)
	msgs := make([]*nats.Msg, len(events))
	var previous eventstore.Position
	for i, ev := range events {
		m, err := bus.Message(ev, previous)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i], previous = m, ev.Position
	}

	conns := []struct {
		name    string
		connect func(testing.TB) jetstream.JetStream
	}{
		{"tcp", func(tb testing.TB) jetstream.JetStream { return bustest.JetStream(tb, srv) }},
		{"in-process", func(tb testing.TB) jetstream.JetStream {
			nc, err := srv.Connect()
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				tb.Fatal(err)
			}
			return js
		}},
	}
	for _, c := range conns {
		b.Run("baseline=async-publish/conn="+c.name, func(b *testing.B) {
			js := c.connect(b)
			for range b.N {
				b.StopTimer()
				freshStream(b, js)
				b.StartTimer()
				for _, m := range msgs {
					// A copy: the library sets headers on what it is given.
					if _, err := js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}); err != nil {
						b.Fatal(err)
					}
				}
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(time.Minute):
					b.Fatal("acks did not arrive")
				}
			}
			reportRate(b)
		})
		for _, window := range []int{512, relay.DefaultWindow} {
			b.Run(fmt.Sprintf("relay/conn=%s/window=%d", c.name, window), func(b *testing.B) {
				js := c.connect(b)
				for range b.N {
					b.StopTimer()
					freshStream(b, js)
					r := start(b, store, js, relay.Options{Window: window})
					b.StartTimer()
					for r.Position() < benchEvents {
						time.Sleep(100 * time.Microsecond)
					}
					b.StopTimer()
					r.stop(b)
					b.StartTimer()
				}
				reportRate(b)
			})
		}
	}
}

// freshStream replaces the event stream with an empty one, forgetting its
// message IDs.
func freshStream(tb testing.TB, js jetstream.JetStream) {
	ctx := context.Background()
	if err := js.DeleteStream(ctx, bus.DefaultStreamName); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		tb.Fatal(err)
	}
	if _, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{}); err != nil {
		tb.Fatal(err)
	}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N*benchEvents)/b.Elapsed().Seconds(), "events/s")
}
