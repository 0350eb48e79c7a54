package dashboard

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Querier runs read-only statements on the dashboard's tables, written with
// {table} names and ? placeholders: the engine's reader of the live
// generation, or one read transaction of it (which gives the queries of
// one answer a single snapshot).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Defaults and limits of the dashboard's queries.
const (
	// DefaultIdleDays is how long a case may go without activity before
	// the dashboard calls it idle.
	DefaultIdleDays = 14
	// DefaultRecentDays is how far back "recent reclassifications" reach.
	DefaultRecentDays = 30
	// MaxDays bounds IdleDays and RecentDays.
	MaxDays = 3660
	// MaxReclassifications bounds the recent reclassifications listed.
	MaxReclassifications = 50
)

// Query asks for one coach's dashboard.
type Query struct {
	// Tenant and Coach say whose dashboard; both required.
	Tenant, Coach string
	// Now is the instant the dashboard is judged at; its day in the
	// practice's calendar decides which deadlines are due or overdue.
	Now time.Time
	// IdleDays: cases without activity for more than this many days are
	// idle. Default DefaultIdleDays.
	IdleDays int
	// RecentDays: reclassifications recorded in this many days before Now
	// are recent. Default DefaultRecentDays.
	RecentDays int
}

// Dashboard is a coach's caseload as of an instant.
type Dashboard struct {
	Tenant, Coach string
	// Now is the instant it was judged at; Today that instant's day.
	Now   time.Time
	Today casework.Date
	// IdleDays and RecentDays are the thresholds used.
	IdleDays, RecentDays int
	// ByStage and ByQuestionType count the active cases, in enum order,
	// leaving out zero counts.
	ByStage        []StageCount
	ByQuestionType []QuestionTypeCount
	// Cases are the coach's active cases, most urgent first: those with
	// overdue deadlines (earliest first), then by their next deadline,
	// then the longest idle.
	Cases []Case
	// Overdue lists every overdue deadline of the active cases, earliest
	// last day first.
	Overdue []Deadline
	// Idle lists the active cases without activity for more than IdleDays,
	// longest idle first.
	Idle []Case
	// ReferralSignals lists the active cases whose intake advised other
	// help or noted warning signals, oldest case first.
	ReferralSignals []Case
	// Reclassifications lists the reclassifications of the active cases
	// recorded in the last RecentDays, newest first, at most
	// MaxReclassifications.
	Reclassifications []Reclassification
}

// StageCount is how many active cases are in a stage.
type StageCount struct {
	Stage casev1.Stage
	Count int
}

// QuestionTypeCount is how many active cases have a question type
// (unspecified before the intake).
type QuestionTypeCount struct {
	QuestionType casev1.QuestionType
	Count        int
}

// Case is one case as the dashboard and ListCases show it.
type Case struct {
	CaseID         string
	CoachID        string
	Stage          casev1.Stage
	QuestionType   casev1.QuestionType
	OrganisationID string
	Department     string
	OpenedOn       casework.Date
	// LastActivity is when the latest event of the case happened (its
	// occurred-at); IdleDays the whole days since, as of the query.
	LastActivity time.Time
	IdleDays     int
	// Position is the global position of the case's latest event.
	Position uint64
	// OutplacementPhase is the current outplacement's phase; unspecified
	// when none runs.
	OutplacementPhase casev1.OutplacementPhase
	// ReferralAdvised and WarningSignals are the intake's signals;
	// Referred says whether the case was referred since.
	ReferralAdvised bool
	WarningSignals  []casev1.WarningSignal
	Referred        bool
	// Next is the running re-integration's next deadline that has not
	// passed (due or upcoming); nil when there is none.
	Next *Deadline
	// Overdue are the re-integration's deadlines whose last day passed
	// without them, earliest first.
	Overdue []Deadline
}

// Deadline is a statutory checkpoint that has not taken place, judged on a
// day.
type Deadline struct {
	CaseID string
	Kind   casev1.CheckpointKind
	// Week is the statutory week, 0 for checkpoints counted from another.
	Week int
	// Opens and Due are the first and last day of its week or window.
	Opens, Due casework.Date
	// Status is StatusUpcoming, StatusDue or StatusOverdue.
	Status casework.DeadlineStatus
}

