package dashboard_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report/testbed"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// now is the instant the golden dashboards are judged at: Monday
// 1 December 2025, 10:00 in Amsterdam, three days after the synthetic
// history ends.
func now(tb testing.TB) time.Time {
	return time.Date(2025, time.December, 1, 10, 0, 0, 0, amsterdam(tb))
}

func amsterdam(tb testing.TB) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// readModel is the dashboard of a history in one database.
type readModel struct {
	db     *testbed.DB
	reader dashboard.Querier
	loc    *time.Location
}

// build applies events to a fresh dashboard in a database of dialect d,
// in batches of 100 like an engine catching up.
func build(t *testing.T, d projections.Dialect, events []projections.Event) readModel {
	t.Helper()
	ctx := context.Background()
	loc := amsterdam(t)
	db := testbed.Open(t, d)
	p := dashboard.New(dashboard.Options{Location: loc})
	if err := db.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(ctx, p, events, 100); err != nil {
		t.Fatal(err)
	}
	return readModel{db: db, reader: db.Reader(dashboard.Name), loc: loc}
}

// forEachDialect runs f against SQLite, and PostgreSQL when configured.
func forEachDialect(t *testing.T, f func(t *testing.T, d projections.Dialect)) {
	for _, d := range testbed.Dialects() {
		t.Run(string(d), func(t *testing.T) { f(t, d) })
	}
}

// replay folds each case's events with the domain's own Evolve.
func replay(events []projections.Event) map[string]casework.State {
	out := map[string]casework.State{}
	for _, ev := range events {
		id := ev.Metadata.GetCaseId()
		out[id] = casework.Evolve(out[id], ev.Body)
	}
	return out
}

// tenantOf maps each case to its tenant.
func tenantOf(events []projections.Event) map[string]string {
	out := map[string]string{}
	for _, ev := range events {
		out[ev.Metadata.GetCaseId()] = ev.Metadata.GetTenantId()
	}
	return out
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}
