package projections

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/koers-io/koers/eventstore"
)

func TestRewrite(t *testing.T) {
	tests := []struct {
		name    string
		dialect Dialect
		query   string
		want    string
	}{
		{"tables and placeholders, sqlite", SQLite,
			"UPDATE {cases} SET a = ? WHERE b = ?",
			"UPDATE p_g2_cases SET a = ? WHERE b = ?"},
		{"tables and placeholders, postgres", Postgres,
			"UPDATE {cases} SET a = ? WHERE b = ?",
			"UPDATE p_g2_cases SET a = $1 WHERE b = $2"},
		{"index names", Postgres,
			"CREATE INDEX {cases_by_coach} ON {cases} (coach)",
			"CREATE INDEX p_g2_cases_by_coach ON p_g2_cases (coach)"},
		{"quoted text is left alone", Postgres,
			"SELECT '{x}?', \"{y}\" FROM {t} WHERE a = 'it''s ?' AND b = ?",
			"SELECT '{x}?', \"{y}\" FROM p_g2_t WHERE a = 'it''s ?' AND b = $1"},
		{"comments are left alone", Postgres,
			"SELECT a -- is it {x}?\nFROM {t} WHERE b = ?",
			"SELECT a -- is it {x}?\nFROM p_g2_t WHERE b = $1"},
		{"braces that are no token", SQLite,
			"SELECT '{}' || json_object('a', 1) FROM {t} WHERE x = '{ not }' AND {bad name}",
			"SELECT '{}' || json_object('a', 1) FROM p_g2_t WHERE x = '{ not }' AND {bad name}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rewriter{dialect: tt.dialect}
			if got := r.rewrite("p_g2_", tt.query); got != tt.want {
				t.Errorf("rewrite(%q)\n got %q\nwant %q", tt.query, got, tt.want)
			}
			if got := r.rewrite("p_g2_", tt.query); got != tt.want {
				t.Errorf("cached rewrite(%q) = %q", tt.query, got)
			}
		})
	}
}

func TestValidateRefusesUnusableProjections(t *testing.T) {
	long := newTally()
	long.name = "a_projection_name_that_is_far_too_long_for_postgres_identifiers"
	upper := newTally()
	upper.name = "Tally"
	v0 := newTally()
	v0.version = 0
	tests := []struct {
		name string
		ps   []Projection
	}{
		{"name too long", []Projection{long}},
		{"upper-case name", []Projection{upper}},
		{"version 0", []Projection{v0}},
		{"two of one name", []Projection{newTally(), newTally()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateAll(tt.ps); err == nil {
				t.Error("validateAll accepted it")
			}
		})
	}
	if err := validateAll([]Projection{newTally()}); err != nil {
		t.Errorf("validateAll(tally) = %v", err)
	}
}

// TestMigrationsAreIdempotent opens a database twice and checks the engine
// tables are there once.
func TestMigrationsAreIdempotent(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		db := open(t)
		if err := db.migrate(context.Background()); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		var n int
		if err := db.read.QueryRow("SELECT COUNT(*) FROM koers_schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(migrations) {
			t.Errorf("%d migrations recorded, want %d", n, len(migrations))
		}
	})
}

// TestAppliesEachEventOnceInOrder projects a history, with republished
// copies of earlier events in the middle of the stream, and checks the
// tables against the history applied once, in order.
func TestAppliesEachEventOnceInOrder(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		f := newNATS(t)
		db := open(t)
		events := history(3000)
		msgs := messages(t, events)
		// The stream: 1..2000, then a republished 1500..2000 (as after a
		// bus crash), then 2001..3000.
		var republished []*nats.Msg
		for _, m := range msgs[1499:2000] {
			republished = append(republished, withoutMsgID(m))
		}
		publish(t, f.js, msgs[:2000])
		p := newTally()
		e := startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}, MaxBatch: 300})
		waitPosition(t, db, p.Name(), 1000)
		publish(t, f.js, republished)
		publish(t, f.js, msgs[2000:])
		waitPosition(t, db, p.Name(), 3000)

		if diff := cmp.Diff(expectedTally(events, p.ignore), dumpTally(t, db, p.Name())); diff != "" {
			t.Errorf("tables differ from the history applied once (-want +got):\n%s", diff)
		}
		var ignored, future float64
		for _, ev := range events {
			switch ev.Type {
			case p.ignore:
				ignored++
			case futureType:
				future++
			}
		}
		reg := e.Metrics()
		applied := testutil.ToFloat64(e.metrics.events.WithLabelValues("tally", "applied"))
		unknown := testutil.ToFloat64(e.metrics.events.WithLabelValues("tally", "unknown"))
		if applied+unknown != 3000 || unknown != ignored+future {
			t.Errorf("metrics: %v applied and %v unknown, want %v and %v", applied, unknown, 3000-ignored-future, ignored+future)
		}
		if dup := testutil.ToFloat64(e.metrics.events.WithLabelValues("tally", "duplicate")); dup < 501 {
			t.Errorf("metrics: %v duplicates skipped, want at least the 501 republished", dup)
		}
		if n, err := testutil.GatherAndCount(reg, "koers_projection_position", "koers_projection_events_total"); err != nil || n == 0 {
			t.Errorf("gathering metrics: %d series, %v", n, err)
		}
	})
}

