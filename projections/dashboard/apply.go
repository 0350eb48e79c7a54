package dashboard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

var _ projections.BatchProjection = (*Projection)(nil)

// Apply changes the dashboard's tables for one event of a case. It returns
// projections.ErrUnknownEvent for anything but the case events it knows.
// It is a batch of one event.
func (p *Projection) Apply(ctx context.Context, tx projections.Tx, ev projections.Event) error {
	if !known(ev.Body) {
		return projections.ErrUnknownEvent
	}
	b := p.newBatch(tx)
	if err := b.Apply(ctx, ev); err != nil {
		return err
	}
	return b.Flush(ctx)
}

// NewBatch starts applying a batch of events in tx: the batch reads each
// case it touches once, keeps its row, checkpoints and deadlines in
// memory, and writes them in Flush.
func (p *Projection) NewBatch(tx projections.Tx) projections.Batch { return p.newBatch(tx) }

// Apply applies the next event of the batch.
func (b *batch) Apply(ctx context.Context, ev projections.Event) (err error) {
	if !known(ev.Body) {
		return projections.ErrUnknownEvent
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("dashboard: %s of case %s: %w", ev.Type, ev.Metadata.GetCaseId(), err)
		}
	}()
	tenant, caseID := ev.Metadata.GetTenantId(), ev.Metadata.GetCaseId()
	if tenant == "" || caseID == "" {
		return errors.New("the event's metadata names no tenant or case")
	}
	if opened, ok := ev.Body.(*casev1.CaseOpened); ok {
		return b.open(newCaseRow(tenant, caseID, opened, ev))
	}
	c, err := b.caseOf(ctx, caseID)
	if err != nil {
		return err
	}
	if c.row.tenant != tenant {
		return fmt.Errorf("the case belongs to tenant %q, the event to %q", c.row.tenant, tenant)
	}
	row := c.row
	row.fold(ev)
	if err := b.applyDetails(ctx, &row, ev); err != nil {
		return err
	}
	c.row = row
	return nil
}

// applyDetails keeps the tables beside the case row: reclassifications and
// the running re-integration's checkpoints and deadlines.
func (b *batch) applyDetails(ctx context.Context, row *caseRow, ev projections.Event) error {
	switch e := ev.Body.(type) {
	case *casev1.QuestionReclassified:
		occurred := casework.DateOf(occurredAt(ev).In(b.p.loc))
		b.reclassifications = append(b.reclassifications, reclassificationRow{
			caseID: row.caseID, position: int64(ev.Position), occurredOn: day(occurred), recordedAt: recordedAt(ev).UnixMicro(),
			from: int(e.GetFrom()), to: int(e.GetTo()), reason: int(e.GetReason()),
		})
	case *casev1.CaseReferred:
		row.referrals++
	case *casev1.ReintegrationStarted:
		b.clearSchedule(row.caseID)
		deadlines := casework.Schedule(fromDay(row.sickReportedOn), nil, time.Time{})
		row.earliestDue = earliestOpen(deadlines)
		b.schedule(row.caseID).set(deadlines)
	case *casev1.ReintegrationCheckpointRecorded:
		cps, err := b.checkpointsOf(ctx, row.caseID)
		if err != nil {
			return err
		}
		cps.add(checkpointRow{position: int64(ev.Position), kind: int(e.GetKind()), heldOn: day(casework.DateFromProto(e.GetHeldOn()))})
		// Opens, Due and DoneOn do not depend on the day passed to
		// Schedule; only the statuses do, and those are judged at query
		// time.
		deadlines := casework.Schedule(fromDay(row.sickReportedOn), cps.schedule(), time.Time{})
		row.earliestDue = earliestOpen(deadlines)
		b.schedule(row.caseID).set(deadlines)
	case *casev1.CaseClosed:
		// The re-integration ended with the case: its deadlines are moot.
		row.earliestDue = 0
		b.clearSchedule(row.caseID)
	}
	return nil
}

