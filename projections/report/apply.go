package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// current is the known_to of a version that is still valid.
const current = math.MaxInt64

// errNotOpened: an event of a case whose CaseOpened the read model has not
// seen, which a gap in the stream would cause.
var errNotOpened = errors.New("the case was never opened in the read model (its CaseOpened is missing)")

var _ projections.BatchProjection = (*Projection)(nil)

// Apply changes the report's tables for one event of a case. It returns
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
// entity it touches once, keeps its versions in memory, and writes them in
// Flush. A version that begins and ends within the batch is written once,
// already ended.
func (p *Projection) NewBatch(tx projections.Tx) projections.Batch { return p.newBatch(tx) }

// Apply applies the next event of the batch.
func (b *batch) Apply(ctx context.Context, ev projections.Event) (err error) {
	if !known(ev.Body) {
		return projections.ErrUnknownEvent
	}
	if !relevant(ev.Body) {
		return nil
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("report: %s of case %s: %w", ev.Type, ev.Metadata.GetCaseId(), err)
		}
	}()
	tenant, caseID := ev.Metadata.GetTenantId(), ev.Metadata.GetCaseId()
	if tenant == "" || caseID == "" {
		return errors.New("the event's metadata names no tenant or case")
	}
	at := recordedAt(ev).UnixMicro()
	cv, err := b.caseVersions(ctx, caseID)
	if err != nil {
		return err
	}
	if opened, ok := ev.Body.(*casev1.CaseOpened); ok {
		if cv.current() != nil {
			return errors.New("the case was opened before")
		}
		cv.write(caseRow{
			caseID: caseID, tenant: tenant,
			organisation: opened.GetOrganisationId(), department: opened.GetDepartment(),
			context: int(opened.GetOrganisationalContext()), question: int(opened.GetOrganisationalQuestion()),
			birthYear: int(opened.GetBirthYear()), openedOn: day(casework.DateFromProto(opened.GetOpenedOn())),
		}, at)
		return nil
	}
	cur := cv.current()
	if cur == nil {
		return errNotOpened
	}
	if cur.row.tenant != tenant {
		return fmt.Errorf("the case belongs to tenant %q, the event to %q", cur.row.tenant, tenant)
	}
	next := cur.row
	if err := b.applyTo(ctx, &next, ev, at); err != nil {
		return err
	}
	if next != cur.row {
		cv.write(next, at)
	}
	return nil
}

// applyTo changes the case's next version and the tables beside it.
func (b *batch) applyTo(ctx context.Context, c *caseRow, ev projections.Event, at int64) error {
	switch e := ev.Body.(type) {
	case *casev1.IntakeCompleted:
		c.questionType = int(e.GetQuestionType())
		c.willingness, c.capacity = int(e.GetMobilityWillingness()), int(e.GetMobilityCapacity())
		c.quadrant = int(QuadrantOf(c.willingness, c.capacity))
	case *casev1.QuestionReclassified:
		c.questionType = int(e.GetTo())
		return b.addReclassification(ctx, c, ev, e, at)
	case *casev1.CoachAssigned:
		c.coach = e.GetCoachId()
	case *casev1.CaseClosed:
		c.closedOn, c.closeOutcome = day(casework.DateFromProto(e.GetClosedOn())), int(e.GetOutcome())
		return b.endReintegration(ctx, c, at)
	case *casev1.CaseReopened:
		c.closedOn, c.closeOutcome = 0, 0
	case *casev1.OutplacementStarted, *casev1.OutplacementPhaseEntered,
		*casev1.PlacementAchieved, *casev1.OutplacementEndedWithoutPlacement:
		return b.applyOutplacement(ctx, c, ev.Body, at)
	case *casev1.ReintegrationStarted, *casev1.SecondTrackStarted, *casev1.ReintegrationCheckpointRecorded:
		return b.applyReintegration(ctx, c, ev, at)
	}
	return nil
}

// known reports whether body is a case event the report handles; events
// that change none of its facts (sessions, consents, …) are handled by
// doing nothing.
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

