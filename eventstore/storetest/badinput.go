package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore"
)

func (s suite) testBadInput(t *testing.T) {
	const stream = "case-bad-input"
	one := func(mutate func(*eventstore.EventData)) []eventstore.EventData {
		e := someEvents(1, "bad")[0]
		mutate(&e)
		return []eventstore.EventData{e}
	}
	sized := func(n int) []byte { return make([]byte, n) }
	tests := []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{name: "an empty stream name", stream: "", events: someEvents(1, "bad")},
		{name: "a newline in the stream name", stream: "case-1\ncase-2", events: someEvents(1, "bad")},
		{name: "a control character in the stream name", stream: "case-\x01", events: someEvents(1, "bad")},
		{name: "a space in the stream name", stream: "case 1", events: someEvents(1, "bad")},
		{name: "a stream name that is not UTF-8", stream: "case-\xff", events: someEvents(1, "bad")},
		{name: "a stream name over the limit", stream: strings.Repeat("s", eventstore.MaxStreamNameBytes+1), events: someEvents(1, "bad")},
		{name: "no events", stream: stream, events: nil},
		{name: "more events than the limit", stream: stream, events: someEvents(eventstore.MaxEventsPerAppend+1, "bad")},
		{name: "data over the byte limit", stream: stream, events: one(func(e *eventstore.EventData) {
			e.Data, e.Metadata = sized(eventstore.MaxAppendBytes+1), nil
		})},
		{name: "data and metadata together over the byte limit", stream: stream, events: one(func(e *eventstore.EventData) {
			e.Data, e.Metadata = sized(eventstore.MaxAppendBytes/2), sized(eventstore.MaxAppendBytes/2+1)
		})},
		{name: "events together over the byte limit", stream: stream, events: func() []eventstore.EventData {
			evs := someEvents(3, "bad")
			for i := range evs {
				evs[i].Data, evs[i].Metadata = sized(eventstore.MaxAppendBytes/3+1), nil
			}
			return evs
		}()},
		{name: "nil data", stream: stream, events: one(func(e *eventstore.EventData) { e.Data = nil })},
		{name: "the zero event ID", stream: stream, events: one(func(e *eventstore.EventData) { e.ID = uuid.Nil })},
		{name: "an empty type", stream: stream, events: one(func(e *eventstore.EventData) { e.Type = "" })},
		{name: "a space in the type", stream: stream, events: one(func(e *eventstore.EventData) { e.Type = "koers.case Opened" })},
		{name: "a type over the limit", stream: stream, events: one(func(e *eventstore.EventData) {
			e.Type = strings.Repeat("t", eventstore.MaxEventTypeBytes+1)
		})},
		{name: "a duplicate event ID inside one append", stream: stream, events: func() []eventstore.EventData {
			evs := someEvents(3, "bad")
			evs[2].ID = evs[0].ID
			return evs
		}()},
		{name: "one bad event after good ones", stream: stream, events: func() []eventstore.EventData {
			evs := someEvents(3, "bad")
			evs[2].Type = ""
			return evs
		}()},
	}
	st, _ := s.open(t)
	mustAppend(t, st, stream, eventstore.NoStream, someEvents(1, "existing")...)
	for _, tt := range tests {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			before := snapshot(t, st)
			for _, expected := range []eventstore.ExpectedRevision{eventstore.Any, eventstore.Exact(0)} {
				_, err := st.Append(t.Context(), tt.stream, expected, tt.events...)
				if !errors.Is(err, eventstore.ErrInvalidAppend) {
					t.Errorf("Append(%v) error is %v, want one wrapping eventstore.ErrInvalidAppend", expected, err)
				}
			}
			checkUnchanged(t, st, before, "a rejected append")
		})
	}
}

func (s suite) testLimits(t *testing.T) {
	sized := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}
	tests := []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{name: "a stream name of the longest length", stream: strings.Repeat("s", eventstore.MaxStreamNameBytes), events: someEvents(1, "limit")},
		{name: "the most events in one append", stream: "case-many", events: someEvents(eventstore.MaxEventsPerAppend, "limit")},
		{name: "the most bytes in one append", stream: "case-big", events: []eventstore.EventData{
			event("storetest.Big", sized(eventstore.MaxAppendBytes-1000), sized(1000)),
		}},
		{name: "a type of the longest length", stream: "case-long-type", events: []eventstore.EventData{
			event(strings.Repeat("t", eventstore.MaxEventTypeBytes), []byte("{}"), nil),
		}},
	}
	for _, tt := range tests {
		t.Run("accepts "+tt.name, func(t *testing.T) {
			st, _ := s.open(t)
			res := mustAppend(t, st, tt.stream, eventstore.NoStream, tt.events...)
			if wantRev := uint64(len(tt.events) - 1); res.Revision != wantRev {
				t.Errorf("Append returned revision %d, want %d", res.Revision, wantRev)
			}
			got := mustRead(t, st, tt.stream, eventstore.ReadOptions{})
			if diff := diffStored(want(tt.stream, 0, tt.events...), got); diff != "" {
				t.Errorf("ReadStream (-want +got):\n%s", diff)
			}
			s.checkPositions(t, got)
		})
	}
}