// Reclassification is one change of a case's question type.
type Reclassification struct {
	CaseID     string
	From, To   casev1.QuestionType
	Reason     casev1.ReclassificationReason
	OccurredOn casework.Date
	RecordedAt time.Time
}

// ErrInvalidQuery is wrapped by the errors of a query whose parameters are
// out of range.
var ErrInvalidQuery = errors.New("dashboard: invalid query")

// Status judges a deadline that has not taken place on the day today, the
// way casework.Schedule does: overdue after its last day, upcoming before
// its first, due in between.
func Status(opens, due, today casework.Date) casework.DeadlineStatus {
	switch {
	case today.After(due):
		return casework.StatusOverdue
	case today.Before(opens):
		return casework.StatusUpcoming
	default:
		return casework.StatusDue
	}
}

// Active stages: a case in one of them belongs on a dashboard.
const (
	firstActiveStage = casev1.Stage_STAGE_OPENED
	lastActiveStage  = casev1.Stage_STAGE_REINTEGRATION
)

// IsActive reports whether a case in the stage is open for work.
func IsActive(s casev1.Stage) bool { return s >= firstActiveStage && s <= lastActiveStage }

// Get returns the dashboard q asks for, judged on the day of q.Now in loc,
// the practice's calendar.
func Get(ctx context.Context, db Querier, loc *time.Location, q Query) (Dashboard, error) {
	q, err := q.withDefaults()
	if err != nil {
		return Dashboard{}, err
	}
	d := Dashboard{
		Tenant: q.Tenant, Coach: q.Coach, Now: q.Now, Today: casework.DateOf(q.Now.In(loc)),
		IdleDays: q.IdleDays, RecentDays: q.RecentDays,
	}
	cases, err := selectCases(ctx, db, `c.tenant_id = ? AND c.coach_id = ? AND c.stage BETWEEN ? AND ?`,
		q.Tenant, q.Coach, int(firstActiveStage), int(lastActiveStage))
	if err != nil {
		return Dashboard{}, fmt.Errorf("dashboard: cases of %s: %w", q.Coach, err)
	}
	open, err := openDeadlines(ctx, db, `d.case_id IN (SELECT c.case_id FROM {cases} c
		WHERE c.tenant_id = ? AND c.coach_id = ? AND c.stage BETWEEN ? AND ?)`,
		q.Tenant, q.Coach, int(firstActiveStage), int(lastActiveStage))
	if err != nil {
		return Dashboard{}, fmt.Errorf("dashboard: deadlines of %s: %w", q.Coach, err)
	}
	judge(cases, open, q.Now, d.Today)
	d.Reclassifications, err = recentReclassifications(ctx, db, q)
	if err != nil {
		return Dashboard{}, fmt.Errorf("dashboard: reclassifications of %s: %w", q.Coach, err)
	}
	d.summarise(cases)
	return d, nil
}

func (q Query) withDefaults() (Query, error) {
	if q.IdleDays == 0 {
		q.IdleDays = DefaultIdleDays
	}
	if q.RecentDays == 0 {
		q.RecentDays = DefaultRecentDays
	}
	switch {
	case q.Tenant == "" || q.Coach == "":
		return q, fmt.Errorf("%w: tenant and coach are required", ErrInvalidQuery)
	case q.IdleDays < 0 || q.IdleDays > MaxDays:
		return q, fmt.Errorf("%w: idle days %d is not within 1 to %d", ErrInvalidQuery, q.IdleDays, MaxDays)
	case q.RecentDays < 0 || q.RecentDays > MaxDays:
		return q, fmt.Errorf("%w: recent days %d is not within 1 to %d", ErrInvalidQuery, q.RecentDays, MaxDays)
	case q.Now.IsZero():
		return q, fmt.Errorf("%w: now is required", ErrInvalidQuery)
	}
	return q, nil
}

