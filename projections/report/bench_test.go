package report_test

import (
	"context"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/report"
	"github.com/koers-io/koers/projections/report/testbed"
)

// benchCases is the size of the benchmarks' history: 100,000 cases unless
// KOERS_BENCH_CASES says otherwise.
func benchCases(b *testing.B) int {
	if s := os.Getenv("KOERS_BENCH_CASES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("KOERS_BENCH_CASES=%q: %v", s, err)
		}
		return n
	}
	return 100_000
}

// BenchmarkReport measures report latency over a read model of 100,000
// cases (about a million events, loaded through Apply in transactions of
// 20,000 events): the whole tenant, one organisation, one department, and
// the whole tenant as of a year ago for one year. Each report is read as
// the QueryService reads it: in one of the engine's read transactions,
// whose forks let two queries run at once. Set KOERS_TEST_POSTGRES_DSN to
// run it on PostgreSQL too.
func BenchmarkReport(b *testing.B) {
	for _, d := range testbed.Dialects() {
		b.Run(string(d), func(b *testing.B) { benchmarkReport(b, d) })
	}
}

func benchmarkReport(b *testing.B, d projections.Dialect) {
	ctx := context.Background()
	loc := amsterdam(b)
	cfg := testbed.Large(benchCases(b), loc)
	p := report.New(report.Options{Location: loc})
	db := testbed.Built(b, d, p, cfg)
	now := time.Date(2025, 12, 1, 10, 0, 0, 0, loc)
	reader := db.Engine(b).Reader(report.Name)
	queries := []struct {
		name string
		q    report.Query
	}{
		{"tenant", report.Query{Tenant: cfg.Tenant, Now: now}},
		{"organisation", report.Query{Tenant: cfg.Tenant, Organisation: "org-07", Now: now}},
		{"department", report.Query{Tenant: cfg.Tenant, Organisation: "org-07", Department: "c", Now: now}},
		{"tenant-as-of-a-year-ago", report.Query{
			Tenant: cfg.Tenant, AsOf: now.AddDate(-1, 0, 0),
			From: casework.Date{Year: 2023, Month: 12, Day: 1}, To: casework.Date{Year: 2024, Month: 11, Day: 30},
		}},
	}
	// The baseline: counting the tenant's current case versions, one
	// index range of 100,000 entries and nothing else. The report's
	// latency in units of it says what the machine's load does not.
	b.Run("baseline-count-cases", func(b *testing.B) {
		var lat testbed.Latencies
		for b.Loop() {
			lat.Time(func() {
				rows, err := reader.QueryContext(ctx, `SELECT COUNT(*) FROM {cases} WHERE tenant_id = ? AND known_to = ?`, cfg.Tenant, int64(math.MaxInt64))
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
				}
				rows.Close()
			})
		}
		lat.Report(b)
	})
	for _, qq := range queries {
		b.Run(qq.name, func(b *testing.B) {
			var lat testbed.Latencies
			for b.Loop() {
				lat.Time(func() {
					err := reader.ReadTx(ctx, func(tx projections.Tx) error {
						_, err := report.Get(ctx, tx, loc, qq.q)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				})
			}
			lat.Report(b)
		})
	}
}

func amsterdam(tb testing.TB) *time.Location {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}
