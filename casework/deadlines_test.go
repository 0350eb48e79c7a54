package casework

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// at is noon of day d in UTC.
func at(d Date) time.Time { return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC) }

// day is the sick report plus n days.
func day(n int) Date { return sickOn.AddDays(n) }

func TestScheduleFollowsTheGatekeeperTable(t *testing.T) {
	upcoming := StatusUpcoming
	want := []Deadline{
		{Kind: physicianReport, Week: 1, Opens: day(0), Due: day(6), Status: StatusDue},
		{Kind: problemAnalysis, Week: 6, Opens: day(35), Due: Date{2025, time.February, 16}, Status: upcoming},
		{Kind: actionPlan, Week: 8, Opens: day(49), Due: day(55), Status: upcoming},
		{Kind: progressReview, Opens: day(55 + 42), Due: day(55 + 56), Status: upcoming},
		{Kind: uwvReport, Week: 42, Opens: day(287), Due: day(293), Status: upcoming},
		{Kind: firstYearEval, Week: 52, Opens: day(315), Due: day(363), Status: upcoming},
		{Kind: decisionCheckpoint, Opens: day(315), Due: day(363 + 42), Status: upcoming},
		{Kind: wiaForm, Week: 88, Opens: day(609), Due: day(615), Status: upcoming},
		{Kind: wiaApplication, Week: 91, Opens: day(630), Due: day(636), Status: upcoming},
		{Kind: gatekeeperTest, Week: 93, Opens: day(644), Due: day(650), Status: upcoming},
		{Kind: wiaDecision, Week: 104, Opens: day(721), Due: Date{2027, time.January, 3}, Status: upcoming},
	}
	if diff := cmp.Diff(want, Schedule(sickOn, nil, at(sickOn))); diff != "" {
		t.Errorf("schedule on the sick-report day (-want +got):\n%s", diff)
	}
}

func TestScheduleStatusAtTheBoundaries(t *testing.T) {
	recorded := func(kind casev1.CheckpointKind, days ...int) []Checkpoint {
		var out []Checkpoint
		for _, n := range days {
			out = append(out, Checkpoint{Kind: kind, HeldOn: day(n)})
		}
		return out
	}
	eval330 := recorded(firstYearEval, 330)
	cases := []struct {
		name     string
		recorded []Checkpoint
		today    int
		kind     casev1.CheckpointKind
		want     DeadlineStatus
	}{
		{"upcoming the day before its week", nil, 34, problemAnalysis, StatusUpcoming},
		{"due on the first day of its week", nil, 35, problemAnalysis, StatusDue},
		{"due on its last day", nil, 41, problemAnalysis, StatusDue},
		{"overdue the day after", nil, 42, problemAnalysis, StatusOverdue},
		{"done on its last day is on time", recorded(problemAnalysis, 41), 100, problemAnalysis, StatusDoneOnTime},
		{"done the day after is late", recorded(problemAnalysis, 42), 100, problemAnalysis, StatusDoneLate},
		{"done before its week is on time", recorded(problemAnalysis, 3), 100, problemAnalysis, StatusDoneOnTime},
		{"the earliest of repeated checkpoints counts", recorded(problemAnalysis, 50, 40), 100, problemAnalysis, StatusDoneOnTime},
		{"a done checkpoint is done before its week comes", recorded(actionPlan, 20), 21, actionPlan, StatusDoneOnTime},
		{"first-year evaluation before week 46 is early", recorded(firstYearEval, 314), 400, firstYearEval, StatusDoneEarly},
		{"first-year evaluation on the first day of week 46 is on time", recorded(firstYearEval, 315), 400, firstYearEval, StatusDoneOnTime},
		{"first-year evaluation on the last day of week 52 is on time", recorded(firstYearEval, 363), 400, firstYearEval, StatusDoneOnTime},
		{"first-year evaluation after week 52 is late", recorded(firstYearEval, 364), 400, firstYearEval, StatusDoneLate},
		{"first-year evaluation missing after week 52 is overdue", nil, 364, firstYearEval, StatusOverdue},
		{"second-track decision 6 weeks after the evaluation is on time", append(recorded(decisionCheckpoint, 372), eval330...), 400, decisionCheckpoint, StatusDoneOnTime},
		{"second-track decision a day later is late", append(recorded(decisionCheckpoint, 373), eval330...), 400, decisionCheckpoint, StatusDoneLate},
		{"second-track decision opens with the evaluation done", eval330, 330, decisionCheckpoint, StatusDue},
		{"second-track decision without evaluation is due till 6 weeks after week 52", nil, 405, decisionCheckpoint, StatusDue},
		{"second-track decision without evaluation is overdue after that", nil, 406, decisionCheckpoint, StatusOverdue},
		{"WIA decision is due on the 728th day", nil, 727, wiaDecision, StatusDue},
		{"WIA decision is overdue after the waiting period", nil, 728, wiaDecision, StatusOverdue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := find(t, Schedule(sickOn, tc.recorded, at(day(tc.today))), tc.kind)
			if d.Status != tc.want {
				t.Errorf("status = %s, want %s (%+v)", d.Status, tc.want, d)
			}
			if done := !d.DoneOn.IsZero(); d.Status.Done() != done {
				t.Errorf("status %s says done %v, but done on %s", d.Status, d.Status.Done(), d.DoneOn)
			}
		})
	}
}

