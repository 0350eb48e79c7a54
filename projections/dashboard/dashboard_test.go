package dashboard_test

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report/testbed"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// TestGoldenDashboards pins two coaches' dashboards of the synthetic
// history: one with running re-integrations and overdue deadlines, one
// with intake signals and, over a year, reclassifications. Both dialects
// must produce the same files.
func TestGoldenDashboards(t *testing.T) {
	events := testbed.History(testbed.Golden(amsterdam(t)))
	queries := map[string]dashboard.Query{
		"dashboard-coach-002.golden": {Tenant: "rivierstad", Coach: testbed.Coach(2), Now: now(t)},
		"dashboard-coach-003.golden": {Tenant: "rivierstad", Coach: testbed.Coach(3), Now: now(t), IdleDays: 30, RecentDays: 365},
	}
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		rm := build(t, d, events)
		for file, q := range queries {
			got, err := dashboard.Get(context.Background(), rm.reader, rm.loc, q)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			render(&b, got)
			golden(t, file, b.Bytes())
		}
	})
}

// TestCasesFollowTheDomain checks every case of the synthetic history
// against casework's own fold of its events: stage, coach, question type,
// employer, and the running re-integration's next and overdue deadlines
// as casework.Schedule judges them today.
func TestCasesFollowTheDomain(t *testing.T) {
	events := testbed.History(testbed.Golden(amsterdam(t)))
	states, tenants := replay(events), tenantOf(events)
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		rm := build(t, d, events)
		at := now(t)
		list, err := dashboard.ListCases(context.Background(), rm.reader, rm.loc, dashboard.Filter{
			Tenant: "rivierstad", Now: at, Stages: allStages,
		}, dashboard.MaxPageSize, "")
		if err != nil {
			t.Fatal(err)
		}
		if list.NextPageToken != "" {
			t.Fatal("the synthetic history has more cases than a page; raise the page size")
		}
		want := 0
		for _, tenant := range tenants {
			if tenant == "rivierstad" {
				want++
			}
		}
		if len(list.Cases) != want {
			t.Errorf("listed %d cases of rivierstad, the history has %d", len(list.Cases), want)
		}
		for _, c := range list.Cases {
			s := states[c.CaseID]
			if got, want := summary(c), expected(s, at); !cmp.Equal(got, want) {
				t.Errorf("case %s: the read model differs from the domain's fold (-domain +read model):\n%s", c.CaseID, cmp.Diff(want, got))
			}
		}
	})
}

var allStages = []casev1.Stage{1, 2, 3, 4, 5, 6, 7}

// caseFacts are the facts of a case both the read model and the domain
// state can say.
type caseFacts struct {
	Stage                    casev1.Stage
	Coach                    string
	QuestionType             casev1.QuestionType
	Organisation, Department string
	OpenedOn                 casework.Date
	ReferralAdvised          bool
	Next                     string
	Overdue                  []string
}

func summary(c dashboard.Case) caseFacts {
	f := caseFacts{
		Stage: c.Stage, Coach: c.CoachID, QuestionType: c.QuestionType,
		Organisation: c.OrganisationID, Department: c.Department, OpenedOn: c.OpenedOn,
		ReferralAdvised: c.ReferralAdvised,
	}
	if c.Next != nil {
		f.Next = fmt.Sprintf("%s %s %s", c.Next.Kind, c.Next.Due, c.Next.Status)
	}
	for _, o := range c.Overdue {
		f.Overdue = append(f.Overdue, fmt.Sprintf("%s %s", o.Kind, o.Due))
	}
	return f
}

func expected(s casework.State, at time.Time) caseFacts {
	f := caseFacts{
		Stage: s.Stage, Coach: s.CoachID, QuestionType: s.QuestionType,
		Organisation: s.OrganisationID, Department: s.Department, OpenedOn: s.OpenedOn,
		ReferralAdvised: s.Intake.ReferralAdvised,
	}
	if !s.Reintegration.Running {
		return f
	}
	deadlines := s.Deadlines(at)
	if next, ok := casework.Next(deadlines); ok {
		f.Next = fmt.Sprintf("%s %s %s", next.Kind, next.Due, next.Status)
	}
	overdue := casework.Overdue(deadlines)
	slices.SortStableFunc(overdue, func(a, b casework.Deadline) int { return a.Due.DaysSince(b.Due) })
	for _, o := range overdue {
		f.Overdue = append(f.Overdue, fmt.Sprintf("%s %s", o.Kind, o.Due))
	}
	return f
}

