package report

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/report/testbed"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// TestOutplacementCellsMatchOneByOne counts outplacements by their cells
// (seeks of the index, and the cases with several outplacements read
// whole) and one outplacement at a time: every cell must hold the same
// outplacements, cases and days, now and as of a past instant. The
// history has cases with several outplacements in one cell.
func TestOutplacementCellsMatchOneByOne(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	events := append(testbed.History(testbed.Large(300, loc)), repeatedOutplacements(t, loc)...)
	for i := range events {
		events[i].Position = eventstore.Position(i + 1)
	}
	now := time.Date(2025, 12, 1, 10, 0, 0, 0, loc)
	for _, d := range testbed.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := testbed.Open(t, d)
			p := New(Options{Location: loc})
			if err := db.Create(ctx, p); err != nil {
				t.Fatal(err)
			}
			if err := db.Apply(ctx, p, events, 1000); err != nil {
				t.Fatal(err)
			}
			r := db.Reader(Name)
			compare := func(name string, b builder) (cells, oneByOne builder) {
				t.Helper()
				cells, oneByOne = b, b
				if err := cells.outplacements(ctx, r); err != nil {
					t.Fatal(err)
				}
				oneByOne.initOutplacements()
				if err := oneByOne.outplacementsOneByOne(ctx, r); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(outplacementFigures(&oneByOne), outplacementFigures(&cells)); diff != "" {
					t.Errorf("%s: cells differ (-one by one +by cell):\n%s", name, diff)
				}
				return cells, oneByOne
			}
			for name, b := range map[string]builder{
				"now":              {q: Query{Tenant: "rivierstad"}, latest: true, to: 20251201, asOf: now.UnixMicro()},
				"a period":         {q: Query{Tenant: "rivierstad"}, latest: true, from: 20250101, to: 20250930, asOf: now.UnixMicro()},
				"as of a year ago": {q: Query{Tenant: "rivierstad"}, from: 20231201, to: 20241130, asOf: now.AddDate(-1, 0, 0).UnixMicro()},
			} {
				_, oneByOne := compare(name, b)
				if o := oneByOne.out.started; name != "as of a year ago" && (o.cases < 3 || o.value == o.cases) {
					t.Errorf("%s: %d outplacements of %d cases; the comparison needs repeats", name, o.value, o.cases)
				}
			}
			// An outcome newer than this code falls in no cell: the
			// outplacements are counted one by one, and it with them.
			now := builder{q: Query{Tenant: "rivierstad"}, latest: true, to: 20251201, asOf: now.UnixMicro()}
			before, _ := compare("now", now)
			if _, err := db.SQL.ExecContext(ctx, testbed.Rewrite(d, Name, `INSERT INTO {outplacements} (case_id, seq, known_from, known_to,
				tenant_id, organisation_id, department, started_on, age_band, furthest_phase, outcome, placed_on, ended_on, days_to_placement)
				VALUES ('newer', 1, 1, ?, 'rivierstad', 'org-01', 'a', 20250301, 1, 1, 9, 0, 0, -1)`), int64(current)); err != nil {
				t.Fatal(err)
			}
			after, _ := compare("now, with a newer outcome", now)
			if after.out.started.value != before.out.started.value+1 {
				t.Errorf("with an outplacement of a newer outcome: %d started, want %d", after.out.started.value, before.out.started.value+1)
			}
		})
	}
}

// outplacementFigures lists every outplacement cell of b as text.
func outplacementFigures(b *builder) []string {
	var out []string
	add := func(group string, o *outplacementCells) {
		out = append(out, fmt.Sprintf("%s started: %d in %d cases", group, o.started.value, o.started.cases))
		for k, c := range o.byPhase {
			out = append(out, fmt.Sprintf("%s phase %v: %d in %d cases", group, k, c.value, c.cases))
		}
		for k, c := range o.byOutcome {
			out = append(out, fmt.Sprintf("%s outcome %v: %d in %d cases", group, k, c.value, c.cases))
		}
		days := slices.Clone(o.days)
		slices.Sort(days)
		out = append(out, fmt.Sprintf("%s days %v", group, days))
	}
	add("all", &b.out)
	for band, o := range b.bands {
		add(band.String(), o)
	}
	slices.Sort(out)
	return out
}

// repeatedOutplacements is a history of tenant rivierstad whose case has
// three outplacements, two of them ended without placement and one
// placed, and whose other case has two, in one cell.
func repeatedOutplacements(t *testing.T, loc *time.Location) []projections.Event {
	t.Helper()
	day := func(m time.Month, d int) casework.Date { return casework.Date{Year: 2025, Month: m, Day: d} }
	open := func(d casework.Date) casework.Command {
		return casework.OpenCase{ClientID: "client", Client: &eventv1.Sealed{KeyId: "k", Nonce: make([]byte, 12), Ciphertext: make([]byte, 16)},
			BirthYear: 1980, InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION, OrganisationID: "org-03", Department: "a",
			Context:  casework.ContextOf(casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT),
			Question: casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT, OpenedOn: d, CoachID: "coach-001"}
	}
	end := func(d casework.Date) casework.Command {
		return casework.EndOutplacementWithoutPlacement{EndedOn: d, Reason: casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_TERM_ENDED}
	}
	type step struct {
		caseID string
		day    casework.Date
		cmd    casework.Command
	}
	a, b := testbed.CaseID(900001), testbed.CaseID(900002)
	steps := []step{
		{a, day(1, 6), open(day(1, 6))},
		{a, day(1, 20), casework.StartOutplacement{StartedOn: day(1, 20)}},
		{a, day(3, 3), end(day(3, 3))},
		{a, day(4, 1), casework.StartOutplacement{StartedOn: day(4, 1)}},
		{a, day(6, 2), end(day(6, 2))},
		{a, day(7, 1), casework.StartOutplacement{StartedOn: day(7, 1)}},
		{a, day(9, 1), casework.RecordPlacement{Outcome: casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL, PlacedOn: day(9, 1)}},
		{b, day(2, 3), open(day(2, 3))},
		{b, day(2, 10), casework.StartOutplacement{StartedOn: day(2, 10)}},
		{b, day(4, 10), end(day(4, 10))},
		{b, day(5, 4), casework.StartOutplacement{StartedOn: day(5, 4)}},
	}
	states := map[string]casework.State{}
	var out []projections.Event
	for _, st := range steps {
		bodies, err := casework.Decide(states[st.caseID], st.cmd)
		if err != nil {
			t.Fatalf("%T: %v", st.cmd, err)
		}
		at := time.Date(st.day.Year, st.day.Month, st.day.Day, 12, 0, 0, 0, loc)
		for _, body := range bodies {
			states[st.caseID] = casework.Evolve(states[st.caseID], body)
			out = append(out, projections.Event{
				Type: string(proto.MessageName(body)), Stream: "case-" + st.caseID, RecordedAt: at,
				Metadata: &eventv1.Metadata{TenantId: "rivierstad", CaseId: st.caseID, OccurredAt: timestamppb.New(at), RecordedAt: timestamppb.New(at)},
				Body:     body,
			})
		}
	}
	return out
}
