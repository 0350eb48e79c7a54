package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
)

// Progress says how far a rebuild is.
type Progress struct {
	Projection string
	// Generation is the generation being built.
	Generation int64
	// Position is the rebuild's checkpoint.
	Position eventstore.Position
	// Target is the earliest position at which the rebuild can swap in:
	// the stream head when it started, or the live checkpoint when that is
	// further.
	Target eventstore.Position
	// Applied counts the events applied so far.
	Applied uint64
	// Done is set in the last report, after the swap.
	Done bool
}

// RebuildConfig is what Rebuild needs.
type RebuildConfig struct {
	// DB is the read-model database.
	DB *DB
	// JetStream reaches the event stream.
	JetStream jetstream.JetStream
	// Stream is the event stream's name; empty means bus.DefaultStreamName.
	Stream string
	// Projection is the projection to rebuild, at the version that will be
	// live afterwards.
	Projection Projection
	// Logger receives the rebuild's logs; nil means slog.Default().
	Logger *slog.Logger
	// Progress, when set, is called after each batch and once at the end.
	Progress func(Progress)
	// MaxBatch is the most events applied in one transaction; 0 means
	// the engine's default for the database (see Config.MaxBatch).
	MaxBatch int
}

// Rebuild builds a fresh generation of a projection from the first event
// on the stream while the live generation keeps answering queries, and
// swaps the views to it in one transaction once it has reached both the
// stream head it saw at the start and the live checkpoint. A live applier
// in this or another process goes on from the new generation's checkpoint
// with its next batch: every batch transaction reads the live generation
// under the lock the swap takes. The old generation's tables are dropped
// after the swap.
//
// Starting a rebuild abandons one of the same projection still in
// progress: that one ends with ErrRebuildAbandoned.
func Rebuild(ctx context.Context, cfg RebuildConfig) error {
	if cfg.DB == nil || cfg.JetStream == nil || cfg.Projection == nil {
		return errors.New("projections: Rebuild: DB, JetStream and Projection are required")
	}
	if err := validate(cfg.Projection); err != nil {
		return err
	}
	if cfg.Stream == "" {
		cfg.Stream = bus.DefaultStreamName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	stream, err := cfg.JetStream.Stream(ctx, cfg.Stream)
	if err != nil {
		return fmt.Errorf("projections: event stream %s: %w", cfg.Stream, err)
	}
	return rebuild(ctx, cfg.DB, stream, cfg.Projection, rebuildOptions{
		maxBatch: cfg.MaxBatch,
		log:      cfg.Logger.With("component", "projections", "projection", cfg.Projection.Name()),
		progress: cfg.Progress,
	})
}

// Rebuild rebuilds projection name of this engine; see the package
// function Rebuild.
func (e *Engine) Rebuild(ctx context.Context, name string, progress func(Progress)) error {
	r, ok := e.runners[name]
	if !ok {
		return fmt.Errorf("projections: no projection %q in this engine", name)
	}
	return Rebuild(ctx, RebuildConfig{
		DB: e.cfg.DB, JetStream: e.cfg.JetStream, Stream: e.cfg.Stream,
		Projection: r.p, Logger: e.cfg.Logger, Progress: progress, MaxBatch: e.cfg.MaxBatch,
	})
}

type rebuildOptions struct {
	maxBatch int
	log      *slog.Logger
	progress func(Progress)
	hooks    *testHooks
}

// rebuilder is one rebuild in progress.
type rebuilder struct {
	db     *DB
	stream jetstream.Stream
	p      Projection
	o      rebuildOptions
	gen    int64
	// head is the stream head when the rebuild started: it swaps in no
	// earlier.
	head eventstore.Position
	prog Progress

	// pending is set inside the batch transaction that swaps; swapped
	// once that transaction committed.
	pending, swapped bool
	// On PostgreSQL a swap waits until no query holds a snapshot older
	// than the generation's last commit (see settle): ready says the
	// generation reached the live checkpoint at readyPos in transaction
	// readyXID, settled that the wait is over for that position.
	ready    bool
	readyPos eventstore.Position
	readyXID int64
	settled  bool
}

func rebuild(ctx context.Context, db *DB, stream jetstream.Stream, p Projection, o rebuildOptions) error {
	if o.maxBatch <= 0 {
		o.maxBatch = db.defaultMaxBatch()
	}
	name := p.Name()
	head, err := StreamHead(ctx, stream)
	if err != nil {
		return err
	}
	g, err := db.startGeneration(ctx, p)
	if err != nil {
		return fmt.Errorf("projections: %s: starting a rebuild: %w", name, err)
	}
	o.log.Info("rebuilding", "generation", g.number, "stream_head", head)
	rb := &rebuilder{db: db, stream: stream, p: p, o: o, gen: g.number, head: head,
		prog: Progress{Projection: name, Generation: g.number, Target: head}}
	if err := rb.run(ctx); err != nil {
		return fmt.Errorf("projections: %s: rebuild of generation %d: %w", name, g.number, err)
	}
	db.hub.notify(name)
	db.dropRetired(ctx, name, o.log)
	rb.prog.Done = true
	if o.progress != nil {
		o.progress(rb.prog)
	}
	o.log.Info("rebuilt and swapped in", "generation", g.number, "position", rb.prog.Position, "applied", rb.prog.Applied)
	return nil
}

// run follows the stream until the swap, going back to the checkpoint
// after a gap.
func (rb *rebuilder) run(ctx context.Context) error {
	var lastGap *GapError
	scan := false
	for !rb.swapped {
		err := rb.follow(ctx, scan)
		var gap *GapError
		switch {
		case err == nil:
		case errors.As(err, &gap):
			scan = lastGap != nil && lastGap.Checkpoint == gap.Checkpoint && !scan
			lastGap = gap
			rb.o.log.Warn("gap in the event stream; going back to the rebuild's checkpoint", "err", gap)
			if !sleep(ctx, time.Second) {
				return ctx.Err()
			}
		default:
			return err
		}
	}
	return nil
}

// afterApply runs in each batch transaction of the rebuild, after its
// checkpoint was stored: it swaps the generation in once it has reached
// the stream head seen at the start and the live checkpoint.
func (rb *rebuilder) afterApply(ctx context.Context, tx execer, g generation) error {
	if g.position < rb.head {
		return nil
	}
	live, ok, err := rb.db.lockLive(ctx, tx, rb.p.Name())
	if err != nil {
		return fmt.Errorf("reading the live generation: %w", err)
	}
	if ok && live.position > g.position {
		rb.prog.Target = live.position
		return nil
	}
	if rb.db.dialect == Postgres && !(rb.settled && rb.readyPos == g.position) {
		rb.ready, rb.readyPos = true, g.position
		return tx.QueryRowContext(ctx, "SELECT txid_current()").Scan(&rb.readyXID)
	}
	var old *generation
	if ok {
		old = &live
	}
	if err := rb.db.makeLive(ctx, tx, g, old); err != nil {
		return fmt.Errorf("swapping in generation %d: %w", g.number, err)
	}
	rb.pending = true
	return nil
}

// settleTimeout bounds the wait for old snapshots before a swap.
const settleTimeout = 10 * time.Second

// settle waits until no other PostgreSQL session of this database holds a
// snapshot that may predate transaction xid, the rebuild's last commit.
//
// Why: PostgreSQL takes a statement's snapshot before it resolves view
// names, and a statement that waits for the swap's lock on a view resolves
// it afterwards, to the new generation's tables, yet reads them with its
// old snapshot. Were the new generation written after that snapshot, the
// statement would see it half-built. Once every snapshot includes the
// rebuild's last commit, and the swap itself writes no rows of the new
// generation, such a statement sees it complete. Long-running queries
// bound the wait at settleTimeout, after which the swap goes ahead.
func (db *DB) settle(ctx context.Context, xid int64, log *slog.Logger) error {
	deadline := time.Now().Add(settleTimeout)
	for {
		var older int
		err := db.write.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND datname = current_database() AND backend_xmin IS NOT NULL
			AND age(backend_xmin) >= age((($1::bigint) % 4294967296)::text::xid)`, xid).Scan(&older)
		if err != nil {
			return fmt.Errorf("looking for old snapshots: %w", err)
		}
		if older == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			log.Warn("swapping in while sessions still hold older snapshots; a query among them may see the new generation incomplete", "sessions", older)
			return nil
		}
		if !sleep(ctx, 5*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// dropRetired drops the tables of name's retired generations. It is
// cleanup only: failing, it logs, and the next start or rebuild retries.
func (db *DB) dropRetired(ctx context.Context, name string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err := db.inTx(ctx, func(tx *sql.Tx) error { return db.dropGenerations(ctx, tx, name, stateRetired, 0) })
	if err != nil {
		log.Warn("dropping the tables of retired generations failed; the next start retries", "err", err)
	}
}

// startGeneration abandons rebuilds in progress and creates the tables and
// row of a new generation to build.
func (db *DB) startGeneration(ctx context.Context, p Projection) (g generation, err error) {
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.ensureProjectionRow(ctx, tx, p.Name()); err != nil {
			return err
		}
		// Serializes with other starts and swaps.
		if _, _, err := db.lockLive(ctx, tx, p.Name()); err != nil {
			return err
		}
		if err := db.dropGenerations(ctx, tx, p.Name(), stateBuilding, 0); err != nil {
			return err
		}
		n, err := db.nextGeneration(ctx, tx, p.Name())
		if err != nil {
			return err
		}
		g, err = db.createGeneration(ctx, tx, p, n, stateBuilding)
		return err
	})
	return g, err
}

// follow applies the stream to the generation through an ordered consumer
// from its checkpoint, until the swap, an error or a gap.
func (rb *rebuilder) follow(ctx context.Context, scan bool) error {
	db, o := rb.db, rb.o
	t := target{p: rb.p, rebuild: rb.gen, afterApply: rb.afterApply}
	var checkpoint eventstore.Position
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		g, ok, err := db.lockGeneration(ctx, tx, rb.p.Name(), rb.gen)
		if err == nil && (!ok || g.state != stateBuilding) {
			err = ErrRebuildAbandoned
		}
		checkpoint = g.position
		return err
	})
	if err != nil {
		return err
	}
	seq, err := startSequence(ctx, rb.stream, checkpoint, scan)
	if err != nil {
		return err
	}
	cons, err := openOrdered(ctx, rb.stream, seq)
	if err != nil {
		return err
	}
	f, err := startFeed(cons, 2*o.maxBatch)
	if err != nil {
		return err
	}
	defer f.stop()
	for !rb.swapped {
		var batch []message
		if rb.ready {
			// Caught up on PostgreSQL: wait out older snapshots, then try
			// the swap in a transaction that writes no rows of the
			// generation.
			if err := db.settle(ctx, rb.readyXID, o.log); err != nil {
				return err
			}
			rb.ready, rb.settled = false, true
		} else if batch, err = f.next(ctx, o.maxBatch, 0, 250*time.Millisecond); err != nil {
			return err
		}
		batchCtx, cancel := db.batchContext(ctx)
		res, err := db.applyBatch(batchCtx, t, batch, false, o.hooks)
		if errors.Is(err, errCareful) {
			res, err = db.applyBatch(batchCtx, t, batch, true, o.hooks)
		}
		cancel()
		if err != nil {
			rb.pending, rb.ready = false, false
			return err
		}
		rb.swapped = rb.pending
		prog := &rb.prog
		prog.Position = res.generation.position
		prog.Applied += uint64(res.applied)
		if prog.Target < prog.Position {
			prog.Target = prog.Position
		}
		if o.progress != nil && !rb.swapped {
			o.progress(*prog)
		}
		if res.gap != nil {
			return res.gap
		}
	}
	return nil
}
