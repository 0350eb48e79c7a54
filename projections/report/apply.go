package report

import (
	"context"
	"database/sql"
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

// Apply changes the report's tables for one event of a case. It returns
// projections.ErrUnknownEvent for anything but the case events it knows.
func (p *Projection) Apply(ctx context.Context, tx projections.Tx, ev projections.Event) (err error) {
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
	if opened, ok := ev.Body.(*casev1.CaseOpened); ok {
		row := caseRow{
			caseID: caseID, tenant: tenant,
			organisation: opened.GetOrganisationId(), department: opened.GetDepartment(),
			context: int(opened.GetOrganisationalContext()), question: int(opened.GetOrganisationalQuestion()),
			birthYear: int(opened.GetBirthYear()), openedOn: day(casework.DateFromProto(opened.GetOpenedOn())),
		}
		switch _, err := loadCase(ctx, tx, caseID); {
		case err == nil:
			return errors.New("the case was opened before")
		case !errors.Is(err, errNotOpened):
			return err
		}
		return writeVersion(ctx, tx, casesTable, row, version0{}, at)
	}
	cur, err := loadCase(ctx, tx, caseID)
	if err != nil {
		return err
	}
	if cur.tenant != tenant {
		return fmt.Errorf("the case belongs to tenant %q, the event to %q", cur.tenant, tenant)
	}
	next := cur.caseRow
	if err := p.applyTo(ctx, tx, &next, ev, at); err != nil {
		return err
	}
	if next == cur.caseRow {
		return nil
	}
	return writeVersion(ctx, tx, casesTable, next, cur.version0, at)
}

// applyTo changes the case's next version and the tables beside it.
func (p *Projection) applyTo(ctx context.Context, tx projections.Tx, c *caseRow, ev projections.Event, at int64) error {
	switch e := ev.Body.(type) {
	case *casev1.IntakeCompleted:
		c.questionType = int(e.GetQuestionType())
		c.willingness, c.capacity = int(e.GetMobilityWillingness()), int(e.GetMobilityCapacity())
		c.quadrant = int(QuadrantOf(c.willingness, c.capacity))
	case *casev1.QuestionReclassified:
		c.questionType = int(e.GetTo())
		return insertReclassification(ctx, tx, c, ev, e, p.loc, at)
	case *casev1.CoachAssigned:
		c.coach = e.GetCoachId()
	case *casev1.CaseClosed:
		c.closedOn, c.closeOutcome = day(casework.DateFromProto(e.GetClosedOn())), int(e.GetOutcome())
		return endReintegration(ctx, tx, c, at)
	case *casev1.CaseReopened:
		c.closedOn, c.closeOutcome = 0, 0
	case *casev1.OutplacementStarted, *casev1.OutplacementPhaseEntered,
		*casev1.PlacementAchieved, *casev1.OutplacementEndedWithoutPlacement:
		return applyOutplacement(ctx, tx, c, ev.Body, at)
	case *casev1.ReintegrationStarted, *casev1.SecondTrackStarted, *casev1.ReintegrationCheckpointRecorded:
		return applyReintegration(ctx, tx, c, ev, at)
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

// insertReclassification records the reclassification, flagged as a
// repeat of the case's earlier ones so that the report counts distinct
// cases without COUNT(DISTINCT).
func insertReclassification(ctx context.Context, tx projections.Tx, c *caseRow, ev projections.Event,
	e *casev1.QuestionReclassified, loc *time.Location, at int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT from_type, to_type FROM {reclassifications} WHERE case_id = ?`, c.caseID)
	if err != nil {
		return wrap(err, "read reclassifications")
	}
	repeatPair, repeatCase := 0, 0
	for rows.Next() {
		var from, to int
		if err := rows.Scan(&from, &to); err != nil {
			rows.Close()
			return wrap(err, "read reclassifications")
		}
		repeatCase = 1
		if from == int(e.GetFrom()) && to == int(e.GetTo()) {
			repeatPair = 1
		}
	}
	if err := rows.Close(); err != nil {
		return wrap(err, "read reclassifications")
	}
	occurred := casework.DateOf(occurredAt(ev).In(loc))
	_, err = tx.ExecContext(ctx, `INSERT INTO {reclassifications} (case_id, position, recorded_at, tenant_id,
		organisation_id, department, occurred_on, from_type, to_type, reason, repeat_pair, repeat_case)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.caseID, int64(ev.Position), at, c.tenant, c.organisation, c.department, day(occurred),
		int(e.GetFrom()), int(e.GetTo()), int(e.GetReason()), repeatPair, repeatCase)
	return wrap(err, "insert reclassification")
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

func applyOutplacement(ctx context.Context, tx projections.Tx, c *caseRow, body proto.Message, at int64) error {
	if e, ok := body.(*casev1.OutplacementStarted); ok {
		c.outplacements++
		started := casework.DateFromProto(e.GetStartedOn())
		row := outplacementRow{
			caseID: c.caseID, seq: c.outplacements, tenant: c.tenant, organisation: c.organisation, department: c.department,
			startedOn: day(started), ageBand: int(AgeBandAt(c.birthYear, started)), phase: int(e.GetPhase()), daysToPlacement: -1,
		}
		return writeVersion(ctx, tx, outplacementsTable, row, version0{}, at)
	}
	cur, err := loadOutplacement(ctx, tx, c.caseID, c.outplacements)
	if err != nil {
		return err
	}
	next := cur.outplacementRow
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
	if next == cur.outplacementRow {
		return nil
	}
	return writeVersion(ctx, tx, outplacementsTable, next, cur.version0, at)
}

func applyReintegration(ctx context.Context, tx projections.Tx, c *caseRow, ev projections.Event, at int64) error {
	if e, ok := ev.Body.(*casev1.ReintegrationStarted); ok {
		c.reintegrations++
		row := reintegrationRow{
			caseID: c.caseID, seq: c.reintegrations, tenant: c.tenant, organisation: c.organisation, department: c.department,
			sickReportedOn: day(casework.DateFromProto(e.GetSickReportedOn())),
		}
		if err := writeVersion(ctx, tx, reintegrationsTable, row, version0{}, at); err != nil {
			return err
		}
		return reschedule(ctx, tx, c, row.sickReportedOn, at)
	}
	cur, err := loadReintegration(ctx, tx, c.caseID, c.reintegrations)
	if err != nil {
		return err
	}
	switch e := ev.Body.(type) {
	case *casev1.SecondTrackStarted:
		next := cur.reintegrationRow
		next.secondTrackOn = day(casework.DateFromProto(e.GetStartedOn()))
		return writeVersion(ctx, tx, reintegrationsTable, next, cur.version0, at)
	case *casev1.ReintegrationCheckpointRecorded:
		if _, err := tx.ExecContext(ctx, `INSERT INTO {checkpoints} (case_id, position, seq, kind, held_on) VALUES (?, ?, ?, ?, ?)`,
			c.caseID, int64(ev.Position), c.reintegrations, int(e.GetKind()), day(casework.DateFromProto(e.GetHeldOn()))); err != nil {
			return wrap(err, "insert checkpoint")
		}
		return reschedule(ctx, tx, c, cur.sickReportedOn, at)
	}
	return nil
}

// endReintegration records the end of the running re-integration, if any,
// with the case's close. Its deadlines that had not taken place and whose
// last day falls after the close are moot from then on: their versions
// end, so that a report as of a later instant does not count them missing.
func endReintegration(ctx context.Context, tx projections.Tx, c *caseRow, at int64) error {
	if c.reintegrations == 0 {
		return nil
	}
	cur, err := loadReintegration(ctx, tx, c.caseID, c.reintegrations)
	if err != nil || cur.endedOn != 0 {
		return err
	}
	next := cur.reintegrationRow
	next.endedOn, next.closeOutcome = c.closedOn, c.closeOutcome
	next.endCategory = int(endCategory(casev1.CloseOutcome(c.closeOutcome)))
	if err := writeVersion(ctx, tx, reintegrationsTable, next, cur.version0, at); err != nil {
		return err
	}
	have, err := currentDeadlines(ctx, tx, c.caseID, c.reintegrations)
	if err != nil {
		return err
	}
	for _, d := range have {
		if d.doneOn == 0 && d.due > c.closedOn {
			if err := endVersion(ctx, tx, deadlinesTable, d.deadlineRow, d.version0, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// reschedule derives the re-integration's deadlines again with the domain's
// calculator and writes a version of each deadline that changed.
func reschedule(ctx context.Context, tx projections.Tx, c *caseRow, sick int, at int64) error {
	recorded, err := checkpointsOf(ctx, tx, c.caseID, c.reintegrations)
	if err != nil {
		return err
	}
	have, err := currentDeadlines(ctx, tx, c.caseID, c.reintegrations)
	if err != nil {
		return err
	}
	// Opens, Due, DoneOn and the status of a done deadline do not depend
	// on the day passed to Schedule.
	seen := map[deadlineKey]bool{}
	perKind := map[int]int{}
	for _, d := range casework.Schedule(fromDay(sick), recorded, time.Time{}) {
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
		seen[row.deadlineKey] = true
		old, ok := have[row.deadlineKey]
		if ok && old.deadlineRow == row {
			continue
		}
		if err := writeVersion(ctx, tx, deadlinesTable, row, old.version0, at); err != nil {
			return err
		}
	}
	for key, old := range have {
		if !seen[key] {
			if err := endVersion(ctx, tx, deadlinesTable, old.deadlineRow, old.version0, at); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkpointsOf(ctx context.Context, tx projections.Tx, caseID string, seq int) ([]casework.Checkpoint, error) {
	rows, err := tx.QueryContext(ctx, `SELECT kind, held_on FROM {checkpoints} WHERE case_id = ? AND seq = ? ORDER BY position`, caseID, seq)
	if err != nil {
		return nil, wrap(err, "read checkpoints")
	}
	defer rows.Close()
	var out []casework.Checkpoint
	for rows.Next() {
		var kind, held int
		if err := rows.Scan(&kind, &held); err != nil {
			return nil, wrap(err, "read checkpoints")
		}
		out = append(out, casework.Checkpoint{Kind: casev1.CheckpointKind(kind), HeldOn: fromDay(held)})
	}
	return out, wrap(rows.Err(), "read checkpoints")
}

// version0 is where a version starts; the zero value means "no version
// yet".
type version0 struct {
	exists    bool
	knownFrom int64
}

// table describes a versioned table: its name, the columns of its key and
// of the rest.
type table struct {
	name string
	key  []string
	cols []string
}

// row is a row of a versioned table without its known_from and known_to.
type row interface {
	keyValues() []any
	values() []any
}

// writeVersion makes r the current version of its entity from instant at.
// The previous version, if any, ends at that instant; when it began at the
// same instant (several events of one command), it is changed in place
// instead, so that no empty version is left. A clock that stepped back
// cannot start a version before its predecessor's start.
func writeVersion(ctx context.Context, tx projections.Tx, t table, r row, prev version0, at int64) error {
	from := at
	if prev.exists {
		from = max(at, prev.knownFrom)
		if from == prev.knownFrom {
			_, err := tx.ExecContext(ctx, `UPDATE {`+t.name+`} SET `+strings.Join(t.cols, " = ?, ")+` = ? WHERE `+t.keyCond()+` AND known_from = ?`,
				append(append(r.values(), r.keyValues()...), from)...)
			return wrap(err, "update "+t.name)
		}
		if err := endVersion(ctx, tx, t, r, prev, from); err != nil {
			return err
		}
	}
	cols := append(append([]string{"known_from", "known_to"}, t.key...), t.cols...)
	args := append(append([]any{from, int64(current)}, r.keyValues()...), r.values()...)
	_, err := tx.ExecContext(ctx, `INSERT INTO {`+t.name+`} (`+strings.Join(cols, ", ")+`) VALUES (`+placeholders(len(cols))+`)`, args...)
	return wrap(err, "insert "+t.name)
}

// endVersion ends the current version of r's entity at instant at, or
// removes it when it began at that instant.
func endVersion(ctx context.Context, tx projections.Tx, t table, r row, prev version0, at int64) error {
	at = max(at, prev.knownFrom)
	var err error
	if prev.knownFrom == at {
		_, err = tx.ExecContext(ctx, `DELETE FROM {`+t.name+`} WHERE `+t.keyCond()+` AND known_from = ?`, append(r.keyValues(), at)...)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE {`+t.name+`} SET known_to = ? WHERE `+t.keyCond()+` AND known_to = ?`,
			append(append([]any{at}, r.keyValues()...), int64(current))...)
	}
	return wrap(err, "end version of "+t.name)
}

// keyCond is the condition selecting an entity by its key.
func (t table) keyCond() string { return strings.Join(t.key, " = ? AND ") + " = ?" }

// caseRow is a version of {cases}.
type caseRow struct {
	caseID                           string
	tenant, organisation, department string
	context, question, birthYear     int
	openedOn, questionType           int
	coach                            string
	willingness, capacity, quadrant  int
	closedOn, closeOutcome           int
	outplacements, reintegrations    int
}

var casesTable = table{
	name: "cases", key: []string{"case_id"},
	cols: []string{"tenant_id", "organisation_id", "department", "context", "organisational_question", "birth_year",
		"opened_on", "question_type", "coach_id", "mobility_willingness", "mobility_capacity", "quadrant",
		"closed_on", "close_outcome", "outplacements", "reintegrations"},
}

func (r caseRow) keyValues() []any { return []any{r.caseID} }

func (r caseRow) values() []any {
	return []any{r.tenant, r.organisation, r.department, r.context, r.question, r.birthYear,
		r.openedOn, r.questionType, r.coach, r.willingness, r.capacity, r.quadrant,
		r.closedOn, r.closeOutcome, r.outplacements, r.reintegrations}
}

type currentCase struct {
	caseRow
	version0
}

func loadCase(ctx context.Context, tx projections.Tx, caseID string) (currentCase, error) {
	var c currentCase
	c.caseID = caseID
	err := tx.QueryRowContext(ctx, `SELECT known_from, `+strings.Join(casesTable.cols, ", ")+
		` FROM {cases} WHERE case_id = ? AND known_to = ?`, caseID, int64(current)).Scan(
		&c.knownFrom, &c.tenant, &c.organisation, &c.department, &c.context, &c.question, &c.birthYear,
		&c.openedOn, &c.questionType, &c.coach, &c.willingness, &c.capacity, &c.quadrant,
		&c.closedOn, &c.closeOutcome, &c.outplacements, &c.reintegrations)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errNotOpened
	}
	c.exists = err == nil
	return c, wrap(err, "load case")
}

// outplacementRow is a version of {outplacements}.
type outplacementRow struct {
	caseID                           string
	seq                              int
	tenant, organisation, department string
	startedOn, ageBand, phase        int
	outcome, placedOn, endedOn       int
	daysToPlacement                  int
}

var outplacementsTable = table{
	name: "outplacements", key: []string{"case_id", "seq"},
	cols: []string{"tenant_id", "organisation_id", "department", "started_on", "age_band", "furthest_phase",
		"outcome", "placed_on", "ended_on", "days_to_placement"},
}

func (r outplacementRow) keyValues() []any { return []any{r.caseID, r.seq} }

func (r outplacementRow) values() []any {
	return []any{r.tenant, r.organisation, r.department, r.startedOn, r.ageBand, r.phase,
		r.outcome, r.placedOn, r.endedOn, r.daysToPlacement}
}

type currentOutplacement struct {
	outplacementRow
	version0
}

func loadOutplacement(ctx context.Context, tx projections.Tx, caseID string, seq int) (currentOutplacement, error) {
	var o currentOutplacement
	o.caseID, o.seq = caseID, seq
	err := tx.QueryRowContext(ctx, `SELECT known_from, `+strings.Join(outplacementsTable.cols, ", ")+
		` FROM {outplacements} WHERE case_id = ? AND seq = ? AND known_to = ?`, caseID, seq, int64(current)).Scan(
		&o.knownFrom, &o.tenant, &o.organisation, &o.department, &o.startedOn, &o.ageBand, &o.phase,
		&o.outcome, &o.placedOn, &o.endedOn, &o.daysToPlacement)
	if errors.Is(err, sql.ErrNoRows) {
		return o, errors.New("no outplacement started in the read model")
	}
	o.exists = err == nil
	return o, wrap(err, "load outplacement")
}

// reintegrationRow is a version of {reintegrations}.
type reintegrationRow struct {
	caseID                           string
	seq                              int
	tenant, organisation, department string
	sickReportedOn, secondTrackOn    int
	endedOn, closeOutcome            int
	endCategory                      int
}

var reintegrationsTable = table{
	name: "reintegrations", key: []string{"case_id", "seq"},
	cols: []string{"tenant_id", "organisation_id", "department", "sick_reported_on", "second_track_on", "ended_on", "close_outcome", "end_category"},
}

func (r reintegrationRow) keyValues() []any { return []any{r.caseID, r.seq} }

func (r reintegrationRow) values() []any {
	return []any{r.tenant, r.organisation, r.department, r.sickReportedOn, r.secondTrackOn, r.endedOn, r.closeOutcome, r.endCategory}
}

type currentReintegration struct {
	reintegrationRow
	version0
}

func loadReintegration(ctx context.Context, tx projections.Tx, caseID string, seq int) (currentReintegration, error) {
	var r currentReintegration
	r.caseID, r.seq = caseID, seq
	err := tx.QueryRowContext(ctx, `SELECT known_from, `+strings.Join(reintegrationsTable.cols, ", ")+
		` FROM {reintegrations} WHERE case_id = ? AND seq = ? AND known_to = ?`, caseID, seq, int64(current)).Scan(
		&r.knownFrom, &r.tenant, &r.organisation, &r.department, &r.sickReportedOn, &r.secondTrackOn, &r.endedOn, &r.closeOutcome, &r.endCategory)
	if errors.Is(err, sql.ErrNoRows) {
		return r, errors.New("no re-integration started in the read model")
	}
	r.exists = err == nil
	return r, wrap(err, "load re-integration")
}

// deadlineKey identifies a deadline of a re-integration.
type deadlineKey struct {
	caseID       string
	seq, kind, n int
}

// deadlineRow is a version of {deadlines}.
type deadlineRow struct {
	deadlineKey
	tenant, organisation, department string
	opens, due, doneOn, status       int
}

var deadlinesTable = table{
	name: "deadlines", key: []string{"case_id", "seq", "kind", "n"},
	cols: []string{"tenant_id", "organisation_id", "department", "opens", "due", "done_on", "status"},
}

func (r deadlineRow) keyValues() []any { return []any{r.caseID, r.seq, r.kind, r.n} }

func (r deadlineRow) values() []any {
	return []any{r.tenant, r.organisation, r.department, r.opens, r.due, r.doneOn, r.status}
}

type currentDeadline struct {
	deadlineRow
	version0
}

func currentDeadlines(ctx context.Context, tx projections.Tx, caseID string, seq int) (map[deadlineKey]currentDeadline, error) {
	rows, err := tx.QueryContext(ctx, `SELECT known_from, kind, n, `+strings.Join(deadlinesTable.cols, ", ")+
		` FROM {deadlines} WHERE case_id = ? AND seq = ? AND known_to = ?`, caseID, seq, int64(current))
	if err != nil {
		return nil, wrap(err, "read deadlines")
	}
	defer rows.Close()
	out := map[deadlineKey]currentDeadline{}
	for rows.Next() {
		d := currentDeadline{version0: version0{exists: true}}
		d.caseID, d.seq = caseID, seq
		if err := rows.Scan(&d.knownFrom, &d.kind, &d.n, &d.tenant, &d.organisation, &d.department,
			&d.opens, &d.due, &d.doneOn, &d.status); err != nil {
			return nil, wrap(err, "read deadlines")
		}
		out[d.deadlineKey] = d
	}
	return out, wrap(rows.Err(), "read deadlines")
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
