package bus

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/eventstore"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// Headers of an event message. NATS header names are case-sensitive.
const (
	// HeaderMsgID is JetStream's de-duplication header; it carries the event
	// ID, so a republished event within the duplicate window is dropped.
	HeaderMsgID = nats.MsgIdHdr
	// HeaderPosition carries the event's global position in the store, in
	// decimal. Consumers checkpoint by it.
	HeaderPosition = "Koers-Position"
	// HeaderPreviousPosition carries, in decimal, the position of the event
	// published before this one on the same stream (0 for the first): on
	// KOERS_EVENTS the previous event in the store's global order that the
	// relay publishes (it skips the audit streams), so the chain has no
	// hole a consumer could miss.
	HeaderPreviousPosition = "Koers-Previous-Position"
	// HeaderEventType carries the event type, for example
	// "koers.case.v1.CaseOpened".
	HeaderEventType = "Koers-Event-Type"
	// HeaderStream carries the event store stream name.
	HeaderStream = "Koers-Stream"
	// HeaderRevision carries the event's revision within its stream, in
	// decimal.
	HeaderRevision = "Koers-Revision"
	// HeaderTenant carries the tenant's subject token (TenantToken): the
	// tenant ID, or "_" when the metadata names none.
	HeaderTenant = "Koers-Tenant"
)

var (
	// ErrMalformedMessage is wrapped by the errors of Decode, PositionOf and
	// PreviousPositionOf for messages that are not well-formed event
	// messages.
	ErrMalformedMessage = errors.New("bus: malformed event message")
	// ErrBadEvent is wrapped by Message's errors for events that cannot be
	// published as they are.
	ErrBadEvent = errors.New("bus: event cannot be published")
)

// Message turns a stored event into the NATS message the relay publishes:
// subject from Subject, body a serialized eventv1.Event, headers as the
// package doc lists. previous is the position of the event published
// before ev on the same stream (0 for the first).
//
// The metadata is decoded from ev.Metadata as an eventv1.Metadata. When it
// does not decode, the message goes out without metadata and with tenant
// "_" rather than failing: one odd event must not halt the relay, and its
// raw bytes stay in the store. It fails, wrapping ErrBadEvent, only for an
// event no store may hold (zero ID, invalid stream name, position not after
// previous).
func Message(ev eventstore.RecordedEvent, previous eventstore.Position) (*nats.Msg, error) {
	switch {
	case ev.ID == uuid.Nil:
		return nil, fmt.Errorf("%w: event at position %d has the zero ID", ErrBadEvent, ev.Position)
	case ev.Position <= previous:
		return nil, fmt.Errorf("%w: event %s at position %d is not after the previous position %d", ErrBadEvent, ev.ID, ev.Position, previous)
	}
	if err := eventstore.ValidateStreamName(ev.Stream); err != nil {
		// Header values must not hold line breaks; the store already
		// refuses such names, so this is a store fault.
		return nil, fmt.Errorf("%w: event %s: %v", ErrBadEvent, ev.ID, err)
	}

	meta := decodeMetadata(ev.Metadata)
	body := &eventv1.Event{
		Id:               ev.ID.String(),
		Stream:           ev.Stream,
		Revision:         ev.Revision,
		Position:         uint64(ev.Position),
		PreviousPosition: uint64(previous),
		RecordedAt:       timestamppb.New(ev.RecordedAt),
		Type:             ev.Type,
		Metadata:         meta,
		Data:             ev.Data,
	}
	data, err := proto.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: event %s: encoding the body: %v", ErrBadEvent, ev.ID, err)
	}

	tenant := TenantToken(meta.GetTenantId())
	msg := &nats.Msg{
		Subject: Subject(meta.GetTenantId(), ev.Stream),
		Data:    data,
		Header:  make(nats.Header, 7),
	}
	msg.Header.Set(HeaderMsgID, body.Id)
	msg.Header.Set(HeaderPosition, strconv.FormatUint(uint64(ev.Position), 10))
	msg.Header.Set(HeaderPreviousPosition, strconv.FormatUint(uint64(previous), 10))
	msg.Header.Set(HeaderEventType, ev.Type)
	msg.Header.Set(HeaderStream, ev.Stream)
	msg.Header.Set(HeaderRevision, strconv.FormatUint(ev.Revision, 10))
	msg.Header.Set(HeaderTenant, tenant)
	return msg, nil
}

// decodeMetadata returns the envelope stored as an event's metadata, or nil
// when there is none or it does not decode.
func decodeMetadata(b []byte) *eventv1.Metadata {
	if len(b) == 0 {
		return nil
	}
	var m eventv1.Metadata
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil
	}
	return &m
}

// Decode reads an event message back: data is the message body and header
// its headers (from a *nats.Msg, m.Data and m.Header; from a jetstream.Msg,
// m.Data() and m.Headers()). Headers that are present must agree with the
// body, so a consumer that routed by a header saw the truth; a nil header
// skips those checks. Errors wrap ErrMalformedMessage.
func Decode(data []byte, header nats.Header) (*eventv1.Event, error) {
	var ev eventv1.Event
	if err := proto.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrMalformedMessage, err)
	}
	if _, err := uuid.Parse(ev.GetId()); err != nil {
		return nil, fmt.Errorf("%w: event ID %q: %v", ErrMalformedMessage, ev.GetId(), err)
	}
	if ev.GetPosition() <= ev.GetPreviousPosition() {
		return nil, fmt.Errorf("%w: event %s: position %d is not after previous position %d", ErrMalformedMessage, ev.GetId(), ev.GetPosition(), ev.GetPreviousPosition())
	}
	want := []struct{ name, value string }{
		{HeaderMsgID, ev.GetId()},
		{HeaderPosition, strconv.FormatUint(ev.GetPosition(), 10)},
		{HeaderPreviousPosition, strconv.FormatUint(ev.GetPreviousPosition(), 10)},
		{HeaderEventType, ev.GetType()},
		{HeaderStream, ev.GetStream()},
		{HeaderRevision, strconv.FormatUint(ev.GetRevision(), 10)},
		{HeaderTenant, TenantToken(ev.GetMetadata().GetTenantId())},
	}
	for _, h := range want {
		if got, ok := header[h.name]; ok && (len(got) != 1 || got[0] != h.value) {
			return nil, fmt.Errorf("%w: event %s: header %s is %q, the body says %q", ErrMalformedMessage, ev.GetId(), h.name, got, h.value)
		}
	}
	return &ev, nil
}

// PositionOf reads an event message's position from its headers without
// decoding the body.
func PositionOf(header nats.Header) (eventstore.Position, error) {
	p, err := positionHeader(header, HeaderPosition)
	if err == nil && p == 0 {
		// Position 0 is before the first event; no event has it.
		return 0, fmt.Errorf("%w: header %s is 0", ErrMalformedMessage, HeaderPosition)
	}
	return p, err
}

// PreviousPositionOf reads the position of the event before an event
// message's own from its headers without decoding the body.
func PreviousPositionOf(header nats.Header) (eventstore.Position, error) {
	return positionHeader(header, HeaderPreviousPosition)
}

func positionHeader(header nats.Header, name string) (eventstore.Position, error) {
	v := header.Get(name)
	if v == "" {
		return 0, fmt.Errorf("%w: no %s header", ErrMalformedMessage, name)
	}
	p, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: header %s %q: %v", ErrMalformedMessage, name, v, err)
	}
	return eventstore.Position(p), nil
}
