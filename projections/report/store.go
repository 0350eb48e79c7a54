package report

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// The report's tables as a batch sees them: each entity (a case, an
// outplacement, a re-integration, its deadlines, checkpoints and a case's
// reclassifications) is read from the database the first time an event
// of the batch touches it, changed in memory by the batch's events, and
// written in Flush. The result is exactly what applying the events one by
// one with a read and a write each would leave; only the number of
// statements differs.

// rowVersion is one version of an entity: valid from knownFrom (inclusive)
// to knownTo (exclusive; current while it is valid).
type rowVersion[R comparable] struct {
	knownFrom, knownTo int64
	row                R
}

// versions are one entity's versions as a batch knows them: the current
// one in the database when the batch first read the entity (base, nil
// when there was none), and those the batch added, in order.
type versions[R comparable] struct {
	base  *storedVersion[R]
	added []*rowVersion[R]
}

// storedVersion is a version read from the database, with what the batch
// did to it.
type storedVersion[R comparable] struct {
	rowVersion[R]
	read    rowVersion[R]
	deleted bool
}

func newVersions[R comparable](base *rowVersion[R]) *versions[R] {
	v := &versions[R]{}
	if base != nil {
		v.base = &storedVersion[R]{rowVersion: *base, read: *base}
	}
	return v
}

// current returns the current version, or nil when there is none. Only
// the last version can be current.
func (v *versions[R]) current() *rowVersion[R] {
	if n := len(v.added); n > 0 {
		if last := v.added[n-1]; last.knownTo == current {
			return last
		}
		return nil
	}
	if v.base != nil && !v.base.deleted && v.base.knownTo == current {
		return &v.base.rowVersion
	}
	return nil
}

// write makes r the current version from instant at. The previous
// version, if any, ends at that instant; when it began at the same
// instant (several events of one command), it is changed in place
// instead, so that no empty version is left. A clock that stepped back
// cannot start a version before its predecessor's start.
func (v *versions[R]) write(r R, at int64) {
	from := at
	if cur := v.current(); cur != nil {
		from = max(at, cur.knownFrom)
		if from == cur.knownFrom {
			cur.row = r
			return
		}
		v.end(from)
	}
	v.added = append(v.added, &rowVersion[R]{knownFrom: from, knownTo: current, row: r})
}

// end ends the current version, if any, at instant at, or removes it when
// it began at that instant.
func (v *versions[R]) end(at int64) {
	cur := v.current()
	if cur == nil {
		return
	}
	at = max(at, cur.knownFrom)
	if cur.knownFrom != at {
		cur.knownTo = at
		return
	}
	if n := len(v.added); n > 0 {
		v.added = v.added[:n-1]
		return
	}
	v.base.deleted = true
}

// row is a row of a versioned table without its known_from and known_to.
type row interface {
	comparable
	keyValues() []any
	values() []any
}

// table describes a versioned table: its name, the columns of its key and
// of the rest, and the statements a batch writes it with.
type table struct {
	name string
	key  []string
	cols []string

	insert, update, end, remove, selectCurrent string
	// selectByReintegration reads a re-integration's current deadlines.
	selectByReintegration string
}

func newTable(name string, key, cols []string) table {
	t := table{name: name, key: key, cols: cols}
	keyCond := strings.Join(key, " = ? AND ") + " = ?"
	all := append(append([]string{"known_from", "known_to"}, key...), cols...)
	t.insert = `INSERT INTO {` + name + `} (` + strings.Join(all, ", ") + `) VALUES (` + placeholders(len(all)) + `)`
	t.update = `UPDATE {` + name + `} SET ` + strings.Join(cols, " = ?, ") + ` = ?, known_to = ? WHERE ` + keyCond + ` AND known_from = ?`
	t.end = `UPDATE {` + name + `} SET known_to = ? WHERE ` + keyCond + ` AND known_from = ?`
	t.remove = `DELETE FROM {` + name + `} WHERE ` + keyCond + ` AND known_from = ?`
	t.selectCurrent = `SELECT known_from, ` + strings.Join(cols, ", ") + ` FROM {` + name + `} WHERE ` + keyCond + ` AND known_to = ?`
	return t
}

// flushVersions writes what the batch did to one entity of t: the stored
// version removed, changed or ended, then the versions added.
func flushVersions[R row](ctx context.Context, tx projections.Tx, t table, v *versions[R]) error {
	if s := v.base; s != nil {
		key := s.row.keyValues()
		var err error
		switch {
		case s.deleted:
			_, err = tx.ExecContext(ctx, t.remove, append(key, s.knownFrom)...)
		case s.row != s.read.row:
			_, err = tx.ExecContext(ctx, t.update, append(append(s.row.values(), s.knownTo), append(key, s.knownFrom)...)...)
		case s.knownTo != s.read.knownTo:
			_, err = tx.ExecContext(ctx, t.end, append([]any{s.knownTo}, append(key, s.knownFrom)...)...)
		}
		if err != nil {
			return wrap(err, "update "+t.name)
		}
	}
	for _, a := range v.added {
		args := append(append([]any{a.knownFrom, a.knownTo}, a.row.keyValues()...), a.row.values()...)
		if _, err := tx.ExecContext(ctx, t.insert, args...); err != nil {
			return wrap(err, "insert "+t.name)
		}
	}
	return nil
}

// seqKey names a case's outplacement or re-integration.
type seqKey struct {
	caseID string
	seq    int
}

// batch is a batch of events being applied (see NewBatch).
type batch struct {
	p  *Projection
	tx projections.Tx

	cases             map[string]*versions[caseRow]
	outplacements     map[seqKey]*versions[outplacementRow]
	reintegrations    map[seqKey]*versions[reintegrationRow]
	deadlines         map[seqKey]*deadlineSet
	checkpoints       map[seqKey]*checkpointList
	reclassifications map[string]*reclassificationList
	// The keys in the order first touched, which Flush writes in.
	caseOrder, reclassificationOrder                []string
	outplacementOrder, reintegrationOrder, seqOrder []seqKey
}

func (p *Projection) newBatch(tx projections.Tx) *batch {
	return &batch{
		p: p, tx: tx,
		cases:             map[string]*versions[caseRow]{},
		outplacements:     map[seqKey]*versions[outplacementRow]{},
		reintegrations:    map[seqKey]*versions[reintegrationRow]{},
		deadlines:         map[seqKey]*deadlineSet{},
		checkpoints:       map[seqKey]*checkpointList{},
		reclassifications: map[string]*reclassificationList{},
	}
}

