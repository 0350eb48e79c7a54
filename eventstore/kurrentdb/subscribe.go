package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/koers-io/koers/eventstore"
)

// subscribeBuffer is how many events a subscription reads ahead of its
// consumer.
const subscribeBuffer = 256

// errBroken marks a subscription error that subscribing again cannot cure.
var errBroken = errors.New("kurrentdb: subscription to $all broken")

type item struct {
	ev  eventstore.RecordedEvent
	err error
}

// SubscribeAll implements eventstore.Store; the package documentation says
// how it resubscribes. It delivers the events of the streams whose names
// begin with one of Options.StreamPrefixes.
func (s *Store) SubscribeAll(ctx context.Context, after eventstore.Position) iter.Seq2[eventstore.RecordedEvent, error] {
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		var zero eventstore.RecordedEvent
		if !s.start() {
			yield(zero, fmt.Errorf("kurrentdb: subscribe to $all: %w", eventstore.ErrClosed))
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		items := make(chan item, subscribeBuffer)
		p := &pump{s: s, out: items, backoff: s.opts.MinBackoff}
		if after > 0 {
			p.from = esdb.Position{Commit: uint64(after), Prepare: uint64(after)}
			p.last, p.started = p.from, true
		}
		pctx, pcancel := context.WithCancel(ctx)
		stop := context.AfterFunc(s.base, pcancel)
		// The pump is owned by this sequence, which stops it on leaving;
		// Close waits for it through s.calls.
		go func() {
			defer s.calls.Done()
			defer stop()
			defer pcancel()
			p.run(pctx)
		}()
		for {
			select {
			case it := <-items:
				if it.err != nil {
					yield(zero, it.err)
					return
				}
				if !yield(it.ev, nil) {
					return
				}
			case <-s.closing:
				yield(zero, fmt.Errorf("kurrentdb: subscription to $all: %w", eventstore.ErrClosed))
				return
			case <-ctx.Done():
				yield(zero, fmt.Errorf("kurrentdb: subscription to $all: %w", ctx.Err()))
				return
			}
		}
	}
}

// pump keeps a subscription to $all going and sends its events on.
type pump struct {
	s   *Store
	out chan<- item
	// from is where to subscribe again: the position of the last event or
	// checkpoint received, once started.
	from    esdb.Position
	started bool
	// last is the position of the last event received.
	last     esdb.Position
	failures int // drops in a row with nothing received in between
	backoff  time.Duration
}

// run subscribes, and subscribes again after each drop from where the last
// subscription got, until ctx ends, the drops in a row exceed
// Options.ResubscribeAttempts, or the server sends something no store may.
func (p *pump) run(ctx context.Context) {
	s := p.s
	filter := s.filter()
	for {
		opts := esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: filter}
		if p.started {
			opts.From = p.from
		}
		sub, err := s.client.SubscribeToAll(ctx, opts)
		if err == nil {
			err = p.consume(ctx, sub)
			sub.Close()
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errBroken):
			p.send(ctx, item{err: err})
			return
		}
		p.failures++
		if p.failures > s.opts.ResubscribeAttempts {
			p.send(ctx, item{err: fmt.Errorf("kurrentdb: subscription to $all dropped %d times in a row: %w", p.failures, err)})
			return
		}
		s.log.Warn("subscription to $all dropped; subscribing again from where it got",
			"err", err, "commit", p.from.Commit, "prepare", p.from.Prepare, "attempt", p.failures, "retry_in", p.backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.backoff):
		}
		p.backoff = min(2*p.backoff, s.opts.MaxBackoff)
	}
}

// consume sends on the events of sub until it drops, and returns why.
func (p *pump) consume(ctx context.Context, sub *esdb.Subscription) error {
	for {
		msg := sub.Recv()
		switch {
		case msg.EventAppeared != nil:
			e := msg.EventAppeared.OriginalEvent()
			if p.started && !before(p.last, e.Position) {
				return fmt.Errorf("%w: the server sent position %+v after %+v", errBroken, e.Position, p.last)
			}
			p.received(e.Position)
			p.last = e.Position
			if p.s.internal(e.StreamID) {
				continue
			}
			rec, err := p.s.toRecorded(e)
			if err != nil {
				return fmt.Errorf("%w: %w", errBroken, err)
			}
			if !p.send(ctx, item{ev: rec}) {
				return ctx.Err()
			}
		case msg.CheckPointReached != nil:
			// Every event up to a checkpoint has been considered by the
			// server's filter: subscribing again from it skips no event.
			if !p.started || before(p.from, *msg.CheckPointReached) {
				p.received(*msg.CheckPointReached)
			}
		case msg.SubscriptionDropped != nil:
			return msg.SubscriptionDropped.Error
		}
	}
}

// received moves the resume point to pos and resets the count of drops.
func (p *pump) received(pos esdb.Position) {
	p.from, p.started = pos, true
	p.failures, p.backoff = 0, p.s.opts.MinBackoff
}

func (p *pump) send(ctx context.Context, it item) bool {
	select {
	case p.out <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// before reports whether position a comes before b in $all: by commit
// position, then prepare position.
func before(a, b esdb.Position) bool {
	return a.Commit < b.Commit || (a.Commit == b.Commit && a.Prepare < b.Prepare)
}

// filter is the server-side filter of SubscribeAll: the namespace followed
// by each stream prefix. Every stream of an empty namespace is every
// stream whose name does not begin with $.
func (s *Store) filter() *esdb.SubscriptionFilter {
	ns := s.opts.Namespace
	prefixes := make([]string, 0, len(s.opts.StreamPrefixes))
	for _, p := range s.opts.StreamPrefixes {
		if p == "" {
			if ns == "" {
				return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: "^[^$]"}
			}
			return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{ns}}
		}
		prefixes = append(prefixes, ns+p)
	}
	return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: prefixes}
}

// internal reports whether a stream on the server is one of the adapter's
// event-ID index streams, which a filter matching every stream lets
// through.
func (s *Store) internal(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, s.opts.Namespace), indexPrefix)
}
