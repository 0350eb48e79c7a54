package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/eventstore"
)

// allBytes is every byte value once, so binary data that is not UTF-8 and
// holds NULs must survive the store unchanged.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// roundTripEvents covers the shapes of data and metadata an adapter could
// mangle: JSON text, empty non-nil data, nil metadata, binary bytes.
func roundTripEvents() []eventstore.EventData {
	return []eventstore.EventData{
		event("koers.case.v1.CaseOpened", []byte(`{"case":"c-1","note":"ünïcødé"}`), []byte(`{"tenant":"t-1","actor":"a-1"}`)),
		event("koers.case.v1.Empty", []byte{}, nil),
		event("koers.case.v1.Binary", allBytes(), append([]byte{0, 0xff, 0}, allBytes()...)),
		event("koers.case.v1.NoMetadata", []byte{0}, []byte{}),
	}
}

func (s suite) testAppend(t *testing.T) {
	t.Run("round trips every field of every event", func(t *testing.T) {
		st, _ := s.open(t)
		const stream = "case-ünïcødé-1"
		first, second := roundTripEvents(), someEvents(1, "second")
		before := time.Now()
		mustAppend(t, st, stream, eventstore.NoStream, first...)
		mustAppend(t, st, stream, eventstore.Exact(uint64(len(first)-1)), second...)
		after := time.Now()

		got := mustRead(t, st, stream, eventstore.ReadOptions{})
		wantEvs := append(want(stream, 0, first...), want(stream, uint64(len(first)), second...)...)
		if diff := diffStored(wantEvs, got); diff != "" {
			t.Errorf("ReadStream differs from what was appended (-want +got):\n%s", diff)
		}
		checkNoDataNil(t, got)
		s.checkPositions(t, got)
		checkRecordedAt(t, got, before, after)

		if diff := cmp.Diff(got, snapshot(t, st), recordedOpts); diff != "" {
			t.Errorf("SubscribeAll and ReadStream disagree about the same events (-ReadStream +SubscribeAll):\n%s", diff)
		}
	})

	t.Run("returns the revision and position of the last event", func(t *testing.T) {
		st, _ := s.open(t)
		const stream = "case-result"
		for i, n := range []int{1, 3, 2} {
			res := mustAppend(t, st, stream, eventstore.Any, someEvents(n, "result")...)
			got := mustRead(t, st, stream, eventstore.ReadOptions{Backwards: true, From: eventstore.StreamEnd, Limit: 1})
			if len(got) != 1 {
				t.Fatalf("append %d: reading the last event returned %d events", i, len(got))
			}
			wantRes := eventstore.AppendResult{Revision: got[0].Revision, Position: got[0].Position}
			if diff := cmp.Diff(wantRes, res); diff != "" {
				t.Errorf("append %d: AppendResult is not where its last event landed (-read +returned):\n%s", i, diff)
			}
		}
	})

	t.Run("numbers revisions from 0 per stream and positions in global order", func(t *testing.T) {
		st, _ := s.open(t)
		var results []eventstore.AppendResult
		revs := map[string]uint64{}
		for i, stream := range []string{"a", "b", "a", "c", "b", "a"} {
			n := 1 + i%3
			res := mustAppend(t, st, stream, eventstore.Any, someEvents(n, stream)...)
			if wantRev := revs[stream] + uint64(n) - 1; res.Revision != wantRev {
				t.Errorf("append %d to %q: revision %d, want %d", i, stream, res.Revision, wantRev)
			}
			revs[stream] += uint64(n)
			results = append(results, res)
		}
		for i := 1; i < len(results); i++ {
			if results[i].Position <= results[i-1].Position {
				t.Errorf("append %d landed at position %d, not after the previous append's %d", i, results[i].Position, results[i-1].Position)
			}
		}
		all := snapshotAll(t, st)
		s.checkPositions(t, all)
		if s.h.DensePositions && len(all) > 0 && all[0].Position != 1 {
			t.Errorf("dense store: the first event of a new store is at position %d, want 1", all[0].Position)
		}
	})

	t.Run("copies the caller's bytes in and out", func(t *testing.T) {
		st, _ := s.open(t)
		const stream = "case-aliasing"
		e := event("storetest.Aliased", []byte("original data"), []byte("original metadata"))
		in := e
		in.Data, in.Metadata = bytes.Clone(e.Data), bytes.Clone(e.Metadata)
		mustAppend(t, st, stream, eventstore.NoStream, in)
		copy(in.Data, "XXXXXXXX")
		copy(in.Metadata, "XXXXXXXX")

		got := mustRead(t, st, stream, eventstore.ReadOptions{})
		if diff := diffStored(want(stream, 0, e), got); diff != "" {
			t.Fatalf("changing the appended slices changed the stored event (-want +got):\n%s", diff)
		}
		copy(got[0].Data, "YYYYYYYY")
		copy(got[0].Metadata, "YYYYYYYY")
		if diff := diffStored(want(stream, 0, e), mustRead(t, st, stream, eventstore.ReadOptions{})); diff != "" {
			t.Errorf("changing a read event's slices changed the stored event (-want +got):\n%s", diff)
		}
	})
}

