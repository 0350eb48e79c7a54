package bus_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

var (
	eventID    = uuid.MustParse("6f1c1a3e-3b5e-4b8e-9a0f-5f8a2d7c9e01")
	recordedAt = time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.UTC)
)

func metadataBytes(t testing.TB, m *eventv1.Metadata) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func recorded(meta []byte) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		ID:         eventID,
		Stream:     "case-9d2b6c1e-0000-4000-8000-000000000001",
		Type:       "koers.case.v1.CaseOpened",
		Data:       []byte{0x0a, 0x03, 'a', 'b', 'c'},
		Metadata:   meta,
		Revision:   4,
		Position:   42,
		RecordedAt: recordedAt,
	}
}

func TestMessageCarriesTheEventInBodyAndHeaders(t *testing.T) {
	meta := &eventv1.Metadata{
		TenantId:      "acme",
		CaseId:        "9d2b6c1e-0000-4000-8000-000000000001",
		Actor:         "coach-7",
		RequestId:     "req-1",
		CorrelationId: "corr-1",
		SchemaVersion: 1,
		OccurredAt:    timestamppb.New(recordedAt.Add(-time.Hour)),
	}
	ev := recorded(metadataBytes(t, meta))

	msg, err := bus.Message(ev, 40)
	if err != nil {
		t.Fatalf("Message: %v", err)
	}
	if want := "koers.events.acme.case.9d2b6c1e-0000-4000-8000-000000000001"; msg.Subject != want {
		t.Errorf("subject = %q, want %q", msg.Subject, want)
	}
	wantHeader := nats.Header{
		"Nats-Msg-Id":             {eventID.String()},
		"Koers-Position":          {"42"},
		"Koers-Previous-Position": {"40"},
		"Koers-Event-Type":        {"koers.case.v1.CaseOpened"},
		"Koers-Stream":            {"case-9d2b6c1e-0000-4000-8000-000000000001"},
		"Koers-Revision":          {"4"},
		"Koers-Tenant":            {"acme"},
	}
	if diff := cmp.Diff(wantHeader, msg.Header); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	wantBody := &eventv1.Event{
		Id:               eventID.String(),
		Stream:           ev.Stream,
		Revision:         4,
		Position:         42,
		PreviousPosition: 40,
		RecordedAt:       timestamppb.New(recordedAt),
		Type:             ev.Type,
		Metadata:         meta,
		Data:             ev.Data,
	}
	got, err := bus.Decode(msg.Data, msg.Header)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if diff := cmp.Diff(wantBody, got, protocmp.Transform()); diff != "" {
		t.Errorf("decoded body (-want +got):\n%s", diff)
	}
	if p, err := bus.PositionOf(msg.Header); err != nil || p != 42 {
		t.Errorf("PositionOf = %d, %v; want 42", p, err)
	}
	if p, err := bus.PreviousPositionOf(msg.Header); err != nil || p != 40 {
		t.Errorf("PreviousPositionOf = %d, %v; want 40", p, err)
	}
}

func TestMessageWithoutUsableMetadataGoesOutWithoutTenant(t *testing.T) {
	tests := []struct {
		name string
		meta []byte
	}{
		{"nil metadata", nil},
		{"metadata that is not a Metadata message", []byte{0xff, 0xff, 0xff}},
		{"metadata without tenant", metadataBytes(t, &eventv1.Metadata{Actor: "x"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := bus.Message(recorded(tt.meta), 0)
			if err != nil {
				t.Fatalf("Message: %v", err)
			}
			if want := "koers.events._.case.9d2b6c1e-0000-4000-8000-000000000001"; msg.Subject != want {
				t.Errorf("subject = %q, want %q", msg.Subject, want)
			}
			if got := msg.Header.Get(bus.HeaderTenant); got != "_" {
				t.Errorf("tenant header = %q, want %q", got, "_")
			}
			ev, err := bus.Decode(msg.Data, msg.Header)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if ev.GetMetadata().GetTenantId() != "" || ev.GetPosition() != 42 {
				t.Errorf("decoded tenant %q position %d, want none and 42", ev.GetMetadata().GetTenantId(), ev.GetPosition())
			}
		})
	}
}

func TestMessageRefusesEventsNoStoreHolds(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*eventstore.RecordedEvent)
		previous eventstore.Position
	}{
		{"zero ID", func(e *eventstore.RecordedEvent) { e.ID = uuid.Nil }, 0},
		{"position equal to previous", func(e *eventstore.RecordedEvent) {}, 42},
		{"position before previous", func(e *eventstore.RecordedEvent) {}, 43},
		{"line break in stream name", func(e *eventstore.RecordedEvent) { e.Stream = "case-1\r\nX: y" }, 0},
		{"empty stream name", func(e *eventstore.RecordedEvent) { e.Stream = "" }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := recorded(nil)
			tt.edit(&ev)
			msg, err := bus.Message(ev, tt.previous)
			if !errors.Is(err, bus.ErrBadEvent) || msg != nil {
				t.Errorf("Message = %v, %v; want nil and an error wrapping ErrBadEvent", msg, err)
			}
		})
	}
}

