package kurrentdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore"
)

// claimWorkers caps the index writes and reads one append runs at once.
const claimWorkers = 16

// errMoved is returned inside Append when the stream moved between reading
// its end and writing: the append starts over.
var errMoved = errors.New("the stream moved")

// appendReq is one call of Append.
type appendReq struct {
	stream   string
	expected eventstore.ExpectedRevision
	events   []eventstore.EventData
	ids      []uuid.UUID
	key      string // identifies the append: its stream and its IDs in order
}

func newAppendReq(stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) *appendReq {
	a := &appendReq{stream: stream, expected: expected, events: events, ids: make([]uuid.UUID, len(events))}
	h := sha256.New()
	h.Write([]byte(stream))
	h.Write([]byte{0})
	for i, e := range events {
		a.ids[i] = e.ID
		h.Write(e.ID[:])
	}
	a.key = hex.EncodeToString(h.Sum(nil)[:16])
	return a
}

// Append implements eventstore.Store; the package documentation says how.
// When ctx ends first, Append returns ctx's error and the append may still
// have been written: a retry with the same event IDs is recognised.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("kurrentdb: append to %q: %w", stream, err)
	}
	a := newAppendReq(stream, expected, events)
	return call(ctx, s, fmt.Sprintf("append to %q", stream), func(ctx context.Context) (eventstore.AppendResult, error) {
		for {
			res, err := s.appendOnce(ctx, a)
			if !errors.Is(err, errMoved) {
				return res, err
			}
		}
	})
}

// appendOnce reads the end of the stream, checks the expected revision,
// claims the event IDs in their index streams and writes the events,
// expecting the stream where it was read.
func (s *Store) appendOnce(ctx context.Context, a *appendReq) (eventstore.AppendResult, error) {
	var res eventstore.AppendResult
	last, err := s.readLast(ctx, s.serverName(a.stream))
	if err != nil {
		return res, fmt.Errorf("reading the end of the stream: %w", err)
	}
	tail, exists := uint64(0), len(last) > 0
	if exists {
		tail = last[0].Event.EventNumber
	}
	if !a.expected.Matches(tail, exists) {
		// A retry of an append that was written meets a stream that has
		// moved on, as every other retry does.
		if res, ok, err := s.retried(ctx, a); err != nil || ok {
			return res, err
		}
		return res, &eventstore.WrongRevisionError{Stream: a.stream, Expected: a.expected, Actual: tail, Exists: exists}
	}
	expected := int64(-1)
	if exists {
		expected = int64(tail)
	}

	res, written, err := s.claimAll(ctx, a, expected)
	if err != nil || written {
		return res, err
	}
	return s.write(ctx, a, expected)
}

// retried reports whether a is a retry of an append that was written, and
// that append's result.
func (s *Store) retried(ctx context.Context, a *appendReq) (eventstore.AppendResult, bool, error) {
	entry, found, err := s.readIndex(ctx, a.ids[0])
	if err != nil || !found || entry.released || entry.claim.Append != a.key {
		return eventstore.AppendResult{}, false, err
	}
	st, res, err := s.status(ctx, a, 0, entry.claim)
	return res, st == landed, err
}

// write appends the events, expecting the stream at revision expected
// (-1: no stream), with the caller's event IDs.
func (s *Store) write(ctx context.Context, a *appendReq, expected int64) (eventstore.AppendResult, error) {
	var rev esdb.ExpectedRevision = esdb.NoStream{}
	if expected >= 0 {
		rev = esdb.Revision(uint64(expected))
	}
	evs := make([]esdb.EventData, len(a.events))
	for i, e := range a.events {
		evs[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeBinary, Data: e.Data, Metadata: e.Metadata}
	}
	wr, err := s.client.AppendToStream(ctx, s.serverName(a.stream), esdb.AppendToStreamOptions{ExpectedRevision: rev}, evs...)
	if code, ok := esdbCode(err); ok && code == esdb.ErrorCodeWrongExpectedVersion {
		// Another append came between the read and this write; the claims
		// of this one are void since, as the stream has moved past them.
		return eventstore.AppendResult{}, errMoved
	}
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("writing the events: %w", err)
	}
	return eventstore.AppendResult{Revision: wr.NextExpectedVersion, Position: eventstore.Position(wr.CommitPosition)}, nil
}

// claimState is what an index entry's claim means now.
type claimState int

const (
	// pending: the append that claimed may still be written, since its
	// stream is still at the revision it expected.
	pending claimState = iota
	// landed: the append was written.
	landed
	// void: the append can no longer be written, since its stream moved
	// past the revision it expected without it.
	void
)