// Flush writes the batch's changes.
func (b *batch) Flush(ctx context.Context) error {
	for _, id := range b.caseOrder {
		if err := flushVersions(ctx, b.tx, casesTable, b.cases[id]); err != nil {
			return err
		}
	}
	for _, id := range b.reclassificationOrder {
		if err := b.reclassifications[id].flush(ctx, b.tx); err != nil {
			return err
		}
	}
	for _, k := range b.outplacementOrder {
		if err := flushVersions(ctx, b.tx, outplacementsTable, b.outplacements[k]); err != nil {
			return err
		}
	}
	for _, k := range b.reintegrationOrder {
		if err := flushVersions(ctx, b.tx, reintegrationsTable, b.reintegrations[k]); err != nil {
			return err
		}
	}
	for _, k := range b.seqOrder {
		if cps := b.checkpoints[k]; cps != nil {
			if err := cps.flush(ctx, b.tx); err != nil {
				return err
			}
		}
		if ds := b.deadlines[k]; ds != nil {
			for _, key := range ds.order {
				if err := flushVersions(ctx, b.tx, deadlinesTable, ds.byKey[key]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// caseVersions returns the case's versions, read once per batch.
func (b *batch) caseVersions(ctx context.Context, caseID string) (*versions[caseRow], error) {
	if v, ok := b.cases[caseID]; ok {
		return v, nil
	}
	var c rowVersion[caseRow]
	c.knownTo, c.row.caseID = current, caseID
	r := &c.row
	err := b.tx.QueryRowContext(ctx, casesTable.selectCurrent, caseID, int64(current)).Scan(
		&c.knownFrom, &r.tenant, &r.organisation, &r.department, &r.context, &r.question, &r.birthYear,
		&r.openedOn, &r.questionType, &r.coach, &r.willingness, &r.capacity, &r.quadrant,
		&r.closedOn, &r.closeOutcome, &r.outplacements, &r.reintegrations)
	base := &c
	switch {
	case errors.Is(err, sql.ErrNoRows):
		base = nil
	case err != nil:
		return nil, wrap(err, "load case")
	}
	v := newVersions(base)
	b.cases[caseID] = v
	b.caseOrder = append(b.caseOrder, caseID)
	return v, nil
}

// newOutplacement returns the versions of an outplacement the event at
// hand starts: it has none in the database.
func (b *batch) newOutplacement(caseID string, seq int) *versions[outplacementRow] {
	k := seqKey{caseID, seq}
	if v, ok := b.outplacements[k]; ok {
		return v
	}
	v := newVersions[outplacementRow](nil)
	b.outplacements[k] = v
	b.outplacementOrder = append(b.outplacementOrder, k)
	return v
}

// outplacement returns the versions of a case's outplacement, read once
// per batch.
func (b *batch) outplacement(ctx context.Context, caseID string, seq int) (*versions[outplacementRow], error) {
	k := seqKey{caseID, seq}
	if v, ok := b.outplacements[k]; ok {
		return v, nil
	}
	var o rowVersion[outplacementRow]
	o.knownTo, o.row.caseID, o.row.seq = current, caseID, seq
	r := &o.row
	err := b.tx.QueryRowContext(ctx, outplacementsTable.selectCurrent, caseID, seq, int64(current)).Scan(
		&o.knownFrom, &r.tenant, &r.organisation, &r.department, &r.startedOn, &r.ageBand, &r.phase,
		&r.outcome, &r.placedOn, &r.endedOn, &r.daysToPlacement)
	base := &o
	switch {
	case errors.Is(err, sql.ErrNoRows):
		base = nil
	case err != nil:
		return nil, wrap(err, "load outplacement")
	}
	v := newVersions(base)
	b.outplacements[k] = v
	b.outplacementOrder = append(b.outplacementOrder, k)
	return v, nil
}

// newReintegration returns the versions of a re-integration the event at
// hand starts, with its deadlines and checkpoints: none are in the
// database yet.
func (b *batch) newReintegration(caseID string, seq int) *versions[reintegrationRow] {
	k := seqKey{caseID, seq}
	if _, ok := b.deadlines[k]; !ok {
		b.deadlines[k] = &deadlineSet{byKey: map[deadlineKey]*versions[deadlineRow]{}}
		if _, ok := b.checkpoints[k]; !ok {
			b.checkpoints[k] = &checkpointList{}
		}
		b.seqOrder = append(b.seqOrder, k)
	}
	if v, ok := b.reintegrations[k]; ok {
		return v
	}
	v := newVersions[reintegrationRow](nil)
	b.reintegrations[k] = v
	b.reintegrationOrder = append(b.reintegrationOrder, k)
	return v
}

// reintegration returns the versions of a case's re-integration, read
// once per batch.
func (b *batch) reintegration(ctx context.Context, caseID string, seq int) (*versions[reintegrationRow], error) {
	k := seqKey{caseID, seq}
	if v, ok := b.reintegrations[k]; ok {
		return v, nil
	}
	var ri rowVersion[reintegrationRow]
	ri.knownTo, ri.row.caseID, ri.row.seq = current, caseID, seq
	r := &ri.row
	err := b.tx.QueryRowContext(ctx, reintegrationsTable.selectCurrent, caseID, seq, int64(current)).Scan(
		&ri.knownFrom, &r.tenant, &r.organisation, &r.department, &r.sickReportedOn, &r.secondTrackOn, &r.endedOn, &r.closeOutcome, &r.endCategory)
	base := &ri
	switch {
	case errors.Is(err, sql.ErrNoRows):
		base = nil
	case err != nil:
		return nil, wrap(err, "load re-integration")
	}
	v := newVersions(base)
	b.reintegrations[k] = v
	b.reintegrationOrder = append(b.reintegrationOrder, k)
	return v, nil
}

// deadlineSet is the deadlines of one re-integration.
type deadlineSet struct {
	byKey map[deadlineKey]*versions[deadlineRow]
	order []deadlineKey
}

// get returns the versions of one deadline, none when it is new.
func (s *deadlineSet) get(key deadlineKey) *versions[deadlineRow] {
	if v, ok := s.byKey[key]; ok {
		return v
	}
	v := newVersions[deadlineRow](nil)
	s.byKey[key] = v
	s.order = append(s.order, key)
	return v
}

// deadlinesOf returns a re-integration's deadlines, their current versions
// read once per batch.
func (b *batch) deadlinesOf(ctx context.Context, caseID string, seq int) (*deadlineSet, error) {
	k := seqKey{caseID, seq}
	if s, ok := b.deadlines[k]; ok {
		return s, nil
	}
	rows, err := b.tx.QueryContext(ctx, deadlinesTable.selectByReintegration, caseID, seq, int64(current))
	if err != nil {
		return nil, wrap(err, "read deadlines")
	}
	defer rows.Close()
	s := &deadlineSet{byKey: map[deadlineKey]*versions[deadlineRow]{}}
	for rows.Next() {
		d := rowVersion[deadlineRow]{knownTo: current}
		d.row.caseID, d.row.seq = caseID, seq
		r := &d.row
		if err := rows.Scan(&d.knownFrom, &r.kind, &r.n, &r.tenant, &r.organisation, &r.department,
			&r.opens, &r.due, &r.doneOn, &r.status); err != nil {
			return nil, wrap(err, "read deadlines")
		}
		s.byKey[r.deadlineKey] = newVersions(&d)
		s.order = append(s.order, r.deadlineKey)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "read deadlines")
	}
	b.deadlines[k] = s
	b.touchSeq(k)
	return s, nil
}

// touchSeq notes that the batch holds a re-integration's deadlines or
// checkpoints.
func (b *batch) touchSeq(k seqKey) {
	_, d := b.deadlines[k]
	_, c := b.checkpoints[k]
	if d != c { // the first of the two
		b.seqOrder = append(b.seqOrder, k)
	}
}

// checkpointRow is a row of {checkpoints}.
type checkpointRow struct {
	caseID            string
	position          int64
	seq, kind, heldOn int
}

// checkpointList is the checkpoints recorded in one re-integration: those
// in the database, then those the batch added.
type checkpointList struct {
	rows  []checkpointRow
	added int
}

func (l *checkpointList) add(r checkpointRow) {
	l.rows = append(l.rows, r)
	l.added++
}

// schedule returns the checkpoints as casework.Schedule takes them.
func (l *checkpointList) schedule() []casework.Checkpoint {
	out := make([]casework.Checkpoint, len(l.rows))
	for i, r := range l.rows {
		out[i] = casework.Checkpoint{Kind: casev1.CheckpointKind(r.kind), HeldOn: fromDay(r.heldOn)}
	}
	return out
}

func (l *checkpointList) flush(ctx context.Context, tx projections.Tx) error {
	for _, r := range l.rows[len(l.rows)-l.added:] {
		if _, err := tx.ExecContext(ctx, `INSERT INTO {checkpoints} (case_id, position, seq, kind, held_on) VALUES (?, ?, ?, ?, ?)`,
			r.caseID, r.position, r.seq, r.kind, r.heldOn); err != nil {
			return wrap(err, "insert checkpoint")
		}
	}
	return nil
}

// checkpointsOf returns a re-integration's checkpoints, read once per
// batch, in the order they were recorded.
func (b *batch) checkpointsOf(ctx context.Context, caseID string, seq int) (*checkpointList, error) {
	k := seqKey{caseID, seq}
	if l, ok := b.checkpoints[k]; ok {
		return l, nil
	}
	rows, err := b.tx.QueryContext(ctx, `SELECT position, kind, held_on FROM {checkpoints} WHERE case_id = ? AND seq = ? ORDER BY position`, caseID, seq)
	if err != nil {
		return nil, wrap(err, "read checkpoints")
	}
	defer rows.Close()
	l := &checkpointList{}
	for rows.Next() {
		r := checkpointRow{caseID: caseID, seq: seq}
		if err := rows.Scan(&r.position, &r.kind, &r.heldOn); err != nil {
			return nil, wrap(err, "read checkpoints")
		}
		l.rows = append(l.rows, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "read checkpoints")
	}
	b.checkpoints[k] = l
	b.touchSeq(k)
	return l, nil
}

// reclassificationRow is a row of {reclassifications}.
type reclassificationRow struct {
	caseID                           string
	position, recordedAt             int64
	tenant, organisation, department string
	occurredOn, from, to, reason     int
	repeatPair, repeatCase           int
}

// reclassificationList is a case's reclassifications: the moves from and
// to of all of them, and the rows the batch added.
type reclassificationList struct {
	moves [][2]int
	added []reclassificationRow
}

func (l *reclassificationList) flush(ctx context.Context, tx projections.Tx) error {
	for _, r := range l.added {
		_, err := tx.ExecContext(ctx, `INSERT INTO {reclassifications} (case_id, position, recorded_at, tenant_id,
			organisation_id, department, occurred_on, from_type, to_type, reason, repeat_pair, repeat_case)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.caseID, r.position, r.recordedAt, r.tenant, r.organisation, r.department, r.occurredOn,
			r.from, r.to, r.reason, r.repeatPair, r.repeatCase)
		if err != nil {
			return wrap(err, "insert reclassification")
		}
	}
	return nil
}

// reclassificationsOf returns a case's reclassifications, read once per
// batch.
func (b *batch) reclassificationsOf(ctx context.Context, caseID string) (*reclassificationList, error) {
	if l, ok := b.reclassifications[caseID]; ok {
		return l, nil
	}
	rows, err := b.tx.QueryContext(ctx, `SELECT from_type, to_type FROM {reclassifications} WHERE case_id = ?`, caseID)
	if err != nil {
		return nil, wrap(err, "read reclassifications")
	}
	defer rows.Close()
	l := &reclassificationList{}
	for rows.Next() {
		var m [2]int
		if err := rows.Scan(&m[0], &m[1]); err != nil {
			return nil, wrap(err, "read reclassifications")
		}
		l.moves = append(l.moves, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "read reclassifications")
	}
	b.reclassifications[caseID] = l
	b.reclassificationOrder = append(b.reclassificationOrder, caseID)
	return l, nil
}

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

var casesTable = newTable("cases", []string{"case_id"},
	[]string{"tenant_id", "organisation_id", "department", "context", "organisational_question", "birth_year",
		"opened_on", "question_type", "coach_id", "mobility_willingness", "mobility_capacity", "quadrant",
		"closed_on", "close_outcome", "outplacements", "reintegrations"})

func (r caseRow) keyValues() []any { return []any{r.caseID} }

func (r caseRow) values() []any {
	return []any{r.tenant, r.organisation, r.department, r.context, r.question, r.birthYear,
		r.openedOn, r.questionType, r.coach, r.willingness, r.capacity, r.quadrant,
		r.closedOn, r.closeOutcome, r.outplacements, r.reintegrations}
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

var outplacementsTable = newTable("outplacements", []string{"case_id", "seq"},
	[]string{"tenant_id", "organisation_id", "department", "started_on", "age_band", "furthest_phase",
		"outcome", "placed_on", "ended_on", "days_to_placement"})

func (r outplacementRow) keyValues() []any { return []any{r.caseID, r.seq} }

func (r outplacementRow) values() []any {
	return []any{r.tenant, r.organisation, r.department, r.startedOn, r.ageBand, r.phase,
		r.outcome, r.placedOn, r.endedOn, r.daysToPlacement}
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

var reintegrationsTable = newTable("reintegrations", []string{"case_id", "seq"},
	[]string{"tenant_id", "organisation_id", "department", "sick_reported_on", "second_track_on", "ended_on", "close_outcome", "end_category"})

func (r reintegrationRow) keyValues() []any { return []any{r.caseID, r.seq} }

func (r reintegrationRow) values() []any {
	return []any{r.tenant, r.organisation, r.department, r.sickReportedOn, r.secondTrackOn, r.endedOn, r.closeOutcome, r.endCategory}
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

var deadlinesTable = func() table {
	t := newTable("deadlines", []string{"case_id", "seq", "kind", "n"},
		[]string{"tenant_id", "organisation_id", "department", "opens", "due", "done_on", "status"})
	t.selectByReintegration = `SELECT known_from, kind, n, ` + strings.Join(t.cols, ", ") +
		` FROM {deadlines} WHERE case_id = ? AND seq = ? AND known_to = ?`
	return t
}()

func (r deadlineRow) keyValues() []any { return []any{r.caseID, r.seq, r.kind, r.n} }

func (r deadlineRow) values() []any {
	return []any{r.tenant, r.organisation, r.department, r.opens, r.due, r.doneOn, r.status}
}
