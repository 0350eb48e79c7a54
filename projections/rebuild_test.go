package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRebuildWhileServing rebuilds a live projection while events keep
// arriving and queries keep running: queries never fail or go back, and
// the rebuilt tables equal a build in one go.
func TestRebuildWhileServing(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		ctx := context.Background()
		f := newNATS(t)
		db := open(t)
		events := history(4000)
		msgs := messages(t, events)
		publish(t, f.js, msgs[:2500])
		p := newTally()
		startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}, MaxBatch: 200})
		waitPosition(t, db, p.Name(), 2500)

		// Queries run throughout: each sees a total that never shrinks.
		stop := make(chan struct{})
		var queries sync.WaitGroup
		var queryErr error
		var answered int
		queries.Go(func() {
			r := db.Reader(p.Name())
			var last int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				var total int64
				err := r.ReadTx(ctx, func(tx Tx) error {
					return tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(events), 0) FROM {tenants}").Scan(&total)
				})
				if err == nil && total < last {
					err = fmt.Errorf("total went back from %d to %d", last, total)
				}
				if err != nil {
					queryErr = err
					return
				}
				last = total
				answered++
			}
		})
		// Events keep arriving during the rebuild.
		var publisher sync.WaitGroup
		publisher.Go(func() {
			for i := 2500; i < len(msgs); i += 100 {
				publish(t, f.js, msgs[i:i+100])
				time.Sleep(5 * time.Millisecond)
			}
		})

		var progress []Progress
		err := Rebuild(ctx, RebuildConfig{DB: db, JetStream: f.js, Projection: p, MaxBatch: 150,
			Progress: func(pr Progress) { progress = append(progress, pr) }})
		if err != nil {
			t.Fatal(err)
		}
		publisher.Wait()
		waitPosition(t, db, p.Name(), 4000)
		close(stop)
		queries.Wait()
		if queryErr != nil {
			t.Errorf("a query during the rebuild: %v", queryErr)
		}
		if answered == 0 {
			t.Error("no query answered during the rebuild")
		}
		if len(progress) < 2 || !progress[len(progress)-1].Done || progress[len(progress)-1].Generation != 2 {
			t.Errorf("progress reports: %d, last %+v", len(progress), progress[len(progress)-1])
		}
		if diff := cmp.Diff(expectedTally(events, p.ignore), dumpTally(t, db, p.Name())); diff != "" {
			t.Errorf("rebuilt tables differ from a build in one go (-want +got):\n%s", diff)
		}
		s := statusOf(t, db, f.stream, p.Name())
		if s.Live.Generation != 2 || len(s.Building) != 0 {
			t.Errorf("after the rebuild: live generation %d, %d building; want 2, 0", s.Live.Generation, len(s.Building))
		}
		if s.Live.Applied+s.Live.Unknown != 4000 {
			t.Errorf("generation 2 counts %d applied + %d unknown, want 4000", s.Live.Applied, s.Live.Unknown)
		}
		if tableExists(t, db, "tally_g1_tenants") || !tableExists(t, db, "tally_g2_tenants") {
			t.Error("the old generation's tables were not dropped, or the new ones are missing")
		}
	})
}

// TestVersionChangeRebuilds starts a projection at version 1, then at
// version 2 with a table more: the engine rebuilds it into a new
// generation by itself.
func TestVersionChangeRebuilds(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		f := newNATS(t)
		db := open(t)
		events := history(700)
		publish(t, f.js, messages(t, events))
		v1 := newTally()
		e := startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{v1}})
		waitPosition(t, db, v1.Name(), 700)
		e.Stop()

		v2 := &tallyWithCases{tally: newTally()}
		v2.version = 2
		startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{v2}})
		eventually(t, "version 2 is live", func() bool {
			s := statusOf(t, db, nil, v2.Name())
			return s.Live != nil && s.Live.Version == 2 && s.Live.Position == 700
		})
		if diff := cmp.Diff(expectedTally(events, v2.ignore), dumpTally(t, db, v2.Name())); diff != "" {
			t.Errorf("version 2 tables (-want +got):\n%s", diff)
		}
		var cases int
		if err := db.Reader(v2.Name()).QueryRowContext(context.Background(), "SELECT COUNT(*) FROM {cases}").Scan(&cases); err != nil || cases != 700/12+1 {
			t.Errorf("version 2's new table holds %d cases (%v), want %d", cases, err, 700/12+1)
		}

		// Version 1 started again refuses to touch version 2's tables.
		_, err := db.applyBatch(context.Background(), target{p: v1}, nil, false, nil)
		if !errors.Is(err, ErrVersionChanged) {
			t.Errorf("version 1 applying to version 2: %v, want ErrVersionChanged", err)
		}
	})
}

// tallyWithCases is tally at a later version with one more table.
type tallyWithCases struct{ *tally }

func (t *tallyWithCases) Tables() []Table {
	return append(t.tally.Tables(), Table{Name: "cases", Create: "CREATE TABLE {cases} (stream TEXT PRIMARY KEY)"})
}

func (t *tallyWithCases) Apply(ctx context.Context, tx Tx, ev Event) error {
	if err := t.tally.Apply(ctx, tx, ev); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO {cases} (stream) VALUES (?) ON CONFLICT (stream) DO NOTHING", ev.Stream)
	return err
}

// TestSQLiteAndPostgresAgree projects one history into both databases and
// compares the tables.
func TestSQLiteAndPostgresAgree(t *testing.T) {
	requirePostgres(t)
	f := newNATS(t)
	events := history(2000)
	publish(t, f.js, messages(t, events))
	lite, pg := openSQLiteDB(t), openPostgresDB(t)
	p := newTally()
	startEngine(t, Config{DB: lite, JetStream: f.js, Projections: []Projection{p}})
	// Another engine on the same stream needs its own consumer name, so the
	// second projection is the same code under another name.
	q := newTally()
	q.name = "tally_pg"
	startEngine(t, Config{DB: pg, JetStream: f.js, Projections: []Projection{q}})
	waitPosition(t, lite, p.Name(), 2000)
	waitPosition(t, pg, q.Name(), 2000)
	if diff := cmp.Diff(dumpTally(t, lite, p.Name()), dumpTally(t, pg, q.Name())); diff != "" {
		t.Errorf("SQLite and PostgreSQL differ (-sqlite +postgres):\n%s", diff)
	}
}

func tableExists(t *testing.T, db *DB, name string) bool {
	t.Helper()
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if db.dialect == Postgres {
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
	}
	var n int
	if err := db.read.QueryRow(q, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}
