package report

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Querier runs read-only statements on the report's tables, written with
// {table} names and ? placeholders: the engine's reader of the live
// generation, or one read transaction of it (which gives the queries of
// one report a single snapshot).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// DefaultK is the smallest number of cases a count shown to an analyst is
// made of.
const DefaultK = 5

// ErrInvalidQuery is wrapped by the errors of a query whose parameters are
// wrong.
var ErrInvalidQuery = errors.New("report: invalid query")

// Query asks for a report.
type Query struct {
	// Tenant is required. Organisation narrows the report to one employer
	// and Department to one of its departments (only with Organisation).
	Tenant, Organisation, Department string
	// From and To are the period's first and last day, both included. A
	// zero From has no lower bound; a zero To is the day of AsOf.
	From, To casework.Date
	// AsOf is the instant the report is as of: it counts only what Koers
	// had recorded by then, and a statutory deadline is missing when its
	// last day is before AsOf's day. Zero means now: everything recorded
	// so far, judged on the day of Now.
	AsOf time.Time
	// Now is the current instant; required when AsOf is zero.
	Now time.Time
	// K is the suppression threshold: default DefaultK; 1 shows every
	// count (not an analyst view).
	K int
}

// Report is the organisational report.
type Report struct {
	Tenant, Organisation, Department string
	// From and To are the period as applied; From zero when unbounded.
	From, To casework.Date
	// AsOf is the instant of knowledge (Now for a report of now); AsOfDay
	// its day in the practice's calendar.
	AsOf    time.Time
	AsOfDay casework.Date
	// K is the suppression threshold applied.
	K int

	Cases             Cases
	Reclassifications Reclassifications
	Outplacement      Outplacement
	Reintegration     Reintegration
}

// Cases describes the cases open at some time in the period: opened on or
// before its last day and not closed before its first (by their latest
// closing as known at AsOf). Question type, coach and mobility are as
// known at AsOf.
type Cases struct {
	// Active counts them.
	Active Count
	// ByContextAndType splits them by organisational context (unspecified:
	// none) and question type (unspecified: before the intake), every
	// combination in enum order.
	ByContextAndType []ContextTypeCount
	// Mobility splits them by mobility quadrant.
	Mobility []QuadrantCount
	// Caseload splits them by coach, by coach ID; "" counts the cases
	// without a coach.
	Caseload []CoachCount
}

// ContextTypeCount is a cell of cases by context and question type.
type ContextTypeCount struct {
	Context      casev1.OrganisationalContext
	QuestionType casev1.QuestionType
	Count        Count
}

// QuadrantCount is a cell of cases by mobility quadrant.
type QuadrantCount struct {
	Quadrant Quadrant
	Count    Count
}

// CoachCount is a coach's caseload.
type CoachCount struct {
	CoachID string
	Count   Count
}

// Reclassifications describes the reclassifications of the question that
// happened in the period (by their occurred-at day) and were recorded by
// AsOf.
type Reclassifications struct {
	Total Count
	// Matrix counts them by type from and to, every pair of distinct types
	// in enum order.
	Matrix []ReclassificationCount
}

// ReclassificationCount is a cell of the reclassification matrix.
type ReclassificationCount struct {
	From, To casev1.QuestionType
	Count    Count
}

// Outplacement describes the outplacements that started in the period,
// with their phase and outcome as known at AsOf. Counts are of
// outplacements; suppression counts the cases behind them.
type Outplacement struct {
	Started Count
	// ByPhase is the funnel: outplacements by the furthest phase they
	// reached (phases only move forward, and may be skipped), in phase
	// order. The number that reached a phase is the sum of it and the
	// later ones.
	ByPhase []PhaseCount
	// ByOutcome splits them by outcome: internal, external, self-employed,
	// no placement, and unspecified for those without an outcome yet.
	ByOutcome []OutcomeCount
	// PlacementRate is placed / (placed + no placement): the share of the
	// concluded outplacements that ended in work.
	PlacementRate Rate
	// DaysToPlacement are the median and p90 of the days from start to
	// placement of the placed ones.
	DaysToPlacement Days
	// ByAgeBand repeats the figures per age band at the start.
	ByAgeBand []AgeBandOutplacement
}

// PhaseCount is a cell of the outplacement funnel.
type PhaseCount struct {
	Phase casev1.OutplacementPhase
	Count Count
}

// OutcomeCount is a cell of the outplacement outcome split.
type OutcomeCount struct {
	Outcome casev1.PlacementOutcome
	Count   Count
}

// AgeBandOutplacement is the outplacement figures of one age band.
type AgeBandOutplacement struct {
	Band            AgeBand
	Started         Count
	ByOutcome       []OutcomeCount
	PlacementRate   Rate
	DaysToPlacement Days
}

