package dashboard_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/dashboard"
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

// BenchmarkDashboard measures query latency over a read model of 100,000
// cases shared by 500 coaches (about a million events, loaded through
// Apply in transactions of 20,000): a coach's dashboard, one coach's
// first page of cases, and the tenant's cases with overdue deadlines. Each
// iteration asks for the next coach. Set KOERS_TEST_POSTGRES_DSN to run it
// on PostgreSQL too.
func BenchmarkDashboard(b *testing.B) {
	for _, d := range testbed.Dialects() {
		b.Run(string(d), func(b *testing.B) { benchmarkDashboard(b, d) })
	}
}

func benchmarkDashboard(b *testing.B, d projections.Dialect) {
	ctx := context.Background()
	loc := amsterdam(b)
	cfg := testbed.Large(benchCases(b), loc)
	db := testbed.Built(b, d, dashboard.New(dashboard.Options{Location: loc}), cfg)
	reader := db.Reader(dashboard.Name)
	at := now(b)
	// The baseline: one case by its key, the cheapest query there is. Its
	// p99 is the machine's own noise, which the others' p99 include.
	var ids []string
	rows, err := reader.QueryContext(ctx, `SELECT case_id FROM {cases} ORDER BY case_id LIMIT 1000`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	b.Run("baseline-one-case", func(b *testing.B) {
		var lat testbed.Latencies
		n := 0
		for b.Loop() {
			n++
			lat.Time(func() {
				rows, err := reader.QueryContext(ctx, `SELECT stage, coach_id FROM {cases} WHERE case_id = ?`, ids[n%len(ids)])
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
	b.Run("coach-dashboard", func(b *testing.B) {
		var lat testbed.Latencies
		n := 0
		for b.Loop() {
			n++
			q := dashboard.Query{Tenant: cfg.Tenant, Coach: testbed.Coach(1 + n%cfg.Coaches), Now: at}
			lat.Time(func() {
				if _, err := dashboard.Get(ctx, reader, loc, q); err != nil {
					b.Fatal(err)
				}
			})
		}
		lat.Report(b)
	})
	b.Run("list-coach-cases", func(b *testing.B) {
		var lat testbed.Latencies
		n := 0
		for b.Loop() {
			n++
			f := dashboard.Filter{Tenant: cfg.Tenant, Coach: testbed.Coach(1 + n%cfg.Coaches), Now: at}
			lat.Time(func() {
				if _, err := dashboard.ListCases(ctx, reader, loc, f, dashboard.DefaultPageSize, ""); err != nil {
					b.Fatal(err)
				}
			})
		}
		lat.Report(b)
	})
	b.Run("list-overdue", func(b *testing.B) {
		var lat testbed.Latencies
		for b.Loop() {
			f := dashboard.Filter{Tenant: cfg.Tenant, OverdueOnly: true, Now: at}
			lat.Time(func() {
				if _, err := dashboard.ListCases(ctx, reader, loc, f, dashboard.DefaultPageSize, ""); err != nil {
					b.Fatal(err)
				}
			})
		}
		lat.Report(b)
	})
}
