// Package eventstore is the port between Koers and the event log that is its
// source of truth.
//
// A store holds streams (one per case, for example "case-<uuid>"). Each stream
// is an ordered list of events numbered by revision from 0. Across all streams
// the store keeps one global order, numbered by Position. Adapters live in
// sub-packages (sqlite, kurrentdb); every adapter passes the contract suite in
// eventstore/storetest.
//
// Appends are optimistic: the caller says which revision it expects the stream
// to be at, and a stream that moved on in between fails the append with a
// *WrongRevisionError. Event IDs are chosen by the caller, so a retried append
// of the same events is recognised and writes nothing.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/google/uuid"
)

// Store is an event store: streams of events with optimistic concurrency,
// and one global order over all of them.
//
// Implementations are safe for concurrent use.
type Store interface {
	// Append writes events to the end of stream, atomically: all of them or
	// none. It fails with a *WrongRevisionError when the stream is not at
	// the expected revision, and with an error wrapping ErrInvalidAppend
	// when the input breaks a rule of ValidateAppend.
	//
	// When every event ID of the append was already written, to this stream
	// by one earlier append of the same events, Append writes nothing and
	// returns that append's result, whatever the stream's revision is now.
	// An event ID that was written elsewhere, or only some of the IDs, fail
	// with an error wrapping ErrDuplicateEventID.
	Append(ctx context.Context, stream string, expected ExpectedRevision, events ...EventData) (AppendResult, error)

	// ReadStream returns the events of one stream in the direction and from
	// the revision opts give. A stream that has no events fails with
	// ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, opts ReadOptions) ([]RecordedEvent, error)

	// SubscribeAll yields every event with a position after the given one,
	// in global order: first those already written (catch-up), then new ones
	// as they are committed (live), until ctx is done or the store closes.
	// Position 0 means from the start. The sequence ends after yielding an
	// error, and also as soon as the consumer stops ranging.
	SubscribeAll(ctx context.Context, after Position) iter.Seq2[RecordedEvent, error]

	// Close releases the store's resources. Appends that were acknowledged
	// are durable; appends still in flight fail with ErrClosed.
	Close() error
}

// Position is an event's place in the store's global order. Positions grow
// strictly with the order. The embedded SQLite store numbers them densely
// (1, 2, 3, …); other adapters may leave gaps, so consumers check continuity
// by the previous position the relay sends along, never by arithmetic.
// Position 0 is before the first event.
type Position uint64

// EventData is an event to append.
type EventData struct {
	// ID identifies the event across the store. Callers derive it
	// deterministically (from a command's request ID) so that retries are
	// recognised. It must not be the zero UUID.
	ID uuid.UUID
	// Type names the event, for example "koers.case.v1.CaseOpened".
	Type string
	// Data is the event body. It must not be nil; an empty body is []byte{}.
	Data []byte
	// Metadata is the envelope (tenant, actor, correlation, …). It may be nil.
	Metadata []byte
}

// RecordedEvent is an event as the store holds it.
type RecordedEvent struct {
	ID       uuid.UUID
	Stream   string
	Type     string
	Data     []byte
	Metadata []byte
	// Revision is the event's number within its stream, from 0.
	Revision uint64
	// Position is the event's place in the global order.
	Position Position
	// RecordedAt is when the store committed the event, in UTC.
	RecordedAt time.Time
}

// AppendResult says where an append's last event landed.
type AppendResult struct {
	// Revision is the stream revision of the last event appended, which is
	// the revision a caller expects on its next append to the stream.
	Revision uint64
	// Position is the global position of the last event appended.
	Position Position
}

// ExpectedRevision is what a caller believes about a stream before it appends.
// The zero value is Any.
type ExpectedRevision struct {
	kind     expectKind
	revision uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExact
)

var (
	// Any appends whatever the stream's state.
	Any = ExpectedRevision{kind: expectAny}
	// NoStream appends only when the stream has no events yet.
	NoStream = ExpectedRevision{kind: expectNoStream}
)

// Exact appends only when the stream's last event has revision r.
func Exact(r uint64) ExpectedRevision {
	return ExpectedRevision{kind: expectExact, revision: r}
}

// IsAny reports whether e accepts any stream state.
func (e ExpectedRevision) IsAny() bool { return e.kind == expectAny }

// IsNoStream reports whether e requires the stream not to exist.
func (e ExpectedRevision) IsNoStream() bool { return e.kind == expectNoStream }

// Revision returns the exact revision e expects and whether it expects one.
func (e ExpectedRevision) Revision() (uint64, bool) {
	return e.revision, e.kind == expectExact
}

// Matches reports whether a stream whose last revision is actual (exists
// false: no stream) satisfies e.
func (e ExpectedRevision) Matches(actual uint64, exists bool) bool {
	switch e.kind {
	case expectNoStream:
		return !exists
	case expectExact:
		return exists && actual == e.revision
	default:
		return true
	}
}

func (e ExpectedRevision) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectExact:
		return fmt.Sprintf("revision %d", e.revision)
	default:
		return "any"
	}
}

// ReadOptions chooses which events ReadStream returns.
type ReadOptions struct {
	// Backwards reads from From towards revision 0 instead of towards the end.
	Backwards bool
	// From is the first revision to return. Use StreamEnd with Backwards to
	// start at the last event.
	From uint64
	// Limit caps the number of events returned; 0 means no cap.
	Limit int
}

// StreamEnd is the revision after every event: read backwards from it to get
// a stream's last events.
const StreamEnd = ^uint64(0)

// WrongRevisionError is returned by Append when the stream is not at the
// revision the caller expected. Nothing was written.
type WrongRevisionError struct {
	Stream   string
	Expected ExpectedRevision
	// Actual is the revision of the stream's last event, valid when Exists.
	Actual uint64
	// Exists is false when the stream has no events.
	Exists bool
}

func (e *WrongRevisionError) Error() string {
	actual := "no stream"
	if e.Exists {
		actual = fmt.Sprintf("revision %d", e.Actual)
	}
	return fmt.Sprintf("eventstore: stream %q: expected %s, actual %s", e.Stream, e.Expected, actual)
}

var (
	// ErrStreamNotFound is returned when reading a stream that has no events.
	ErrStreamNotFound = errors.New("eventstore: stream not found")
	// ErrInvalidAppend is wrapped by errors for appends that break the
	// input rules; the wrapping error says which rule. Nothing was written.
	ErrInvalidAppend = errors.New("eventstore: invalid append")
	// ErrDuplicateEventID is returned when an event ID of an append was
	// already written by another append (or to another stream), so the
	// append is neither new nor a retry. Nothing was written.
	ErrDuplicateEventID = errors.New("eventstore: event ID already used by another append")
	// ErrClosed is returned by operations on a closed store.
	ErrClosed = errors.New("eventstore: store closed")
)

// Limits every adapter enforces, so that a store can be swapped without a
// caller finding new failures.
const (
	// MaxStreamNameBytes is the longest stream name.
	MaxStreamNameBytes = 200
	// MaxEventTypeBytes is the longest event type name.
	MaxEventTypeBytes = 200
	// MaxEventsPerAppend is the most events one append may carry.
	MaxEventsPerAppend = 500
	// MaxAppendBytes caps the summed data and metadata of one append; it
	// stays under KurrentDB's default 16 MiB and gRPC's 4 MiB message limit.
	MaxAppendBytes = 3 << 20
)