// Reintegration describes re-integration under the Gatekeeper Act: the
// compliance of the statutory deadlines whose last day falls in the
// period, and the re-integrations that ended in the period.
type Reintegration struct {
	// Checkpoints counts the deadlines judged: done (on time, late, or —
	// the first-year evaluation only — too early) or missing (not done,
	// last day before AsOf's day, the re-integration still running on that
	// day). Deadlines still open, or moot because the re-integration ended
	// first, are not counted.
	Checkpoints Count
	// Compliance splits them by checkpoint kind and status
	// (StatusDoneOnTime, StatusDoneLate, StatusDoneEarly, StatusOverdue
	// for missing), every combination in enum order.
	Compliance []ComplianceCount
	// ByKind and ByStatus are the row and column totals of Compliance.
	ByKind   []KindCount
	ByStatus []StatusCount
	// Ended counts the re-integrations that ended in the period, and
	// ByOutcome splits them by how the case closed: returned to the own
	// employer, work with another employer, disability benefit,
	// employment ended, and OTHER for any other close.
	Ended     Count
	ByOutcome []CloseOutcomeCount
	// ReturnToWorkRate is (own employer + other employer) / ended.
	ReturnToWorkRate Rate
}

// ComplianceCount is a cell of checkpoint compliance.
type ComplianceCount struct {
	Kind   casev1.CheckpointKind
	Status casework.DeadlineStatus
	Count  Count
}

// KindCount is a compliance row total.
type KindCount struct {
	Kind  casev1.CheckpointKind
	Count Count
}

// StatusCount is a compliance column total.
type StatusCount struct {
	Status casework.DeadlineStatus
	Count  Count
}

// CloseOutcomeCount is a cell of the re-integrations' ends.
type CloseOutcomeCount struct {
	Outcome casev1.CloseOutcome
	Count   Count
}

// Rate is a share from 0 to 1 as the analyst sees it.
type Rate struct {
	// Value is the share, when OK.
	Value float64
	// OK says that Value is shown: its counts show and its denominator is
	// not zero.
	OK bool
	// Suppressed says that a count it is computed from is hidden.
	Suppressed bool
}

// Days are the median and 90th percentile of a number of days, computed
// by linear interpolation between the closest ranks (numpy's default).
type Days struct {
	Median, P90 float64
	// OK says that they are shown: at least K values (and one) go into
	// them.
	OK bool
	// Suppressed says that fewer than K values go into them.
	Suppressed bool
}

// Get returns the report q asks for, with days judged in loc, the
// practice's calendar. Counts under q.K cases are suppressed by the rule
// in this package's suppress.go. For a whole tenant, when db is a read
// transaction of the engine (projections.Forker) or its Reader, Get reads
// on two connections at once; a transaction's are on its snapshot.
func Get(ctx context.Context, db Querier, loc *time.Location, q Query) (Report, error) {
	if err := q.validate(); err != nil {
		return Report{}, err
	}
	if q.K == 0 {
		q.K = DefaultK
	}
	latest := q.AsOf.IsZero()
	asOf := q.AsOf
	if latest {
		asOf = q.Now
	}
	r := Report{
		Tenant: q.Tenant, Organisation: q.Organisation, Department: q.Department,
		From: q.From, To: q.To, AsOf: asOf, AsOfDay: casework.DateOf(asOf.In(loc)), K: q.K,
	}
	if r.To.IsZero() {
		r.To = r.AsOfDay
	}
	if !r.From.IsZero() && r.From.After(r.To) {
		return Report{}, fmt.Errorf("%w: the period starts on %s, after its end on %s", ErrInvalidQuery, r.From, r.To)
	}
	b := &builder{q: q, latest: latest, from: day(r.From), to: day(r.To), asOf: asOf.UnixMicro(), asOfDay: day(r.AsOfDay), s: suppressor{k: q.K}}
	readers := 1
	if q.Organisation == "" {
		readers = tenantReaders
	}
	if err := read(ctx, db, b.reads(), readers); err != nil {
		var se *stepError
		if errors.As(err, &se) {
			return Report{}, fmt.Errorf("report: %s of %s: %w", se.step, q.Tenant, se.err)
		}
		return Report{}, fmt.Errorf("report: %s: %w", q.Tenant, err)
	}
	// Suppression relates the cells in the report's order, whatever order
	// they were read in.
	b.relateCases()
	b.relateReclassifications()
	b.relateOutplacements()
	b.relateCompliance()
	b.relateReintegrationEnds()
	b.s.run()
	b.fill(&r)
	return r, nil
}

func (q Query) validate() error {
	switch {
	case q.Tenant == "":
		return fmt.Errorf("%w: tenant is required", ErrInvalidQuery)
	case q.Department != "" && q.Organisation == "":
		return fmt.Errorf("%w: a department needs its organisation", ErrInvalidQuery)
	case q.AsOf.IsZero() && q.Now.IsZero():
		return fmt.Errorf("%w: now is required for a report of now", ErrInvalidQuery)
	case q.K < 0:
		return fmt.Errorf("%w: k %d is negative", ErrInvalidQuery, q.K)
	case (!q.From.IsZero() && !q.From.IsValid()) || (!q.To.IsZero() && !q.To.IsValid()):
		return fmt.Errorf("%w: the period's days must be real days", ErrInvalidQuery)
	}
	return nil
}
