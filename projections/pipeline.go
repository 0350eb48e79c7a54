package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// execer is what the engine's statements run on: a *sql.Tx, or a
// pipelined PostgreSQL transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// pgPipeline is a PostgreSQL transaction whose Execs are queued and sent
// together, in one round trip, when a query needs their effect, a result
// is asked for, or the transaction commits. A batch of a thousand events
// then costs a few round trips instead of one per statement, which on
// loopback is the difference between a few thousand and tens of thousands
// of events a second.
//
// An Exec's error shows at the next flush: its Result (and the Exec's own
// return) cannot carry it. The batch applier therefore treats a failed
// flush as the failure of the batch, and applies it again with a
// savepoint per event, flushing after each one, which pins the error to
// its event.
type pgPipeline struct {
	conn    *sql.Conn
	batch   *pgx.Batch
	pending []*pipelineResult
	// err is the first error of a flush; the transaction is aborted until
	// a rollback to a savepoint clears it.
	err error
}

func (db *DB) beginPipeline(ctx context.Context) (*pgPipeline, error) {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		discard(conn)
		return nil, err
	}
	return &pgPipeline{conn: conn, batch: &pgx.Batch{}}, nil
}

func (p *pgPipeline) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if p.err != nil {
		return nil, p.err
	}
	p.batch.Queue(query, args...)
	r := &pipelineResult{p: p, ctx: ctx}
	p.pending = append(p.pending, r)
	return r, nil
}

func (p *pgPipeline) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.conn.QueryContext(ctx, query, args...)
}

// QueryRowContext flushes queued Execs first. *sql.Row cannot carry a
// flush error; the query then runs in the aborted transaction and fails
// with PostgreSQL's "current transaction is aborted", and p.err keeps the
// cause.
func (p *pgPipeline) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	p.flush(ctx)
	return p.conn.QueryRowContext(ctx, query, args...)
}

// flush sends the queued Execs and returns the first error.
func (p *pgPipeline) flush(ctx context.Context) error {
	if p.err != nil || len(p.pending) == 0 {
		return p.err
	}
	batch, pending := p.batch, p.pending
	p.batch, p.pending = &pgx.Batch{}, nil
	err := p.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("projections: PostgreSQL connection is a %T, not pgx's", dc)
		}
		br := c.Conn().SendBatch(ctx, batch)
		var first error
		for _, r := range pending {
			r.tag, r.err = br.Exec()
			r.done = true
			if r.err != nil && first == nil {
				first = r.err
			}
		}
		if err := br.Close(); err != nil && first == nil {
			first = err
		}
		return first
	})
	p.err = err
	return err
}

// rollbackTo rolls back to a savepoint, which ends the aborted state a
// failed statement left. Queued Execs are sent first, whatever they do:
// the savepoint itself may be among them, and so may the release of an
// earlier one, without which the rollback would go back too far.
func (p *pgPipeline) rollbackTo(ctx context.Context, savepoint string) error {
	p.flush(ctx)
	p.err = nil
	_, err := p.conn.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+savepoint)
	return err
}

func (p *pgPipeline) commit(ctx context.Context) error {
	if err := p.flush(ctx); err != nil {
		p.rollback()
		return err
	}
	if _, err := p.conn.ExecContext(ctx, "COMMIT"); err != nil {
		// Whether it committed is unknown; the connection is not reused.
		discard(p.conn)
		return err
	}
	return p.conn.Close()
}

func (p *pgPipeline) rollback() {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	if _, err := p.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		discard(p.conn)
		return
	}
	p.conn.Close()
}

// pipelineResult is a queued Exec's result, known after the flush that
// sent it; asking for it flushes.
type pipelineResult struct {
	p    *pgPipeline
	ctx  context.Context
	tag  pgconn.CommandTag
	err  error
	done bool
}

func (r *pipelineResult) LastInsertId() (int64, error) {
	return 0, errors.New("projections: LastInsertId is not supported by PostgreSQL; use RETURNING")
}

func (r *pipelineResult) RowsAffected() (int64, error) {
	if !r.done {
		if err := r.p.flush(r.ctx); err != nil && !r.done {
			return 0, err
		}
	}
	return r.tag.RowsAffected(), r.err
}
