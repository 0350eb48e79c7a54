package kurrentdb

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/koers-io/koers/eventstore"
)

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts eventstore.ReadOptions) ([]eventstore.RecordedEvent, error) {
	op := fmt.Sprintf("read stream %q", stream)
	if opts.Limit < 0 {
		return nil, fmt.Errorf("kurrentdb: %s: limit %d is negative", op, opts.Limit)
	}
	return call(ctx, s, op, func(ctx context.Context) ([]eventstore.RecordedEvent, error) {
		if eventstore.ValidateStreamName(stream) != nil {
			// No append can have written it; an index stream is not one.
			return nil, eventstore.ErrStreamNotFound
		}
		ro := esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(opts.From)}
		if opts.Backwards {
			ro.Direction = esdb.Backwards
		}
		if opts.From == eventstore.StreamEnd {
			ro.From = esdb.End{}
		}
		count := uint64(math.MaxUint64)
		if opts.Limit > 0 {
			count = uint64(opts.Limit)
		}
		evs, found, err := s.read(ctx, s.serverName(stream), ro, count)
		switch {
		case err != nil:
			return nil, err
		case !found:
			return nil, eventstore.ErrStreamNotFound
		}
		out := make([]eventstore.RecordedEvent, len(evs))
		for i, ev := range evs {
			if out[i], err = s.toRecorded(ev.Event); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
}

// toRecorded turns an event the server sent into the port's. Its position
// is its commit position, which for every event written through gRPC
// equals its prepare position: see the package documentation.
func (s *Store) toRecorded(e *esdb.RecordedEvent) (eventstore.RecordedEvent, error) {
	if p := e.Position; p.Commit != p.Prepare || p.Commit == math.MaxUint64 {
		return eventstore.RecordedEvent{}, fmt.Errorf(
			"event %s of %q at revision %d has commit position %d and prepare position %d: "+
				"only an event committed by its own write (as every write through gRPC is) has one position",
			e.EventID, e.StreamID, e.EventNumber, p.Commit, p.Prepare)
	}
	data := e.Data
	if data == nil {
		data = []byte{} // the protocol does not tell empty from nil
	}
	return eventstore.RecordedEvent{
		ID:         e.EventID,
		Stream:     strings.TrimPrefix(e.StreamID, s.opts.Namespace),
		Type:       e.EventType,
		Data:       data,
		Metadata:   e.UserMetadata,
		Revision:   e.EventNumber,
		Position:   eventstore.Position(e.Position.Commit),
		RecordedAt: e.CreatedDate.UTC(),
	}, nil
}
