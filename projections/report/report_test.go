package report_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/report"
	"github.com/koers-io/koers/projections/report/testbed"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// TestGoldenReports pins reports of the synthetic history: the tenant's
// with every count (k=1, for reviewing the figures) and as the analyst
// sees it (k=5), one department, and the tenant as of a year before.
// Both dialects must produce the same files, and so must reading the
// report in the engine's read transaction, several queries at once.
func TestGoldenReports(t *testing.T) {
	events := testbed.History(testbed.Golden(amsterdam(t)))
	queries := map[string]report.Query{
		"report-tenant-all-counts.golden": {Tenant: "rivierstad", Now: now(t), K: 1},
		"report-tenant.golden":            {Tenant: "rivierstad", Now: now(t)},
		"report-havenbedrijf-logistiek.golden": {
			Tenant: "rivierstad", Organisation: "havenbedrijf", Department: "logistiek", Now: now(t),
			From: date(2025, time.January, 1), To: date(2025, time.November, 30),
		},
		"report-tenant-as-of-2025-01-01.golden": {
			Tenant: "rivierstad", AsOf: at(t, date(2025, time.January, 1)), K: 1,
			From: date(2024, time.January, 1), To: date(2024, time.December, 31),
		},
	}
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		rm := build(t, d, events)
		for file, q := range queries {
			var b bytes.Buffer
			render(&b, rm.get(t, q))
			golden(t, file, b.Bytes())
			if diff := cmp.Diff(rm.get(t, q), rm.getInTx(t, q)); diff != "" {
				t.Errorf("%s: the report read in parallel in a read transaction differs (-one by one +in parallel):\n%s", file, diff)
			}
		}
	})
}

// TestSmallDepartmentShowsNoCounts reports a department of three cases —
// one placed in an outplacement, one in re-integration, one reclassified
// — to an analyst: not one count, rate or statistic shows.
func TestSmallDepartmentShowsNoCounts(t *testing.T) {
	open := func(id string, q casev1.OrganisationalQuestion, day casework.Date) step {
		return step{id, day, at(t, day), casework.OpenCase{
			ClientID: "client-" + id, Client: sealed(), BirthYear: 1970, InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION,
			OrganisationID: "acme", Department: "klein", Context: casework.ContextOf(q), Question: q, OpenedOn: day, CoachID: "coach-1",
		}}
	}
	intake := func(id string, day casework.Date) step {
		return step{id, day, at(t, day), casework.CompleteIntake{HeldOn: day, QuestionType: casev1.QuestionType_QUESTION_TYPE_COMPETENCE,
			Answers: sealed(), MobilityWillingness: 4, MobilityCapacity: 2}}
	}
	a, b, c := testbed.CaseID(1), testbed.CaseID(2), testbed.CaseID(3)
	events := history(t, "tenant-a", []step{
		open(a, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT, date(2025, 1, 6)),
		intake(a, date(2025, 1, 10)),
		{a, date(2025, 1, 20), at(t, date(2025, 1, 20)), casework.StartOutplacement{StartedOn: date(2025, 1, 20), PlannedMonths: 6}},
		{a, date(2025, 5, 1), at(t, date(2025, 5, 1)), casework.RecordPlacement{Outcome: casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL, PlacedOn: date(2025, 5, 1)}},
		open(b, 0, date(2025, 2, 3)),
		intake(b, date(2025, 2, 3)),
		{b, date(2025, 2, 3), at(t, date(2025, 2, 3)), casework.StartReintegration{SickReportedOn: date(2025, 2, 1)}},
		{b, date(2025, 2, 5), at(t, date(2025, 2, 5)), casework.RecordCheckpoint{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_OCCUPATIONAL_PHYSICIAN_REPORT, HeldOn: date(2025, 2, 5)}},
		{b, date(2025, 6, 1), at(t, date(2025, 6, 1)), casework.CloseCase{ClosedOn: date(2025, 6, 1), Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER}},
		open(c, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PROBLEM_CASE, date(2025, 3, 3)),
		intake(c, date(2025, 3, 4)),
		{c, date(2025, 4, 1), at(t, date(2025, 4, 1)), casework.ReclassifyQuestion{To: casev1.QuestionType_QUESTION_TYPE_COUNSELING, Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_COACHING_INEFFECTIVE}},
	})
	q := report.Query{Tenant: "tenant-a", Organisation: "acme", Department: "klein", Now: at(t, date(2025, 12, 1))}
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		rm := build(t, d, events)
		full := q
		full.K = 1
		if r := rm.get(t, full); r.Cases.Active.N != 3 || r.Outplacement.Started.N != 1 || r.Reintegration.Ended.N != 1 || r.Reclassifications.Total.N != 1 {
			t.Fatalf("unsuppressed, the department has %d cases, %d outplacements, %d ended re-integrations, %d reclassifications; want 3, 1, 1, 1",
				r.Cases.Active.N, r.Outplacement.Started.N, r.Reintegration.Ended.N, r.Reclassifications.Total.N)
		}
		if shown := shownFigures(rm.get(t, q)); len(shown) > 0 {
			t.Errorf("the analyst sees figures of a department of 3 cases: %v", shown)
		}
	})
}

