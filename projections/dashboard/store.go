package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// The dashboard's tables as a batch sees them: a case's row, checkpoints
// and deadlines are read the first time an event of the batch needs them,
// changed in memory by the batch's events, and written in Flush. The
// result is what applying the events one by one would leave.

// batch is a batch of events being applied (see NewBatch).
type batch struct {
	p  *Projection
	tx projections.Tx

	cases     map[string]*caseState
	caseOrder []string
	// checkpoints and deadlines are kept per case, for the running
	// re-integration.
	checkpoints map[string]*checkpointList
	deadlines   map[string]*deadlineList
	// detailOrder lists the cases with checkpoints or deadlines in the
	// batch, in the order first touched.
	detailOrder       []string
	reclassifications []reclassificationRow
}

func (p *Projection) newBatch(tx projections.Tx) *batch {
	return &batch{
		p: p, tx: tx,
		cases:       map[string]*caseState{},
		checkpoints: map[string]*checkpointList{},
		deadlines:   map[string]*deadlineList{},
	}
}

// caseState is a case's row as the batch has it: stored is the row in the
// database (nil for a case the batch opens), row the row now.
type caseState struct {
	stored *caseRow
	row    caseRow
}

// open adds a case the event at hand opens. A case already in the
// database is refused when Flush inserts it.
func (b *batch) open(row caseRow) error {
	if _, ok := b.cases[row.caseID]; ok {
		return errors.New("the case was opened before")
	}
	b.cases[row.caseID] = &caseState{row: row}
	b.caseOrder = append(b.caseOrder, row.caseID)
	return nil
}

