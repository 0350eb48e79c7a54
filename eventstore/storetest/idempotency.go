package storetest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/eventstore"
)

func (s suite) testIdempotency(t *testing.T) {
	const stream = "case-idempotent"

	// retry appends evs again and checks that the store answers with the
	// original result and writes nothing.
	retry := func(t *testing.T, st eventstore.Store, expected eventstore.ExpectedRevision, evs []eventstore.EventData, original eventstore.AppendResult) {
		t.Helper()
		before := snapshot(t, st)
		res, err := st.Append(t.Context(), stream, expected, evs...)
		if err != nil {
			t.Fatalf("retrying an append of %d events with %v: %v, want the original result", len(evs), expected, err)
		}
		if diff := cmp.Diff(original, res); diff != "" {
			t.Errorf("a retry with %v returned another result than the original append (-original +retry):\n%s", expected, diff)
		}
		checkUnchanged(t, st, before, "a retried append")
	}

	t.Run("a retry returns the original result and writes nothing", func(t *testing.T) {
		st, _ := s.open(t)
		a := someEvents(2, "a")
		resA := mustAppend(t, st, stream, eventstore.NoStream, a...)
		retry(t, st, eventstore.NoStream, a, resA)
		retry(t, st, eventstore.Any, a, resA)
		retry(t, st, eventstore.Exact(0), a, resA)
		retry(t, st, eventstore.Exact(7), a, resA)
	})

	t.Run("a retry after later appends returns the original result", func(t *testing.T) {
		st, _ := s.open(t)
		a, b := someEvents(2, "a"), someEvents(3, "b")
		resA := mustAppend(t, st, stream, eventstore.NoStream, a...)
		resB := mustAppend(t, st, stream, eventstore.Exact(resA.Revision), b...)
		mustAppend(t, st, "case-other", eventstore.NoStream, someEvents(1, "other")...)
		retry(t, st, eventstore.NoStream, a, resA)
		retry(t, st, eventstore.Exact(resA.Revision), b, resB)
	})

	t.Run("a retry after reopening the store returns the original result", func(t *testing.T) {
		st, dir := s.open(t)
		a, b := someEvents(1, "a"), someEvents(2, "b")
		resA := mustAppend(t, st, stream, eventstore.NoStream, a...)
		resB := mustAppend(t, st, stream, eventstore.Exact(resA.Revision), b...)
		closeStore(t, st)
		st = s.openDir(t, dir)
		retry(t, st, eventstore.NoStream, a, resA)
		retry(t, st, eventstore.Exact(resA.Revision), b, resB)
	})

	// a and b are two earlier appends to stream; fresh is a new event.
	tests := []struct {
		name   string
		stream string
		events func(a, b []eventstore.EventData, fresh eventstore.EventData) []eventstore.EventData
	}{
		{
			name: "an append partly overlapping an earlier one is a duplicate", stream: stream,
			events: func(a, _ []eventstore.EventData, fresh eventstore.EventData) []eventstore.EventData {
				return []eventstore.EventData{fresh, a[1]}
			},
		},
		{
			name: "a subset of an earlier append is a duplicate", stream: stream,
			events: func(a, _ []eventstore.EventData, _ eventstore.EventData) []eventstore.EventData {
				return a[:1]
			},
		},
		{
			name: "events of two earlier appends together are a duplicate", stream: stream,
			events: func(a, b []eventstore.EventData, _ eventstore.EventData) []eventstore.EventData {
				return []eventstore.EventData{a[1], b[0]}
			},
		},
		{
			name: "an event ID used in another stream is a duplicate", stream: "case-elsewhere",
			events: func(a, _ []eventstore.EventData, fresh eventstore.EventData) []eventstore.EventData {
				return []eventstore.EventData{fresh, a[0]}
			},
		},
		{
			name: "a whole append repeated on another stream is a duplicate", stream: "case-elsewhere",
			events: func(a, _ []eventstore.EventData, _ eventstore.EventData) []eventstore.EventData {
				return a
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := s.open(t)
			a, b := someEvents(2, "a"), someEvents(2, "b")
			resA := mustAppend(t, st, stream, eventstore.NoStream, a...)
			mustAppend(t, st, stream, eventstore.Exact(resA.Revision), b...)
			fresh := someEvents(1, "fresh")[0]
			before := snapshot(t, st)

			_, err := st.Append(t.Context(), tt.stream, eventstore.Any, tt.events(a, b, fresh)...)
			if !errors.Is(err, eventstore.ErrDuplicateEventID) {
				t.Fatalf("Append error is %v, want one wrapping eventstore.ErrDuplicateEventID", err)
			}
			checkUnchanged(t, st, before, "a rejected duplicate")

			// The rejected append must not have claimed the new ID.
			mustAppend(t, st, tt.stream, eventstore.Any, fresh)
		})
	}
}
