package projections

import (
	"context"
	"errors"
	"testing"
)

// forkFixture is a tally read model with 50 events applied and 50 more on
// the stream, applied by apply.
type forkFixture struct {
	db    *DB
	p     *tally
	apply func()
}

func newForkFixture(t *testing.T, open func(tb testing.TB) *DB) forkFixture {
	t.Helper()
	f := newNATS(t)
	db := open(t)
	msgs := messages(t, history(100))
	publish(t, f.js, msgs[:50])
	p := newTally()
	e := startEngine(t, Config{DB: db, JetStream: f.js, Projections: []Projection{p}})
	waitPosition(t, db, p.Name(), 50)
	e.Stop()
	publish(t, f.js, msgs[50:])
	return forkFixture{db: db, p: p, apply: func() {
		t.Helper()
		res, err := db.applyBatch(context.Background(), target{p: p}, fetchMessages(t, f, 51, 100), false, nil)
		if err != nil || res.applied == 0 {
			t.Fatalf("applying events 51-100: %d applied, %v", res.applied, err)
		}
	}}
}

// eventsIn counts the events the tally holds, as q sees it.
func eventsIn(t *testing.T, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) interface{ Scan(...any) error }
}) int64 {
	t.Helper()
	var n int64
	if err := q.QueryRowContext(context.Background(), "SELECT COALESCE(SUM(events), 0) FROM {tenants}").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rowQuerier adapts a Tx to eventsIn.
type rowQuerier struct{ Tx }

func (q rowQuerier) QueryRowContext(ctx context.Context, query string, args ...any) interface{ Scan(...any) error } {
	return q.Tx.QueryRowContext(ctx, query, args...)
}

// TestForkReadsTheSameSnapshot forks a read transaction, commits a batch,
// and checks that neither the transaction nor its fork sees the batch.
func TestForkReadsTheSameSnapshot(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		fx := newForkFixture(t, open)
		ctx := context.Background()
		r := fx.db.Reader(fx.p.Name())
		var inTx, inFork int64
		err := r.ReadTx(ctx, func(tx Tx) error {
			fork, release, err := tx.(Forker).Fork(ctx)
			if err != nil {
				return err
			}
			defer release()
			fx.apply()
			inTx, inFork = eventsIn(t, rowQuerier{tx}), eventsIn(t, rowQuerier{fork})
			return nil
		})
		if err != nil {
			t.Fatalf("ReadTx with a fork: %v", err)
		}
		after := int64(0)
		if err := r.ReadTx(ctx, func(tx Tx) error { after = eventsIn(t, rowQuerier{tx}); return nil }); err != nil {
			t.Fatal(err)
		}
		if inTx != inFork || after == inTx {
			t.Errorf("events seen: transaction %d, fork %d, after the commit %d; want the first two equal and the last different", inTx, inFork, after)
		}
	})
}

// TestForkAfterACommit asks for a fork after a commit moved the read model
// on: SQLite cannot open a transaction on an older snapshot and refuses;
// PostgreSQL gives one on the transaction's snapshot.
func TestForkAfterACommit(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(tb testing.TB) *DB) {
		fx := newForkFixture(t, open)
		ctx := context.Background()
		err := fx.db.Reader(fx.p.Name()).ReadTx(ctx, func(tx Tx) error {
			first, release, err := tx.(Forker).Fork(ctx)
			if err != nil {
				return err
			}
			defer release()
			fx.apply()
			second, release2, err := tx.(Forker).Fork(ctx)
			if fx.db.Dialect() == SQLite {
				if !errors.Is(err, ErrNoFork) {
					t.Errorf("SQLite fork after a commit: error %v, want ErrNoFork", err)
				}
				return nil
			}
			if err != nil {
				return err
			}
			defer release2()
			if a, b := eventsIn(t, rowQuerier{first}), eventsIn(t, rowQuerier{second}); a != b {
				t.Errorf("PostgreSQL forks before and after a commit see %d and %d events; want the transaction's snapshot in both", a, b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestSQLiteForkAfterAQueryIsRefused: a SQLite transaction that already
// read cannot tell when its snapshot was taken, so it cannot be forked.
func TestSQLiteForkAfterAQueryIsRefused(t *testing.T) {
	db := openSQLiteDB(t)
	ctx := context.Background()
	err := db.Reader("tally").ReadTx(ctx, func(tx Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM koers_projections").Scan(&n); err != nil {
			return err
		}
		_, _, err := tx.(Forker).Fork(ctx)
		return err
	})
	if !errors.Is(err, ErrNoFork) {
		t.Errorf("fork after a query: %v, want ErrNoFork", err)
	}
}