// TestStatusAgreesWithSchedule checks that judging a stored deadline by
// its days gives the status casework.Schedule gives, on every day around
// every deadline of a re-integration with some checkpoints recorded.
func TestStatusAgreesWithSchedule(t *testing.T) {
	sick := casework.Date{Year: 2025, Month: time.January, Day: 6}
	recorded := []casework.Checkpoint{
		{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_OCCUPATIONAL_PHYSICIAN_REPORT, HeldOn: sick.AddDays(3)},
		{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN, HeldOn: sick.AddDays(60)},
	}
	loc := amsterdam(t)
	for offset := -10; offset < 800; offset++ {
		today := sick.AddDays(offset)
		at := time.Date(today.Year, today.Month, today.Day, 12, 0, 0, 0, loc)
		for _, d := range casework.Schedule(sick, recorded, at) {
			if d.Status.Done() {
				continue
			}
			if got := dashboard.Status(d.Opens, d.Due, today); got != d.Status {
				t.Fatalf("on %s, %s (%s..%s): Status says %s, Schedule says %s", today, d.Kind, d.Opens, d.Due, got, d.Status)
			}
		}
	}
}

// TestDeadlineStatusAtItsBoundaries judges a problem analysis due on
// Sunday 16 February 2025 (week 6 of a sick report on Monday 6 January)
// at instants around its window, in the practice's calendar: a late UTC
// evening is already the next day in Amsterdam.
func TestDeadlineStatusAtItsBoundaries(t *testing.T) {
	loc := amsterdam(t)
	sick := casework.Date{Year: 2025, Month: time.January, Day: 6}
	events := handMade(t, "tenant-a", "coach-x", sick, nil)
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		rm := build(t, d, events)
		cases := []struct {
			name string
			at   time.Time
			want casework.DeadlineStatus
		}{
			{"the day before the window opens", time.Date(2025, 2, 9, 23, 59, 0, 0, loc), casework.StatusUpcoming},
			{"the first day of week 6", time.Date(2025, 2, 10, 0, 0, 1, 0, loc), casework.StatusDue},
			{"the last minute of the last day", time.Date(2025, 2, 16, 23, 59, 59, 0, loc), casework.StatusDue},
			{"the first second after it", time.Date(2025, 2, 17, 0, 0, 0, 0, loc), casework.StatusOverdue},
			{"late on the last day in UTC, already the next day in Amsterdam", time.Date(2025, 2, 16, 23, 30, 0, 0, time.UTC), casework.StatusOverdue},
			{"early on the last day in Amsterdam, still the day before in UTC", time.Date(2025, 2, 15, 23, 30, 0, 0, time.UTC), casework.StatusDue},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				dash, err := dashboard.Get(context.Background(), rm.reader, loc, dashboard.Query{Tenant: "tenant-a", Coach: "coach-x", Now: tc.at})
				if err != nil {
					t.Fatal(err)
				}
				if len(dash.Cases) != 1 {
					t.Fatalf("dashboard has %d cases, want 1", len(dash.Cases))
				}
				got, found := statusOf(dash.Cases[0], casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS)
				if !found || got != tc.want {
					t.Errorf("problem analysis at %s: status %s (listed: %t), want %s", tc.at, got, found, tc.want)
				}
				overdueListed := slices.ContainsFunc(dash.Overdue, func(d dashboard.Deadline) bool {
					return d.Kind == casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS
				})
				if overdueListed != (tc.want == casework.StatusOverdue) {
					t.Errorf("problem analysis in the overdue list: %t, want %t", overdueListed, tc.want == casework.StatusOverdue)
				}
			})
		}
	})
}

