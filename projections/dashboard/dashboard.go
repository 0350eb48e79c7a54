// Package dashboard is the coach dashboard read model: per tenant and coach,
// the cases with their stage, question type and organisation, when
// something last happened in them, the statutory deadlines of running
// re-integrations, the intake signals that advise referral, and recent
// reclassifications of the question.
//
// Overdue is never stored. The projection keeps, for every running
// re-integration, one row per statutory checkpoint with the first and last
// day of its window and the day it took place, as casework.Schedule derives
// them from the sick report and the checkpoints recorded; the queries judge
// those rows against the day of the `now` they are given. A deadline
// passing is not an event, so nothing else could keep an "overdue" column
// true.
//
// Stages come from the domain itself: the projection keeps the few facts
// casework.State derives a stage from and folds each event into them with
// casework.Evolve, so a case's stage here is the stage CaseService reports.
//
// The read model holds no personal data: no names, no notes, no client ID.
// Warning signals from the intake are health-related and shown to the
// coach who owns the case only; they never reach the organisational report.
//
// The projection applies a batch of events in memory (NewBatch): each case
// it touches is read once, and its row, checkpoints and schedule written
// once at the end. Apply is a batch of one event; the tables end the same
// either way.
package dashboard

import (
	"time"

	"github.com/koers-io/koers/projections"
)

// Name is the projection's name in table names, checkpoints and commands.
const Name = "dashboard"

// version is bumped whenever the tables or the meaning of Apply change; the
// engine then rebuilds the read model.
const version = 1

// DefaultLocation names the practice's calendar, as CaseService's does.
const DefaultLocation = "Europe/Amsterdam"

// Options tune the projection. The zero value of each field means its
// default.
type Options struct {
	// Location is the practice's calendar, in which an event's occurred-at
	// instant falls on a day (a reclassification's day). It must be the
	// one CaseService uses. Default DefaultLocation, or UTC where that
	// zone is not known.
	Location *time.Location
}

// Projection is the coach dashboard projection. It keeps no state of its
// own; use New.
type Projection struct {
	loc *time.Location
}

var _ projections.Projection = (*Projection)(nil)

// New returns the coach dashboard projection.
func New(opts Options) *Projection {
	loc := opts.Location
	if loc == nil {
		var err error
		if loc, err = time.LoadLocation(DefaultLocation); err != nil {
			loc = time.UTC
		}
	}
	return &Projection{loc: loc}
}

// Name returns "dashboard".
func (*Projection) Name() string { return Name }

// Version returns the version of the tables and their meaning.
func (*Projection) Version() int { return version }

// Tables returns the dashboard's tables.
//
// Days are INTEGER yyyymmdd (20250216): they compare correctly as numbers
// in both dialects and read well in plain SQL. Instants are BIGINT Unix
// microseconds. Flags are INTEGER 0 or 1, since SQLite has no boolean.
func (*Projection) Tables() []projections.Table {
	return []projections.Table{
		{
			Name: "cases",
			// One row per case. The stage columns (intake_done through
			// erased) are the facts casework derives the stage from.
			// earliest_due is the last day of the running re-integration's
			// earliest deadline not taken place (0: none), so that
			// "overdue" — earliest_due before today — needs no join; the
			// deadlines themselves are in {deadlines}.
			Create: `CREATE TABLE {cases} (
				case_id TEXT NOT NULL PRIMARY KEY,
				tenant_id TEXT NOT NULL,
				coach_id TEXT NOT NULL,
				stage INTEGER NOT NULL,
				question_type INTEGER NOT NULL,
				organisation_id TEXT NOT NULL,
				department TEXT NOT NULL,
				opened_on INTEGER NOT NULL,
				last_activity_at BIGINT NOT NULL,
				last_position BIGINT NOT NULL,
				referral_advised INTEGER NOT NULL,
				warning_signals INTEGER NOT NULL,
				referrals INTEGER NOT NULL,
				intake_done INTEGER NOT NULL,
				sessions_since_intake INTEGER NOT NULL,
				plan_agreed INTEGER NOT NULL,
				outplacement_running INTEGER NOT NULL,
				outplacement_phase INTEGER NOT NULL,
				outplacement_outcome INTEGER NOT NULL,
				reintegration_running INTEGER NOT NULL,
				sick_reported_on INTEGER NOT NULL,
				earliest_due INTEGER NOT NULL,
				closed INTEGER NOT NULL,
				erased INTEGER NOT NULL
			)`,
			Indexes: []string{
				// The dashboard: a coach's cases in a stage range.
				`CREATE INDEX {cases_by_coach} ON {cases} (tenant_id, coach_id, stage)`,
				// ListCases without a coach: newest first, and by employer.
				`CREATE INDEX {cases_by_opening} ON {cases} (tenant_id, opened_on, case_id)`,
				`CREATE INDEX {cases_by_organisation} ON {cases} (tenant_id, organisation_id, department, opened_on)`,
				// ListCases of the overdue: a range of earliest_due.
				`CREATE INDEX {cases_by_earliest_due} ON {cases} (tenant_id, earliest_due)`,
			},
		},
		{
			Name: "checkpoints",
			// The statutory checkpoints recorded in the running
			// re-integration, which casework.Schedule needs whole.
			Create: `CREATE TABLE {checkpoints} (
				case_id TEXT NOT NULL,
				position BIGINT NOT NULL,
				kind INTEGER NOT NULL,
				held_on INTEGER NOT NULL,
				PRIMARY KEY (case_id, position)
			)`,
		},
		{
			Name: "deadlines",
			// The running re-integration's schedule: one row per
			// checkpoint, seq in the order of their last day. done_on is 0
			// while it has not taken place.
			Create: `CREATE TABLE {deadlines} (
				case_id TEXT NOT NULL,
				seq INTEGER NOT NULL,
				kind INTEGER NOT NULL,
				week INTEGER NOT NULL,
				opens INTEGER NOT NULL,
				due INTEGER NOT NULL,
				done_on INTEGER NOT NULL,
				PRIMARY KEY (case_id, seq)
			)`,
			Indexes: []string{
				`CREATE INDEX {deadlines_open} ON {deadlines} (case_id, done_on, due)`,
			},
		},
		{
			Name: "reclassifications",
			Create: `CREATE TABLE {reclassifications} (
				case_id TEXT NOT NULL,
				position BIGINT NOT NULL,
				occurred_on INTEGER NOT NULL,
				recorded_at BIGINT NOT NULL,
				from_type INTEGER NOT NULL,
				to_type INTEGER NOT NULL,
				reason INTEGER NOT NULL,
				PRIMARY KEY (case_id, position)
			)`,
		},
	}
}