// TestSkipsWhatABatchAlreadyApplied hands one batch to the applier twice,
// as a redelivery after a lost ack would, and checks nothing changes the
// second time.
func TestSkipsWhatABatchAlreadyApplied(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		f := newNATS(t)
		db := open(t)
		events := history(200)
		publish(t, f.js, messages(t, events))
		p := newTally()
		e := startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}})
		waitPosition(t, db, p.Name(), 200)
		e.Stop()
		before := dumpTally(t, db, p.Name())

		batch := fetchMessages(t, f, 1, 200)
		res, err := db.applyBatch(context.Background(), target{p: p}, batch, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.duplicates != 200 || res.applied != 0 || res.generation.position != 200 {
			t.Errorf("second delivery: %d duplicates, %d applied, checkpoint %d; want 200, 0, 200", res.duplicates, res.applied, res.generation.position)
		}
		if diff := cmp.Diff(before, dumpTally(t, db, p.Name())); diff != "" {
			t.Errorf("a redelivered batch changed the tables (-before +after):\n%s", diff)
		}
	})
}

// TestStopsAtAGapAndGoesOnWhenItIsFilled leaves one event out of the
// stream: the projection stops before it, says so, and continues once the
// relay has republished the stream in full.
func TestStopsAtAGapAndGoesOnWhenItIsFilled(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		f := newNATS(t)
		db := open(t)
		events := history(60)
		msgs := messages(t, events)
		publish(t, f.js, msgs[:40])
		publish(t, f.js, msgs[41:50]) // 41 is missing
		p := newTally()
		e := startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}})
		eventually(t, "the gap is seen twice", func() bool {
			return testutil.ToFloat64(e.metrics.gaps.WithLabelValues("tally")) >= 2
		})
		if pos, _ := db.Reader(p.Name()).Position(context.Background()); pos != 40 {
			t.Fatalf("checkpoint %d with event 41 missing, want 40", pos)
		}
		if diff := cmp.Diff(expectedTally(events[:40], p.ignore), dumpTally(t, db, p.Name())); diff != "" {
			t.Errorf("tables at the gap (-want +got):\n%s", diff)
		}

		// The relay's repair: the stream purged and published again in
		// full (without message IDs, which the duplicate window would drop).
		if err := f.stream.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		var again []*nats.Msg
		for _, m := range msgs {
			again = append(again, withoutMsgID(m))
		}
		publish(t, f.js, again)
		waitPosition(t, db, p.Name(), 60)
		if diff := cmp.Diff(expectedTally(events, p.ignore), dumpTally(t, db, p.Name())); diff != "" {
			t.Errorf("tables after the repair (-want +got):\n%s", diff)
		}
	})
}

// TestCountsUnknownEvents checks that events of unregistered types and
// types the projection does not handle are skipped and counted per type.
func TestCountsUnknownEvents(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		f := newNATS(t)
		db := open(t)
		events := history(500)
		publish(t, f.js, messages(t, events))
		p := newTally()
		startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}})
		waitPosition(t, db, p.Name(), 500)

		want := map[string]uint64{}
		for _, ev := range events {
			if ev.Type == p.ignore || ev.Type == futureType {
				want[ev.Type]++
			}
		}
		s := statusOf(t, db, f.stream, p.Name())
		if s.Live == nil {
			t.Fatal("no live generation")
		}
		if diff := cmp.Diff(want, s.Live.UnknownTypes); diff != "" {
			t.Errorf("unknown events per type (-want +got):\n%s", diff)
		}
		if s.Live.Unknown != want[p.ignore]+want[futureType] || s.Live.Applied+s.Live.Unknown != 500 {
			t.Errorf("status counts %d unknown and %d applied, want %d unknown of 500", s.Live.Unknown, s.Live.Applied, want[p.ignore]+want[futureType])
		}
		if !s.HeadKnown || s.Head != 500 || s.Lag() != 0 {
			t.Errorf("status head %d (known %v), lag %d; want 500, 0", s.Head, s.HeadKnown, s.Lag())
		}
	})
}

