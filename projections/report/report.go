// Package report is the organisational report read model: per tenant,
// organisation, department and period, the cases by organisational
// context and question type, the reclassification matrix, the
// outplacement funnel with placement rates and times by age band, the
// re-integration checkpoint compliance and return to work, the mobility
// quadrant and the coaches' caseloads — for analysts, with small cells
// suppressed by the rule in suppress.go.
//
// # As of a past date
//
// A report can be asked as of an instant T and then counts only what Koers
// knew at T: every fact is stored with the instant the store recorded the
// event that established it. Facts that change (a case's question type,
// coach and closing; an outplacement's phase and outcome; a
// re-integration's end; each statutory deadline) are kept as versions: a
// row is valid from known_from (inclusive) to known_to (exclusive, the
// largest BIGINT while it is current), both Unix microseconds of the
// store's recording time. A query as of T reads the versions with
// known_from <= T < known_to; a query for now reads the current ones
// through the same condition. Facts that never change afterwards (a
// reclassification) carry recorded_at instead.
//
// Versions follow the store's recording time, which for one case only
// moves forward (its commands are serialised); should a clock step back,
// a version starts at its predecessor's start instead, so versions never
// overlap.
//
// # Deadlines
//
// Compliance uses casework.Schedule, the domain's statutory calculator:
// each time a re-integration starts or a checkpoint is recorded, the
// schedule is derived again from the sick report and all checkpoints
// recorded, and every deadline whose window or completion changed gets a
// new version. Whether a deadline that did not take place is missing is
// decided at query time from the as-of day (a deadline passing is not an
// event); a deadline whose last day falls after the re-integration ended is
// moot and not counted.
//
// # Applying and reading
//
// The projection applies a batch of events in memory (NewBatch): each
// case, outplacement, re-integration and schedule it touches is read once,
// its versions kept, and all written at the end, so that a version that
// begins and ends within the batch is written once. Apply is a batch of
// one event; the tables end the same either way.
//
// A report is a few hundred index seeks and ranges in a handful of
// independent queries (see Get). For a whole tenant, given the engine's
// read transaction, whose snapshot can be shared (projections.Forker), or
// the engine's Reader, Get runs them on two connections at once.
package report

import (
	"time"

	"github.com/koers-io/koers/projections"
)

// Name is the projection's name in table names, checkpoints and commands.
const Name = "report"

// version is bumped whenever the tables or the meaning of Apply change
// (including the mobility split and the age bands); the engine then
// rebuilds the read model. Version 2 indexes outplacements by cell.
const version = 2

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

// Projection is the organisational report projection. It keeps no state of
// its own; use New.
type Projection struct {
	loc *time.Location
}

var _ projections.Projection = (*Projection)(nil)

// New returns the organisational report projection.
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

// Name returns "report".
func (*Projection) Name() string { return Name }

// Version returns the version of the tables and their meaning.
func (*Projection) Version() int { return version }