// checkRecordedAt checks that every event was recorded in UTC between
// before and after, give or take a few seconds for a store that keeps a
// coarser clock.
func checkRecordedAt(t *testing.T, recs []eventstore.RecordedEvent, before, after time.Time) {
	t.Helper()
	const slack = 5 * time.Second
	for _, r := range recs {
		if r.RecordedAt.Location() != time.UTC {
			t.Errorf("event %s: RecordedAt %v is in %v, want UTC", r.ID, r.RecordedAt, r.RecordedAt.Location())
		}
		if r.RecordedAt.Before(before.Add(-slack)) || r.RecordedAt.After(after.Add(slack)) {
			t.Errorf("event %s: RecordedAt %v is not between %v and %v (the append's start and end, ±%v)",
				r.ID, r.RecordedAt, before.UTC(), after.UTC(), slack)
		}
	}
}

func (s suite) testExpectedRevision(t *testing.T) {
	const (
		existing = "case-existing" // revisions 0 and 1
		missing  = "case-missing"
	)
	tests := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedRevision
		// wantFirst is the revision of the first appended event when the
		// append succeeds.
		wantFirst uint64
		// wantErr is the error when it fails; nil when it succeeds.
		wantErr *eventstore.WrongRevisionError
	}{
		{name: "any appends to a new stream", stream: missing, expected: eventstore.Any, wantFirst: 0},
		{name: "any appends to an existing stream", stream: existing, expected: eventstore.Any, wantFirst: 2},
		{name: "no stream appends to a new stream", stream: missing, expected: eventstore.NoStream, wantFirst: 0},
		{
			name: "no stream fails on an existing stream", stream: existing, expected: eventstore.NoStream,
			wantErr: &eventstore.WrongRevisionError{Stream: existing, Expected: eventstore.NoStream, Actual: 1, Exists: true},
		},
		{name: "exact last revision appends", stream: existing, expected: eventstore.Exact(1), wantFirst: 2},
		{
			name: "exact earlier revision fails", stream: existing, expected: eventstore.Exact(0),
			wantErr: &eventstore.WrongRevisionError{Stream: existing, Expected: eventstore.Exact(0), Actual: 1, Exists: true},
		},
		{
			name: "exact later revision fails", stream: existing, expected: eventstore.Exact(5),
			wantErr: &eventstore.WrongRevisionError{Stream: existing, Expected: eventstore.Exact(5), Actual: 1, Exists: true},
		},
		{
			name: "exact revision fails on a missing stream", stream: missing, expected: eventstore.Exact(0),
			wantErr: &eventstore.WrongRevisionError{Stream: missing, Expected: eventstore.Exact(0), Exists: false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := s.open(t)
			mustAppend(t, st, existing, eventstore.NoStream, someEvents(2, "existing")...)
			before := snapshot(t, st)

			evs := someEvents(2, "attempt")
			res, err := st.Append(t.Context(), tt.stream, tt.expected, evs...)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Append(%q, %v): %v, want success", tt.stream, tt.expected, err)
				}
				if wantRev := tt.wantFirst + 1; res.Revision != wantRev {
					t.Errorf("Append(%q, %v) of 2 events: revision %d, want %d", tt.stream, tt.expected, res.Revision, wantRev)
				}
				got := mustRead(t, st, tt.stream, eventstore.ReadOptions{From: tt.wantFirst})
				if diff := diffStored(want(tt.stream, tt.wantFirst, evs...), got); diff != "" {
					t.Errorf("the appended events read back differently (-want +got):\n%s", diff)
				}
				return
			}
			checkWrongRevision(t, err, tt.wantErr)
			checkUnchanged(t, st, before, "a failed append")
		})
	}
}

// checkWrongRevision checks that err is a *WrongRevisionError saying what
// wantErr says, and nothing else.
func checkWrongRevision(t *testing.T, err error, wantErr *eventstore.WrongRevisionError) {
	t.Helper()
	var wrong *eventstore.WrongRevisionError
	if !errors.As(err, &wrong) {
		t.Fatalf("Append error is %v, want a *eventstore.WrongRevisionError", err)
	}
	if diff := cmp.Diff(wantErr, wrong, cmp.Comparer(func(a, b eventstore.ExpectedRevision) bool { return a == b })); diff != "" {
		t.Errorf("WrongRevisionError differs (-want +got):\n%s", diff)
	}
	if errors.Is(err, eventstore.ErrInvalidAppend) || errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Errorf("a wrong revision error also reads as %v", err)
	}
}
