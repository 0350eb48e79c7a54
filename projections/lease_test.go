package projections

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLeaseLetsOneProcessApply runs two engines of one projection on one
// PostgreSQL schema: one applies, the other stands by; when the holder's
// lease connection dies the standby takes over, and every event is applied
// exactly once across both.
func TestLeaseLetsOneProcessApply(t *testing.T) {
	requirePostgres(t)
	ctx := context.Background()
	f := newNATS(t)
	dsn := postgresSchemaDSN(t)
	dbA, dbB := openPostgresDSN(t, dsn), openPostgresDSN(t, dsn)
	events := history(3000)
	msgs := messages(t, events)
	publish(t, f.js, msgs[:1000])

	p := newTally()
	cfg := func(db *DB) Config {
		return Config{DB: db, JetStream: f.js, Projections: []Projection{p}, MaxBatch: 100,
			LeaseRetry: 50 * time.Millisecond, LeaseCheck: 50 * time.Millisecond}
	}
	a, b := startEngine(t, cfg(dbA)), startEngine(t, cfg(dbB))
	waitPosition(t, dbA, p.Name(), 1000)
	publish(t, f.js, msgs[1000:2000])
	waitPosition(t, dbA, p.Name(), 2000)

	stats := func(e *Engine) RunnerStats { s, _ := e.Stats(p.Name()); return s }
	holder, standby := a, b
	if stats(b).Active {
		holder, standby = b, a
	}
	if !stats(holder).Active || stats(standby).Active {
		t.Fatalf("active: a %v, b %v; want exactly one", stats(a).Active, stats(b).Active)
	}
	if n := stats(standby).Applied; n != 0 {
		t.Errorf("the standby applied %d events while the holder held the lease", n)
	}

	// Kill the holder's lease: end its PostgreSQL session.
	key := dbA.lockKey("lease/apply/" + p.Name())
	var killed int
	if err := dbA.write.QueryRowContext(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid`,
		int64(uint32(uint64(key)>>32)), int64(uint32(key))).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminating the lease's session: %d sessions, %v", killed, err)
	}
	eventually(t, "the standby takes over", func() bool { return stats(standby).Active })
	publish(t, f.js, msgs[2000:])
	waitPosition(t, dbB, p.Name(), 3000)

	if stats(standby).Applied == 0 {
		t.Error("the standby applied nothing after taking over")
	}
	var unknown uint64
	for _, ev := range events {
		if ev.Type == p.ignore || ev.Type == futureType {
			unknown++
		}
	}
	if got := stats(a).Applied + stats(b).Applied; got != 3000-unknown {
		t.Errorf("the two processes applied %d events together, want each of %d once", got, 3000-unknown)
	}
	if diff := cmp.Diff(expectedTally(events, p.ignore), dumpTally(t, dbB, p.Name())); diff != "" {
		t.Errorf("tables after the takeover (-want +got):\n%s", diff)
	}
}
