package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// indexPrefix begins the name of each event ID's index stream, after the
// namespace. Its space keeps it apart from every stream name the port
// allows (eventstore.ValidateStreamName refuses spaces).
const indexPrefix = "koers-eventid "

// Event types of the index streams.
const (
	claimedType  = "koers.eventstore.EventIDClaimed"
	releasedType = "koers.eventstore.EventIDReleased"
)

// releaseTimeout bounds the release of claims after a failed append, which
// runs even when the append's caller has gone.
const releaseTimeout = 5 * time.Second

// claim is what an index stream says about its event ID: that an append of
// Count events to Stream, expecting the stream at revision Expected (-1:
// no stream), holds it as its event number Index. Append identifies the
// append by its stream and all its event IDs in order, so that a retry of
// the same append is recognised.
type claim struct {
	Stream   string `json:"stream"`
	Expected int64  `json:"expected"`
	Append   string `json:"append"`
	Index    int    `json:"index"`
	Count    int    `json:"count"`
}

// first is the revision the claim's append puts its first event at.
func (c claim) first() uint64 { return uint64(c.Expected + 1) }

// indexEntry is the last event of an index stream.
type indexEntry struct {
	revision uint64
	released bool
	claim    claim
}

func (s *Store) indexStream(id uuid.UUID) string {
	return s.opts.Namespace + indexPrefix + id.String()
}

// writeIndex appends a claim, or a release when c is nil, to id's index
// stream if the stream is at expected. It reports false, and writes
// nothing, when the stream is elsewhere.
func (s *Store) writeIndex(ctx context.Context, id uuid.UUID, expected esdb.ExpectedRevision, c *claim) (uint64, bool, error) {
	typ, data := releasedType, []byte("{}")
	if c != nil {
		typ = claimedType
		var err error
		if data, err = json.Marshal(c); err != nil {
			return 0, false, fmt.Errorf("encoding the claim on event ID %s: %w", id, err)
		}
	}
	wr, err := s.client.AppendToStream(ctx, s.indexStream(id), esdb.AppendToStreamOptions{ExpectedRevision: expected},
		esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: data})
	if code, ok := esdbCode(err); ok && code == esdb.ErrorCodeWrongExpectedVersion {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("writing the index of event ID %s: %w", id, err)
	}
	return wr.NextExpectedVersion, true, nil
}

// readIndex returns the last entry of id's index stream, and false when
// the stream has none.
func (s *Store) readIndex(ctx context.Context, id uuid.UUID) (indexEntry, bool, error) {
	evs, err := s.readLast(ctx, s.indexStream(id))
	if err != nil || len(evs) == 0 {
		return indexEntry{}, false, err
	}
	e := evs[0].Event
	entry := indexEntry{revision: e.EventNumber, released: e.EventType == releasedType}
	if !entry.released {
		if err := json.Unmarshal(e.Data, &entry.claim); err != nil {
			return indexEntry{}, false, fmt.Errorf("the index of event ID %s holds an unreadable claim at revision %d: %w", id, e.EventNumber, err)
		}
	}
	return entry, true, nil
}

// release ends claims a failed append wrote, so that their IDs are free
// again, as far as nobody changed them since. It runs even when ctx has
// ended, for a while, since a claim left behind keeps its ID from other
// appends until the stream it names moves past it.
func (s *Store) release(ctx context.Context, held map[uuid.UUID]uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	defer context.AfterFunc(s.base, cancel)()
	for id, rev := range held {
		if _, _, err := s.writeIndex(ctx, id, esdb.Revision(rev), nil); err != nil {
			s.log.Warn("could not release the claim of a failed append on an event ID", "event_id", id, "err", err)
		}
	}
}

// readLast reads the last event of a stream on the server: none when the
// stream has no events.
func (s *Store) readLast(ctx context.Context, name string) ([]*esdb.ResolvedEvent, error) {
	evs, _, err := s.read(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	return evs, err
}

// read reads up to count events of a stream on the server, and reports
// false when the stream has none at all.
func (s *Store) read(ctx context.Context, name string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.ResolvedEvent, bool, error) {
	rs, err := s.client.ReadStream(ctx, name, opts, count)
	if err != nil {
		return nil, false, err
	}
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, true, nil
		}
		// A missing stream shows on the first Recv.
		if code, ok := esdbCode(err); ok && code == esdb.ErrorCodeResourceNotFound {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, ev)
	}
}