func TestDecodeRefusesHeadersThatContradictTheBody(t *testing.T) {
	meta := metadataBytes(t, &eventv1.Metadata{TenantId: "acme"})
	for _, name := range []string{
		bus.HeaderMsgID, bus.HeaderPosition, bus.HeaderPreviousPosition,
		bus.HeaderEventType, bus.HeaderStream, bus.HeaderRevision, bus.HeaderTenant,
	} {
		t.Run(name, func(t *testing.T) {
			msg, err := bus.Message(recorded(meta), 41)
			if err != nil {
				t.Fatal(err)
			}
			msg.Header.Set(name, "7")
			if _, err := bus.Decode(msg.Data, msg.Header); !errors.Is(err, bus.ErrMalformedMessage) {
				t.Errorf("Decode with %s altered: %v, want an error wrapping ErrMalformedMessage", name, err)
			}
			msg.Header.Add(name, "8")
			if _, err := bus.Decode(msg.Data, msg.Header); !errors.Is(err, bus.ErrMalformedMessage) {
				t.Errorf("Decode with %s repeated: %v, want an error wrapping ErrMalformedMessage", name, err)
			}
		})
	}
}

func TestDecodeChecksTheBody(t *testing.T) {
	good, err := bus.Message(recorded(nil), 41)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Decode(good.Data, nil); err != nil {
		t.Errorf("Decode without headers: %v", err)
	}
	encode := func(e *eventv1.Event) []byte {
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"not protobuf", []byte{0xff, 0xff}},
		{"no event ID", encode(&eventv1.Event{Position: 1})},
		{"event ID not a UUID", encode(&eventv1.Event{Id: "x", Position: 1})},
		{"position 0", encode(&eventv1.Event{Id: eventID.String()})},
		{"position not after previous", encode(&eventv1.Event{Id: eventID.String(), Position: 3, PreviousPosition: 3})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := bus.Decode(tt.data, nil); !errors.Is(err, bus.ErrMalformedMessage) {
				t.Errorf("Decode: %v, want an error wrapping ErrMalformedMessage", err)
			}
		})
	}
}

func TestPositionOfReadsOnlyAWellFormedHeader(t *testing.T) {
	tests := []struct {
		name    string
		header  nats.Header
		want    eventstore.Position
		wantErr bool
	}{
		{"present", nats.Header{bus.HeaderPosition: {"18446744073709551615"}}, 18446744073709551615, false},
		{"missing", nats.Header{}, 0, true},
		{"nil header", nil, 0, true},
		{"other case is another header", nats.Header{"koers-position": {"5"}}, 0, true},
		{"not a number", nats.Header{bus.HeaderPosition: {"5x"}}, 0, true},
		{"negative", nats.Header{bus.HeaderPosition: {"-5"}}, 0, true},
		{"zero", nats.Header{bus.HeaderPosition: {"0"}}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bus.PositionOf(tt.header)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("PositionOf = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, bus.ErrMalformedMessage) {
				t.Errorf("error %v does not wrap ErrMalformedMessage", err)
			}
		})
	}
}