// relevant reports whether a known event changes any fact of the report;
// the others (sessions, plans, consents, referrals, agencies, erasure,
// which keeps every aggregate valid) are handled without touching the
// database.
func relevant(body proto.Message) bool {
	switch body.(type) {
	case *casev1.CaseOpened, *casev1.IntakeCompleted, *casev1.QuestionReclassified, *casev1.CoachAssigned,
		*casev1.OutplacementStarted, *casev1.OutplacementPhaseEntered, *casev1.PlacementAchieved,
		*casev1.OutplacementEndedWithoutPlacement, *casev1.ReintegrationStarted,
		*casev1.ReintegrationCheckpointRecorded, *casev1.SecondTrackStarted, *casev1.CaseClosed, *casev1.CaseReopened:
		return true
	}
	return false
}

// addReclassification records the reclassification, flagged as a repeat
// of the case's earlier ones so that the report counts distinct cases
// without COUNT(DISTINCT).
func (b *batch) addReclassification(ctx context.Context, c *caseRow, ev projections.Event, e *casev1.QuestionReclassified, at int64) error {
	rs, err := b.reclassificationsOf(ctx, c.caseID)
	if err != nil {
		return err
	}
	r := reclassificationRow{
		caseID: c.caseID, position: int64(ev.Position), recordedAt: at,
		tenant: c.tenant, organisation: c.organisation, department: c.department,
		occurredOn: day(casework.DateOf(occurredAt(ev).In(b.p.loc))),
		from:       int(e.GetFrom()), to: int(e.GetTo()), reason: int(e.GetReason()),
	}
	for _, earlier := range rs.moves {
		r.repeatCase = 1
		if earlier == [2]int{r.from, r.to} {
			r.repeatPair = 1
		}
	}
	rs.moves = append(rs.moves, [2]int{r.from, r.to})
	rs.added = append(rs.added, r)
	return nil
}

func (b *batch) applyOutplacement(ctx context.Context, c *caseRow, body proto.Message, at int64) error {
	if e, ok := body.(*casev1.OutplacementStarted); ok {
		c.outplacements++
		started := casework.DateFromProto(e.GetStartedOn())
		b.newOutplacement(c.caseID, c.outplacements).write(outplacementRow{
			caseID: c.caseID, seq: c.outplacements, tenant: c.tenant, organisation: c.organisation, department: c.department,
			startedOn: day(started), ageBand: int(AgeBandAt(c.birthYear, started)), phase: int(e.GetPhase()), daysToPlacement: -1,
		}, at)
		return nil
	}
	ov, err := b.outplacement(ctx, c.caseID, c.outplacements)
	if err != nil {
		return err
	}
	cur := ov.current()
	if cur == nil {
		return errors.New("no outplacement started in the read model")
	}
	next := cur.row
	switch e := body.(type) {
	case *casev1.OutplacementPhaseEntered:
		next.phase = max(next.phase, int(e.GetPhase()))
	case *casev1.PlacementAchieved:
		placed := casework.DateFromProto(e.GetPlacedOn())
		next.phase = max(next.phase, int(casev1.OutplacementPhase_OUTPLACEMENT_PHASE_PLACEMENT))
		next.outcome, next.placedOn = int(e.GetOutcome()), day(placed)
		next.daysToPlacement = placed.DaysSince(fromDay(next.startedOn))
	case *casev1.OutplacementEndedWithoutPlacement:
		next.outcome = int(casev1.PlacementOutcome_PLACEMENT_OUTCOME_NO_PLACEMENT)
		next.endedOn = day(casework.DateFromProto(e.GetEndedOn()))
	}
	if next != cur.row {
		ov.write(next, at)
	}
	return nil
}

func (b *batch) applyReintegration(ctx context.Context, c *caseRow, ev projections.Event, at int64) error {
	if e, ok := ev.Body.(*casev1.ReintegrationStarted); ok {
		c.reintegrations++
		row := reintegrationRow{
			caseID: c.caseID, seq: c.reintegrations, tenant: c.tenant, organisation: c.organisation, department: c.department,
			sickReportedOn: day(casework.DateFromProto(e.GetSickReportedOn())),
		}
		b.newReintegration(c.caseID, c.reintegrations).write(row, at)
		return b.reschedule(ctx, c, row.sickReportedOn, at)
	}
	rv, err := b.reintegration(ctx, c.caseID, c.reintegrations)
	if err != nil {
		return err
	}
	cur := rv.current()
	if cur == nil {
		return errors.New("no re-integration started in the read model")
	}
	switch e := ev.Body.(type) {
	case *casev1.SecondTrackStarted:
		next := cur.row
		next.secondTrackOn = day(casework.DateFromProto(e.GetStartedOn()))
		if next != cur.row {
			rv.write(next, at)
		}
	case *casev1.ReintegrationCheckpointRecorded:
		cps, err := b.checkpointsOf(ctx, c.caseID, c.reintegrations)
		if err != nil {
			return err
		}
		cps.add(checkpointRow{caseID: c.caseID, position: int64(ev.Position), seq: c.reintegrations,
			kind: int(e.GetKind()), heldOn: day(casework.DateFromProto(e.GetHeldOn()))})
		return b.reschedule(ctx, c, cur.row.sickReportedOn, at)
	}
	return nil
}

