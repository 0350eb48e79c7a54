package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koers-io/koers/eventstore"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// appendRequest is one Append waiting for the writer.
type appendRequest struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedRevision
	events   []eventstore.EventData
	done     chan appendOutcome // buffered: the writer never waits for Append
}

type appendOutcome struct {
	result eventstore.AppendResult
	err    error
}

// maxPreparedInsert is the largest append, in events, whose INSERT statement
// the writer keeps prepared; larger ones are compiled when they come.
const maxPreparedInsert = 16

const insertColumns = "INSERT INTO events (position, stream, revision, id, type, data, metadata, recorded_at, append_end, append_index) VALUES "
const insertRow = "(?,?,?,?,?,?,?,?,?,?)"

// writer is the state of the writer goroutine: the only write connection,
// its statements, the revision cache and the last committed position. Nothing
// else touches it.
type writer struct {
	s    *Store
	conn *sql.Conn

	lastRevision *sql.Stmt // stream → its last revision
	findID       *sql.Stmt // event ID → where it was written
	inserts      [maxPreparedInsert + 1]*sql.Stmt

	cache *revisionCache
	head  int64 // last committed position

	// Per batch: the last revision of each stream the batch appended to,
	// published to the cache only once the batch commits.
	pending  map[string]uint64
	outcomes []appendOutcome
	args     []any
}

// prepareWriter creates the schema if needed and prepares the writer's
// statements on conn, which it owns from then on.
func (s *Store) prepareWriter(ctx context.Context, conn *sql.Conn) (*writer, error) {
	if err := migrate(ctx, conn); err != nil {
		return nil, err
	}
	w := &writer{
		s:        s,
		conn:     conn,
		cache:    newRevisionCache(s.opts.RevisionCacheSize),
		pending:  make(map[string]uint64),
		outcomes: make([]appendOutcome, 0, s.opts.MaxBatch),
	}
	var err error
	prepare := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = conn.PrepareContext(ctx, query)
		return st
	}
	w.lastRevision = prepare("SELECT revision FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1")
	w.findID = prepare("SELECT position, stream, revision, append_end, append_index FROM events WHERE id = ?")
	for n := 1; n <= maxPreparedInsert; n++ {
		w.inserts[n] = prepare(insertSQL(n))
	}
	if err != nil {
		w.closeStmts()
		return nil, fmt.Errorf("prepare writer: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(position), 0) FROM events").Scan(&w.head); err != nil {
		w.closeStmts()
		return nil, fmt.Errorf("read head: %w", err)
	}
	return w, nil
}

func insertSQL(n int) string {
	var b strings.Builder
	b.Grow(len(insertColumns) + n*(len(insertRow)+1))
	b.WriteString(insertColumns)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(insertRow)
	}
	return b.String()
}

func (w *writer) closeStmts() {
	for _, st := range append([]*sql.Stmt{w.lastRevision, w.findID}, w.inserts[:]...) {
		if st != nil {
			st.Close()
		}
	}
}

func (w *writer) close() {
	w.closeStmts()
	w.conn.Close()
}

// runWriter is the writer goroutine. It takes every append queued while the
// previous transaction committed, up to MaxBatch, into the next transaction:
// the busier the store, the more appends share one fsync. It returns when
// Close has closed the queue and every queued append is answered.
func (s *Store) runWriter(w *writer) {
	defer close(s.writerDone)
	defer w.close()
	batch := make([]*appendRequest, 0, s.opts.MaxBatch)
	for req := range s.queue {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if s.opts.beforeBatch != nil {
			s.opts.beforeBatch(len(batch))
		}
		w.commitBatch(batch)
		clear(batch)
	}
}

