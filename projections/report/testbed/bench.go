package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/koers-io/koers/projections"
)

// Load applies a Stream of cfg to p's tables in db, in transactions of
// about batch events, and returns how many events it applied and how long
// that took. Benchmarks set up their read models with it.
func Load(ctx context.Context, db *DB, p projections.Projection, cfg Config, batch int) (int, time.Duration, error) {
	start := time.Now()
	var pending []projections.Event
	total := 0
	err := Stream(cfg, func(events []projections.Event) error {
		pending = append(pending, events...)
		if len(pending) < batch {
			return nil
		}
		total += len(pending)
		err := db.Apply(ctx, p, pending, len(pending))
		pending = pending[:0]
		return err
	})
	if err == nil && len(pending) > 0 {
		total += len(pending)
		err = db.Apply(ctx, p, pending, len(pending))
	}
	return total, time.Since(start), err
}

// Latencies collects the durations of repeated calls and reports their
// percentiles as benchmark metrics.
type Latencies []time.Duration

// Time runs fn and records how long it took.
func (l *Latencies) Time(fn func()) {
	start := time.Now()
	fn()
	*l = append(*l, time.Since(start))
}

// Report adds p50 and p99 in milliseconds to b's metrics.
func (l Latencies) Report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	sorted := slices.Clone(l)
	slices.Sort(sorted)
	at := func(p float64) float64 {
		i := min(len(sorted)-1, int(float64(len(sorted))*p))
		return float64(sorted[i].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchDBDirEnv names the environment variable of a directory where
// Built keeps SQLite read models between benchmark runs. Without it every
// run loads its read model afresh.
const BenchDBDirEnv = "KOERS_BENCH_DB_DIR"

// Built returns a database of dialect d holding p's tables loaded with
// cfg's history through Apply, in transactions of 20,000 events, and logs
// the load rate. For SQLite with KOERS_BENCH_DB_DIR set, a file built by
// an earlier run for the same projection version and size is reused.
func Built(b *testing.B, d projections.Dialect, p projections.Projection, cfg Config) *DB {
	b.Helper()
	ctx := context.Background()
	var db *DB
	if dir := os.Getenv(BenchDBDirEnv); dir != "" && d == projections.SQLite {
		file := filepath.Join(dir, fmt.Sprintf("%s-v%d-%d-%d.db", p.Name(), p.Version(), cfg.Seed, cfg.Cases))
		_, err := os.Stat(file)
		db = OpenSQLite(b, file)
		if err == nil {
			b.Logf("reusing %s", file)
			return db
		}
	} else {
		db = Open(b, d)
	}
	if err := db.Create(ctx, p); err != nil {
		b.Fatal(err)
	}
	n, took, err := Load(ctx, db, p, cfg, 20_000)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: loaded %d cases, %d events through %s.Apply in %s (%.0f events/s)",
		d, cfg.Cases, n, p.Name(), took.Round(time.Millisecond), float64(n)/took.Seconds())
	if d == projections.Postgres {
		// PostgreSQL plans with statistics, and reads an index alone only
		// where the visibility map says it may; a fresh bulk load has
		// neither until autovacuum comes by, which it would in service.
		if _, err := db.SQL.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	return db
}
