package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
)

// startSequence returns the stream sequence of the first message whose
// position is after pos, or the sequence the next message will get when
// there is none. The relay publishes in store order, so positions grow
// with sequences and a binary search over the stream's headers finds it in
// a few dozen reads. scan starts at the stream's first message instead,
// for when the search cannot be trusted (the messages after a gap).
func startSequence(ctx context.Context, stream jetstream.Stream, pos eventstore.Position, scan bool) (uint64, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	st := info.State
	if st.Msgs == 0 {
		return st.LastSeq + 1, nil
	}
	if scan || pos == 0 {
		return st.FirstSeq, nil
	}
	lo, hi := st.FirstSeq, st.LastSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		p, err := positionAt(ctx, stream, mid)
		if err != nil {
			return 0, err
		}
		if p > pos {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

func positionAt(ctx context.Context, stream jetstream.Stream, seq uint64) (eventstore.Position, error) {
	m, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return 0, fmt.Errorf("reading stream message %d: %w", seq, err)
	}
	p, err := bus.PositionOf(m.Header)
	if err != nil {
		return 0, fmt.Errorf("stream message %d: %w", seq, err)
	}
	return p, nil
}

// StreamHead returns the position of the last event on the stream, 0 when
// it is empty.
func StreamHead(ctx context.Context, stream jetstream.Stream) (eventstore.Position, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("projections: stream info: %w", err)
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	p, err := positionAt(ctx, stream, info.State.LastSeq)
	if err != nil {
		return 0, fmt.Errorf("projections: stream head: %w", err)
	}
	return p, nil
}

// durablePrefix starts the names of the durable consumers of a projection
// kept in db: koers_projection_<name>_<db>_, where <db> is a hash of the
// database's identity, so that read models of one projection in two
// databases (a test setup, or a migration from SQLite to PostgreSQL) keep
// their consumers apart.
func (db *DB) durablePrefix(projection string) string {
	return fmt.Sprintf("koers_projection_%s_%08x_", projection, uint32(db.lockKey("consumer")))
}

// openDurable replaces the projection's durable pull consumer with a new
// one that delivers from stream sequence seq, and returns it.
//
// Each one gets a fresh name, and those of earlier holders are deleted
// first. A durable consumer cannot be moved, and one with unacknowledged
// messages would redeliver them out of order; a fresh name also keeps a
// former holder that has not yet noticed it lost the lease from taking
// messages off the new consumer with pull requests it still sends to the
// old name. The consumer is durable for as long as its holder runs: its
// position and acknowledgements survive reconnects and NATS restarts; the
// position that survives everything is the checkpoint in the database.
func (db *DB) openDurable(ctx context.Context, stream jetstream.Stream, projection string, seq uint64, maxPending int) (jetstream.Consumer, error) {
	prefix := db.durablePrefix(projection)
	names := stream.ConsumerNames(ctx)
	var old []string
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix) {
			old = append(old, name)
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("listing consumers: %w", err)
	}
	for _, name := range old {
		if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("deleting consumer %s: %w", name, err)
		}
	}
	name := prefix + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	c, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "Koers projection " + projection + ": its checkpoint is in the read-model database",
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   max(seq, 1),
		// One ack after each commit acknowledges the whole batch.
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       2 * time.Minute,
		MaxDeliver:    -1,
		MaxAckPending: maxPending,
		// Left behind by a holder nobody replaced.
		InactiveThreshold: 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s at sequence %d: %w", name, seq, err)
	}
	return c, nil
}

// openOrdered returns an ordered consumer delivering from sequence seq: a
// rebuild's, which needs no state on the server.
func openOrdered(ctx context.Context, stream jetstream.Stream, seq uint64) (jetstream.Consumer, error) {
	c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(seq, 1),
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("creating ordered consumer at sequence %d: %w", seq, err)
	}
	return c, nil
}

// feed pulls messages from a consumer into a buffer that batches are taken
// from. The consume callback runs on the client library's goroutine; Stop
// ends it.
type feed struct {
	cc   jetstream.ConsumeContext
	msgs chan message
	errs chan error
	done chan struct{}
	// buf backs the batches next returns, reused from one to the next.
	buf []message
}

func startFeed(c jetstream.Consumer, buffer int) (*feed, error) {
	f := &feed{
		msgs: make(chan message, buffer),
		errs: make(chan error, 1),
		done: make(chan struct{}),
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		select {
		case f.msgs <- newMessage(m):
		case <-f.done:
		}
	},
		jetstream.PullMaxMessages(buffer),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
				errors.Is(err, jetstream.ErrNoHeartbeat) {
				select {
				case f.errs <- err:
				default:
				}
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	f.cc = cc
	return f, nil
}

func (f *feed) stop() {
	close(f.done)
	f.cc.Stop()
}

// next returns the next batch: it waits up to idle for a first message,
// then takes what is buffered up to max, and when that is fewer than max
// waits up to linger for more. It returns an empty batch after idle
// without messages, so callers get a turn to look around. The batch is
// valid until the next call, which reuses its memory.
func (f *feed) next(ctx context.Context, max int, linger, idle time.Duration) ([]message, error) {
	clear(f.buf) // let the last batch's messages go
	if cap(f.buf) < max {
		f.buf = make([]message, 0, max)
	}
	batch := f.buf[:0]
	timer := time.NewTimer(idle)
	defer timer.Stop()
	select {
	case m := <-f.msgs:
		batch = append(batch, m)
	case err := <-f.errs:
		return nil, err
	case <-timer.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var deadline <-chan time.Time
	for len(batch) < max {
		select {
		case m := <-f.msgs:
			batch = append(batch, m)
			continue
		default:
		}
		if linger <= 0 {
			break
		}
		if deadline == nil {
			timer.Reset(linger)
			deadline = timer.C
		}
		select {
		case m := <-f.msgs:
			batch = append(batch, m)
			continue
		case <-deadline:
		case <-ctx.Done():
		}
		break
	}
	f.buf = batch
	return batch, nil
}