// statusOf finds the kind's deadline among a case's next and overdue ones.
func statusOf(c dashboard.Case, kind casev1.CheckpointKind) (casework.DeadlineStatus, bool) {
	for _, o := range c.Overdue {
		if o.Kind == kind {
			return o.Status, true
		}
	}
	if c.Next != nil && c.Next.Kind == kind {
		return c.Next.Status, true
	}
	return 0, false
}

// TestRecordedCheckpointIsNoLongerDue records the problem analysis late
// and checks that it leaves the overdue list, and that closing the case
// takes its deadlines off the dashboard.
func TestRecordedCheckpointIsNoLongerDue(t *testing.T) {
	loc := amsterdam(t)
	sick := casework.Date{Year: 2025, Month: time.January, Day: 6}
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, loc)
	held := casework.Date{Year: 2025, Month: time.February, Day: 20}
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		for _, tc := range []struct {
			name        string
			extra       []casework.Command
			wantCases   int
			wantOverdue []casev1.CheckpointKind
		}{
			{"nothing recorded", nil, 1, []casev1.CheckpointKind{
				casev1.CheckpointKind_CHECKPOINT_KIND_OCCUPATIONAL_PHYSICIAN_REPORT, casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS}},
			{"problem analysis recorded late", []casework.Command{
				casework.RecordCheckpoint{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, HeldOn: held},
			}, 1, []casev1.CheckpointKind{casev1.CheckpointKind_CHECKPOINT_KIND_OCCUPATIONAL_PHYSICIAN_REPORT}},
			{"case closed", []casework.Command{
				casework.CloseCase{ClosedOn: held, Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER},
			}, 0, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rm := build(t, d, handMade(t, "tenant-a", "coach-x", sick, tc.extra))
				dash, err := dashboard.Get(context.Background(), rm.reader, loc, dashboard.Query{Tenant: "tenant-a", Coach: "coach-x", Now: at})
				if err != nil {
					t.Fatal(err)
				}
				var kinds []casev1.CheckpointKind
				for _, o := range dash.Overdue {
					kinds = append(kinds, o.Kind)
				}
				if len(dash.Cases) != tc.wantCases || !slices.Equal(kinds, tc.wantOverdue) {
					t.Errorf("%d cases, overdue %v; want %d cases, overdue %v", len(dash.Cases), kinds, tc.wantCases, tc.wantOverdue)
				}
			})
		}
	})
}

