// Package relay carries the event store onto the NATS JetStream event
// stream: every stored event, in store order, exactly once — except the
// events of streams that Options.Skip names, which stay in the store alone.
//
// The relay keeps no checkpoint of its own. The destination is the
// checkpoint: at every (re)start it reads the last message on the JetStream
// stream, takes the store position from its Koers-Position header (0 for an
// empty stream) and subscribes to the store after it. It publishes each
// event as bus.Message builds it, asynchronously with a bounded window of
// unacknowledged publishes, and on any failure abandons the run, backs off
// and starts over from the stream's last message again.
//
// # Invariant
//
// The JetStream stream holds the store's events exactly once, in store
// order, as long as only relays of this store publish to it. Each message's
// Koers-Previous-Position names the event stored before it, so consumers
// can check that they saw every one.
//
// # Skipped streams
//
// Options.Skip keeps the events of some streams (the audit trail) off the
// bus. The invariant then holds for the published events: the stream holds
// exactly the store's events that Skip lets through, in store order, and
// Koers-Previous-Position names the last published event before each one
// (0 for the first), not the event stored just before it. A consumer
// checking the chain therefore sees no gap where skipped events were. A
// restart needs nothing more: the stream's last message is the last
// published event, and the skipped events after it are read and skipped
// again. Skip must give the same answer for a stream in every run of every
// relay of the store; a stream it starts to skip later leaves its earlier
// events on the bus, and one it stops skipping later is published from
// then on only.
//
// Pipelined publishes alone would not keep it: if the server restarts
// mid-flight, message N can be lost while N+1, buffered by the client, is
// stored after the reconnect, leaving a gap that resuming from the last
// message would never fill. So every publish is conditional: it carries the
// stream sequence the relay expects the stream to be at (JetStream's
// Nats-Expected-Last-Sequence), starting from the last message's sequence at
// resume and counting up by one per publish. The server stores a message
// only when the stream is at exactly that sequence, so by induction the
// message at sequence s+1 is always the store's successor of the message at
// s: once one publish fails, every later one of the run fails too, and no
// message lands after a hole. That holds even when two relays of the same
// store run at once, or an abandoned run's last publishes arrive after the
// next run began: a publish either extends the stream by the right event or
// is refused.
//
// An ack is accepted only when it names the sequence the relay expected
// the message to get. A duplicate ack (the event ID was already stored, in
// JetStream's duplicate window) is accepted only when it names that same
// sequence, meaning an earlier attempt already stored this event in its
// place (a clustered stream can answer so for a publish repeated across a
// reconnect). Any other ack, an error, or no ack within AckTimeout ends the
// run, and the next run re-reads the stream.
//
// Position moves back when the bus lost a suffix it had acknowledged (an OS
// crash under JetStream's default fsync interval): the next run finds the
// shorter stream and republishes the rest from the store. A stream that was
// purged is refilled from the store's first event, once JetStream has
// forgotten the purged message IDs (its duplicate window): until then it
// answers the republished events as duplicates of purged sequences, and the
// relay retries.
//
// Events larger than the server's max_payload cannot be published; the
// relay then retries with backoff and reports the error in Stats until the
// limit is raised. The embedded server allows bus.DefaultMaxPayload.
package relay

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

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
)

// Defaults for Options.
const (
	DefaultWindow         = 2048
	DefaultAckTimeout     = 10 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultMinBackoff     = 50 * time.Millisecond
	DefaultMaxBackoff     = 2 * time.Second
)

// Options tune a Relay. The zero value is the default.
type Options struct {
	// Stream is the JetStream stream to publish to; empty means
	// bus.DefaultStreamName. The relay does not create it (see
	// bus.EnsureEventStream); until it exists the relay retries.
	Stream string
	// Window caps the publishes awaiting their ack; 0 means DefaultWindow.
	// The rate cannot exceed Window divided by the ack latency, which on a
	// busy machine reaches tens of milliseconds. Keep it below the
	// JetStream context's PublishAsyncMaxPending (4,000 by default), which
	// would otherwise stall publishes.
	Window int
	// AckTimeout is how long the relay waits for the oldest ack before it
	// abandons the run; 0 means DefaultAckTimeout.
	AckTimeout time.Duration
	// RequestTimeout bounds each JetStream API request of a resume; 0
	// means DefaultRequestTimeout. A request sent as the server stops gets
	// no answer, so it must not wait forever.
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between runs; it doubles
	// after each run that relayed nothing and starts over after one that
	// did. Zero means DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives restarts and failures; nil means slog.Default().
	Logger *slog.Logger
	// Skip reports whether the events of a store stream stay off the bus
	// (see "Skipped streams" in the package doc); nil skips nothing. It is
	// called once per event, from one goroutine, and must be fast and
	// give the same answer for a stream every time.
	Skip func(stream string) bool
}

