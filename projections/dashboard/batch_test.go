package dashboard_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report/testbed"
)

// TestBatchesEndAsOneByOne applies a history event by event through
// Apply (in transactions of 100), as the engine does after a failure, and
// in batches of several sizes, as it does otherwise: every table must
// hold the same rows.
func TestBatchesEndAsOneByOne(t *testing.T) {
	loc := amsterdam(t)
	histories := map[string][]projections.Event{
		"golden":    testbed.History(testbed.Golden(loc)),
		"400 cases": testbed.History(testbed.Large(400, loc)),
	}
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		ctx := context.Background()
		for name, events := range histories {
			build := func(batch int, batches bool) []string {
				db := testbed.Open(t, d)
				p := dashboard.New(dashboard.Options{Location: loc})
				if err := db.Create(ctx, p); err != nil {
					t.Fatal(err)
				}
				apply := db.ApplyOneByOne
				if batches {
					apply = db.Apply
				}
				if err := apply(ctx, p, events, batch); err != nil {
					t.Fatal(err)
				}
				return db.Dump(t, p)
			}
			want := build(100, false)
			if len(want) == 0 {
				t.Fatalf("%s: the history left the tables empty", name)
			}
			for _, batch := range []int{37, 1000, len(events)} {
				if diff := cmp.Diff(want, build(batch, true)); diff != "" {
					t.Errorf("%s: batches of %d differ from one by one (-one by one +batches):\n%s", name, batch, diff)
				}
			}
		}
	})
}