// TestTenantsAreApart checks that coaches with the same IDs in two tenants
// see only their own tenant's cases, and lists only the caller's tenant.
func TestTenantsAreApart(t *testing.T) {
	events := testbed.History(testbed.Golden(amsterdam(t)))
	tenants := tenantOf(events)
	rm := build(t, projections.SQLite, events)
	ctx := context.Background()
	for _, tenant := range []string{"rivierstad", "noorderlicht"} {
		seen := 0
		for n := 1; n <= 4; n++ {
			dash, err := dashboard.Get(ctx, rm.reader, rm.loc, dashboard.Query{Tenant: tenant, Coach: testbed.Coach(n), Now: now(t)})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range dash.Cases {
				seen++
				if tenants[c.CaseID] != tenant {
					t.Errorf("%s's dashboard of %s shows case %s of %s", tenant, testbed.Coach(n), c.CaseID, tenants[c.CaseID])
				}
			}
		}
		if seen == 0 {
			t.Errorf("no active cases at all in %s: the test shows nothing", tenant)
		}
		list, err := dashboard.ListCases(ctx, rm.reader, rm.loc, dashboard.Filter{Tenant: tenant, Now: now(t), Stages: allStages}, dashboard.MaxPageSize, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Cases {
			if tenants[c.CaseID] != tenant {
				t.Errorf("%s's list shows case %s of %s", tenant, c.CaseID, tenants[c.CaseID])
			}
		}
	}
}

// TestListCasesPages walks the filtered list a page at a time and checks
// it equals the list in one page, and that a token only continues the
// listing it was made for.
func TestListCasesPages(t *testing.T) {
	events := testbed.History(testbed.Golden(amsterdam(t)))
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		rm := build(t, d, events)
		filters := map[string]dashboard.Filter{
			"active":            {Tenant: "rivierstad", Now: now(t)},
			"every stage":       {Tenant: "rivierstad", Now: now(t), Stages: allStages},
			"one coach":         {Tenant: "rivierstad", Now: now(t), Coach: testbed.Coach(3), Stages: allStages},
			"one department":    {Tenant: "rivierstad", Now: now(t), Organisation: "havenbedrijf", Department: "logistiek", Stages: allStages},
			"closed counseling": {Tenant: "rivierstad", Now: now(t), Stages: []casev1.Stage{casev1.Stage_STAGE_CLOSED}, QuestionTypes: []casev1.QuestionType{casev1.QuestionType_QUESTION_TYPE_COUNSELING}},
			"overdue only":      {Tenant: "rivierstad", Now: now(t), OverdueOnly: true},
			"idle for 30 days":  {Tenant: "rivierstad", Now: now(t), IdleDays: 30},
		}
		for name, f := range filters {
			t.Run(name, func(t *testing.T) {
				whole, err := dashboard.ListCases(ctx, rm.reader, rm.loc, f, dashboard.MaxPageSize, "")
				if err != nil {
					t.Fatal(err)
				}
				if len(whole.Cases) == 0 {
					t.Fatal("the filter selects no case of the synthetic history: the test shows nothing")
				}
				var paged []string
				token := ""
				for pages := 0; ; pages++ {
					if pages > 100 {
						t.Fatal("paging does not end")
					}
					page, err := dashboard.ListCases(ctx, rm.reader, rm.loc, f, 7, token)
					if err != nil {
						t.Fatal(err)
					}
					for _, c := range page.Cases {
						paged = append(paged, c.CaseID)
					}
					if token = page.NextPageToken; token == "" {
						break
					}
				}
				var want []string
				for _, c := range whole.Cases {
					want = append(want, c.CaseID)
					if !matches(f, c, now(t)) {
						t.Errorf("case %s does not match the filter: %+v", c.CaseID, c)
					}
				}
				if diff := cmp.Diff(want, paged); diff != "" {
					t.Errorf("pages of 7 differ from one page (-one +paged):\n%s", diff)
				}
			})
		}
		first, err := dashboard.ListCases(ctx, rm.reader, rm.loc, filters["active"], 3, "")
		if err != nil || first.NextPageToken == "" {
			t.Fatalf("first page: %v, token %q", err, first.NextPageToken)
		}
		for name, token := range map[string]string{"other filters": first.NextPageToken, "garbage": "not-a-token", "empty parts": "djEuLi4u"} {
			_, err := dashboard.ListCases(ctx, rm.reader, rm.loc, filters["one coach"], 3, token)
			if !errors.Is(err, dashboard.ErrInvalidPageToken) {
				t.Errorf("token %s: error %v, want ErrInvalidPageToken", name, err)
			}
		}
	})
}

// matches checks a listed case against the filter, as the caller reads it.
func matches(f dashboard.Filter, c dashboard.Case, at time.Time) bool {
	stages := f.Stages
	if len(stages) == 0 {
		stages = []casev1.Stage{1, 2, 3, 4, 5}
	}
	switch {
	case f.Coach != "" && c.CoachID != f.Coach,
		!slices.Contains(stages, c.Stage),
		len(f.QuestionTypes) > 0 && !slices.Contains(f.QuestionTypes, c.QuestionType),
		f.Organisation != "" && c.OrganisationID != f.Organisation,
		f.Department != "" && c.Department != f.Department,
		f.OverdueOnly && len(c.Overdue) == 0,
		f.IdleDays > 0 && !c.LastActivity.Before(at.Add(-time.Duration(f.IdleDays)*24*time.Hour)):
		return false
	}
	return true
}

