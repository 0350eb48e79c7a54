package projections

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/koers-io/koers/eventstore"
)

// TestBatchProjectionEndsAsApplyDoes projects a history with republished
// copies and a poisoned tenant through a projection that applies whole
// batches in memory: the tables and the parked events end as they do one
// event at a time, since a batch with a failing event is applied again
// event by event.
func TestBatchProjectionEndsAsApplyDoes(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		ctx := context.Background()
		f := newNATS(t)
		db := open(t)
		events := history(2000)
		msgs := messages(t, events)
		var republished []*nats.Msg
		for _, m := range msgs[699:1000] {
			republished = append(republished, withoutMsgID(m))
		}
		publish(t, f.js, msgs[:1000])
		publish(t, f.js, republished)
		publish(t, f.js, msgs[1000:])
		p := newBatchTally()
		poisoned := "coda"
		p.poison.Store(&poisoned)
		startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}, MaxBatch: 250})
		waitPosition(t, db, p.Name(), 2000)

		var others []eventstore.RecordedEvent
		var parked []eventstore.Position
		for _, ev := range events {
			if tenantOf(ev) != poisoned {
				others = append(others, ev)
			} else if ev.Type != p.ignore && ev.Type != futureType {
				parked = append(parked, ev.Position)
			}
		}
		if diff := cmp.Diff(expectedTally(others, p.ignore), dumpTally(t, db, p.Name())); diff != "" {
			t.Errorf("tables with the poisoned tenant parked (-want +got):\n%s", diff)
		}
		dead, err := DeadLetters(ctx, db, p.Name())
		if err != nil {
			t.Fatal(err)
		}
		var got []eventstore.Position
		for _, d := range dead {
			got = append(got, d.Position)
		}
		if diff := cmp.Diff(parked, got); diff != "" {
			t.Errorf("parked positions (-want +got):\n%s", diff)
		}

		p.poison.Store(nil)
		if _, err := Retry(ctx, db, p, 0); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(expectedTally(events, p.ignore), dumpTally(t, db, p.Name())); diff != "" {
			t.Errorf("tables after the retry (-want +got):\n%s", diff)
		}
	})
}

// TestBatchProjectionInOneGo applies a history without failures: every
// event goes through the batch path, and the tables match the history
// applied one event at a time.
func TestBatchProjectionInOneGo(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		f := newNATS(t)
		db := open(t)
		events := history(3000)
		publish(t, f.js, messages(t, events))
		p := newBatchTally()
		e := startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}, MaxBatch: 700})
		waitPosition(t, db, p.Name(), 3000)
		if diff := cmp.Diff(expectedTally(events, p.ignore), dumpTally(t, db, p.Name())); diff != "" {
			t.Errorf("tables (-want +got):\n%s", diff)
		}
		if dead, _ := DeadLetters(context.Background(), db, p.Name()); len(dead) != 0 {
			t.Errorf("%d events parked, want none", len(dead))
		}
		if st, _ := e.Stats(p.Name()); st.Applied == 0 || uint64(p.flushed.Load()) != st.Applied {
			t.Errorf("the engine applied %d events, the batches flushed %d; want all of them through the batches", st.Applied, p.flushed.Load())
		}
	})
}
