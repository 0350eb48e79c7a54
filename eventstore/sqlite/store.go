// Package sqlite is the embedded event store: an eventstore.Store in one
// SQLite file, written through modernc.org/sqlite (pure Go, no cgo).
//
// One writer goroutine owns the only write connection. Appends queue on the
// store's own channel, and the writer commits up to Options.MaxBatch of them
// in one transaction (group commit), so many appends share one fsync. An
// append that conflicts fails alone; the others in its batch commit. Global
// positions are assigned by the writer and are dense: 1, 2, 3, …
//
// The journal is a WAL with synchronous=FULL, so an acknowledged append
// survives an OS crash. Checkpoints run on a connection of their own, off the
// writer's path. Reads (ReadStream, SubscribeAll) use a pool of read-only
// connections and never wait for the writer.
//
// A database file belongs to one Store at a time: the writer keeps the last
// revision of recently written streams in memory, so a second writer on the
// same file (another process) would go unnoticed. Callers hold a lock on the
// data folder.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/koers-io/koers/eventstore"
)

// Defaults for the zero values of Options.
const (
	DefaultRevisionCacheSize = 50_000
	DefaultMaxBatch          = 256
	DefaultCheckpointFrames  = 1000
)

// Options tune a Store. The zero value of each field means its default.
type Options struct {
	// RevisionCacheSize bounds how many streams the writer remembers the
	// last revision of; a stream not remembered costs one index lookup on
	// its next append. Default DefaultRevisionCacheSize.
	RevisionCacheSize int
	// MaxBatch is the most appends committed in one transaction. Default
	// DefaultMaxBatch.
	MaxBatch int
	// CheckpointFrames is how many WAL frames (pages) the writer may add
	// before the background checkpointer copies them into the database
	// file. Default DefaultCheckpointFrames, SQLite's own default.
	CheckpointFrames int
	// ReadConns caps the read-only connections used by ReadStream and
	// SubscribeAll. Default: the number of CPUs, at least 4.
	ReadConns int
	// Logger receives the store's warnings. Default slog.Default().
	Logger *slog.Logger

	// beforeBatch, set by tests only, is called by the writer with each
	// batch it is about to commit.
	beforeBatch func(size int)
}

func (o Options) withDefaults() Options {
	if o.RevisionCacheSize <= 0 {
		o.RevisionCacheSize = DefaultRevisionCacheSize
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.CheckpointFrames <= 0 {
		o.CheckpointFrames = DefaultCheckpointFrames
	}
	if o.ReadConns <= 0 {
		o.ReadConns = max(4, runtime.NumCPU())
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Store is the embedded SQLite event store. It implements eventstore.Store.
type Store struct {
	opts Options
	log  *slog.Logger

	writeDB *sql.DB // one connection, owned by the writer goroutine
	readDB  *sql.DB // read-only pool for ReadStream and SubscribeAll
	ckptDB  *sql.DB // one connection, owned by the checkpointer goroutine
	reads   *readStmts

	// mu guards closed and the sends on queue: Close takes it exclusively,
	// so no Append is between its check and its send when queue closes.
	mu     sync.RWMutex
	closed bool
	queue  chan *appendRequest

	// closing is closed by Close; subscribers and the checkpointer stop.
	closing chan struct{}
	// writerDone and ckptDone are closed when their goroutines return.
	writerDone chan struct{}
	ckptDone   chan struct{}
	closeOnce  sync.Once
	closeErr   error

	// head is the last committed position. The writer stores it after each
	// commit, before it closes *committed, so a subscriber that loads the
	// channel first and head second never misses a commit.
	head      atomic.Uint64
	committed atomic.Pointer[chan struct{}]

	// walFrames counts WAL frames written since the last checkpoint; ckptKick
	// wakes the checkpointer when it passes opts.CheckpointFrames.
	walFrames   atomic.Int64
	ckptKick    chan struct{}
	checkpoints atomic.Int64 // checkpoints run, for tests and diagnostics
	commits     atomic.Int64 // transactions committed, for tests and diagnostics
}

// Open opens the event store in the database file at path, creating the file
// and its schema when they do not exist, and starts the writer and the
// checkpointer. Close releases them.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	s := &Store{
		opts:       opts,
		log:        opts.Logger,
		queue:      make(chan *appendRequest, opts.MaxBatch),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		ckptDone:   make(chan struct{}),
		ckptKick:   make(chan struct{}, 1),
	}
	first := make(chan struct{})
	s.committed.Store(&first)

	w, err := s.openDatabases(path)
	if err != nil {
		s.closeDatabases()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.head.Store(uint64(w.head))
	go s.runWriter(w)
	go s.runCheckpointer()
	return s, nil
}

// Head returns the position of the last committed event, 0 when the store is
// empty.
func (s *Store) Head() eventstore.Position {
	return eventstore.Position(s.head.Load())
}

// Close stops accepting appends, lets the queued ones commit, stops the
// checkpointer and closes the database. Appends that arrive after Close
// started fail with eventstore.ErrClosed; subscriptions end with it. Calling
// Close again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.queue)
		close(s.closing)
		s.mu.Unlock()

		<-s.writerDone
		<-s.ckptDone
		s.closeErr = s.closeDatabases()
	})
	return s.closeErr
}

// isClosing reports whether Close has started.
func (s *Store) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Append implements eventstore.Store. The append is queued for the writer and
// Append waits for its commit. When ctx ends first, Append returns ctx's
// error, and the append may still commit: a retry with the same event IDs is
// recognised.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("sqlite: append to %q: %w", stream, err)
	}
	req := &appendRequest{
		ctx:      ctx,
		stream:   stream,
		expected: expected,
		events:   events,
		done:     make(chan appendOutcome, 1),
	}
	if err := s.enqueue(ctx, req); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("sqlite: append to %q: %w", stream, err)
	}
	select {
	case out := <-req.done:
		if out.err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("sqlite: append to %q: %w", stream, out.err)
		}
		return out.result, nil
	case <-ctx.Done():
		return eventstore.AppendResult{}, fmt.Errorf("sqlite: append to %q: %w", stream, ctx.Err())
	}
}

// enqueue hands req to the writer. Blocked senders on a Go channel are served
// in arrival order, so a full queue makes appends wait their turn, fairly.
func (s *Store) enqueue(ctx context.Context, req *appendRequest) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	select {
	case s.queue <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notifyCommitted publishes a new head to subscribers: it stores the head,
// then closes the channel they wait on and puts a fresh one in its place.
func (s *Store) notifyCommitted(head int64) {
	s.head.Store(uint64(head))
	next := make(chan struct{})
	prev := s.committed.Swap(&next)
	close(*prev)
}

// closeDatabases closes whatever Open managed to open. The write database
// closes last: the last connection to close checkpoints the WAL into the
// database file and removes it.
func (s *Store) closeDatabases() error {
	var errs []error
	if s.reads != nil {
		errs = append(errs, s.reads.close())
	}
	for _, db := range []*sql.DB{s.readDB, s.ckptDB, s.writeDB} {
		if db != nil {
			if err := db.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}