// known reports whether body is a case event the dashboard handles. Every
// case event counts as activity; the switch in fold and applyDetails picks
// the ones that change more.
func known(body proto.Message) bool {
	switch body.(type) {
	case *casev1.CaseOpened, *casev1.IntakeCompleted, *casev1.QuestionReclassified,
		*casev1.CoachAssigned, *casev1.CaseReferred, *casev1.ReportingConsentGranted,
		*casev1.ReportingConsentRevoked, *casev1.SessionRecorded, *casev1.DevelopmentPlanAgreed,
		*casev1.DevelopmentPlanRevised, *casev1.OutplacementStarted, *casev1.OutplacementPhaseEntered,
		*casev1.PlacementAchieved, *casev1.OutplacementEndedWithoutPlacement, *casev1.ReintegrationStarted,
		*casev1.ReintegrationAgencyAssigned, *casev1.ReintegrationAgencyUnassigned,
		*casev1.ReintegrationCheckpointRecorded, *casev1.SecondTrackStarted, *casev1.CaseClosed,
		*casev1.CaseReopened, *casev1.ClientDataErased:
		return true
	}
	return false
}

// caseRow is a row of {cases}.
type caseRow struct {
	caseID, tenant, coach    string
	stage                    casev1.Stage
	questionType             casev1.QuestionType
	organisation, department string
	openedOn                 int
	lastActivity, lastPos    int64
	referralAdvised          bool
	warningSignals           int
	referrals                int
	intakeDone               bool
	sessionsSinceIntake      int
	planAgreed               bool
	outplacementRunning      bool
	outplacementPhase        casev1.OutplacementPhase
	outplacementOutcome      casev1.PlacementOutcome
	reintegrationRunning     bool
	sickReportedOn           int
	earliestDue              int
	closed, erased           bool
}

func newCaseRow(tenant, caseID string, opened *casev1.CaseOpened, ev projections.Event) caseRow {
	row := caseRow{
		caseID: caseID, tenant: tenant,
		organisation: opened.GetOrganisationId(), department: opened.GetDepartment(),
		openedOn: day(casework.DateFromProto(opened.GetOpenedOn())),
	}
	row.fold(ev)
	return row
}

// fold folds the event into the row: through casework.Evolve for the facts
// the stage derives from, so that the stage is the domain's, and the
// event's time for the last activity.
func (r *caseRow) fold(ev projections.Event) {
	s := casework.Evolve(r.state(), ev.Body)
	r.stage = s.Stage
	r.coach = s.CoachID
	r.questionType = s.QuestionType
	r.intakeDone = s.Intake.Completed
	r.referralAdvised = s.Intake.ReferralAdvised
	r.warningSignals = 0
	for _, w := range s.Intake.WarningSignals {
		r.warningSignals |= 1 << int(w)
	}
	r.sessionsSinceIntake = s.Sessions.SinceIntake
	r.planAgreed = s.Plan.Agreed
	r.outplacementRunning = s.Outplacement.Running
	r.outplacementPhase = s.Outplacement.Phase
	r.outplacementOutcome = s.Outplacement.Outcome
	r.reintegrationRunning = s.Reintegration.Running
	r.sickReportedOn = day(s.Reintegration.SickReportedOn)
	r.closed = s.Closure.Closed
	r.erased = s.IsErased()
	r.lastActivity = max(r.lastActivity, occurredAt(ev).UnixMicro())
	r.lastPos = int64(ev.Position)
}

// state returns the part of the case's casework.State the row keeps; the
// rest stays zero, which no stage depends on.
func (r *caseRow) state() casework.State {
	if r.caseID == "" || r.stage == casev1.Stage_STAGE_UNSPECIFIED {
		return casework.State{}
	}
	s := casework.State{
		Stage:        r.stage,
		ClientID:     "opened", // the read model keeps no client ID; the stage only asks whether there is one
		CoachID:      r.coach,
		QuestionType: r.questionType,
		Intake: casework.Intake{
			Completed:       r.intakeDone,
			ReferralAdvised: r.referralAdvised,
			WarningSignals:  signalList(r.warningSignals),
		},
		Sessions: casework.Sessions{SinceIntake: r.sessionsSinceIntake},
		Plan:     casework.DevelopmentPlan{Agreed: r.planAgreed},
		Outplacement: casework.Outplacement{
			Running: r.outplacementRunning, Phase: r.outplacementPhase, Outcome: r.outplacementOutcome,
		},
		Reintegration: casework.Reintegration{Running: r.reintegrationRunning, SickReportedOn: fromDay(r.sickReportedOn)},
		Closure:       casework.Closure{Closed: r.closed},
	}
	if r.erased {
		s.Erasure = casev1.ErasureReason_ERASURE_REASON_CLIENT_REQUEST
	}
	return s
}