// endReintegration records the end of the running re-integration, if any,
// with the case's close. Its deadlines that had not taken place and whose
// last day falls after the close are moot from then on: their versions
// end, so that a report as of a later instant does not count them missing.
func (b *batch) endReintegration(ctx context.Context, c *caseRow, at int64) error {
	if c.reintegrations == 0 {
		return nil
	}
	rv, err := b.reintegration(ctx, c.caseID, c.reintegrations)
	if err != nil {
		return err
	}
	cur := rv.current()
	if cur == nil {
		return errors.New("no re-integration started in the read model")
	}
	if cur.row.endedOn != 0 {
		return nil
	}
	next := cur.row
	next.endedOn, next.closeOutcome = c.closedOn, c.closeOutcome
	next.endCategory = int(endCategory(casev1.CloseOutcome(c.closeOutcome)))
	rv.write(next, at)
	ds, err := b.deadlinesOf(ctx, c.caseID, c.reintegrations)
	if err != nil {
		return err
	}
	for _, key := range ds.order {
		v := ds.byKey[key]
		if d := v.current(); d != nil && d.row.doneOn == 0 && d.row.due > c.closedOn {
			v.end(at)
		}
	}
	return nil
}

// reschedule derives the re-integration's deadlines again with the domain's
// calculator and writes a version of each deadline that changed.
func (b *batch) reschedule(ctx context.Context, c *caseRow, sick int, at int64) error {
	cps, err := b.checkpointsOf(ctx, c.caseID, c.reintegrations)
	if err != nil {
		return err
	}
	ds, err := b.deadlinesOf(ctx, c.caseID, c.reintegrations)
	if err != nil {
		return err
	}
	// The deadlines current before this event: those the new schedule
	// does not name any more end.
	have := map[deadlineKey]bool{}
	for _, key := range ds.order {
		if ds.byKey[key].current() != nil {
			have[key] = true
		}
	}
	// Opens, Due, DoneOn and the status of a done deadline do not depend
	// on the day passed to Schedule.
	perKind := map[int]int{}
	for _, d := range casework.Schedule(fromDay(sick), cps.schedule(), time.Time{}) {
		row := deadlineRow{
			deadlineKey: deadlineKey{caseID: c.caseID, seq: c.reintegrations, kind: int(d.Kind), n: perKind[int(d.Kind)]},
			tenant:      c.tenant, organisation: c.organisation, department: c.department,
			opens: day(d.Opens), due: day(d.Due), doneOn: day(d.DoneOn),
		}
		perKind[int(d.Kind)]++
		// A deadline not done carries the status it has once judged
		// (overdue, that is missing); the query judges it by its day.
		row.status = int(casework.StatusOverdue)
		if d.Status.Done() {
			row.status = int(d.Status)
		}
		delete(have, row.deadlineKey)
		v := ds.get(row.deadlineKey)
		if cur := v.current(); cur != nil && cur.row == row {
			continue
		}
		v.write(row, at)
	}
	for _, key := range ds.order {
		if have[key] {
			ds.byKey[key].end(at)
		}
	}
	return nil
}

// occurredAt is when the event happened in the world; the store's commit
// time when the envelope does not say.
func occurredAt(ev projections.Event) time.Time {
	if t := ev.Metadata.GetOccurredAt(); t != nil {
		return t.AsTime()
	}
	return recordedAt(ev)
}

// recordedAt is when the store committed the event: what "known by then"
// means for a report as of a past date. The envelope's decision time
// stands in when the engine left it unset.
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

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