// summarise sorts and groups the judged cases into the dashboard's lists.
// Idle means no activity for more than IdleDays whole days before Now,
// as ListCases's IdleDays filter has it.
func (d *Dashboard) summarise(cases []Case) {
	idleBefore := d.Now.Add(-time.Duration(d.IdleDays) * 24 * time.Hour)
	slices.SortFunc(cases, byUrgency)
	d.Cases = cases
	stages := map[casev1.Stage]int{}
	types := map[casev1.QuestionType]int{}
	for _, c := range cases {
		stages[c.Stage]++
		types[c.QuestionType]++
		d.Overdue = append(d.Overdue, c.Overdue...)
		if c.LastActivity.Before(idleBefore) {
			d.Idle = append(d.Idle, c)
		}
		if c.ReferralAdvised || len(c.WarningSignals) > 0 {
			d.ReferralSignals = append(d.ReferralSignals, c)
		}
	}
	for s := firstActiveStage; s <= lastActiveStage; s++ {
		if stages[s] > 0 {
			d.ByStage = append(d.ByStage, StageCount{Stage: s, Count: stages[s]})
		}
	}
	for t := casev1.QuestionType_QUESTION_TYPE_UNSPECIFIED; t <= casev1.QuestionType_QUESTION_TYPE_COUNSELING; t++ {
		if types[t] > 0 {
			d.ByQuestionType = append(d.ByQuestionType, QuestionTypeCount{QuestionType: t, Count: types[t]})
		}
	}
	slices.SortFunc(d.Overdue, func(a, b Deadline) int {
		return cmp.Or(a.Due.DaysSince(b.Due), cmp.Compare(a.CaseID, b.CaseID), cmp.Compare(a.Kind, b.Kind))
	})
	slices.SortFunc(d.Idle, func(a, b Case) int {
		return cmp.Or(a.LastActivity.Compare(b.LastActivity), cmp.Compare(a.CaseID, b.CaseID))
	})
	slices.SortFunc(d.ReferralSignals, func(a, b Case) int {
		return cmp.Or(a.OpenedOn.DaysSince(b.OpenedOn), cmp.Compare(a.CaseID, b.CaseID))
	})
}

// byUrgency orders cases with overdue deadlines first (earliest overdue
// first), then by their next deadline, then the longest idle.
func byUrgency(a, b Case) int {
	if (len(a.Overdue) > 0) != (len(b.Overdue) > 0) {
		if len(a.Overdue) > 0 {
			return -1
		}
		return 1
	}
	if len(a.Overdue) > 0 {
		if c := a.Overdue[0].Due.DaysSince(b.Overdue[0].Due); c != 0 {
			return c
		}
	}
	if (a.Next != nil) != (b.Next != nil) {
		if a.Next != nil {
			return -1
		}
		return 1
	}
	if a.Next != nil {
		if c := a.Next.Due.DaysSince(b.Next.Due); c != 0 {
			return c
		}
	}
	return cmp.Or(a.LastActivity.Compare(b.LastActivity), cmp.Compare(a.CaseID, b.CaseID))
}

// judge attaches each case's open deadlines, judged on today, and its idle
// days as of now.
func judge(cases []Case, open []Deadline, now time.Time, today casework.Date) {
	byCase := make(map[string]int, len(cases))
	for i := range cases {
		byCase[cases[i].CaseID] = i
		cases[i].IdleDays = int(now.Sub(cases[i].LastActivity) / (24 * time.Hour))
	}
	slices.SortFunc(open, func(a, b Deadline) int { return a.Due.DaysSince(b.Due) })
	for _, dl := range open {
		i, ok := byCase[dl.CaseID]
		if !ok {
			continue
		}
		dl.Status = Status(dl.Opens, dl.Due, today)
		c := &cases[i]
		switch {
		case dl.Status == casework.StatusOverdue:
			c.Overdue = append(c.Overdue, dl)
		case c.Next == nil:
			c.Next = &dl
		}
	}
}