// Tables returns the report's tables.
//
// Days are INTEGER yyyymmdd, instants BIGINT Unix microseconds, flags
// INTEGER 0 or 1. Every table repeats tenant, organisation and department,
// which never change after the opening, so that each section of a report
// reads one table.
func (*Projection) Tables() []projections.Table {
	return []projections.Table{
		{
			Name: "cases",
			// Versions of each case. quadrant is the mobility quadrant (see
			// Quadrant); closed_on is 0 while the case is open.
			Create: `CREATE TABLE {cases} (
				case_id TEXT NOT NULL,
				known_from BIGINT NOT NULL,
				known_to BIGINT NOT NULL,
				tenant_id TEXT NOT NULL,
				organisation_id TEXT NOT NULL,
				department TEXT NOT NULL,
				context INTEGER NOT NULL,
				organisational_question INTEGER NOT NULL,
				birth_year INTEGER NOT NULL,
				opened_on INTEGER NOT NULL,
				question_type INTEGER NOT NULL,
				coach_id TEXT NOT NULL,
				mobility_willingness INTEGER NOT NULL,
				mobility_capacity INTEGER NOT NULL,
				quadrant INTEGER NOT NULL,
				closed_on INTEGER NOT NULL,
				close_outcome INTEGER NOT NULL,
				outplacements INTEGER NOT NULL,
				reintegrations INTEGER NOT NULL,
				PRIMARY KEY (case_id, known_from)
			)`,
			Indexes: []string{
				// The report reads cases through these alone (covering
				// indexes). Each cell of context, question type and
				// quadrant is one seek, then the versions valid at the
				// instant (current ones: known_to at its maximum) are one
				// range; caseloads stream by coach. See Get.
				`CREATE INDEX {cases_cells} ON {cases} (tenant_id, context, question_type, quadrant, known_to,
					known_from, opened_on, closed_on, organisation_id, department)`,
				`CREATE INDEX {cases_coach} ON {cases} (tenant_id, known_to, coach_id,
					known_from, opened_on, closed_on, organisation_id, department)`,
				`CREATE INDEX {cases_org_cells} ON {cases} (tenant_id, organisation_id, context, question_type, quadrant, known_to,
					department, known_from, opened_on, closed_on)`,
				`CREATE INDEX {cases_org_coach} ON {cases} (tenant_id, organisation_id, known_to, coach_id,
					department, known_from, opened_on, closed_on)`,
			},
		},
		{
			Name: "reclassifications",
			// Facts that never change, known from recorded_at. repeat_pair
			// is 1 when the case moved between the same two types before,
			// repeat_case when it was reclassified before at all: counting
			// the rows without them counts distinct cases (see Get).
			Create: `CREATE TABLE {reclassifications} (
				case_id TEXT NOT NULL,
				position BIGINT NOT NULL,
				recorded_at BIGINT NOT NULL,
				tenant_id TEXT NOT NULL,
				organisation_id TEXT NOT NULL,
				department TEXT NOT NULL,
				occurred_on INTEGER NOT NULL,
				from_type INTEGER NOT NULL,
				to_type INTEGER NOT NULL,
				reason INTEGER NOT NULL,
				repeat_pair INTEGER NOT NULL,
				repeat_case INTEGER NOT NULL,
				PRIMARY KEY (case_id, position)
			)`,
			Indexes: []string{
				// The matrix seeks each (from, to) cell; see Get.
				`CREATE INDEX {reclassifications_cells} ON {reclassifications} (tenant_id, from_type, to_type, occurred_on,
					recorded_at, organisation_id, department, repeat_pair, repeat_case)`,
				`CREATE INDEX {reclassifications_org_cells} ON {reclassifications} (tenant_id, organisation_id, from_type, to_type,
					occurred_on, recorded_at, department, repeat_pair, repeat_case)`,
			},
		},
		{
			Name: "outplacements",
			// Versions of each outplacement (seq counts a case's
			// outplacements from 1). age_band is the client's at the start;
			// outcome 0 while there is none; days_to_placement is -1 unless
			// placed.
			Create: `CREATE TABLE {outplacements} (
				case_id TEXT NOT NULL,
				seq INTEGER NOT NULL,
				known_from BIGINT NOT NULL,
				known_to BIGINT NOT NULL,
				tenant_id TEXT NOT NULL,
				organisation_id TEXT NOT NULL,
				department TEXT NOT NULL,
				started_on INTEGER NOT NULL,
				age_band INTEGER NOT NULL,
				furthest_phase INTEGER NOT NULL,
				outcome INTEGER NOT NULL,
				placed_on INTEGER NOT NULL,
				ended_on INTEGER NOT NULL,
				days_to_placement INTEGER NOT NULL,
				PRIMARY KEY (case_id, seq, known_from)
			)`,
			Indexes: []string{
				// The report counts outplacements through these alone
				// (covering indexes): each cell of age band, furthest
				// phase and outcome is one seek, then the versions valid
				// at the instant and started in the period are one range.
				// seq finds the cases with more than one. See Get.
				`CREATE INDEX {outplacements_cells} ON {outplacements} (tenant_id, age_band, furthest_phase, outcome, known_to,
					started_on, known_from, organisation_id, department, seq, days_to_placement)`,
				`CREATE INDEX {outplacements_org_cells} ON {outplacements} (tenant_id, organisation_id, age_band, furthest_phase, outcome,
					known_to, started_on, known_from, department, seq, days_to_placement)`,
			},
		},
		{
			Name: "reintegrations",
			// Versions of each re-integration (seq from 1). ended_on is 0
			// while it runs; close_outcome is the case's outcome when it
			// ended, and end_category the report's row for it (see
			// endCategory).
			Create: `CREATE TABLE {reintegrations} (
				case_id TEXT NOT NULL,
				seq INTEGER NOT NULL,
				known_from BIGINT NOT NULL,
				known_to BIGINT NOT NULL,
				tenant_id TEXT NOT NULL,
				organisation_id TEXT NOT NULL,
				department TEXT NOT NULL,
				sick_reported_on INTEGER NOT NULL,
				second_track_on INTEGER NOT NULL,
				ended_on INTEGER NOT NULL,
				close_outcome INTEGER NOT NULL,
				end_category INTEGER NOT NULL,
				PRIMARY KEY (case_id, seq, known_from)
			)`,
			Indexes: []string{
				`CREATE INDEX {reintegrations_ends} ON {reintegrations} (tenant_id, known_to, end_category, ended_on, known_from,
					organisation_id, department, seq)`,
				`CREATE INDEX {reintegrations_org_ends} ON {reintegrations} (tenant_id, organisation_id, known_to, end_category, ended_on,
					known_from, department, seq)`,
			},
		},
		{
			Name: "checkpoints",
			// The checkpoints recorded per re-integration, which
			// casework.Schedule needs whole.
			Create: `CREATE TABLE {checkpoints} (
				case_id TEXT NOT NULL,
				position BIGINT NOT NULL,
				seq INTEGER NOT NULL,
				kind INTEGER NOT NULL,
				held_on INTEGER NOT NULL,
				PRIMARY KEY (case_id, position)
			)`,
		},
		{
			Name: "deadlines",
			// Versions of each statutory deadline of a re-integration
			// (seq). n numbers the deadlines of one kind (progress reviews
			// are a chain; the others have n = 0). done_on is 0 while not
			// done. status is casework's DeadlineStatus once done (on
			// time, late, early) and StatusOverdue (3) while not: the
			// status it has once a query judges it, by its day, missing.
			Create: `CREATE TABLE {deadlines} (
				case_id TEXT NOT NULL,
				seq INTEGER NOT NULL,
				kind INTEGER NOT NULL,
				n INTEGER NOT NULL,
				known_from BIGINT NOT NULL,
				known_to BIGINT NOT NULL,
				tenant_id TEXT NOT NULL,
				organisation_id TEXT NOT NULL,
				department TEXT NOT NULL,
				opens INTEGER NOT NULL,
				due INTEGER NOT NULL,
				done_on INTEGER NOT NULL,
				status INTEGER NOT NULL,
				PRIMARY KEY (case_id, seq, kind, n, known_from)
			)`,
			Indexes: []string{
				// Compliance seeks each (kind, status) cell, then the
				// versions valid at the instant; in a report of now they
				// stream by case without sorting (see Get).
				`CREATE INDEX {deadlines_cells} ON {deadlines} (tenant_id, kind, status, known_to, case_id,
					due, known_from, organisation_id, department, seq)`,
				`CREATE INDEX {deadlines_org_cells} ON {deadlines} (tenant_id, organisation_id, kind, status, known_to, case_id,
					due, known_from, department, seq)`,
			},
		},
	}
}
