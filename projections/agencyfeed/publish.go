package agencyfeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
)

// Backoff between publish attempts.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// publisher publishes routed events on the agency stream, each at most
// once and in position order (see the package doc). It is safe for
// concurrent use: a live applier and a rebuild in one process share it,
// and it publishes for one of them at a time.
type publisher struct {
	js       jetstream.JetStream
	log      *slog.Logger
	timeout  time.Duration
	retryFor time.Duration

	mu sync.Mutex
	// synced says the fields below describe the stream's end; any failure
	// clears it, and the next publish reads the end again.
	synced bool
	stream jetstream.Stream
	// lastSeq is the stream's last sequence, which the next publish
	// expects; head and headSubject are the position and subject of the
	// message at it (0 and "" for an empty stream).
	lastSeq     uint64
	head        eventstore.Position
	headSubject string
	// previous caches, per agency filter, the position of the agency's
	// last message, read from the stream on first use.
	previous map[string]eventstore.Position
}

func newPublisher(opts Options) *publisher {
	return &publisher{
		js:       opts.JetStream,
		log:      opts.Logger.With("component", "agencyfeed"),
		timeout:  opts.RequestTimeout,
		retryFor: opts.RetryFor,
	}
}

// errPermanent marks failures that retrying cannot cure.
var errPermanent = errors.New("cannot be published")

// publish publishes ev, redacted, to each delivery in order, skipping the
// copies the stream already holds. It retries failures for up to
// retryFor.
func (p *publisher) publish(ctx context.Context, ev projections.Event, ds []delivery) error {
	id, err := uuid.Parse(ev.ID)
	if err != nil {
		return fmt.Errorf("%w: event ID %q: %v", errPermanent, ev.ID, err)
	}
	enc := proto.MarshalOptions{Deterministic: true}
	data, err := enc.Marshal(redacted(ev.Body))
	if err != nil {
		return fmt.Errorf("%w: encoding the redacted body: %v", errPermanent, err)
	}
	var meta []byte
	if ev.Metadata != nil {
		if meta, err = enc.Marshal(redacted(ev.Metadata)); err != nil {
			return fmt.Errorf("%w: encoding the metadata: %v", errPermanent, err)
		}
	}
	rec := eventstore.RecordedEvent{
		ID: id, Stream: ev.Stream, Type: ev.Type, Data: data, Metadata: meta,
		Revision: ev.Revision, Position: ev.Position, RecordedAt: ev.RecordedAt,
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	for i, d := range ds {
		if err := p.deliver(ctx, rec, d, i == 0); err != nil {
			return err
		}
	}
	return nil
}

// deliver publishes one copy, retrying with backoff.
func (p *publisher) deliver(ctx context.Context, rec eventstore.RecordedEvent, d delivery, first bool) error {
	deadline := time.Now().Add(p.retryFor)
	backoff := minBackoff
	for {
		err := p.deliverOnce(ctx, rec, d, first)
		if err == nil || errors.Is(err, errPermanent) {
			return err
		}
		p.synced = false
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("%w: publishing to %s: %w", ErrUnavailable, d.subject, err)
		}
		p.log.Warn("publishing to the agency feed failed; retrying",
			"position", rec.Position, "subject", d.subject, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// deliverOnce publishes one copy unless the stream holds it already.
func (p *publisher) deliverOnce(ctx context.Context, rec eventstore.RecordedEvent, d delivery, first bool) error {
	if !p.synced {
		if err := p.sync(ctx); err != nil {
			return err
		}
	}
	if !p.after(rec.Position, d.subject) {
		return nil
	}
	filter := bus.AgencyFilter(d.tenant, d.agency)
	prev, err := p.previousOf(ctx, filter)
	if err != nil {
		return err
	}
	if prev >= rec.Position {
		// Another applier published past the end this one knows.
		return fmt.Errorf("%s already holds position %d, at or past %d: the stream moved on", filter, prev, rec.Position)
	}
	msg, err := bus.Message(rec, prev)
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	msg.Subject = d.subject
	if !first {
		// JetStream would drop a second copy with the same ID as a
		// duplicate of the first.
		msg.Header.Del(nats.MsgIdHdr)
	}
	reqCtx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ack, err := p.js.PublishMsg(reqCtx, msg, jetstream.WithExpectLastSequence(p.lastSeq))
	if err != nil {
		return fmt.Errorf("publishing position %d to %s: %w", rec.Position, d.subject, err)
	}
	if ack.Stream != bus.AgencyStreamName || ack.Sequence != p.lastSeq+1 {
		return fmt.Errorf("position %d to %s acked as sequence %d of %s (duplicate %t), expected %d of %s",
			rec.Position, d.subject, ack.Sequence, ack.Stream, ack.Duplicate, p.lastSeq+1, bus.AgencyStreamName)
	}
	p.lastSeq = ack.Sequence
	p.head, p.headSubject = rec.Position, d.subject
	p.previous[filter] = rec.Position
	return nil
}

// after reports whether the copy of the event at position for subject
// comes after the stream's last message: copies of one event go out in
// subject order.
func (p *publisher) after(position eventstore.Position, subject string) bool {
	return position > p.head || position == p.head && subject > p.headSubject
}

// sync reads where the stream ends: its last sequence, and the position
// and subject of the message there.
func (p *publisher) sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	s, err := p.js.Stream(ctx, bus.AgencyStreamName)
	if err != nil {
		return fmt.Errorf("looking up stream %s: %w", bus.AgencyStreamName, err)
	}
	state := s.CachedInfo().State
	head, headSubject := eventstore.Position(0), ""
	if state.Msgs > 0 {
		// By sequence, so that the pair is the message at the very
		// sequence the next publish expects.
		m, err := s.GetMsg(ctx, state.LastSeq)
		if err != nil {
			return fmt.Errorf("reading the last message (sequence %d) of %s: %w", state.LastSeq, bus.AgencyStreamName, err)
		}
		if head, err = bus.PositionOf(m.Header); err != nil {
			return fmt.Errorf("last message (sequence %d) of %s was not published by the router: %w", state.LastSeq, bus.AgencyStreamName, err)
		}
		headSubject = m.Subject
	}
	p.stream, p.lastSeq, p.head, p.headSubject = s, state.LastSeq, head, headSubject
	p.previous = map[string]eventstore.Position{}
	p.synced = true
	return nil
}

// previousOf returns the position of the last message on filter, 0 when
// there is none.
func (p *publisher) previousOf(ctx context.Context, filter string) (eventstore.Position, error) {
	if pos, ok := p.previous[filter]; ok {
		return pos, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var pos eventstore.Position
	m, err := p.stream.GetLastMsgForSubject(ctx, filter)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return 0, fmt.Errorf("reading the last message on %s: %w", filter, err)
	default:
		if pos, err = bus.PositionOf(m.Header); err != nil {
			return 0, fmt.Errorf("last message on %s: %w", filter, err)
		}
	}
	p.previous[filter] = pos
	return pos, nil
}