// TestApplyRefuses checks the events Apply does not take: another type is
// unknown; an event of a case never opened, or of another tenant than its
// case, is an error, so the engine parks it.
func TestApplyRefuses(t *testing.T) {
	ctx := context.Background()
	loc := amsterdam(t)
	sick := casework.Date{Year: 2025, Month: time.January, Day: 6}
	events := handMade(t, "tenant-a", "coach-x", sick, nil)
	db := testbed.Open(t, projections.SQLite)
	p := dashboard.New(dashboard.Options{Location: loc})
	if err := db.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(ctx, p, events, 100); err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	session := func(tenant, caseID string) projections.Event {
		ev := last
		ev.Position++
		ev.Metadata = &eventv1.Metadata{TenantId: tenant, CaseId: caseID, OccurredAt: timestamppb.New(time.Date(2025, 3, 1, 0, 0, 0, 0, loc))}
		ev.Body = &casev1.SessionRecorded{HeldOn: &casev1.Date{Year: 2025, Month: 3, Day: 1}, Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60}
		return ev
	}
	other := session("tenant-a", last.Metadata.GetCaseId())
	other.Body = &eventv1.Metadata{}
	for name, tc := range map[string]struct {
		ev      projections.Event
		unknown bool
	}{
		"another type":        {other, true},
		"a case never opened": {session("tenant-a", testbed.CaseID(999)), false},
		"another tenant":      {session("tenant-b", last.Metadata.GetCaseId()), false},
	} {
		err := db.Apply(ctx, p, []projections.Event{tc.ev}, 1)
		switch {
		case tc.unknown && err != nil:
			t.Errorf("%s: %v, want it skipped as unknown", name, err)
		case !tc.unknown && err == nil:
			t.Errorf("%s: applied, want an error", name)
		}
	}
}

// handMade is a one-case history: opened for coach on the sick-report day
// with a re-integration from it, then cmds, one a day.
func handMade(t *testing.T, tenant, coach string, sick casework.Date, cmds []casework.Command) []projections.Event {
	t.Helper()
	loc := amsterdam(t)
	sealed := &eventv1.Sealed{KeyId: "key-1", Nonce: make([]byte, 12), Ciphertext: make([]byte, 32)}
	all := append([]casework.Command{
		casework.OpenCase{ClientID: "client-1", Client: sealed, InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION,
			OrganisationID: "acme", Department: "ops", OpenedOn: sick, CoachID: coach},
		casework.StartReintegration{SickReportedOn: sick},
	}, cmds...)
	var s casework.State
	var out []projections.Event
	caseID := testbed.CaseID(1000)
	for i, cmd := range all {
		bodies, err := casework.Decide(s, cmd)
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		day := sick.AddDays(i)
		at := time.Date(day.Year, day.Month, day.Day, 0, 0, 0, 0, loc)
		for _, b := range bodies {
			s = casework.Evolve(s, b)
			out = append(out, projections.Event{
				Position:   eventstore.Position(len(out) + 1),
				Type:       string(proto.MessageName(b)),
				Stream:     "case-" + caseID,
				Revision:   uint64(len(out)),
				RecordedAt: at.Add(10 * time.Hour),
				Metadata:   &eventv1.Metadata{TenantId: tenant, CaseId: caseID, OccurredAt: timestamppb.New(at), RecordedAt: timestamppb.New(at.Add(10 * time.Hour))},
				Body:       b,
			})
		}
	}
	return out
}

// TestOverdueOnlyListsEveryOverdueCase checks the overdue filter against
// the deadlines of every active case, on several days.
func TestOverdueOnlyListsEveryOverdueCase(t *testing.T) {
	events := testbed.History(testbed.Golden(amsterdam(t)))
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		rm := build(t, d, events)
		for _, at := range []time.Time{now(t), now(t).AddDate(0, 0, 30), now(t).AddDate(0, 0, 200)} {
			all, err := dashboard.ListCases(ctx, rm.reader, rm.loc, dashboard.Filter{Tenant: "rivierstad", Now: at}, dashboard.MaxPageSize, "")
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, c := range all.Cases {
				if len(c.Overdue) > 0 {
					want = append(want, c.CaseID)
				}
			}
			overdue, err := dashboard.ListCases(ctx, rm.reader, rm.loc, dashboard.Filter{Tenant: "rivierstad", Now: at, OverdueOnly: true}, dashboard.MaxPageSize, "")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range overdue.Cases {
				got = append(got, c.CaseID)
			}
			if len(want) == 0 {
				t.Fatalf("no case is overdue on %s: the test shows nothing", at)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("overdue cases on %s (-every active case with an overdue deadline +overdue only):\n%s", at, diff)
			}
		}
	})
}