// shownFigures lists every count, rate and statistic of r that is not
// suppressed (or absent).
func shownFigures(r report.Report) []string {
	var shown []string
	count := func(name string, c report.Count) {
		if !c.Suppressed {
			shown = append(shown, name)
		}
	}
	rate := func(name string, x report.Rate) {
		if x.OK {
			shown = append(shown, name)
		}
	}
	days := func(name string, x report.Days) {
		if x.OK {
			shown = append(shown, name)
		}
	}
	count("cases", r.Cases.Active)
	for _, c := range r.Cases.ByContextAndType {
		count("context/type "+c.Context.String()+"/"+c.QuestionType.String(), c.Count)
	}
	for _, c := range r.Cases.Mobility {
		count("quadrant "+c.Quadrant.String(), c.Count)
	}
	for _, c := range r.Cases.Caseload {
		count("caseload "+c.CoachID, c.Count)
	}
	count("reclassifications", r.Reclassifications.Total)
	for _, c := range r.Reclassifications.Matrix {
		count("reclassified "+c.From.String()+"->"+c.To.String(), c.Count)
	}
	o := r.Outplacement
	count("outplacements", o.Started)
	for _, c := range o.ByPhase {
		count("phase "+c.Phase.String(), c.Count)
	}
	for _, c := range o.ByOutcome {
		count("outcome "+c.Outcome.String(), c.Count)
	}
	rate("placement rate", o.PlacementRate)
	days("days to placement", o.DaysToPlacement)
	for _, b := range o.ByAgeBand {
		count("band "+b.Band.String(), b.Started)
		for _, c := range b.ByOutcome {
			count("band "+b.Band.String()+" outcome "+c.Outcome.String(), c.Count)
		}
		rate("band "+b.Band.String()+" placement rate", b.PlacementRate)
		days("band "+b.Band.String()+" days", b.DaysToPlacement)
	}
	ri := r.Reintegration
	count("checkpoints", ri.Checkpoints)
	for _, c := range ri.Compliance {
		count("compliance "+c.Kind.String()+" "+c.Status.String(), c.Count)
	}
	for _, c := range ri.ByKind {
		count("kind "+c.Kind.String(), c.Count)
	}
	for _, c := range ri.ByStatus {
		count("status "+c.Status.String(), c.Count)
	}
	count("ended", ri.Ended)
	for _, c := range ri.ByOutcome {
		count("ended "+c.Outcome.String(), c.Count)
	}
	rate("return-to-work rate", ri.ReturnToWorkRate)
	return shown
}