func (o Options) withDefaults() Options {
	if o.Stream == "" {
		o.Stream = bus.DefaultStreamName
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Relay publishes the events of a store on a JetStream stream.
type Relay struct {
	store eventstore.Store
	js    jetstream.JetStream
	opts  Options
	log   *slog.Logger

	position  atomic.Uint64
	read      atomic.Uint64
	published atomic.Uint64
	runs      atomic.Uint64

	mu      sync.Mutex
	lastErr error
}

// New returns a relay from store to the stream opts name on js. Run starts
// it.
//
// The relay abandons publishes it no longer waits for, and a JetStream
// context keeps a publish that is never answered among its pending ones;
// create js with jetstream.WithPublishAsyncTimeout so that such publishes
// are dropped rather than accumulate.
func New(store eventstore.Store, js jetstream.JetStream, opts Options) *Relay {
	opts = opts.withDefaults()
	return &Relay{
		store: store,
		js:    js,
		opts:  opts,
		log:   opts.Logger.With("component", "relay", "stream", opts.Stream),
	}
}

// ErrUnexpectedAck is wrapped by the error that ends a run when JetStream
// acknowledged a publish at another stream sequence than the relay
// expected, which a duplicate ack for an event stored elsewhere in the
// stream does.
var ErrUnexpectedAck = errors.New("relay: ack for an unexpected stream sequence")

// errFatal marks errors that retrying cannot cure: the store closed, or it
// yielded an event no store may hold.
var errFatal = errors.New("relay: cannot continue")

// Run relays until ctx is done, then returns nil. After a failure of NATS,
// JetStream or a store read it backs off and starts over from the stream's
// last message. It returns an error only when the store is closed or
// yields an event that cannot be published; that error wraps the cause.
func (r *Relay) Run(ctx context.Context) error {
	backoff := r.opts.MinBackoff
	for {
		before := r.Position()
		err := r.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errFatal) {
			r.setErr(err)
			r.log.Error("relay stopped", "err", err, "position", r.Position())
			return err
		}
		r.setErr(err)
		if r.Position() > before {
			backoff = r.opts.MinBackoff
		}
		// Jitter keeps relays of several processes from retrying in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		r.log.Warn("relay run ended; starting over from the stream's last message",
			"err", err, "position", r.Position(), "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, r.opts.MaxBackoff)
	}
}

// pending is a publish awaiting its ack, or a skipped event (ack nil),
// which counts as relayed once every publish before it is acknowledged.
type pending struct {
	ack      jetstream.PubAckFuture
	sequence uint64 // the stream sequence the message must get
	position eventstore.Position
}

// run relays from the stream's last message until the first failure or
// until ctx is done.
func (r *Relay) run(ctx context.Context) error {
	r.runs.Add(1)
	lastSeq, from, err := r.resumePoint(ctx)
	if err != nil {
		return err
	}
	r.position.Store(uint64(from))
	r.read.Store(uint64(from))
	r.log.Debug("relay resuming", "stream_sequence", lastSeq, "position", from)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The ack loop is owned by this run: it ends when the run's context
	// is cancelled or the publish loop closes inflight, and run waits for it.
	inflight := make(chan pending, r.opts.Window)
	acksDone := make(chan struct{})
	go func() {
		defer close(acksDone)
		if err := r.awaitAcks(ctx, inflight); err != nil {
			cancel(err)
		}
	}()

	err = r.publish(ctx, inflight, lastSeq, from)
	cancel(err)
	<-acksDone
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// resumePoint reads the stream's last sequence and the store position of
// the message at it.
func (r *Relay) resumePoint(ctx context.Context) (uint64, eventstore.Position, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	s, err := r.js.Stream(ctx, r.opts.Stream)
	if err != nil {
		return 0, 0, fmt.Errorf("relay: looking up stream %s: %w", r.opts.Stream, err)
	}
	state := s.CachedInfo().State
	if state.Msgs == 0 {
		// Empty, or purged: start from the store's first event, after
		// whatever sequence the stream has reached.
		return state.LastSeq, 0, nil
	}
	// By sequence, not "last for subject": the pair must be the message
	// at the very sequence the first publish will expect.
	msg, err := s.GetMsg(ctx, state.LastSeq)
	if err != nil {
		return 0, 0, fmt.Errorf("relay: reading the last message (sequence %d) of stream %s: %w", state.LastSeq, r.opts.Stream, err)
	}
	pos, err := bus.PositionOf(msg.Header)
	if err != nil {
		return 0, 0, fmt.Errorf("relay: last message (sequence %d) of stream %s was not published by a relay: %w", state.LastSeq, r.opts.Stream, err)
	}
	return state.LastSeq, pos, nil
}

// publish publishes the events after position from, each conditional on
// the stream sequence before it, starting at lastSeq. Events that
// Options.Skip names are passed to the ack loop unpublished, so that
// Position moves past them in order.
func (r *Relay) publish(ctx context.Context, inflight chan<- pending, lastSeq uint64, from eventstore.Position) error {
	defer close(inflight)
	previous := from // the last published event: skipped ones do not count
	for ev, err := range r.store.SubscribeAll(ctx, from) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, eventstore.ErrClosed) {
				return fmt.Errorf("%w: %w", errFatal, err)
			}
			return fmt.Errorf("relay: reading the store after position %d: %w", r.read.Load(), err)
		}
		if r.opts.Skip != nil && r.opts.Skip(ev.Stream) {
			select {
			case inflight <- pending{position: ev.Position}:
			case <-ctx.Done():
				return nil
			}
			r.read.Store(uint64(ev.Position))
			continue
		}
		msg, err := bus.Message(ev, previous)
		if err != nil {
			return fmt.Errorf("%w: %w", errFatal, err)
		}
		ack, err := r.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequence(lastSeq))
		if err != nil {
			return fmt.Errorf("relay: publishing position %d: %w", ev.Position, err)
		}
		lastSeq++
		select {
		case inflight <- pending{ack: ack, sequence: lastSeq, position: ev.Position}:
		case <-ctx.Done():
			return nil
		}
		r.read.Store(uint64(ev.Position))
		previous = ev.Position
	}
	return nil
}

