package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/eventstore"
)

func TestGroupCommitFailsAConflictingAppendAlone(t *testing.T) {
	// The gate holds the writer at a first batch of one append while six
	// more queue behind it; the writer then takes the six as one batch.
	g := newGate(1)
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"), Options{beforeBatch: g.beforeBatch})
	plug := plugWriter(t, s, g)

	e1, e2, e3, e4, e5 := newEvent("1"), newEvent("2"), newEvent("3"), newEvent("4"), newEvent("5")
	calls := []appendCall{
		{name: "new stream", stream: "case-1", expected: eventstore.NoStream, events: []eventstore.EventData{e1}},
		{name: "same stream expecting none, after the first", stream: "case-1", expected: eventstore.NoStream, events: []eventstore.EventData{e2}},
		{name: "ID of the first on another stream", stream: "case-2", expected: eventstore.Any, events: []eventstore.EventData{e3, e1}},
		{name: "two events to a third stream", stream: "case-3", expected: eventstore.Any, events: []eventstore.EventData{e4, e5}},
		{name: "retry of the first", stream: "case-1", expected: eventstore.NoStream, events: []eventstore.EventData{e1}},
		{name: "exact revision after the first", stream: "case-1", expected: eventstore.Exact(0), events: []eventstore.EventData{e2}},
	}
	outs := queue(t, s, calls)
	close(g.open)

	if o := await(t, "the plug", plug); o.err != nil {
		t.Fatalf("the plug append: %v", o.err)
	}
	// Positions: the plug 1, e1 2, e4 3, e5 4, e2 5.
	tests := []struct {
		want    eventstore.AppendResult
		wantErr func(error) bool
	}{
		{want: eventstore.AppendResult{Revision: 0, Position: 2}},
		{wantErr: func(err error) bool {
			var wrong *eventstore.WrongRevisionError
			return errors.As(err, &wrong) && wrong.Exists && wrong.Actual == 0
		}},
		{wantErr: func(err error) bool { return errors.Is(err, eventstore.ErrDuplicateEventID) }},
		{want: eventstore.AppendResult{Revision: 1, Position: 4}},
		{want: eventstore.AppendResult{Revision: 0, Position: 2}},
		{want: eventstore.AppendResult{Revision: 1, Position: 5}},
	}
	for i, tt := range tests {
		o := await(t, calls[i].name, outs[i])
		switch {
		case tt.wantErr != nil && !tt.wantErr(o.err):
			t.Errorf("append %d (%s): error %v, result %+v; not the error wanted", i, calls[i].name, o.err, o.res)
		case tt.wantErr == nil && o.err != nil:
			t.Errorf("append %d (%s): %v, want %+v", i, calls[i].name, o.err, tt.want)
		case tt.wantErr == nil && o.res != tt.want:
			t.Errorf("append %d (%s): %+v, want %+v", i, calls[i].name, o.res, tt.want)
		}
	}

	if diff := cmp.Diff([]int{1, len(calls)}, g.batchSizes()); diff != "" {
		t.Fatalf("batch sizes (-want +got):\n%s", diff)
	}
	all := readAll(t, s)
	if diff := cmp.Diff([]eventstore.Position{1, 2, 3, 4, 5}, positions(all)); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(eventIDs(e1, e4, e5, e2), idsOf(all[1:])); diff != "" {
		t.Errorf("events written by the batch (-want +got):\n%s", diff)
	}
	for _, r := range all[2:] {
		if !r.RecordedAt.Equal(all[1].RecordedAt) {
			t.Errorf("event at %d recorded at %v, the batch's first at %v: not one transaction", r.Position, r.RecordedAt, all[1].RecordedAt)
		}
	}
	if got := s.commits.Load(); got != 2 {
		t.Errorf("%d transactions committed, want 2 (the plug's and the batch's)", got)
	}
}