// TestAsOfCountsWhatWasKnown builds a history whose facts were recorded
// later than they happened, and asks the report as of instants in
// between: a fact counts from the moment Koers recorded it, not from the
// day it happened.
func TestAsOfCountsWhatWasKnown(t *testing.T) {
	a, b := testbed.CaseID(1), testbed.CaseID(2)
	sick := date(2025, 1, 6) // Monday: the problem analysis is due on Sunday 16 February
	events := history(t, "tenant-a", []step{
		{a, date(2025, 1, 6), at(t, date(2025, 1, 6)), casework.OpenCase{ClientID: "client-a", Client: sealed(), InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION,
			OrganisationID: "acme", OpenedOn: date(2025, 1, 6), CoachID: "coach-1", BirthYear: 1980}},
		{a, date(2025, 1, 6), at(t, date(2025, 1, 6)), casework.StartReintegration{SickReportedOn: sick}},
		{a, date(2025, 1, 8), at(t, date(2025, 1, 8)), casework.RecordCheckpoint{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_OCCUPATIONAL_PHYSICIAN_REPORT, HeldOn: date(2025, 1, 8)}},
		{a, date(2025, 1, 9), at(t, date(2025, 1, 9)), casework.CompleteIntake{HeldOn: date(2025, 1, 9), QuestionType: casev1.QuestionType_QUESTION_TYPE_CHOICE, Answers: sealed()}},
		{b, date(2025, 1, 15), at(t, date(2025, 1, 15)), casework.OpenCase{ClientID: "client-b", Client: sealed(), InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION,
			OrganisationID: "acme", OpenedOn: date(2025, 1, 15), CoachID: "coach-2", BirthYear: 1990,
			Context: casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_REORGANISATION, Question: casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT}},
		{b, date(2025, 1, 20), at(t, date(2025, 1, 20)), casework.StartOutplacement{StartedOn: date(2025, 1, 20)}},
		{a, date(2025, 2, 1), at(t, date(2025, 2, 1)), casework.ReclassifyQuestion{To: casev1.QuestionType_QUESTION_TYPE_LIFE, Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_DISGUISED_QUESTION}},
		// Held on 14 February, on time, but written down on 20 March.
		{a, date(2025, 2, 14), at(t, date(2025, 3, 20)), casework.RecordCheckpoint{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, HeldOn: date(2025, 2, 14)}},
		// Placed on 1 March, recorded on 5 March.
		{b, date(2025, 3, 1), at(t, date(2025, 3, 5)), casework.RecordPlacement{Outcome: casev1.PlacementOutcome_PLACEMENT_OUTCOME_INTERNAL, PlacedOn: date(2025, 3, 1)}},
		// Happened on 1 March, recorded on 2 April.
		{a, date(2025, 3, 1), at(t, date(2025, 4, 2)), casework.ReclassifyQuestion{To: casev1.QuestionType_QUESTION_TYPE_COUNSELING, Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_COACHING_INEFFECTIVE}},
		{a, date(2025, 4, 30), at(t, date(2025, 4, 30)), casework.CloseCase{ClosedOn: date(2025, 4, 30), Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER}},
	})
	type figures struct {
		Active, Reclassified                  int
		QuestionType                          casev1.QuestionType
		ProblemAnalysis                       casework.DeadlineStatus
		ActionPlanMissing, ReviewsMissing     int
		Placed, NoOutcome, Ended, Checkpoints int
	}
	read := func(r report.Report) figures {
		f := figures{Active: r.Cases.Active.N, Reclassified: r.Reclassifications.Total.N, Ended: r.Reintegration.Ended.N, Checkpoints: r.Reintegration.Checkpoints.N}
		for _, c := range r.Cases.ByContextAndType {
			if c.Context == 0 && c.Count.N > 0 {
				f.QuestionType = c.QuestionType
			}
		}
		for _, c := range r.Reintegration.Compliance {
			switch {
			case c.Kind == casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS && c.Count.N > 0:
				f.ProblemAnalysis = c.Status
			case c.Kind == casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN && c.Status == casework.StatusOverdue:
				f.ActionPlanMissing = c.Count.N
			case c.Kind == casev1.CheckpointKind_CHECKPOINT_KIND_PROGRESS_REVIEW && c.Status == casework.StatusOverdue:
				f.ReviewsMissing = c.Count.N
			}
		}
		for _, c := range r.Outplacement.ByOutcome {
			switch c.Outcome {
			case casev1.PlacementOutcome_PLACEMENT_OUTCOME_INTERNAL:
				f.Placed = c.Count.N
			case casev1.PlacementOutcome_PLACEMENT_OUTCOME_UNSPECIFIED:
				f.NoOutcome = c.Count.N
			}
		}
		return f
	}
	cases := []struct {
		name string
		asOf time.Time
		want figures
	}{
		{"1 March: the problem analysis is not written down yet, so it is missing", at(t, date(2025, 3, 1)), figures{
			Active: 2, Reclassified: 1, QuestionType: casev1.QuestionType_QUESTION_TYPE_LIFE,
			ProblemAnalysis: casework.StatusOverdue, NoOutcome: 1, Checkpoints: 2,
		}},
		{"25 March: it was on time after all; the action plan is missing; the placement is known", at(t, date(2025, 3, 25)), figures{
			Active: 2, Reclassified: 1, QuestionType: casev1.QuestionType_QUESTION_TYPE_LIFE,
			ProblemAnalysis: casework.StatusDoneOnTime, ActionPlanMissing: 1, Placed: 1, Checkpoints: 3,
		}},
		{"5 May: the second reclassification and the close are known; the review due before the close is missing, the deadlines after it moot", at(t, date(2025, 5, 5)), figures{
			Active: 2, Reclassified: 2, QuestionType: casev1.QuestionType_QUESTION_TYPE_COUNSELING,
			ProblemAnalysis: casework.StatusDoneOnTime, ActionPlanMissing: 1, ReviewsMissing: 1, Placed: 1, Ended: 1, Checkpoints: 4,
		}},
	}
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		rm := build(t, d, events)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := read(rm.get(t, report.Query{Tenant: "tenant-a", AsOf: tc.asOf, K: 1}))
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("as of %s (-want +got):\n%s", tc.asOf, diff)
				}
			})
		}
		// A report of now reads the current versions; as of any instant
		// after the last event it must say the same.
		nowReport := rm.get(t, report.Query{Tenant: "tenant-a", Now: at(t, date(2025, 12, 1)), K: 1})
		asOfReport := rm.get(t, report.Query{Tenant: "tenant-a", AsOf: at(t, date(2025, 12, 1)), K: 1})
		if diff := cmp.Diff(asOfReport, nowReport); diff != "" {
			t.Errorf("the report of now differs from the report as of the same instant (-as of +now):\n%s", diff)
		}
	})
}

