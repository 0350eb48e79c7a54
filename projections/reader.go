package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/koers-io/koers/eventstore"
)

// pollInterval is how often WaitForPosition reads the checkpoint when no
// engine in this process tells it about commits.
const pollInterval = 20 * time.Millisecond

// Reader queries one projection's live generation through its views:
// {table} in a query becomes <projection>_<table>, and ? placeholders are
// rewritten for the dialect, as in Apply. It is safe for concurrent use.
type Reader struct {
	db     *DB
	name   string
	prefix string
}

// Reader returns a Reader of projection name.
func (db *DB) Reader(name string) *Reader {
	return &Reader{db: db, name: name, prefix: viewPrefix(name)}
}

// Dialect says which database the queries run on.
func (r *Reader) Dialect() Dialect { return r.db.dialect }

// QueryContext runs a query against the projection's views.
func (r *Reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := r.db.rw.rewrite(r.prefix, query)
	if st := r.db.readStmts.get(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.db.read.QueryContext(ctx, q, args...)
}

// QueryRowContext runs a query that returns at most one row against the
// projection's views.
func (r *Reader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	q := r.db.rw.rewrite(r.prefix, query)
	if st := r.db.readStmts.get(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.db.read.QueryRowContext(ctx, q, args...)
}

// ReadTx runs fn in a read-only transaction, so that all its queries see
// one snapshot of the projection (which a rebuild's swap does not tear).
// Statements that write fail.
func (r *Reader) ReadTx(ctx context.Context, fn func(tx Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if r.db.dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := r.db.read.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("projections: begin a read: %w", err)
	}
	defer tx.Rollback()
	if err := fn(newDBTx(r.db, tx, r.prefix)); err != nil {
		return err
	}
	return tx.Commit()
}

// Position returns the projection's checkpoint: every event up to it is
// reflected in the views. It is 0 before the projection exists.
func (r *Reader) Position(ctx context.Context) (eventstore.Position, error) {
	return r.db.livePosition(ctx, r.db.read, r.name)
}

// WaitForPosition waits until the projection's checkpoint reaches pos, or
// ctx is done; see DB.WaitForPosition.
func (r *Reader) WaitForPosition(ctx context.Context, pos eventstore.Position) error {
	return r.db.WaitForPosition(ctx, r.name, pos)
}

// WaitForPosition waits until projection's checkpoint reaches pos (read
// your writes: pos is the position a command's append returned), or ctx is
// done, when it returns an error wrapping ctx.Err(). An engine running on
// this DB in the same process wakes it at each commit; otherwise it reads
// the checkpoint every 20 ms.
func (db *DB) WaitForPosition(ctx context.Context, projection string, pos eventstore.Position) error {
	var timer *time.Timer
	for {
		changed := db.hub.changed(projection)
		have, err := db.livePosition(ctx, db.read, projection)
		if err != nil {
			return err
		}
		if have >= pos {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(pollInterval)
			defer timer.Stop()
		} else {
			timer.Reset(pollInterval)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("projections: %s is at position %d, waiting for %d: %w", projection, have, pos, ctx.Err())
		case <-changed:
		case <-timer.C:
		}
	}
}

// livePosition reads the live generation's checkpoint through pool.
func (db *DB) livePosition(ctx context.Context, pool *sql.DB, name string) (eventstore.Position, error) {
	var pos int64
	err := pool.QueryRowContext(ctx, db.q(`SELECT g.position
		FROM koers_projections p
		JOIN koers_projection_generations g ON g.name = p.name AND g.generation = p.live_generation
		WHERE p.name = ?`), name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("projections: reading the checkpoint of %s: %w", name, err)
	}
	return eventstore.Position(pos), nil
}

// hub tells waiters in this process that a projection's live checkpoint
// moved: each projection has a channel that is closed and replaced at
// every commit.
type hub struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func (h *hub) changed(name string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ch == nil {
		h.ch = map[string]chan struct{}{}
	}
	c, ok := h.ch[name]
	if !ok {
		c = make(chan struct{})
		h.ch[name] = c
	}
	return c
}

func (h *hub) notify(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.ch[name]; ok {
		close(c)
		delete(h.ch, name)
	}
}