func find(t *testing.T, ds []Deadline, kind casev1.CheckpointKind) Deadline {
	t.Helper()
	for _, d := range ds {
		if d.Kind == kind {
			return d
		}
	}
	t.Fatalf("no %s in the schedule", kind)
	return Deadline{}
}

func reviews(ds []Deadline) []Deadline {
	var out []Deadline
	for _, d := range ds {
		if d.Kind == progressReview {
			out = append(out, d)
		}
	}
	return out
}

func TestProgressReviewsChainFromTheActionPlan(t *testing.T) {
	recorded := []Checkpoint{
		{Kind: progressReview, HeldOn: day(50 + 56 + 57)}, // out of order on purpose
		{Kind: actionPlan, HeldOn: day(50)},
		{Kind: progressReview, HeldOn: day(50 + 56)},
	}
	want := []Deadline{
		{Kind: progressReview, Opens: day(50 + 42), Due: day(50 + 56), DoneOn: day(50 + 56), Status: StatusDoneOnTime},
		{Kind: progressReview, Opens: day(106 + 42), Due: day(106 + 56), DoneOn: day(106 + 57), Status: StatusDoneLate},
		{Kind: progressReview, Opens: day(163 + 42), Due: day(163 + 56), Status: StatusUpcoming},
	}
	if diff := cmp.Diff(want, reviews(Schedule(sickOn, recorded, at(day(170))))); diff != "" {
		t.Errorf("progress reviews (-want +got):\n%s", diff)
	}
}

func TestProgressReviewsEndWithTheWaitingPeriod(t *testing.T) {
	cases := []struct {
		name       string
		lastReview int
		wantNext   bool
	}{
		{"a next review due on the last day of week 104 is scheduled", 727 - 56, true},
		{"a next review due after week 104 is not", 727 - 55, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := reviews(Schedule(sickOn, []Checkpoint{{Kind: progressReview, HeldOn: day(tc.lastReview)}}, at(day(tc.lastReview))))
			if hasNext := len(got) == 2; hasNext != tc.wantNext {
				t.Errorf("reviews = %+v, want a next one: %v", got, tc.wantNext)
			}
		})
	}
}

func TestScheduleJudgesTheDayInTheInstantsLocation(t *testing.T) {
	instant := time.Date(2025, time.January, 12, 23, 30, 0, 0, time.UTC) // last day of week 1 in UTC
	amsterdamWinter := time.FixedZone("CET", 60*60)
	cases := []struct {
		name string
		at   time.Time
		want DeadlineStatus
	}{
		{"in UTC it is still the last day of week 1", instant, StatusDue},
		{"in the Netherlands it is already the next day", instant.In(amsterdamWinter), StatusOverdue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := find(t, Schedule(sickOn, nil, tc.at), physicianReport).Status; got != tc.want {
				t.Errorf("status = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestNextAndOverdue(t *testing.T) {
	recorded := []Checkpoint{{Kind: physicianReport, HeldOn: day(2)}, {Kind: problemAnalysis, HeldOn: day(30)}}
	ds := Schedule(sickOn, recorded, at(day(60)))
	next, ok := Next(ds)
	if !ok {
		t.Fatal("Next found nothing")
	}
	wantNext := Deadline{Kind: progressReview, Opens: day(97), Due: day(111), Status: StatusUpcoming}
	if diff := cmp.Diff(wantNext, next); diff != "" {
		t.Errorf("Next (-want +got):\n%s", diff)
	}
	wantOverdue := []Deadline{{Kind: actionPlan, Week: 8, Opens: day(49), Due: day(55), Status: StatusOverdue}}
	if diff := cmp.Diff(wantOverdue, Overdue(ds)); diff != "" {
		t.Errorf("Overdue (-want +got):\n%s", diff)
	}
	if _, ok := Next(nil); ok {
		t.Error("Next of nothing found something")
	}
}

func TestStateDeadlinesUseTheRecordedCheckpoints(t *testing.T) {
	s := Replay(history(reintegrationStartedOn(sickOn), checkpointRecordedOn(physicianReport, day(1))))
	got := find(t, s.Deadlines(at(day(3))), physicianReport)
	if got.Status != StatusDoneOnTime || got.DoneOn != day(1) {
		t.Errorf("week-1 checkpoint = %+v, want done on time on %s", got, day(1))
	}
	if ds := Replay(history()).Deadlines(at(day(3))); ds != nil {
		t.Errorf("a case without re-integration has deadlines: %v", ds)
	}
}
