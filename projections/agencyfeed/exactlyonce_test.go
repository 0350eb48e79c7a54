package agencyfeed_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/agencyfeed"
	"github.com/koers-io/koers/projections/report/testbed"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

const case5 = "55555555-5555-4555-8555-555555555555"

// moreHistory adds a case that reintegra works on to h, and returns what
// the feed gains by it.
func moreHistory(t testing.TB, h *history) []string {
	h.add(t, "acme", case5, &casev1.CaseOpened{ClientId: "client-5", Client: sealed("client-5"), OpenedOn: date(2025, 7, 1)})
	h.add(t, "acme", case5, &casev1.ReintegrationStarted{SickReportedOn: date(2025, 6, 23)})
	h.add(t, "acme", case5, agencyConsent("reintegra", reintegration))
	assigned := h.add(t, "acme", case5, &casev1.ReintegrationAgencyAssigned{AgencyId: "reintegra"})
	var want []string
	want = append(want, "acme/reintegra "+itoa(assigned)+" ReintegrationAgencyAssigned")
	for i := range 8 {
		p := h.add(t, "acme", case5, &casev1.ReintegrationCheckpointRecorded{
			Kind: casev1.CheckpointKind_CHECKPOINT_KIND_PROGRESS_REVIEW, HeldOn: date(2025, 8, int32(1+i)), Notes: sealed("late-notes"),
		})
		want = append(want, "acme/reintegra "+itoa(p)+" ReintegrationCheckpointRecorded")
	}
	return want
}

func itoa(p eventstore.Position) string { return strconv.FormatUint(uint64(p), 10) }

// seqs returns the stream sequences of msgs, to show that nothing was
// published again.
func seqs(msgs []feedMsg) []uint64 {
	var out []uint64
	for _, m := range msgs {
		out = append(out, m.seq)
	}
	return out
}

func TestRebuildingAndReplacingTheReadModelPublishNothingTwice(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(t *testing.T) *projections.DB) {
		ctx := context.Background()
		b := newBench(t)
		h, want := routingHistory(t)
		b.publish(t, h)
		db := open(t)
		b.run(t, db, b.router(t), eventstore.Position(len(h.events)))
		before := b.feed(t)
		if diff := cmp.Diff(want, summaries(before)); diff != "" {
			t.Fatalf("agency feed (-want +got):\n%s", diff)
		}

		// A rebuild from position 0, by another router (as another
		// process would), while the live one keeps applying new events.
		want = append(want, moreHistory(t, h)...)
		var wg sync.WaitGroup
		var rebuildErr error
		wg.Go(func() {
			rebuildErr = projections.Rebuild(ctx, projections.RebuildConfig{
				DB: db, JetStream: b.js, Projection: b.router(t), Logger: bustest.Logger(t, slog.LevelWarn), MaxBatch: 7,
			})
		})
		b.publish(t, h)
		wg.Wait()
		if rebuildErr != nil {
			t.Fatalf("rebuild: %v", rebuildErr)
		}
		b.wait(t, db, eventstore.Position(len(h.events)))
		after := b.feed(t)
		if diff := cmp.Diff(want, summaries(after)); diff != "" {
			t.Fatalf("agency feed after a rebuild beside new events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(seqs(before), seqs(after[:len(before)])); diff != "" {
			t.Errorf("the messages from before the rebuild changed (-before +after):\n%s", diff)
		}

		// A read model that lost everything (a fresh database), with a
		// fresh router: it applies the whole history again and publishes
		// nothing.
		b.run(t, open(t), b.router(t), eventstore.Position(len(h.events)))
		again := b.feed(t)
		if diff := cmp.Diff(seqs(after), seqs(again)); diff != "" {
			t.Errorf("applying the history again to a fresh read model published (-before +after):\n%s", diff)
		}
	})
}

func TestReapplyingRolledBackEventsPublishesNothingTwice(t *testing.T) {
	ctx := context.Background()
	b := newBench(t)
	h, want := routingHistory(t)
	events := projectionEvents(t, h.events)
	r := b.router(t)
	apply := func(r *agencyfeed.Router, batch int) {
		t.Helper()
		// A fresh database is a transaction that rolled back everything:
		// the tables know nothing of what was published.
		db := testbed.Open(t, projections.SQLite)
		if err := db.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := db.Apply(ctx, r, events, batch); err != nil {
			t.Fatal(err)
		}
	}
	apply(r, 10)
	first := b.feed(t)
	if diff := cmp.Diff(want, summaries(first)); diff != "" {
		t.Fatalf("agency feed (-want +got):\n%s", diff)
	}
	apply(r, 1)           // the same router, which knows where the stream ends
	apply(b.router(t), 3) // a new one, which reads it from the stream
	if diff := cmp.Diff(seqs(first), seqs(b.feed(t))); diff != "" {
		t.Errorf("re-applying published again (-first +now):\n%s", diff)
	}
}

// Two appliers publishing at once, each with its own read model and
// router, as after a lost lease: every copy lands once, in order.
func TestTwoAppliersAtOncePublishEachCopyOnce(t *testing.T) {
	ctx := context.Background()
	for round := range 3 {
		b := newBench(t)
		h, want := routingHistory(t)
		events := projectionEvents(t, h.events)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			r := b.router(t)
			db := testbed.Open(t, projections.SQLite)
			if err := db.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { errs[i] = db.Apply(ctx, r, events, 1+i*2) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if diff := cmp.Diff(want, summaries(b.feed(t))); diff != "" {
			t.Fatalf("round %d: agency feed of two appliers (-want +got):\n%s", round, diff)
		}
	}
}

func TestApplyFailsWithErrUnavailableWhileTheFeedCannotBeWritten(t *testing.T) {
	ctx := context.Background()
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	r, err := agencyfeed.New(agencyfeed.Options{JetStream: js, Logger: bustest.Logger(t, slog.LevelError), RetryFor: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h, want := routingHistory(t)
	events := projectionEvents(t, h.events)
	db := testbed.Open(t, projections.SQLite)
	if err := db.Create(ctx, r); err != nil {
		t.Fatal(err)
	}

	// No agency stream yet.
	if err := db.Apply(ctx, r, events, 100); !errors.Is(err, agencyfeed.ErrUnavailable) {
		t.Fatalf("Apply without the agency stream: %v; want ErrUnavailable", err)
	}
	if _, err := bus.EnsureAgencyStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	// A message at the stream's end that the router did not publish: it
	// cannot tell how far it got, so it publishes nothing.
	if _, err := js.Publish(ctx, bus.AgencySubject("acme", "stranger", case1), []byte("foreign")); err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(ctx, r, events, 100); !errors.Is(err, agencyfeed.ErrUnavailable) {
		t.Fatalf("Apply after a foreign message: %v; want ErrUnavailable", err)
	}
	s, err := js.Stream(ctx, bus.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	// Once it can, the batch that failed applies in full.
	if err := db.Apply(ctx, r, events, 100); err != nil {
		t.Fatalf("Apply with the agency stream: %v", err)
	}
	b := &bench{srv: srv, js: js}
	got := b.feed(t)
	if diff := cmp.Diff(want, summaries(got)); diff != "" {
		t.Errorf("agency feed (-want +got):\n%s", diff)
	}
}

func TestNewNeedsJetStream(t *testing.T) {
	if _, err := agencyfeed.New(agencyfeed.Options{}); err == nil {
		t.Error("New without JetStream succeeded")
	}
}
