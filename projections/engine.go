package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
)

// Defaults for Config. A live projection's batches are small (what
// arrives within Linger); the most events in one batch bounds those of a
// projection catching up. On SQLite (DefaultSQLiteMaxBatch) fewer, larger
// transactions write each page of the read model fewer times, which is
// most of a read model's catch-up rate. On PostgreSQL (DefaultMaxBatch)
// the pipeline already spares the round trips, and a row updated again
// and again in one transaction leaves a chain of versions each update
// walks, so batches stay smaller.
const (
	DefaultMaxBatch       = 1000
	DefaultSQLiteMaxBatch = 10000
	DefaultLinger         = 2 * time.Millisecond
	DefaultLeaseRetry     = 2 * time.Second
	DefaultLeaseCheck     = time.Second
	// headInterval is how often the engine reads the stream's head for the
	// lag metric.
	headInterval = 2 * time.Second
	// maxBackoff bounds the wait before a runner tries again after a
	// failure or a gap.
	maxBackoff = 5 * time.Second
	// batchTimeout bounds one batch transaction.
	batchTimeout = 2 * time.Minute
)

// Config is what an Engine needs.
type Config struct {
	// DB is the read-model database; the caller opens and closes it.
	DB *DB
	// JetStream reaches the event stream.
	JetStream jetstream.JetStream
	// Stream is the event stream's name; empty means bus.DefaultStreamName.
	Stream string
	// Projections are the read models to maintain.
	Projections []Projection
	// Logger receives the engine's logs; nil means slog.Default().
	Logger *slog.Logger
	// Metrics is where the engine registers its metrics; nil gives it a
	// registry of its own (see Engine.Metrics).
	Metrics *prometheus.Registry
	// MaxBatch is the most events applied in one transaction; 0 means
	// DefaultSQLiteMaxBatch on SQLite, DefaultMaxBatch on PostgreSQL. A
	// runner buffers up to twice as many decoded events.
	MaxBatch int
	// Linger is how long a batch that is not full waits for more events;
	// 0 means DefaultLinger, negative means not at all.
	Linger time.Duration
	// LeaseRetry is how often a standby (PostgreSQL) tries to take the
	// lease; LeaseCheck how often the holder checks it still has it. Zero
	// means the defaults.
	LeaseRetry, LeaseCheck time.Duration

	hooks *testHooks
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = bus.DefaultStreamName
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = prometheus.NewRegistry()
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = c.DB.defaultMaxBatch()
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.LeaseRetry <= 0 {
		c.LeaseRetry = DefaultLeaseRetry
	}
	if c.LeaseCheck <= 0 {
		c.LeaseCheck = DefaultLeaseCheck
	}
	return c
}

// Engine keeps projections up to date: one runner per projection, each
// applying the event stream through its durable consumer while it holds
// the projection's lease.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	runners map[string]*runner
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stop    sync.Once
}

// Start validates the projections and starts applying events; it returns
// once the runners are started, not when they have caught up (see
// DB.WaitForPosition). Runners that cannot reach NATS or the database yet
// keep retrying. Stop ends them.
func Start(ctx context.Context, cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.DB == nil:
		return nil, errors.New("projections: Start: no DB")
	case cfg.JetStream == nil:
		return nil, errors.New("projections: Start: no JetStream")
	}
	if err := validateAll(cfg.Projections); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &Engine{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "projections"),
		metrics: m,
		runners: map[string]*runner{},
		cancel:  cancel,
	}
	for _, p := range cfg.Projections {
		r := &runner{e: e, p: p, name: p.Name(), log: e.log.With("projection", p.Name())}
		e.runners[r.name] = r
		m.active.WithLabelValues(r.name).Set(0)
		e.wg.Go(func() { r.run(runCtx) })
	}
	e.wg.Go(func() { e.watchHead(runCtx) })
	return e, nil
}

// Stop ends the runners, letting each finish the batch it is applying,
// and waits for them. It is safe to call more than once.
func (e *Engine) Stop() {
	e.stop.Do(func() {
		e.cancel()
		e.wg.Wait()
	})
}

// Metrics is the registry holding the engine's metrics, for a /metrics
// endpoint.
func (e *Engine) Metrics() *prometheus.Registry { return e.cfg.Metrics }

// DB is the engine's read-model database.
func (e *Engine) DB() *DB { return e.cfg.DB }

// RunnerStats is what one runner of this process has done.
type RunnerStats struct {
	// Active is true while the runner holds the lease and applies events.
	Active bool
	// Applied counts the events this process applied (not duplicates,
	// unknown or parked ones).
	Applied uint64
	// Position is the checkpoint after this process's last batch.
	Position eventstore.Position
}

