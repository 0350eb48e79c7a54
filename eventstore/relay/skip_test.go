package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/relay"
	"github.com/koers-io/koers/eventstore/sqlite"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// skipAudit keeps the audit trail's streams off the bus, as node
// configures the relay (audit.IsAuditStream).
func skipAudit(stream string) bool { return strings.HasPrefix(stream, "audit-") }

// auditWriter appends audit records to the audit streams of three tenants,
// one record per append as the recorder does.
type auditWriter struct {
	store eventstore.Store
	n     int
}

func (w *auditWriter) append(t testing.TB, count int) {
	t.Helper()
	for range count {
		tenant := []string{"acme", "bolt", "coda"}[w.n%3]
		meta, err := proto.Marshal(&eventv1.Metadata{TenantId: tenant, Actor: "admin-1", SchemaVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		ev := eventstore.EventData{
			ID:       uuid.NewSHA1(idSpace, fmt.Appendf(nil, "audit %d", w.n)),
			Type:     "koers.audit.v1.AuditRecord",
			Data:     fmt.Appendf(nil, "audit record %d", w.n),
			Metadata: meta,
		}
		if _, err := w.store.Append(context.Background(), "audit-"+tenant, eventstore.Any, ev); err != nil {
			t.Fatalf("appending audit record %d: %v", w.n, err)
		}
		w.n++
	}
}

// appendMixed appends cases case events and audits audit records,
// interleaved in small runs of each.
func appendMixed(t testing.TB, store eventstore.Store, next map[int]uint64, audits *auditWriter, cases, audit int) {
	t.Helper()
	for cases > 0 || audit > 0 {
		if cases > 0 {
			n := min(7, cases)
			appendEvents(t, store, next, n)
			cases -= n
		}
		if audit > 0 {
			n := min(1+audit%4, audit)
			audits.append(t, n)
			audit -= n
		}
	}
}

func TestRelaySkipsStreamsWithoutAGapInThePublishedChain(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	next := map[int]uint64{}
	audits := &auditWriter{store: f.store}
	published := 0

	// A skipped prefix: the first published event follows position 0,
	// though it is not the store's first.
	audits.append(t, 40)
	appendMixed(t, f.store, next, audits, 1200, 600)
	published += 1200
	// A skipped suffix: the relay must count it as relayed.
	audits.append(t, 60)

	first := start(t, f.store, f.js, relay.Options{Window: 64, Skip: skipAudit})
	waitFor(t, "the first relay to pass the skipped suffix", func() bool { return first.Position() == f.store.Head() })
	checkStreamMirrorsPublished(t, f.store, f.js, published)
	if st := first.Stats(); st.Published != uint64(published) || st.Read != f.store.Head() {
		t.Errorf("first relay: stats %+v, want %d published and read up to the store head %d", st, published, f.store.Head())
	}
	if lag, ok := first.Lag(); !ok || lag != 0 {
		t.Errorf("first relay: Lag() = %d, %t after the skipped suffix; want 0, true", lag, ok)
	}
	if err := first.stop(t); err != nil {
		t.Fatalf("first relay: %v", err)
	}

	// More skipped events while no relay runs: the stream's last message
	// is now well before the store head.
	audits.append(t, 50)
	second := start(t, f.store, f.js, relay.Options{Window: 64, Skip: skipAudit})
	waitFor(t, "the second relay to pass the skipped suffix", func() bool { return second.Position() == f.store.Head() })
	if st := second.Stats(); st.Published != 0 {
		t.Errorf("second relay published %d messages of a skipped suffix, want none", st.Published)
	}
	appendMixed(t, f.store, next, audits, 500, 300)
	published += 500
	waitFor(t, "the second relay to catch up", func() bool { return second.Position() == f.store.Head() })
	checkStreamMirrorsPublished(t, f.store, f.js, published)
	if st := second.Stats(); st.Published != 500 || st.Runs != 1 || st.LastError != nil {
		t.Errorf("second relay: stats %+v, want the 500 new case events stored in one run without error", st)
	}
}

// checkStreamMirrorsPublished checks the invariant with skipped streams:
// the JetStream stream holds exactly the store's events that skipAudit lets
// through (n of them), in store order, and a consumer applying the
// projections' rule (a message applies only when its previous position is
// the checkpoint) applies every one and finds no gap and no repeat.
func checkStreamMirrorsPublished(t testing.TB, store *sqlite.Store, js jetstream.JetStream, n int) {
	t.Helper()
	var want []eventstore.RecordedEvent
	for _, ev := range storeEvents(t, store, int(store.Head())) {
		if !skipAudit(ev.Stream) {
			want = append(want, ev)
		}
	}
	if len(want) != n {
		t.Fatalf("the store holds %d unskipped events, the test expected %d", len(want), n)
	}
	state, err := streamState(js, bus.DefaultStreamName)
	if err != nil {
		t.Fatalf("stream state: %v", err)
	}
	if state.Msgs != uint64(n) || state.FirstSeq != 1 || state.LastSeq != uint64(n) {
		t.Fatalf("stream holds %d messages at sequences %d..%d, want %d at 1..%d", state.Msgs, state.FirstSeq, state.LastSeq, n, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, bus.DefaultStreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var checkpoint eventstore.Position
	for i := 0; i < n; {
		batch, err := cons.Fetch(min(1000, n-i), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("fetching after %d messages: %v", i, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			pos, err := bus.PositionOf(m.Headers())
			if err != nil {
				t.Fatalf("message %d: %v", i+1, err)
			}
			prev, err := bus.PreviousPositionOf(m.Headers())
			if err != nil {
				t.Fatalf("message %d: %v", i+1, err)
			}
			switch {
			case pos <= checkpoint:
				t.Fatalf("message %d: position %d repeats, the checkpoint is %d", i+1, pos, checkpoint)
			case prev != checkpoint:
				t.Fatalf("message %d: position %d follows %d, but the checkpoint is %d: a gap", i+1, pos, prev, checkpoint)
			}
			ev, err := bus.Decode(m.Data(), m.Headers())
			if err != nil {
				t.Fatalf("message %d: %v", i+1, err)
			}
			se := want[i]
			if pos != se.Position || ev.GetId() != se.ID.String() || ev.GetStream() != se.Stream || ev.GetRevision() != se.Revision {
				t.Fatalf("message %d is %s %s@%d at position %d, want the store's %d-th unskipped event %s %s@%d at %d",
					i+1, ev.GetId(), ev.GetStream(), ev.GetRevision(), pos, i+1, se.ID, se.Stream, se.Revision, se.Position)
			}
			checkpoint = pos
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