// awaitAcks takes the publishes in order and checks each ack. It returns
// nil when inflight is closed or ctx is done, and the first bad ack's error
// otherwise.
func (r *Relay) awaitAcks(ctx context.Context, inflight <-chan pending) error {
	timer := time.NewTimer(r.opts.AckTimeout)
	defer timer.Stop()
	for {
		var p pending
		select {
		case <-ctx.Done():
			return nil
		case next, ok := <-inflight:
			if !ok {
				return nil
			}
			p = next
		}
		if p.ack == nil {
			// Skipped: relayed as soon as everything before it is.
			r.position.Store(uint64(p.position))
			continue
		}
		timer.Reset(r.opts.AckTimeout)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			return fmt.Errorf("relay: no ack for position %d within %s", p.position, r.opts.AckTimeout)
		case err := <-p.ack.Err():
			return fmt.Errorf("relay: publishing position %d: %w", p.position, err)
		case ack := <-p.ack.Ok():
			if ack.Sequence != p.sequence {
				return fmt.Errorf("%w: position %d acked at stream sequence %d (duplicate %t), expected %d",
					ErrUnexpectedAck, p.position, ack.Sequence, ack.Duplicate, p.sequence)
			}
			if !ack.Duplicate {
				r.published.Add(1)
			}
			r.position.Store(uint64(p.position))
		}
	}
}

// Position returns the store position up to which every event is known to
// be relayed: the last event the stream is known to hold (acknowledged by
// JetStream in this run, or found as the stream's last message when the run
// began), or a skipped event after it once everything before that is
// acknowledged. At the start of a run it falls back to the stream's last
// message, and moves past the skipped events after it as they are read
// again.
func (r *Relay) Position() eventstore.Position {
	return eventstore.Position(r.position.Load())
}

// Stats is a snapshot of a relay's progress, for metrics.
type Stats struct {
	// Position is what Position returns.
	Position eventstore.Position
	// Read is the position of the last event read from the store and
	// published (acknowledged or not) or skipped.
	Read eventstore.Position
	// Published counts the acks of messages JetStream stored as new since
	// New; skipped events are not published. A run abandoned with
	// publishes in flight does not read their acks, so messages it stored
	// may go uncounted.
	Published uint64
	// Runs counts runs started since New: 1 plus the restarts.
	Runs uint64
	// LastError is the error that ended the last failed run, nil if none
	// failed.
	LastError error
}

// Stats returns the relay's progress.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	lastErr := r.lastErr
	r.mu.Unlock()
	return Stats{
		Position:  r.Position(),
		Read:      eventstore.Position(r.read.Load()),
		Published: r.published.Load(),
		Runs:      r.runs.Load(),
		LastError: lastErr,
	}
}

// StoreHead is implemented by stores that know the position of their last
// committed event without a query, such as the SQLite store.
type StoreHead interface {
	Head() eventstore.Position
}

// Lag returns how many positions the stream is behind the store (store
// head minus Position), and false when the store does not implement
// StoreHead.
// Positions of stores that leave gaps overstate the number of events.
func (r *Relay) Lag() (uint64, bool) {
	h, ok := r.store.(StoreHead)
	if !ok {
		return 0, false
	}
	head, pos := h.Head(), r.Position()
	if head <= pos {
		return 0, true
	}
	return uint64(head - pos), true
}

func (r *Relay) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
}