// caseOf returns the case's row, read once per batch.
func (b *batch) caseOf(ctx context.Context, caseID string) (*caseState, error) {
	if c, ok := b.cases[caseID]; ok {
		return c, nil
	}
	var r caseRow
	err := r.scan(b.tx.QueryRowContext(ctx, selectCase, caseID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, errors.New("the case was never opened in the read model (its CaseOpened is missing)")
	case err != nil:
		return nil, wrap(err, "load case")
	}
	stored := r
	c := &caseState{stored: &stored, row: r}
	b.cases[caseID] = c
	b.caseOrder = append(b.caseOrder, caseID)
	return c, nil
}

var (
	caseColumnList = strings.Split(caseColumns, ",")
	selectCase     = `SELECT ` + caseColumns + ` FROM {cases} WHERE case_id = ?`
	insertCase     = `INSERT INTO {cases} (` + caseColumns + `) VALUES (` + placeholders(len(caseColumnList)) + `)`
)

// flushCase writes a case's row: a new one whole, a stored one's changed
// columns only, since SQLite rewrites an index entry for every indexed
// column an UPDATE sets, changed or not.
func (b *batch) flushCase(ctx context.Context, c *caseState) error {
	if c.stored == nil {
		_, err := b.tx.ExecContext(ctx, insertCase, c.row.values()...)
		return wrap(err, "insert case")
	}
	old, now := c.stored.values(), c.row.values()
	var sets []string
	var args []any
	for i := 1; i < len(caseColumnList); i++ {
		if old[i] != now[i] {
			sets = append(sets, strings.TrimSpace(caseColumnList[i])+" = ?")
			args = append(args, now[i])
		}
	}
	if len(sets) == 0 {
		return nil
	}
	_, err := b.tx.ExecContext(ctx, `UPDATE {cases} SET `+strings.Join(sets, ", ")+` WHERE case_id = ?`, append(args, c.row.caseID)...)
	return wrap(err, "update case")
}

// touchDetails notes that the batch holds a case's checkpoints or
// deadlines.
func (b *batch) touchDetails(caseID string) {
	_, c := b.checkpoints[caseID]
	_, d := b.deadlines[caseID]
	if !c && !d {
		b.detailOrder = append(b.detailOrder, caseID)
	}
}

// checkpointRow is a row of {checkpoints}.
type checkpointRow struct {
	position     int64
	kind, heldOn int
}

// checkpointList is a case's checkpoints as the batch has them: rows as a
// read would return them now, whether the stored ones are to go, and
// which rows to insert.
type checkpointList struct {
	rows    []checkpointRow
	cleared bool
	added   int
}

func (l *checkpointList) add(r checkpointRow) {
	l.rows = append(l.rows, r)
	l.added++
}

// schedule returns the checkpoints as casework.Schedule takes them.
func (l *checkpointList) schedule() []casework.Checkpoint {
	var out []casework.Checkpoint
	for _, r := range l.rows {
		out = append(out, casework.Checkpoint{Kind: casev1.CheckpointKind(r.kind), HeldOn: fromDay(r.heldOn)})
	}
	return out
}

// checkpointsOf returns the case's checkpoints, read once per batch in the
// order they were recorded.
func (b *batch) checkpointsOf(ctx context.Context, caseID string) (*checkpointList, error) {
	if l, ok := b.checkpoints[caseID]; ok {
		return l, nil
	}
	rows, err := b.tx.QueryContext(ctx, `SELECT position, kind, held_on FROM {checkpoints} WHERE case_id = ? ORDER BY position`, caseID)
	if err != nil {
		return nil, wrap(err, "read checkpoints")
	}
	defer rows.Close()
	l := &checkpointList{}
	for rows.Next() {
		var r checkpointRow
		if err := rows.Scan(&r.position, &r.kind, &r.heldOn); err != nil {
			return nil, wrap(err, "read checkpoints")
		}
		l.rows = append(l.rows, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "read checkpoints")
	}
	b.touchDetails(caseID)
	b.checkpoints[caseID] = l
	return l, nil
}

// deadlineList is a case's schedule as the batch has it: when replaced,
// Flush deletes the stored rows and inserts rows.
type deadlineList struct {
	replaced bool
	rows     []casework.Deadline
}

func (l *deadlineList) set(deadlines []casework.Deadline) {
	l.replaced, l.rows = true, deadlines
}

// schedule returns the case's deadlines to replace.
func (b *batch) schedule(caseID string) *deadlineList {
	if l, ok := b.deadlines[caseID]; ok {
		return l
	}
	b.touchDetails(caseID)
	l := &deadlineList{}
	b.deadlines[caseID] = l
	return l
}

// clearSchedule removes the case's checkpoints and deadlines.
func (b *batch) clearSchedule(caseID string) {
	b.schedule(caseID).set(nil)
	l, ok := b.checkpoints[caseID]
	if !ok {
		b.touchDetails(caseID)
		l = &checkpointList{}
		b.checkpoints[caseID] = l
	}
	*l = checkpointList{cleared: true}
}

func (b *batch) flushDetails(ctx context.Context, caseID string) error {
	if l := b.checkpoints[caseID]; l != nil {
		if l.cleared {
			if _, err := b.tx.ExecContext(ctx, `DELETE FROM {checkpoints} WHERE case_id = ?`, caseID); err != nil {
				return wrap(err, "clear checkpoints")
			}
		}
		for _, r := range l.rows[len(l.rows)-l.added:] {
			if _, err := b.tx.ExecContext(ctx, `INSERT INTO {checkpoints} (case_id, position, kind, held_on) VALUES (?, ?, ?, ?)`,
				caseID, r.position, r.kind, r.heldOn); err != nil {
				return wrap(err, "insert checkpoint")
			}
		}
	}
	if l := b.deadlines[caseID]; l != nil && l.replaced {
		if _, err := b.tx.ExecContext(ctx, `DELETE FROM {deadlines} WHERE case_id = ?`, caseID); err != nil {
			return wrap(err, "clear deadlines")
		}
		if err := writeSchedule(ctx, b.tx, caseID, l.rows); err != nil {
			return err
		}
	}
	return nil
}

func writeSchedule(ctx context.Context, tx projections.Tx, caseID string, deadlines []casework.Deadline) error {
	if len(deadlines) == 0 {
		return nil
	}
	var sb strings.Builder
	args := make([]any, 0, 7*len(deadlines))
	sb.WriteString(`INSERT INTO {deadlines} (case_id, seq, kind, week, opens, due, done_on) VALUES `)
	for i, d := range deadlines {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, caseID, i, int(d.Kind), d.Week, day(d.Opens), day(d.Due), day(d.DoneOn))
	}
	_, err := tx.ExecContext(ctx, sb.String(), args...)
	return wrap(err, "insert deadlines")
}

// reclassificationRow is a row of {reclassifications}.
type reclassificationRow struct {
	caseID                       string
	position, recordedAt         int64
	occurredOn, from, to, reason int
}

// Flush writes the batch's changes.
func (b *batch) Flush(ctx context.Context) error {
	for _, id := range b.caseOrder {
		if err := b.flushCase(ctx, b.cases[id]); err != nil {
			return err
		}
	}
	for _, id := range b.detailOrder {
		if err := b.flushDetails(ctx, id); err != nil {
			return err
		}
	}
	for _, r := range b.reclassifications {
		if _, err := b.tx.ExecContext(ctx, `INSERT INTO {reclassifications}
			(case_id, position, occurred_on, recorded_at, from_type, to_type, reason) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.caseID, r.position, r.occurredOn, r.recordedAt, r.from, r.to, r.reason); err != nil {
			return wrap(err, "insert reclassification")
		}
	}
	return nil
}