// TestParksFailedEventsAndRetriesThem poisons one tenant: its events are
// parked with their error and leave no partial change, the others go on;
// after the fix a retry applies the parked events.
func TestParksFailedEventsAndRetriesThem(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		ctx := context.Background()
		f := newNATS(t)
		db := open(t)
		events := history(600)
		publish(t, f.js, messages(t, events))
		p := newTally()
		poisoned := "bolt"
		p.poison.Store(&poisoned)
		startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}})
		waitPosition(t, db, p.Name(), 600)

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
			if d.Error != "tally: tenant bolt is poisoned" || d.Attempts != 1 || d.EventID == "" || d.Type == "" {
				t.Errorf("dead letter %+v", d)
				break
			}
		}
		if diff := cmp.Diff(parked, got); diff != "" {
			t.Fatalf("parked positions (-want +got):\n%s", diff)
		}
		if s := statusOf(t, db, nil, p.Name()); s.Live.DeadLetters != len(parked) {
			t.Errorf("status shows %d dead letters, want %d", s.Live.DeadLetters, len(parked))
		}

		// Still broken: a retry of one fails again and keeps it parked.
		res, err := Retry(ctx, db, p, parked[0])
		if err != nil || len(res.Failed) != 1 || len(res.Applied) != 0 {
			t.Fatalf("retry while broken: %+v, %v", res, err)
		}
		if _, err := Retry(ctx, db, p, 999999); err == nil {
			t.Error("retry of a position that is not parked succeeded")
		}

		// Fixed: retrying all applies them, oldest first.
		p.poison.Store(nil)
		res, err = Retry(ctx, db, p, 0)
		if err != nil || len(res.Failed) != 0 || len(res.Applied) != len(parked) {
			t.Fatalf("retry after the fix: %d applied, %d failed, %v", len(res.Applied), len(res.Failed), err)
		}
		if dead, _ := DeadLetters(ctx, db, p.Name()); len(dead) != 0 {
			t.Errorf("%d dead letters after the retry", len(dead))
		}
		// The retried events came after the other tenants' but in their own
		// order, and each tenant's rows depend on its own events only.
		if diff := cmp.Diff(expectedTally(events, p.ignore), dumpTally(t, db, p.Name())); diff != "" {
			t.Errorf("tables after the retry (-want +got):\n%s", diff)
		}
	})
}

// TestWaitForPosition checks read-your-writes both in the engine's process
// (woken by the engine) and through a second handle on the database
// (polling).
func TestWaitForPosition(t *testing.T) {
	f := newNATS(t)
	path := t.TempDir() + "/readmodel.db"
	db := openSQLitePath(t, path)
	other := openSQLitePath(t, path)
	p := newTally()
	startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}})
	events := history(50)
	msgs := messages(t, events)
	for i, m := range msgs {
		publish(t, f.js, []*nats.Msg{m})
		for _, d := range []*DB{db, other} {
			ctx, cancel := context.WithTimeout(context.Background(), 10e9)
			err := d.WaitForPosition(ctx, p.Name(), events[i].Position)
			cancel()
			if err != nil {
				t.Fatalf("waiting for %d: %v", events[i].Position, err)
			}
			if pos, _ := d.Reader(p.Name()).Position(context.Background()); pos < events[i].Position {
				t.Fatalf("WaitForPosition(%d) returned at %d", events[i].Position, pos)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50e6)
	defer cancel()
	if err := db.WaitForPosition(ctx, p.Name(), 51); err == nil {
		t.Error("WaitForPosition for an event that does not exist returned nil")
	}
}

// tenantOf is the tenant of a history event (see history).
func tenantOf(ev eventstore.RecordedEvent) string {
	return tenants[(int(ev.Position)-1)/12%len(tenants)]
}
