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
// Statements that write fail. The Tx implements Forker, for queries of the
// snapshot that run in parallel.
func (r *Reader) ReadTx(ctx context.Context, fn func(tx Tx) error) error {
	r.db.readStmts.preparePending(ctx)
	tx, err := r.db.read.BeginTx(ctx, r.readTxOptions())
	if err != nil {
		return fmt.Errorf("projections: begin a read: %w", err)
	}
	defer tx.Rollback()
	rt := &readTx{dbTx: newDBTx(r.db, tx, r.prefix, r.db.readStmts), r: r, tx: tx}
	defer rt.releaseForks()
	if err := fn(rt); err != nil {
		return err
	}
	return tx.Commit()
}

func (r *Reader) readTxOptions() *sql.TxOptions {
	opts := &sql.TxOptions{ReadOnly: true}
	if r.db.dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return opts
}

// Forker is implemented by the Tx of Reader.ReadTx. Fork opens another
// read-only transaction that reads the same snapshot, on a connection of
// its own, so that independent queries of one snapshot can run at the
// same time: the forked Tx and the one it came from may each be used by
// one goroutine at once. release ends the fork; the end of ReadTx ends
// those not released. When the snapshot cannot be shared, Fork returns an
// error wrapping ErrNoFork and the caller runs its queries on the Tx it
// has.
type Forker interface {
	Fork(ctx context.Context) (fork Tx, release func(), err error)
}

// ErrNoFork says that a read transaction's snapshot cannot be shared: on
// SQLite, the transaction ran a statement before the first Fork, or the
// read model changed since its snapshot was taken.
var ErrNoFork = errors.New("projections: the read transaction's snapshot cannot be shared")

// readTx is the Tx of Reader.ReadTx.
//
// PostgreSQL shares a snapshot outright (pg_export_snapshot). SQLite
// cannot, so a fork has to take its snapshot while the read model is
// unchanged since its parent took its own: every commit on the write
// connection moves db.commits to an odd number before and an even one
// after (a sequence lock), and two snapshots taken while it stayed at one
// even number are the same. The data folder's lock makes this process the
// only one that writes a SQLite read model; as a second check, parent and
// fork must read the same live generation and checkpoint.
type readTx struct {
	*dbTx
	r  *Reader
	tx *sql.Tx
	// pinned is set once the snapshot is known: for SQLite, taken at
	// commit count epoch with the live state at, for PostgreSQL exported
	// as snapshot.
	pinned   bool
	epoch    uint64
	at       liveState
	snapshot string
	// forks end the forks not released yet (ending one twice is safe).
	forks []func()
}

// liveState is what a SQLite snapshot says about the projection: its live
// generation and checkpoint (zero before it exists).
type liveState struct{ generation, position int64 }

// Fork implements Forker.
func (t *readTx) Fork(ctx context.Context) (Tx, func(), error) {
	if err := t.pin(ctx); err != nil {
		return nil, nil, err
	}
	conn, err := t.r.db.idleConn(ctx)
	if err != nil {
		return nil, nil, err
	}
	fork, err := conn.BeginTx(ctx, t.r.readTxOptions())
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("projections: begin a forked read: %w", err)
	}
	end := func() {
		fork.Rollback()
		conn.Close()
	}
	if err := t.join(ctx, fork); err != nil {
		end()
		return nil, nil, err
	}
	end = sync.OnceFunc(end)
	t.forks = append(t.forks, end)
	return newDBTx(t.r.db, fork, t.r.prefix, t.r.db.readStmts), end, nil
}

// forkWait bounds how long Fork waits for a connection: a fork only saves
// time, and the caller holds a connection of the same pool, so waiting
// long could deadlock readers that all want one more.
const forkWait = 20 * time.Millisecond

// idleConn returns a connection of the read pool when one is free or
// frees up within forkWait, or an error wrapping ErrNoFork.
func (db *DB) idleConn(ctx context.Context) (*sql.Conn, error) {
	if st := db.read.Stats(); st.MaxOpenConnections > 0 && st.InUse >= st.MaxOpenConnections {
		return nil, fmt.Errorf("%w: every connection is in use", ErrNoFork)
	}
	wctx, cancel := context.WithTimeout(ctx, forkWait)
	defer cancel()
	conn, err := db.read.Conn(wctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: no connection free: %v", ErrNoFork, err)
	}
	return conn, nil
}

// pin takes note of the transaction's snapshot, taking it first on SQLite.
func (t *readTx) pin(ctx context.Context) error {
	if t.pinned {
		return nil
	}
	if t.r.db.dialect == Postgres {
		if err := t.tx.QueryRowContext(ctx, "SELECT pg_export_snapshot()").Scan(&t.snapshot); err != nil {
			return fmt.Errorf("projections: export the read's snapshot: %w", err)
		}
		if !validSnapshotID(t.snapshot) {
			return fmt.Errorf("%w: PostgreSQL exported snapshot %q", ErrNoFork, t.snapshot)
		}
		t.pinned = true
		return nil
	}
	if t.ran {
		return fmt.Errorf("%w: it ran statements before", ErrNoFork)
	}
	epoch, at, err := t.r.takeSnapshot(ctx, t.tx)
	if err != nil {
		return err
	}
	t.pinned, t.epoch, t.at = true, epoch, at
	return nil
}

// join makes fork read the pinned snapshot.
func (t *readTx) join(ctx context.Context, fork *sql.Tx) error {
	if t.r.db.dialect == Postgres {
		if _, err := fork.ExecContext(ctx, "SET TRANSACTION SNAPSHOT '"+t.snapshot+"'"); err != nil {
			return fmt.Errorf("projections: share the read's snapshot: %w", err)
		}
		return nil
	}
	epoch, at, err := t.r.takeSnapshot(ctx, fork)
	switch {
	case errors.Is(err, ErrNoFork) || err == nil && (epoch != t.epoch || at != t.at):
		return fmt.Errorf("%w: the read model changed since the read began", ErrNoFork)
	case err != nil:
		return err
	}
	return nil
}

// takeSnapshot makes a SQLite read transaction take its snapshot, by
// reading the projection's live state, and returns the commit count it
// was taken at. It fails with ErrNoFork when a commit ran meanwhile.
func (r *Reader) takeSnapshot(ctx context.Context, tx *sql.Tx) (uint64, liveState, error) {
	before := r.db.commits.Load()
	var at liveState
	err := tx.QueryRowContext(ctx, r.db.q(`SELECT p.live_generation, g.position
		FROM koers_projections p
		JOIN koers_projection_generations g ON g.name = p.name AND g.generation = p.live_generation
		WHERE p.name = ?`), r.name).Scan(&at.generation, &at.position)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, at, fmt.Errorf("projections: reading the checkpoint of %s: %w", r.name, err)
	}
	if after := r.db.commits.Load(); after != before || before%2 != 0 {
		return 0, at, fmt.Errorf("%w: a commit ran while it began", ErrNoFork)
	}
	return before, at, nil
}

func (t *readTx) releaseForks() {
	for _, end := range t.forks {
		end()
	}
}

// validSnapshotID reports whether id looks like PostgreSQL's snapshot
// identifiers (hexadecimal digits and dashes), which Fork quotes into SQL.
func validSnapshotID(id string) bool {
	if id == "" {
		return false
	}
	for _, c := range id {
		if !(c == '-' || '0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
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