// status tells what the claim c on event i of a means, reading the stream
// the claim names. For a claim of a itself it also returns the result of
// the append when it landed.
func (s *Store) status(ctx context.Context, a *appendReq, i int, c claim) (claimState, eventstore.AppendResult, error) {
	var res eventstore.AppendResult
	mine := c.Append == a.key
	count := uint64(c.Index + 1)
	if mine {
		count = uint64(c.Count)
	}
	evs, _, err := s.read(ctx, s.serverName(c.Stream), esdb.ReadStreamOptions{From: esdb.Revision(c.first())}, count)
	switch {
	case err != nil:
		return pending, res, fmt.Errorf("reading %q, which a claim on event ID %s names: %w", c.Stream, a.ids[i], err)
	case len(evs) == 0:
		return pending, res, nil
	case !mine:
		if len(evs) > c.Index && evs[c.Index].Event.EventID == a.ids[i] {
			return landed, res, nil
		}
		return void, res, nil
	}
	if len(evs) != len(a.ids) {
		return void, res, nil
	}
	for k, e := range evs {
		if e.Event.EventID != a.ids[k] {
			return void, res, nil
		}
	}
	lastEv, err := s.toRecorded(evs[len(evs)-1].Event)
	if err != nil {
		return pending, res, err
	}
	return landed, eventstore.AppendResult{Revision: lastEv.Revision, Position: lastEv.Position}, nil
}

// claimOutcome is what claiming one event ID came to.
type claimOutcome struct {
	wrote     bool   // this call wrote the claim, at index revision rev
	rev       uint64 //
	landed    bool   // a retry: this very append was written, with result res
	res       eventstore.AppendResult
	duplicate string // the ID belongs to another append, to this stream
	err       error
}

// claimAll claims every event ID of a for the append expecting revision
// expected. It reports true, with the result, when a turns out to be a
// retry of an append that was written.
func (s *Store) claimAll(ctx context.Context, a *appendReq, expected int64) (eventstore.AppendResult, bool, error) {
	outs := make([]claimOutcome, len(a.ids))
	claimOne := func(i int) {
		outs[i] = s.claim(ctx, a, i, claim{Stream: a.stream, Expected: expected, Append: a.key, Index: i, Count: len(a.ids)})
	}
	if len(a.ids) == 1 {
		claimOne(0)
	} else {
		var wg sync.WaitGroup
		next := make(chan int)
		for range min(claimWorkers, len(a.ids)) {
			wg.Go(func() {
				for i := range next {
					claimOne(i)
				}
			})
		}
		for i := range a.ids {
			next <- i
		}
		close(next)
		wg.Wait()
	}

	held := map[uuid.UUID]uint64{}
	var errs []error
	for i, o := range outs {
		switch {
		case o.landed:
			return o.res, true, nil
		case o.err != nil:
			errs = append(errs, o.err)
		case o.duplicate != "":
			errs = append(errs, fmt.Errorf("%w: event %d (%s) belongs to an append to %q", eventstore.ErrDuplicateEventID, i, a.ids[i], o.duplicate))
		}
		if o.wrote {
			held[a.ids[i]] = o.rev
		}
	}
	if len(errs) == 0 {
		return eventstore.AppendResult{}, false, nil
	}
	// This attempt will not write: free the IDs it claimed.
	s.release(ctx, held)
	return eventstore.AppendResult{}, false, errors.Join(errs...)
}

// maxClaimTries bounds the rounds of claiming one ID against index writes
// of other appends.
const maxClaimTries = 100

// claim claims event i of a by writing c to its index stream, unless the
// stream already holds a claim that stands.
func (s *Store) claim(ctx context.Context, a *appendReq, i int, c claim) claimOutcome {
	id := a.ids[i]
	var expected esdb.ExpectedRevision = esdb.NoStream{}
	for range maxClaimTries {
		rev, ok, err := s.writeIndex(ctx, id, expected, &c)
		if err != nil {
			return claimOutcome{err: err}
		}
		if ok {
			return claimOutcome{wrote: true, rev: rev}
		}
		entry, found, err := s.readIndex(ctx, id)
		if err != nil {
			return claimOutcome{err: err}
		}
		if !found {
			return claimOutcome{err: fmt.Errorf("the index of event ID %s refused a claim yet holds none", id)}
		}
		if entry.released {
			expected = esdb.Revision(entry.revision)
			continue
		}
		st, res, err := s.status(ctx, a, i, entry.claim)
		mine := entry.claim.Append == a.key
		switch {
		case err != nil:
			return claimOutcome{err: err}
		case !mine && st != void:
			return claimOutcome{duplicate: entry.claim.Stream}
		case mine && st == landed:
			return claimOutcome{landed: true, res: res}
		case mine && st == pending && entry.claim.Expected == c.Expected:
			// An earlier attempt of this append claimed the ID for the
			// same write: KurrentDB's idempotency covers both writing.
			return claimOutcome{}
		}
		// Nothing can write the claiming append any more (or it is an
		// attempt of this one that expected another revision): take the
		// ID over, unless someone else does first.
		expected = esdb.Revision(entry.revision)
	}
	return claimOutcome{err: fmt.Errorf("the index of event ID %s kept changing over %d tries", id, maxClaimTries)}
}