// signalList unpacks the warning-signal bit set (bit n is signal n).
func signalList(bits int) []casev1.WarningSignal {
	var out []casev1.WarningSignal
	for w := range casev1.WarningSignal_name {
		if w != 0 && bits&(1<<int(w)) != 0 {
			out = append(out, casev1.WarningSignal(w))
		}
	}
	slices.Sort(out)
	return out
}

const caseColumns = `case_id, tenant_id, coach_id, stage, question_type, organisation_id, department, opened_on,
	last_activity_at, last_position, referral_advised, warning_signals, referrals, intake_done,
	sessions_since_intake, plan_agreed, outplacement_running, outplacement_phase, outplacement_outcome,
	reintegration_running, sick_reported_on, earliest_due, closed, erased`

func (r *caseRow) values() []any {
	return []any{
		r.caseID, r.tenant, r.coach, int(r.stage), int(r.questionType), r.organisation, r.department, r.openedOn,
		r.lastActivity, r.lastPos, flag(r.referralAdvised), r.warningSignals, r.referrals, flag(r.intakeDone),
		r.sessionsSinceIntake, flag(r.planAgreed), flag(r.outplacementRunning), int(r.outplacementPhase), int(r.outplacementOutcome),
		flag(r.reintegrationRunning), r.sickReportedOn, r.earliestDue, flag(r.closed), flag(r.erased),
	}
}

func (r *caseRow) scan(sc interface{ Scan(...any) error }) error {
	var stage, qt, phase, outcome int
	var advised, intake, plan, outRunning, reRunning, closed, erased int
	err := sc.Scan(&r.caseID, &r.tenant, &r.coach, &stage, &qt, &r.organisation, &r.department, &r.openedOn,
		&r.lastActivity, &r.lastPos, &advised, &r.warningSignals, &r.referrals, &intake,
		&r.sessionsSinceIntake, &plan, &outRunning, &phase, &outcome,
		&reRunning, &r.sickReportedOn, &r.earliestDue, &closed, &erased)
	r.stage, r.questionType = casev1.Stage(stage), casev1.QuestionType(qt)
	r.outplacementPhase, r.outplacementOutcome = casev1.OutplacementPhase(phase), casev1.PlacementOutcome(outcome)
	r.referralAdvised, r.intakeDone, r.planAgreed = advised != 0, intake != 0, plan != 0
	r.outplacementRunning, r.reintegrationRunning = outRunning != 0, reRunning != 0
	r.closed, r.erased = closed != 0, erased != 0
	return err
}

// earliestOpen is the last day of the earliest deadline not taken place;
// 0 when all are done. A case is overdue on a day after it: ListCases
// filters on it without reading the deadlines.
func earliestOpen(deadlines []casework.Deadline) int {
	earliest := 0
	for _, d := range deadlines {
		if due := day(d.Due); d.DoneOn.IsZero() && (earliest == 0 || due < earliest) {
			earliest = due
		}
	}
	return earliest
}

// occurredAt is when the event happened in the world; the store's commit
// time when the envelope does not say.
func occurredAt(ev projections.Event) time.Time {
	if t := ev.Metadata.GetOccurredAt(); t != nil {
		return t.AsTime()
	}
	return recordedAt(ev)
}

// recordedAt is when the store committed the event; the envelope's decision
// time when the engine left it unset.
func recordedAt(ev projections.Event) time.Time {
	if !ev.RecordedAt.IsZero() {
		return ev.RecordedAt
	}
	return ev.Metadata.GetRecordedAt().AsTime()
}

// day encodes a Date as yyyymmdd; 0 for the zero Date.
func day(d casework.Date) int {
	if d.IsZero() {
		return 0
	}
	return d.Year*10000 + int(d.Month)*100 + d.Day
}

// fromDay decodes a yyyymmdd day; 0 gives the zero Date.
func fromDay(n int) casework.Date {
	if n == 0 {
		return casework.Date{}
	}
	return casework.Date{Year: n / 10000, Month: time.Month(n / 100 % 100), Day: n % 100}
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