// TestNowEqualsAsOfTheSameInstant checks, on the synthetic history, that
// the two query shapes (current versions for now, a version range as of an
// instant) agree.
func TestNowEqualsAsOfTheSameInstant(t *testing.T) {
	events := testbed.History(testbed.Golden(amsterdam(t)))
	rm := build(t, projections.SQLite, events)
	for _, q := range []report.Query{
		{Tenant: "rivierstad", K: 1},
		{Tenant: "rivierstad", Organisation: "zorggroep-oost", K: 1, From: date(2025, 1, 1)},
		{Tenant: "rivierstad"},
	} {
		q.Now = now(t)
		nowReport := rm.get(t, q)
		q.AsOf, q.Now = now(t), time.Time{}
		if diff := cmp.Diff(rm.get(t, q), nowReport); diff != "" {
			t.Errorf("%+v: now differs from as of now (-as of +now):\n%s", q, diff)
		}
	}
}

// TestQueryRefuses checks the queries Get refuses.
func TestQueryRefuses(t *testing.T) {
	rm := build(t, projections.SQLite, nil)
	for name, q := range map[string]report.Query{
		"no tenant":                 {Now: now(t)},
		"a department alone":        {Tenant: "a", Department: "x", Now: now(t)},
		"no instant":                {Tenant: "a"},
		"a period that ends first":  {Tenant: "a", Now: now(t), From: date(2025, 2, 1), To: date(2025, 1, 31)},
		"a day that does not exist": {Tenant: "a", Now: now(t), From: date(2025, 2, 30)},
	} {
		if _, err := report.Get(context.Background(), rm.reader, rm.loc, q); !errors.Is(err, report.ErrInvalidQuery) {
			t.Errorf("%s: error %v, want ErrInvalidQuery", name, err)
		}
	}
}

