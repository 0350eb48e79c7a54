package casework

import (
	"slices"
	"time"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// The statutory deadlines of a re-integration under the Gatekeeper Act (Wet
// verbetering poortwachter), derived from the sick-report day, the
// checkpoints recorded and the day it is. A deadline passing is not an
// event; it is computed here, by projections and GetCase alike.
//
// Week arithmetic. The sick-report day (ziekmelding, the first day of
// sickness) is day 1 of week 1, so week N runs from sick report + 7(N-1)
// days to sick report + 7N-1 days. A checkpoint "in week N" is due by the
// last day of week N: with a sick report on Monday 6 January 2025 the
// problem analysis (week 6) is due on Sunday 16 February 2025, the 42nd
// day, which is the law's "within six weeks". The waiting period of 104
// weeks ends on the 728th day, the last day of week 104.
//
// Relative checkpoints count in whole weeks from another day instead:
// a progress review is due at most 8 weeks (56 days) after the action plan
// or the previous review, its window opening after 6 weeks (42 days); the
// second-track decision is due at most 6 weeks (42 days) after the
// first-year evaluation, or after its last allowed day while it has not
// taken place. Progress reviews are scheduled up to the end of week 104.

// DeadlineStatus is where a checkpoint stands on a given day.
type DeadlineStatus int

const (
	// StatusUpcoming: not done, and its week or window has not begun.
	StatusUpcoming DeadlineStatus = iota + 1
	// StatusDue: not done, within its week or window (Opens to Due).
	StatusDue
	// StatusOverdue: not done, and its last day has passed.
	StatusOverdue
	// StatusDoneOnTime: took place on or before its last day.
	StatusDoneOnTime
	// StatusDoneLate: took place after its last day.
	StatusDoneLate
	// StatusDoneEarly: took place before its window opened, which only a
	// windowed checkpoint (the first-year evaluation, weeks 46 to 52) can:
	// an evaluation in week 30 is not the evaluation the law asks for.
	StatusDoneEarly
)

var statusNames = map[DeadlineStatus]string{
	StatusUpcoming: "upcoming", StatusDue: "due", StatusOverdue: "overdue",
	StatusDoneOnTime: "done on time", StatusDoneLate: "done late", StatusDoneEarly: "done early",
}

// String names the status.
func (s DeadlineStatus) String() string { return statusNames[s] }

// Done reports whether the status is one of a checkpoint that took place.
func (s DeadlineStatus) Done() bool { return s >= StatusDoneOnTime }

// Deadline is one statutory checkpoint of a re-integration as of a day.
type Deadline struct {
	Kind casev1.CheckpointKind
	// Week is the statutory week it is due in, counted from the sick
	// report; 0 for checkpoints counted from another one (progress review,
	// second-track decision).
	Week int
	// Opens is the first day of its week or window; Due its last day on
	// time.
	Opens Date
	Due   Date
	// DoneOn is the day it took place; zero while it has not.
	DoneOn Date
	Status DeadlineStatus
}

// statutory is a checkpoint of the Gatekeeper table with fixed weeks.
type statutory struct {
	kind casev1.CheckpointKind
	// from and to are the first and last week of its window; equal for a
	// checkpoint of one week.
	from, to int
}

// gatekeeperTable lists the checkpoints at fixed weeks from the sick report.
var gatekeeperTable = []statutory{
	{casev1.CheckpointKind_CHECKPOINT_KIND_OCCUPATIONAL_PHYSICIAN_REPORT, 1, 1},
	{casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, 6, 6},
	{casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN, 8, 8},
	{casev1.CheckpointKind_CHECKPOINT_KIND_UWV_SICKNESS_REPORT, 42, 42},
	{firstYearEval, 46, 52},
	{casev1.CheckpointKind_CHECKPOINT_KIND_WIA_FORM_RECEIVED, 88, 88},
	{casev1.CheckpointKind_CHECKPOINT_KIND_WIA_APPLICATION, 91, 91},
	{casev1.CheckpointKind_CHECKPOINT_KIND_GATEKEEPER_TEST, 93, 93},
	{casev1.CheckpointKind_CHECKPOINT_KIND_WIA_DECISION, 104, 104},
}

// Weeks and days of the relative checkpoints.
const (
	waitingWeeks          = 104
	reviewWindowDays      = 6 * 7
	reviewDueDays         = 8 * 7
	secondTrackDecideDays = 6 * 7
	progressReview        = casev1.CheckpointKind_CHECKPOINT_KIND_PROGRESS_REVIEW
	actionPlan            = casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN
)

// Schedule returns the statutory checkpoints of a re-integration whose sick
// report was on sickReport, with what was recorded and where each stands at
// the instant at, ordered by their last day. at's calendar day is taken in
// at's own location, so pass it in the practice's (see DateOf).
//
// For a checkpoint that happens once, the earliest recorded one counts;
// progress reviews are a chain, each due 8 weeks after the one before, with
// one more not-yet-done review after the last recorded one while it falls
// within the waiting period.
func Schedule(sickReport Date, recorded []Checkpoint, at time.Time) []Deadline {
	today := DateOf(at)
	firsts := earliestByKind(recorded)
	var out []Deadline
	for _, st := range gatekeeperTable {
		out = append(out, st.deadline(sickReport, firsts[st.kind], today))
	}
	out = append(out, secondTrackDecision(sickReport, firsts, today))
	out = append(out, progressReviews(sickReport, firsts[actionPlan], recorded, today)...)
	slices.SortStableFunc(out, func(a, b Deadline) int { return a.Due.DaysSince(b.Due) })
	return out
}

// Next returns the not-done checkpoint with the earliest last day that has
// not passed yet: the next deadline. Overdue ones are left to Overdue.
func Next(deadlines []Deadline) (Deadline, bool) {
	var next Deadline
	found := false
	for _, d := range deadlines {
		open := d.Status == StatusDue || d.Status == StatusUpcoming
		if open && (!found || d.Due.Before(next.Due)) {
			next, found = d, true
		}
	}
	return next, found
}

// Overdue returns the checkpoints whose last day passed without them.
func Overdue(deadlines []Deadline) []Deadline {
	var out []Deadline
	for _, d := range deadlines {
		if d.Status == StatusOverdue {
			out = append(out, d)
		}
	}
	return out
}

func (st statutory) deadline(sickReport, doneOn, today Date) Deadline {
	d := Deadline{
		Kind:   st.kind,
		Week:   st.to,
		Opens:  weekStart(sickReport, st.from),
		Due:    weekEnd(sickReport, st.to),
		DoneOn: doneOn,
	}
	d.Status = d.status(today, st.from != st.to)
	return d
}

// weekStart is the first day of week n counted from the sick report.
func weekStart(sickReport Date, n int) Date { return sickReport.AddDays(7 * (n - 1)) }

// weekEnd is the last day of week n counted from the sick report.
func weekEnd(sickReport Date, n int) Date { return sickReport.AddDays(7*n - 1) }

// status judges d on today; windowed checkpoints can be done too early.
func (d Deadline) status(today Date, windowed bool) DeadlineStatus {
	switch {
	case !d.DoneOn.IsZero() && d.DoneOn.After(d.Due):
		return StatusDoneLate
	case !d.DoneOn.IsZero() && windowed && d.DoneOn.Before(d.Opens):
		return StatusDoneEarly
	case !d.DoneOn.IsZero():
		return StatusDoneOnTime
	case today.After(d.Due):
		return StatusOverdue
	case today.Before(d.Opens):
		return StatusUpcoming
	default:
		return StatusDue
	}
}

// secondTrackDecision is due 6 weeks after the first-year evaluation; while
// that has not happened, its window opens with the evaluation's and closes
// 6 weeks after the evaluation's last day.
func secondTrackDecision(sickReport Date, firsts map[casev1.CheckpointKind]Date, today Date) Deadline {
	eval := gatekeeperTableEntry(firstYearEval).deadline(sickReport, firsts[firstYearEval], today)
	d := Deadline{Kind: decisionCheckpoint, Opens: eval.Opens, Due: eval.Due.AddDays(secondTrackDecideDays), DoneOn: firsts[decisionCheckpoint]}
	if !eval.DoneOn.IsZero() {
		d.Opens, d.Due = eval.DoneOn, eval.DoneOn.AddDays(secondTrackDecideDays)
	}
	d.Status = d.status(today, false)
	return d
}

func gatekeeperTableEntry(kind casev1.CheckpointKind) statutory {
	i := slices.IndexFunc(gatekeeperTable, func(st statutory) bool { return st.kind == kind })
	return gatekeeperTable[i]
}

// progressReviews chains the reviews from the action plan (its day, or its
// last allowed day while it has not taken place): each recorded review is
// judged against the one before, and one more is due after the last.
func progressReviews(sickReport, actionPlanOn Date, recorded []Checkpoint, today Date) []Deadline {
	anchor := actionPlanOn
	if anchor.IsZero() {
		anchor = weekEnd(sickReport, 8)
	}
	var out []Deadline
	for _, held := range reviewDays(recorded) {
		out = append(out, review(anchor, held, today))
		anchor = held
	}
	if next := review(anchor, Date{}, today); !next.Due.After(weekEnd(sickReport, waitingWeeks)) {
		out = append(out, next)
	}
	return out
}

func review(anchor, doneOn, today Date) Deadline {
	d := Deadline{
		Kind:   progressReview,
		Opens:  anchor.AddDays(reviewWindowDays),
		Due:    anchor.AddDays(reviewDueDays),
		DoneOn: doneOn,
	}
	d.Status = d.status(today, false)
	return d
}

// reviewDays returns the days of the recorded progress reviews, in order.
func reviewDays(recorded []Checkpoint) []Date {
	var days []Date
	for _, c := range recorded {
		if c.Kind == progressReview {
			days = append(days, c.HeldOn)
		}
	}
	slices.SortFunc(days, func(a, b Date) int { return a.DaysSince(b) })
	return days
}

// earliestByKind returns the earliest day recorded for each kind.
func earliestByKind(recorded []Checkpoint) map[casev1.CheckpointKind]Date {
	firsts := make(map[casev1.CheckpointKind]Date)
	for _, c := range recorded {
		if had, ok := firsts[c.Kind]; !ok || c.HeldOn.Before(had) {
			firsts[c.Kind] = c.HeldOn
		}
	}
	return firsts
}