// Stats returns the runner stats of projection name in this process.
func (e *Engine) Stats(name string) (RunnerStats, bool) {
	r, ok := e.runners[name]
	if !ok {
		return RunnerStats{}, false
	}
	return RunnerStats{Active: r.active.Load(), Applied: r.applied.Load(), Position: eventstore.Position(r.position.Load())}, true
}

// watchHead keeps the stream head and lag metrics fresh while nothing
// else moves them.
func (e *Engine) watchHead(ctx context.Context) {
	t := time.NewTicker(headInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		reqCtx, cancel := context.WithTimeout(ctx, headInterval)
		stream, err := e.cfg.JetStream.Stream(reqCtx, e.cfg.Stream)
		var head eventstore.Position
		if err == nil {
			head, err = StreamHead(reqCtx, stream)
		}
		cancel()
		if err != nil {
			continue
		}
		e.metrics.head.Set(float64(head))
		for _, r := range e.runners {
			pos := eventstore.Position(r.position.Load())
			e.metrics.lag.WithLabelValues(r.name).Set(float64(lag(head, pos)))
		}
	}
}

func lag(head, pos eventstore.Position) uint64 {
	if head <= pos {
		return 0
	}
	return uint64(head - pos)
}

// runner applies one projection.
type runner struct {
	e    *Engine
	p    Projection
	name string
	log  *slog.Logger

	active   atomic.Bool
	applied  atomic.Uint64
	position atomic.Uint64
}