// TestApplyRefuses checks the events Apply does not take.
func TestApplyRefuses(t *testing.T) {
	ctx := context.Background()
	loc := amsterdam(t)
	a := testbed.CaseID(1)
	events := history(t, "tenant-a", []step{
		{a, date(2025, 1, 6), at(t, date(2025, 1, 6)), casework.OpenCase{ClientID: "client-a", Client: sealed(), InitiatedBy: casev1.Initiator_INITIATOR_CLIENT, OpenedOn: date(2025, 1, 6)}},
	})
	db := testbed.Open(t, projections.SQLite)
	p := report.New(report.Options{Location: loc})
	if err := db.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(ctx, p, events, 1); err != nil {
		t.Fatal(err)
	}
	coach := func(tenant, caseID string) projections.Event {
		ev := events[0]
		ev.Position = 2
		ev.Metadata = &eventv1.Metadata{TenantId: tenant, CaseId: caseID, RecordedAt: timestamppb.New(at(t, date(2025, 1, 7)))}
		ev.Body = &casev1.CoachAssigned{CoachId: "coach-9"}
		return ev
	}
	reopened := events[0]
	reopened.Position = 3
	for name, ev := range map[string]projections.Event{
		"a case never opened": coach("tenant-a", testbed.CaseID(2)),
		"another tenant":      coach("tenant-b", a),
		"a second opening":    reopened,
	} {
		if err := db.Apply(ctx, p, []projections.Event{ev}, 1); err == nil {
			t.Errorf("%s: applied, want an error", name)
		}
	}
	unknown := coach("tenant-a", a)
	unknown.Body = &eventv1.Metadata{}
	if err := p.Apply(ctx, nil, unknown); !errors.Is(err, projections.ErrUnknownEvent) {
		t.Errorf("another message type: %v, want ErrUnknownEvent", err)
	}
}

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		values []int
		p      float64
		want   float64
	}{
		{[]int{7}, 0.5, 7},
		{[]int{7}, 0.9, 7},
		{[]int{10, 20}, 0.5, 15},
		{[]int{1, 2, 3, 4, 5}, 0.5, 3},
		{[]int{1, 2, 3, 4, 5}, 0.9, 4.6},
		{[]int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.9, 91},
		{[]int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.5, 55},
	} {
		if got := report.Percentile(tc.values, tc.p); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.values, tc.p, got, tc.want)
		}
	}
}

func TestQuadrantAndAgeBand(t *testing.T) {
	quadrants := map[[2]int]report.Quadrant{
		{0, 5}: report.QuadrantNotAssessed, {5, 0}: report.QuadrantNotAssessed,
		{3, 3}: report.QuadrantWillingAndAble, {5, 4}: report.QuadrantWillingAndAble,
		{3, 2}: report.QuadrantWillingNotAble, {2, 3}: report.QuadrantAbleNotWilling,
		{2, 2}: report.QuadrantNeither, {1, 1}: report.QuadrantNeither,
	}
	for scores, want := range quadrants {
		if got := report.QuadrantOf(scores[0], scores[1]); got != want {
			t.Errorf("QuadrantOf(%d, %d) = %s, want %s", scores[0], scores[1], got, want)
		}
	}
	on := date(2025, 6, 1)
	bands := map[int]report.AgeBand{0: report.AgeUnknown, 1986: report.AgeUnder40, 1985: report.Age40To56, 1969: report.Age40To56, 1968: report.Age57AndOver}
	for born, want := range bands {
		if got := report.AgeBandAt(born, on); got != want {
			t.Errorf("AgeBandAt(%d, %s) = %s, want %s", born, on, got, want)
		}
	}
}