func TestFailedBatchLeavesCacheAndHeadRight(t *testing.T) {
	// A batch fails as a whole when the database refuses a write the writer
	// did not foresee. Here another connection writes behind the store's
	// back (which a deployment must never do), so that the writer's cached
	// revision of case-x is stale and its insert breaks UNIQUE(stream,
	// revision). The append to case-new before it in the same batch must
	// leave no trace, in the table or in the revision cache.
	path := filepath.Join(t.TempDir(), "events.db")
	g := newGate(2)
	s := openStore(t, path, Options{beforeBatch: g.beforeBatch, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	mustAppend(t, s, "case-x", eventstore.NoStream, newEvent("x0")) // cached at revision 0

	foreign, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	if _, err := foreign.ExecContext(t.Context(), `INSERT INTO events
		(position, stream, revision, id, type, data, metadata, recorded_at, append_end, append_index)
		VALUES (1000, 'case-x', 1, randomblob(16), 'test.Foreign', x'00', NULL, 0, 1000, 0)`); err != nil {
		t.Fatalf("foreign insert: %v", err)
	}

	plug := plugWriter(t, s, g)
	calls := []appendCall{
		{name: "new stream", stream: "case-new", expected: eventstore.NoStream, events: newEvents(1, "new")},
		{name: "stale stream", stream: "case-x", expected: eventstore.Any, events: newEvents(1, "x")},
	}
	outs := queue(t, s, calls)
	close(g.open)
	if o := await(t, "the plug", plug); o.err != nil {
		t.Fatalf("the plug append: %v", o.err)
	}
	for i, out := range outs {
		if o := await(t, calls[i].name, out); o.err == nil {
			t.Errorf("append %d (%s) in the failed batch succeeded with %+v", i, calls[i].name, o.res)
		}
	}
	if _, err := s.ReadStream(t.Context(), "case-new", eventstore.ReadOptions{}); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("ReadStream of the stream the failed batch created: %v, want ErrStreamNotFound", err)
	}

	// The writer reread its head from the table and forgot its cache.
	tests := []struct {
		stream   string
		expected eventstore.ExpectedRevision
		want     eventstore.AppendResult
	}{
		{stream: "case-new", expected: eventstore.NoStream, want: eventstore.AppendResult{Revision: 0, Position: 1001}},
		{stream: "case-x", expected: eventstore.Exact(1), want: eventstore.AppendResult{Revision: 2, Position: 1002}},
	}
	for _, tt := range tests {
		if got := mustAppend(t, s, tt.stream, tt.expected, newEvent("after")); got != tt.want {
			t.Errorf("Append(%q, %v) after the failed batch: %+v, want %+v", tt.stream, tt.expected, got, tt.want)
		}
	}
}

func TestRevisionCacheEvictionFallsBackToTheTable(t *testing.T) {
	// A cache of one stream forgets every stream but the last one written.
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"), Options{RevisionCacheSize: 1})
	steps := []struct {
		stream   string
		expected eventstore.ExpectedRevision
		events   int
		wantRev  uint64 // when wantErr is nil
		wantErr  *eventstore.WrongRevisionError
	}{
		{stream: "case-a", expected: eventstore.NoStream, events: 2, wantRev: 1},
		{stream: "case-b", expected: eventstore.NoStream, events: 1, wantRev: 0},
		{stream: "case-a", expected: eventstore.NoStream, events: 1,
			wantErr: &eventstore.WrongRevisionError{Stream: "case-a", Expected: eventstore.NoStream, Actual: 1, Exists: true}},
		{stream: "case-b", expected: eventstore.Exact(0), events: 1, wantRev: 1},
		{stream: "case-a", expected: eventstore.Exact(0), events: 1,
			wantErr: &eventstore.WrongRevisionError{Stream: "case-a", Expected: eventstore.Exact(0), Actual: 1, Exists: true}},
		{stream: "case-b", expected: eventstore.Any, events: 1, wantRev: 2},
		{stream: "case-a", expected: eventstore.Exact(1), events: 3, wantRev: 4},
		{stream: "case-c", expected: eventstore.Exact(0), events: 1,
			wantErr: &eventstore.WrongRevisionError{Stream: "case-c", Expected: eventstore.Exact(0)}},
		{stream: "case-b", expected: eventstore.Exact(2), events: 1, wantRev: 3},
		{stream: "case-a", expected: eventstore.Any, events: 1, wantRev: 5},
	}
	for i, st := range steps {
		res, err := s.Append(t.Context(), st.stream, st.expected, newEvents(st.events, st.stream)...)
		if st.wantErr != nil {
			var wrong *eventstore.WrongRevisionError
			if !errors.As(err, &wrong) {
				t.Fatalf("step %d: Append(%q, %v): %v, want a WrongRevisionError", i, st.stream, st.expected, err)
			}
			if diff := cmp.Diff(st.wantErr, wrong, cmp.AllowUnexported(eventstore.ExpectedRevision{})); diff != "" {
				t.Errorf("step %d: WrongRevisionError (-want +got):\n%s", i, diff)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: Append(%q, %v): %v", i, st.stream, st.expected, err)
		}
		if res.Revision != st.wantRev {
			t.Errorf("step %d: Append(%q, %v) landed at revision %d, want %d", i, st.stream, st.expected, res.Revision, st.wantRev)
		}
	}
}

func TestRetryAfterOtherAppendsEvictionAndReopen(t *testing.T) {
	// With a cache of one stream, the retried stream is never in the cache.
	path := filepath.Join(t.TempDir(), "events.db")
	opts := Options{RevisionCacheSize: 1}
	s := openStore(t, path, opts)
	a := newEvents(2, "a")
	resA := mustAppend(t, s, "case-retried", eventstore.NoStream, a...)
	mustAppend(t, s, "case-retried", eventstore.Exact(resA.Revision), newEvents(2, "b")...)
	mustAppend(t, s, "case-other", eventstore.NoStream, newEvents(1, "other")...)

	retry := func(t *testing.T, s *Store, expected eventstore.ExpectedRevision) {
		t.Helper()
		head := s.Head()
		got, err := s.Append(t.Context(), "case-retried", expected, a...)
		if err != nil {
			t.Fatalf("retry with %v: %v", expected, err)
		}
		if got != resA {
			t.Errorf("retry with %v: %+v, want the original %+v", expected, got, resA)
		}
		if s.Head() != head {
			t.Errorf("the retry with %v moved the head from %d to %d", expected, head, s.Head())
		}
	}
	for _, expected := range []eventstore.ExpectedRevision{eventstore.NoStream, eventstore.Exact(resA.Revision), eventstore.Any, eventstore.Exact(3)} {
		retry(t, s, expected)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openStore(t, path, opts)
	retry(t, s, eventstore.NoStream)
	if got := len(mustRead(t, s, "case-retried")); got != 4 {
		t.Errorf("the retried stream holds %d events, want 4", got)
	}
}

func TestRetryInTheSameBatchAsTheOriginal(t *testing.T) {
	g := newGate(1)
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"), Options{beforeBatch: g.beforeBatch})
	plug := plugWriter(t, s, g)
	evs := newEvents(3, "twice")
	outs := queue(t, s, []appendCall{
		{name: "original", stream: "case-twice", expected: eventstore.NoStream, events: evs},
		{name: "retry", stream: "case-twice", expected: eventstore.NoStream, events: evs},
	})
	close(g.open)
	await(t, "the plug", plug)
	original, retried := await(t, "the original", outs[0]), await(t, "the retry", outs[1])
	if original.err != nil || retried.err != nil {
		t.Fatalf("original: %v; retry: %v", original.err, retried.err)
	}
	if want := (eventstore.AppendResult{Revision: 2, Position: 4}); original.res != want || retried.res != want {
		t.Errorf("original %+v, retry %+v; want both %+v", original.res, retried.res, want)
	}
	if diff := cmp.Diff(eventIDs(evs...), idsOf(mustRead(t, s, "case-twice"))); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1, 2}, g.batchSizes()); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}

func TestQueuedAppendWhoseCallerLeftIsNotWritten(t *testing.T) {
	g := newGate(1)
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"), Options{beforeBatch: g.beforeBatch})
	plug := plugWriter(t, s, g)

	ctx, cancel := context.WithCancel(t.Context())
	left := goAppend(ctx, s, "case-left", eventstore.NoStream, newEvent("left"))
	waitFor(t, "the append to queue", func() bool { return len(s.queue) == 1 })
	cancel()
	if o := await(t, "the cancelled append", left); !errors.Is(o.err, context.Canceled) {
		t.Errorf("cancelled append: %v, want context.Canceled", o.err)
	}
	close(g.open)
	await(t, "the plug", plug)
	// Appends are answered in queue order, so this one follows the other.
	mustAppend(t, s, "case-after", eventstore.NoStream, newEvent("after"))
	if _, err := s.ReadStream(t.Context(), "case-left", eventstore.ReadOptions{}); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("ReadStream of the cancelled append's stream: %v, want ErrStreamNotFound", err)
	}
}