// run repeats sessions until ctx is done, backing off after failures.
func (r *runner) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		before := r.applied.Load()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if r.applied.Load() > before {
			backoff = 100 * time.Millisecond
		}
		r.log.Warn("projection runner stopped; retrying", "err", err, "retry_in", backoff)
		if !sleep(ctx, jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session takes the lease, makes the live generation current, and follows
// the stream until something fails or ctx is done.
func (r *runner) session(ctx context.Context) error {
	stream, err := r.e.cfg.JetStream.Stream(ctx, r.e.cfg.Stream)
	if err != nil {
		return fmt.Errorf("event stream %s: %w", r.e.cfg.Stream, err)
	}
	l, err := r.e.cfg.DB.acquireLease(ctx, "apply/"+r.name, r.e.cfg.LeaseRetry, r.e.cfg.LeaseCheck)
	if err != nil {
		return err
	}
	defer l.release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends when the session does
		select {
		case <-l.lost():
			r.log.Warn("lost the projection's lease; standing by")
			cancel()
		case <-ctx.Done():
		}
	}()
	r.active.Store(true)
	r.e.metrics.active.WithLabelValues(r.name).Set(1)
	defer func() {
		r.active.Store(false)
		r.e.metrics.active.WithLabelValues(r.name).Set(0)
	}()
	r.log.Debug("holding the projection's lease")

	if err := r.prepare(ctx, stream); err != nil {
		return err
	}
	scan := false
	backoff := 50 * time.Millisecond
	var lastGap *GapError
	for {
		err := r.follow(ctx, stream, scan)
		var gap *GapError
		if !errors.As(err, &gap) {
			return err
		}
		r.e.metrics.gaps.WithLabelValues(r.name).Inc()
		if lastGap != nil && lastGap.Checkpoint == gap.Checkpoint {
			// The same gap again: the binary search may have been misled
			// (positions out of order on the stream), so alternate with a
			// read of the whole stream, and wait longer for the relay.
			scan = !scan
			backoff = min(2*backoff, maxBackoff)
		} else {
			scan, backoff = false, 50*time.Millisecond
		}
		lastGap = gap
		r.log.Warn("gap in the event stream; going back to the checkpoint", "err", gap, "retry_in", backoff, "scan", scan)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
}

// prepare makes sure the projection has a live generation of this
// version: it creates the first one, or rebuilds when the stored version
// is older. A newer stored version means a newer process owns the
// projection; this one refuses to apply.
func (r *runner) prepare(ctx context.Context, stream jetstream.Stream) error {
	db := r.e.cfg.DB
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := db.ensureProjectionRow(ctx, tx, r.name); err != nil {
		return fmt.Errorf("registering the projection: %w", err)
	}
	live, ok, err := db.lockLive(ctx, tx, r.name)
	if err != nil {
		return fmt.Errorf("reading the live generation: %w", err)
	}
	switch {
	case !ok:
		n, err := db.nextGeneration(ctx, tx, r.name)
		if err != nil {
			return err
		}
		g, err := db.createGeneration(ctx, tx, r.p, n, stateLive)
		if err != nil {
			return err
		}
		if err := db.makeLive(ctx, tx, g, nil); err != nil {
			return err
		}
		if err := db.commit(tx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		r.log.Info("created the projection", "generation", n, "version", g.version)
		return nil
	case live.version == r.p.Version():
		tx.Rollback()
		r.position.Store(uint64(live.position))
		db.dropRetired(ctx, r.name, r.log)
		return nil
	case live.version > r.p.Version():
		return fmt.Errorf("%w: version %d is live and this process runs version %d; it leaves the projection to a newer process", ErrVersionChanged, live.version, r.p.Version())
	}
	tx.Rollback()
	r.log.Info("the projection's version changed; rebuilding it while the old generation keeps answering queries",
		"live_version", live.version, "version", r.p.Version(), "generation", live.number)
	return rebuild(ctx, r.e.cfg.DB, stream, r.p, rebuildOptions{
		maxBatch: r.e.cfg.MaxBatch,
		log:      r.log,
		progress: progressLogger(r.log, 10*time.Second),
		hooks:    r.e.cfg.hooks,
	})
}

// follow applies the stream from the live checkpoint through the durable
// consumer until an error or a gap.
func (r *runner) follow(ctx context.Context, stream jetstream.Stream, scan bool) error {
	db := r.e.cfg.DB
	checkpoint, err := db.livePosition(ctx, db.write, r.name)
	if err != nil {
		return err
	}
	seq, err := startSequence(ctx, stream, checkpoint, scan)
	if err != nil {
		return err
	}
	buffer := 2 * r.e.cfg.MaxBatch
	cons, err := db.openDurable(ctx, stream, r.name, seq, 4*buffer)
	if err != nil {
		return err
	}
	f, err := startFeed(cons, buffer)
	if err != nil {
		return err
	}
	defer f.stop()
	r.log.Debug("following the event stream", "checkpoint", checkpoint, "sequence", seq)
	hint := checkpoint
	for {
		batch, err := f.next(ctx, r.e.cfg.MaxBatch, r.e.cfg.Linger, time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("consuming: %w", err)
		}
		if len(batch) == 0 {
			continue
		}
		if hint, err = r.apply(ctx, batch, hint); err != nil {
			return err
		}
	}
}

// apply applies one batch to the live generation and acknowledges it.
// hint is a checkpoint known to be reached; batches entirely at or below
// it need no transaction.
func (r *runner) apply(ctx context.Context, batch []message, hint eventstore.Position) (eventstore.Position, error) {
	m := r.e.metrics
	last := batch[len(batch)-1].msg
	if allBefore(batch, hint) {
		m.events.WithLabelValues(r.name, "duplicate").Add(float64(len(batch)))
		last.Ack()
		return hint, nil
	}
	start := time.Now()
	db := r.e.cfg.DB
	t := target{p: r.p}
	applyCtx, cancel := db.batchContext(ctx)
	defer cancel()
	res, err := db.applyBatch(applyCtx, t, batch, false, r.e.cfg.hooks)
	if errors.Is(err, errCareful) {
		res, err = db.applyBatch(applyCtx, t, batch, true, r.e.cfg.hooks)
	}
	if err != nil {
		return hint, fmt.Errorf("applying a batch: %w", err)
	}
	if h := r.e.cfg.hooks; h != nil && h.afterCommit != nil && res.applied > 0 {
		h.afterCommit()
	}
	if res.consumed > 0 {
		batch[res.consumed-1].msg.Ack()
	}
	m.batches.WithLabelValues(r.name).Observe(time.Since(start).Seconds())
	for outcome, n := range map[string]int{"applied": res.applied, "duplicate": res.duplicates, "unknown": res.unknown, "dead_letter": res.parked, "malformed": res.malformed} {
		if n > 0 {
			m.events.WithLabelValues(r.name, outcome).Add(float64(n))
		}
	}
	pos := res.generation.position
	r.applied.Add(uint64(res.applied))
	r.position.Store(uint64(pos))
	m.position.WithLabelValues(r.name).Set(float64(pos))
	db.hub.notify(r.name)
	if res.parked > 0 {
		r.log.Warn("parked events whose Apply failed; see `koers projections status`", "events", res.parked, "position", pos)
	}
	if res.malformed > 0 {
		r.log.Error("skipped messages without usable positions; they are not Koers event messages", "messages", res.malformed)
	}
	if res.gap != nil {
		return pos, res.gap
	}
	return pos, nil
}

func allBefore(batch []message, hint eventstore.Position) bool {
	for _, m := range batch {
		if m.bad != nil || m.position > hint {
			return false
		}
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jitter keeps processes from retrying in step.
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }
