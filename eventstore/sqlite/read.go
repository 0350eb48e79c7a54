package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/koers-io/koers/eventstore"
)

// subscribePage is how many events a catch-up subscription reads per query.
// The page is read whole before any event is yielded, so a slow consumer
// holds neither a connection nor a WAL snapshot (which would keep the
// checkpointer from reaching the end of the WAL).
const subscribePage = 512

const eventColumns = "position, stream, revision, id, type, data, metadata, recorded_at"

// readStmts are the statements of the read pool, prepared once; database/sql
// prepares each again on every connection that runs it.
type readStmts struct {
	forwards   *sql.Stmt
	backwards  *sql.Stmt
	exists     *sql.Stmt
	byPosition *sql.Stmt
}

func prepareReads(ctx context.Context, db *sql.DB) (*readStmts, error) {
	r := &readStmts{}
	var err error
	prepare := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = db.PrepareContext(ctx, query)
		return st
	}
	r.forwards = prepare("SELECT " + eventColumns + " FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?")
	r.backwards = prepare("SELECT " + eventColumns + " FROM events WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?")
	r.exists = prepare("SELECT EXISTS (SELECT 1 FROM events WHERE stream = ?)")
	r.byPosition = prepare("SELECT " + eventColumns + " FROM events WHERE position > ? AND position <= ? ORDER BY position")
	if err != nil {
		r.close()
		return nil, fmt.Errorf("prepare reads: %w", err)
	}
	return r, nil
}

func (r *readStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{r.forwards, r.backwards, r.exists, r.byPosition} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// ReadStream implements eventstore.Store. It reads on a read-only connection
// and never waits for the writer.
func (s *Store) ReadStream(ctx context.Context, stream string, opts eventstore.ReadOptions) ([]eventstore.RecordedEvent, error) {
	events, err := s.readStream(ctx, stream, opts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read stream %q: %w", stream, err)
	}
	return events, nil
}

func (s *Store) readStream(ctx context.Context, stream string, opts eventstore.ReadOptions) ([]eventstore.RecordedEvent, error) {
	if opts.Limit < 0 {
		return nil, fmt.Errorf("limit %d is negative", opts.Limit)
	}
	if s.isClosing() {
		return nil, eventstore.ErrClosed
	}
	query := s.reads.forwards
	if opts.Backwards {
		query = s.reads.backwards
	}
	from := int64(min(opts.From, math.MaxInt64))
	limit := int64(opts.Limit)
	if limit == 0 {
		limit = -1 // SQLite: no limit
	}
	events, err := queryEvents(ctx, query, stream, from, limit)
	if err != nil {
		return nil, s.readErr(err)
	}
	if len(events) > 0 {
		return events, nil
	}
	// Nothing to read: either the stream is missing or the range is past
	// its end. Ask both again in one read transaction: apart, events
	// appended between the two queries could make an existing stream read
	// as empty from revision 0.
	return s.readEmpty(ctx, query, stream, from, limit)
}

func (s *Store) readEmpty(ctx context.Context, query *sql.Stmt, stream string, from, limit int64) ([]eventstore.RecordedEvent, error) {
	tx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.readErr(err)
	}
	defer tx.Rollback()
	var exists bool
	if err := tx.StmtContext(ctx, s.reads.exists).QueryRowContext(ctx, stream).Scan(&exists); err != nil {
		return nil, s.readErr(err)
	}
	if !exists {
		return nil, eventstore.ErrStreamNotFound
	}
	events, err := queryEvents(ctx, tx.StmtContext(ctx, query), stream, from, limit)
	if err != nil {
		return nil, s.readErr(err)
	}
	return events, nil
}

// readErr reports a read that failed because the store closed under it as
// ErrClosed.
func (s *Store) readErr(err error) error {
	if s.isClosing() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (%v)", eventstore.ErrClosed, err)
	}
	return err
}

// queryEvents runs query with args and returns the events it selects.
func queryEvents(ctx context.Context, query *sql.Stmt, args ...any) ([]eventstore.RecordedEvent, error) {
	return appendEvents(ctx, nil, query, args...)
}

// appendEvents runs query with args and appends the events it selects to
// events.
func appendEvents(ctx context.Context, events []eventstore.RecordedEvent, query *sql.Stmt, args ...any) ([]eventstore.RecordedEvent, error) {
	rows, err := query.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

func scanEvent(rows *sql.Rows) (eventstore.RecordedEvent, error) {
	var (
		e                  eventstore.RecordedEvent
		position, revision int64
		recordedAt         int64
		id                 []byte
	)
	// Scanning into *[]byte copies, so callers own the slices they get.
	if err := rows.Scan(&position, &e.Stream, &revision, &id, &e.Type, &e.Data, &e.Metadata, &recordedAt); err != nil {
		return e, err
	}
	var err error
	if e.ID, err = uuid.FromBytes(id); err != nil {
		return e, fmt.Errorf("event at position %d: stored ID: %w", position, err)
	}
	if e.Data == nil {
		e.Data = []byte{} // an empty blob may scan as nil; data is never nil
	}
	e.Position = eventstore.Position(position)
	e.Revision = uint64(revision)
	e.RecordedAt = time.Unix(0, recordedAt).UTC()
	return e, nil
}

// SubscribeAll implements eventstore.Store. It reads the events after after
// in pages by position, up to the last committed position, and then waits for
// the writer's signal of the next commit: a live append reaches subscribers
// as soon as it commits, with no polling. A position is yielded only once it
// is committed. The sequence ends with ctx's error when ctx ends, with
// eventstore.ErrClosed when the store closes, and after any read error.
func (s *Store) SubscribeAll(ctx context.Context, after eventstore.Position) iter.Seq2[eventstore.RecordedEvent, error] {
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		pos := int64(min(uint64(after), math.MaxInt64))
		// The page's array is reused: the consumer gets each event by
		// value, and the slices in it are the event's own.
		var page []eventstore.RecordedEvent
		for {
			// Load the signal before the head: a commit after the head
			// was read closes this very channel.
			committed := *s.committed.Load()
			head := int64(s.head.Load())
			if pos >= head {
				select {
				case <-committed:
					continue
				case <-ctx.Done():
					yield(eventstore.RecordedEvent{}, fmt.Errorf("sqlite: subscribe all: %w", ctx.Err()))
					return
				case <-s.closing:
					yield(eventstore.RecordedEvent{}, fmt.Errorf("sqlite: subscribe all: %w", eventstore.ErrClosed))
					return
				}
			}
			if err := ctx.Err(); err != nil {
				yield(eventstore.RecordedEvent{}, fmt.Errorf("sqlite: subscribe all: %w", err))
				return
			}
			if s.isClosing() {
				yield(eventstore.RecordedEvent{}, fmt.Errorf("sqlite: subscribe all: %w", eventstore.ErrClosed))
				return
			}
			upto := min(head, pos+subscribePage)
			var err error
			page, err = appendEvents(ctx, page[:0], s.reads.byPosition, pos, upto)
			if err != nil {
				yield(eventstore.RecordedEvent{}, fmt.Errorf("sqlite: subscribe all after position %d: %w", pos, s.readErr(err)))
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			// Positions are dense, so the page ends at upto; moving to
			// upto regardless keeps a hole from looping forever.
			pos = upto
		}
	}
}