// commitBatch writes the appends of batch in one transaction and answers
// each. An append that conflicts is answered with its error and the others
// go on; an error of the database itself fails the whole batch.
func (w *writer) commitBatch(batch []*appendRequest) {
	ctx := context.Background()
	now := time.Now().UnixNano()
	clear(w.pending)
	w.outcomes = w.outcomes[:0]

	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		w.failBatch(batch, fmt.Errorf("begin: %w", err))
		return
	}
	next := w.head + 1
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			// The caller has gone; writing its events now would only
			// surprise it.
			w.outcomes = append(w.outcomes, appendOutcome{err: err})
			continue
		}
		out, written, err := w.appendOne(ctx, req, next, now)
		if err != nil {
			w.rollback(ctx)
			w.failBatch(batch, err)
			return
		}
		w.outcomes = append(w.outcomes, out)
		next += written
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		w.rollback(ctx)
		w.failBatch(batch, fmt.Errorf("commit: %w", err))
		return
	}

	w.s.commits.Add(1)
	for stream, rev := range w.pending {
		w.cache.put(stream, rev)
	}
	if next-1 != w.head {
		w.head = next - 1
		// Publish the head before answering: an appender that reads
		// Head after its append returns sees its own events.
		w.s.notifyCommitted(w.head)
		w.countWALFrames()
	}
	for i, req := range batch {
		req.done <- w.outcomes[i]
	}
}

// appendOne writes one append inside the batch's transaction, at global
// position next onwards. It returns the append's outcome and how many events
// it wrote; an error means the transaction itself is broken.
func (w *writer) appendOne(ctx context.Context, req *appendRequest, next, now int64) (appendOutcome, int64, error) {
	last, exists, err := w.currentRevision(ctx, req.stream)
	if err != nil {
		return appendOutcome{}, 0, fmt.Errorf("read revision of %q: %w", req.stream, err)
	}
	if !req.expected.Matches(last, exists) {
		// A retry is recognised whatever the stream's revision is now.
		out, known, err := w.findRetry(ctx, req)
		if err != nil || known {
			return out, 0, err
		}
		return appendOutcome{err: &eventstore.WrongRevisionError{
			Stream: req.stream, Expected: req.expected, Actual: last, Exists: exists,
		}}, 0, nil
	}

	first := uint64(0)
	if exists {
		first = last + 1
	}
	n := int64(len(req.events))
	end := next + n - 1
	args := w.args[:0]
	for i, e := range req.events {
		args = append(args,
			next+int64(i), req.stream, int64(first)+int64(i), e.ID[:], e.Type,
			e.Data, nullable(e.Metadata), now, end, i)
	}
	w.args = args
	// One statement per append: a statement that fails takes back all its
	// rows, so the append is atomic without a savepoint.
	if _, err := w.insert(ctx, len(req.events), args); err != nil {
		clear(args)
		if !isUniqueViolation(err) {
			return appendOutcome{}, 0, fmt.Errorf("insert into %q: %w", req.stream, err)
		}
		out, known, ferr := w.findRetry(ctx, req)
		if ferr != nil {
			return appendOutcome{}, 0, ferr
		}
		if !known {
			// Only an event ID may collide; anything else means the
			// writer's idea of the table is wrong.
			return appendOutcome{}, 0, fmt.Errorf("insert into %q: %w", req.stream, err)
		}
		return out, 0, nil
	}
	clear(args) // drop references to the caller's data
	lastRev := first + uint64(n) - 1
	w.pending[req.stream] = lastRev
	return appendOutcome{result: eventstore.AppendResult{Revision: lastRev, Position: eventstore.Position(end)}}, n, nil
}

func (w *writer) insert(ctx context.Context, n int, args []any) (sql.Result, error) {
	if n <= maxPreparedInsert {
		return w.inserts[n].ExecContext(ctx, args...)
	}
	return w.conn.ExecContext(ctx, insertSQL(n), args...)
}

// nullable stores nil metadata as NULL, so that it reads back as nil.
func nullable(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// currentRevision returns the last revision of stream as this transaction
// sees it: from the batch, the cache, or the table.
func (w *writer) currentRevision(ctx context.Context, stream string) (uint64, bool, error) {
	if rev, ok := w.pending[stream]; ok {
		return rev, true, nil
	}
	if rev, ok := w.cache.get(stream); ok {
		return rev, true, nil
	}
	var rev int64
	switch err := w.lastRevision.QueryRowContext(ctx, stream).Scan(&rev); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	// Not appended to in this batch, so what the table says is committed.
	w.cache.put(stream, uint64(rev))
	return uint64(rev), true, nil
}

// idHit is where an event ID was written.
type idHit struct {
	found       bool
	position    int64
	stream      string
	revision    int64
	appendEnd   int64
	appendIndex int
}

// findRetry looks up the event IDs of req. When none was written it returns
// known false. When all were written by exactly one earlier append to the
// same stream, in the same order, req is a retry: it returns that append's
// result. Otherwise it returns an error wrapping ErrDuplicateEventID.
func (w *writer) findRetry(ctx context.Context, req *appendRequest) (appendOutcome, bool, error) {
	hits := make([]idHit, len(req.events))
	known := false
	for i, e := range req.events {
		h := &hits[i]
		err := w.findID.QueryRowContext(ctx, e.ID[:]).Scan(&h.position, &h.stream, &h.revision, &h.appendEnd, &h.appendIndex)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return appendOutcome{}, false, fmt.Errorf("look up event %s: %w", e.ID, err)
		default:
			h.found, known = true, true
		}
	}
	if !known {
		return appendOutcome{}, false, nil
	}
	if err := retryMismatch(req, hits); err != nil {
		return appendOutcome{err: err}, true, nil
	}
	last := hits[len(hits)-1]
	return appendOutcome{result: eventstore.AppendResult{
		Revision: uint64(last.revision), Position: eventstore.Position(last.appendEnd),
	}}, true, nil
}

// retryMismatch says why the events of req, some of which were written, are
// not exactly one earlier append to the same stream; nil when they are.
func retryMismatch(req *appendRequest, hits []idHit) error {
	dup := func(i int, format string, args ...any) error {
		return fmt.Errorf("%w: event %d (%s) %s", eventstore.ErrDuplicateEventID, i, req.events[i].ID, fmt.Sprintf(format, args...))
	}
	for i, h := range hits {
		switch {
		case !h.found:
			return dup(i, "is new, but other events of the append were written before")
		case h.stream != req.stream:
			return dup(i, "was written to stream %q", h.stream)
		case h.appendEnd != hits[0].appendEnd:
			return dup(i, "was written by another append than event 0")
		case h.appendIndex != i:
			return dup(i, "was event %d of its append", h.appendIndex)
		}
	}
	if last := hits[len(hits)-1]; last.position != last.appendEnd {
		return dup(len(hits)-1, "was followed by more events in its append")
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

func (w *writer) rollback(ctx context.Context) {
	// SQLite may have rolled back already (after an I/O error, say); the
	// error of a second rollback says nothing new.
	_, _ = w.conn.ExecContext(ctx, "ROLLBACK")
}

// failBatch answers every append of batch with err and resynchronises the
// writer with the table: an error here may mean its state was wrong.
func (w *writer) failBatch(batch []*appendRequest, err error) {
	w.s.log.Error("sqlite event store: batch failed, nothing of it was written", "appends", len(batch), "err", err)
	err = fmt.Errorf("the transaction of %d appends failed, nothing of it was written: %w", len(batch), err)
	for _, req := range batch {
		req.done <- appendOutcome{err: err}
	}
	w.cache.reset()
	var head int64
	if herr := w.conn.QueryRowContext(context.Background(), "SELECT COALESCE(MAX(position), 0) FROM events").Scan(&head); herr != nil {
		w.s.log.Error("sqlite event store: reread head", "err", herr)
		return
	}
	w.head = head
}

// countWALFrames adds the pages the last commit wrote to the WAL to the
// checkpointer's count, and wakes it when the count passes its threshold.
func (w *writer) countWALFrames() {
	var frames int
	err := w.conn.Raw(func(dc any) error {
		st, ok := dc.(sqlite.DBStatus)
		if !ok {
			return fmt.Errorf("driver connection %T has no status counters", dc)
		}
		var err error
		frames, _, err = st.Status(sqlite.DBStatusCacheWrite, true)
		return err
	})
	if err != nil {
		// Without a count, let the checkpointer decide from the WAL.
		frames = w.s.opts.CheckpointFrames
	}
	if w.s.walFrames.Add(int64(frames)) >= int64(w.s.opts.CheckpointFrames) {
		select {
		case w.s.ckptKick <- struct{}{}:
		default:
		}
	}
}
