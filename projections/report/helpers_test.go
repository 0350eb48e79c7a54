package report_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/report"
	"github.com/koers-io/koers/projections/report/testbed"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// now is the instant the golden reports are made at: Monday 1 December
// 2025, 10:00 in Amsterdam, three days after the synthetic history ends.
func now(tb testing.TB) time.Time {
	return time.Date(2025, time.December, 1, 10, 0, 0, 0, amsterdam(tb))
}

// readModel is the report of a history in one database.
type readModel struct {
	reader report.Querier
	// engine reads the same tables through the engine's read
	// transactions, as the QueryService does.
	engine *projections.Reader
	loc    *time.Location
}

// build applies events to a fresh report in a database of dialect d, in
// batches of 100 like an engine catching up.
func build(t *testing.T, d projections.Dialect, events []projections.Event) readModel {
	t.Helper()
	ctx := context.Background()
	loc := amsterdam(t)
	db := testbed.Open(t, d)
	p := report.New(report.Options{Location: loc})
	if err := db.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(ctx, p, events, 100); err != nil {
		t.Fatal(err)
	}
	return readModel{reader: db.Reader(report.Name), engine: db.Engine(t).Reader(report.Name), loc: loc}
}

// get returns the report q asks for, read one query after the other.
func (rm readModel) get(t *testing.T, q report.Query) report.Report {
	t.Helper()
	r, err := report.Get(context.Background(), rm.reader, rm.loc, q)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// getInTx returns the report q asks for, read in one of the engine's read
// transactions and its forks, several queries at once.
func (rm readModel) getInTx(t *testing.T, q report.Query) report.Report {
	t.Helper()
	var r report.Report
	err := rm.engine.ReadTx(context.Background(), func(tx projections.Tx) error {
		var err error
		r, err = report.Get(context.Background(), tx, rm.loc, q)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// forEachDialect runs f against SQLite, and PostgreSQL when configured.
func forEachDialect(t *testing.T, f func(t *testing.T, d projections.Dialect)) {
	for _, d := range testbed.Dialects() {
		t.Run(string(d), func(t *testing.T) { f(t, d) })
	}
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

// step is one command of a hand-made history: decided on its case's state,
// happened on day, recorded by Koers at recorded.
type step struct {
	caseID   string
	day      casework.Date
	recorded time.Time
	cmd      casework.Command
}

// history decides the steps in order, for tenant, into events at
// positions 1, 2, ….
func history(t *testing.T, tenant string, steps []step) []projections.Event {
	t.Helper()
	loc := amsterdam(t)
	states := map[string]casework.State{}
	var out []projections.Event
	for _, st := range steps {
		bodies, err := casework.Decide(states[st.caseID], st.cmd)
		if err != nil {
			t.Fatalf("case %s: %T: %v", st.caseID, st.cmd, err)
		}
		occurred := time.Date(st.day.Year, st.day.Month, st.day.Day, 0, 0, 0, 0, loc)
		for _, b := range bodies {
			states[st.caseID] = casework.Evolve(states[st.caseID], b)
			out = append(out, projections.Event{
				Position:   eventstore.Position(len(out) + 1),
				Stream:     "case-" + st.caseID,
				Type:       string(proto.MessageName(b)),
				RecordedAt: st.recorded,
				Metadata: &eventv1.Metadata{
					TenantId: tenant, CaseId: st.caseID,
					OccurredAt: timestamppb.New(occurred), RecordedAt: timestamppb.New(st.recorded),
				},
				Body: b,
			})
		}
	}
	return out
}

func sealed() *eventv1.Sealed {
	return &eventv1.Sealed{KeyId: "key-1", Nonce: make([]byte, 12), Ciphertext: make([]byte, 32)}
}

func date(y int, m time.Month, d int) casework.Date { return casework.Date{Year: y, Month: m, Day: d} }

// at is 10:00 in Amsterdam on day.
func at(t *testing.T, d casework.Date) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 10, 0, 0, 0, amsterdam(t))
}