const caseQueryColumns = `c.case_id, c.coach_id, c.stage, c.question_type, c.organisation_id, c.department,
	c.opened_on, c.last_activity_at, c.last_position, c.outplacement_phase, c.referral_advised,
	c.warning_signals, c.referrals, c.outplacement_running`

// selectCases reads the cases matching where (over {cases} c), in the
// order and limit the suffix gives.
func selectCases(ctx context.Context, db Querier, where string, args ...any) ([]Case, error) {
	return selectCasesSuffix(ctx, db, where, "", args...)
}

func selectCasesSuffix(ctx context.Context, db Querier, where, suffix string, args ...any) ([]Case, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+caseQueryColumns+` FROM {cases} c WHERE `+where+suffix, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Case
	for rows.Next() {
		var (
			c                                 Case
			stage, qt, opened, phase, advised int
			signals, referrals, running       int
			activity, position                int64
		)
		if err := rows.Scan(&c.CaseID, &c.CoachID, &stage, &qt, &c.OrganisationID, &c.Department,
			&opened, &activity, &position, &phase, &advised, &signals, &referrals, &running); err != nil {
			return nil, err
		}
		c.Stage, c.QuestionType = casev1.Stage(stage), casev1.QuestionType(qt)
		c.OpenedOn = fromDay(opened)
		c.LastActivity = time.UnixMicro(activity).UTC()
		c.Position = uint64(position)
		c.OutplacementPhase = casev1.OutplacementPhase(phase)
		if running == 0 {
			c.OutplacementPhase = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_UNSPECIFIED
		}
		c.ReferralAdvised, c.Referred = advised != 0, referrals > 0
		c.WarningSignals = signalList(signals)
		out = append(out, c)
	}
	return out, rows.Err()
}

// openDeadlines reads the deadlines not yet taken place of the cases the
// condition selects (over {deadlines} d).
func openDeadlines(ctx context.Context, db Querier, where string, args ...any) ([]Deadline, error) {
	rows, err := db.QueryContext(ctx, `SELECT d.case_id, d.kind, d.week, d.opens, d.due FROM {deadlines} d
		WHERE d.done_on = 0 AND `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Deadline
	for rows.Next() {
		var (
			dl                     Deadline
			kind, week, opens, due int
		)
		if err := rows.Scan(&dl.CaseID, &kind, &week, &opens, &due); err != nil {
			return nil, err
		}
		dl.Kind, dl.Week, dl.Opens, dl.Due = casev1.CheckpointKind(kind), week, fromDay(opens), fromDay(due)
		out = append(out, dl)
	}
	return out, rows.Err()
}

func recentReclassifications(ctx context.Context, db Querier, q Query) ([]Reclassification, error) {
	since := q.Now.Add(-time.Duration(q.RecentDays) * 24 * time.Hour).UnixMicro()
	rows, err := db.QueryContext(ctx, `SELECT r.case_id, r.from_type, r.to_type, r.reason, r.occurred_on, r.recorded_at
		FROM {reclassifications} r JOIN {cases} c ON c.case_id = r.case_id
		WHERE c.tenant_id = ? AND c.coach_id = ? AND c.stage BETWEEN ? AND ? AND r.recorded_at >= ? AND r.recorded_at <= ?
		ORDER BY r.position DESC LIMIT ?`,
		q.Tenant, q.Coach, int(firstActiveStage), int(lastActiveStage), since, q.Now.UnixMicro(), MaxReclassifications)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Reclassification
	for rows.Next() {
		var (
			r                          Reclassification
			from, to, reason, occurred int
			recorded                   int64
		)
		if err := rows.Scan(&r.CaseID, &from, &to, &reason, &occurred, &recorded); err != nil {
			return nil, err
		}
		r.From, r.To, r.Reason = casev1.QuestionType(from), casev1.QuestionType(to), casev1.ReclassificationReason(reason)
		r.OccurredOn, r.RecordedAt = fromDay(occurred), time.UnixMicro(recorded).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// inList returns "?, ?, …" for n values.
func inList(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }
