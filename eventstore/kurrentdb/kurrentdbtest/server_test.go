package kurrentdbtest_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore/kurrentdb/kurrentdbtest"
)

// These tests speak to the double through the real client, checking the
// parts of the protocol the adapter relies on as the real server behaves.

func client(t *testing.T, srv *kurrentdbtest.Server) *esdb.Client {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func events(n int) []esdb.EventData {
	evs := make([]esdb.EventData, n)
	for i := range evs {
		evs[i] = esdb.EventData{EventID: uuid.New(), EventType: "test.Happened", Data: []byte{byte(i)}}
	}
	return evs
}

func mustAppend(t *testing.T, c *esdb.Client, stream string, rev esdb.ExpectedRevision, evs ...esdb.EventData) *esdb.WriteResult {
	t.Helper()
	wr, err := c.AppendToStream(t.Context(), stream, esdb.AppendToStreamOptions{ExpectedRevision: rev}, evs...)
	if err != nil {
		t.Fatalf("AppendToStream(%q): %v", stream, err)
	}
	return wr
}

func TestAppendChecksTheExpectedRevisionAsTheServerDoes(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	c := client(t, srv)
	first := events(2)
	orig := mustAppend(t, c, "s", esdb.NoStream{}, first...)
	mustAppend(t, c, "s", esdb.Any{}, events(1)...)

	tests := []struct {
		name    string
		stream  string
		rev     esdb.ExpectedRevision
		evs     []esdb.EventData
		wantErr string // the client's text of the server's WrongExpectedVersion; "" for success
		want    *esdb.WriteResult
	}{
		{name: "an exact revision behind the stream", stream: "s", rev: esdb.Revision(0), evs: events(1), wantErr: "expecting '0' but got '2'"},
		{name: "an exact revision beyond the stream", stream: "s", rev: esdb.Revision(7), evs: events(1), wantErr: "expecting '7' but got '2'"},
		{name: "no stream on a stream", stream: "s", rev: esdb.NoStream{}, evs: events(1), wantErr: "expecting 'no_stream' but got '2'"},
		{name: "an exact revision on no stream", stream: "t", rev: esdb.Revision(0), evs: events(1), wantErr: "expecting '0' but got 'no_stream'"},
		{name: "stream exists on no stream", stream: "t", rev: esdb.StreamExists{}, evs: events(1), wantErr: "expecting 'stream_exists' but got 'no_stream'"},
		{name: "a repeat expecting the same revision", stream: "s", rev: esdb.NoStream{}, evs: first, want: orig},
		{name: "a repeat expecting any revision", stream: "s", rev: esdb.Any{}, evs: first, want: orig},
		{name: "a repeat of part of a write", stream: "s", rev: esdb.NoStream{}, evs: first[:1], want: &esdb.WriteResult{NextExpectedVersion: 0}},
		{name: "a repeat with a new event after", stream: "s", rev: esdb.NoStream{}, evs: append(first[:2:2], events(1)...), wantErr: "expecting 'no_stream' but got '2'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wr, err := c.AppendToStream(t.Context(), tt.stream, esdb.AppendToStreamOptions{ExpectedRevision: tt.rev}, tt.evs...)
			if tt.wantErr != "" {
				var e *esdb.Error
				if !errors.As(err, &e) || e.Code() != esdb.ErrorCodeWrongExpectedVersion || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("AppendToStream: %v, want a wrong expected version %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.CommitPosition == 0 {
				// The answer names where the last repeated event is.
				p := readPosition(t, c, tt.stream, tt.want.NextExpectedVersion)
				tt.want.CommitPosition, tt.want.PreparePosition = p, p
			}
			if diff := cmp.Diff(tt.want, wr); diff != "" {
				t.Errorf("the repeat's result differs from the original's (-want +got):\n%s", diff)
			}
		})
	}
}

func readPosition(t *testing.T, c *esdb.Client, stream string, rev uint64) uint64 {
	t.Helper()
	rs, err := c.ReadStream(t.Context(), stream, esdb.ReadStreamOptions{From: esdb.Revision(rev)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return ev.Event.Position.Commit
}

func TestReadsAsTheServerDoes(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	c := client(t, srv)
	mustAppend(t, c, "a-1", esdb.NoStream{}, events(3)...)
	mustAppend(t, c, "b-1", esdb.NoStream{}, events(2)...)
	mustAppend(t, c, "a-1", esdb.Revision(2), events(1)...)
	all := readAll(t, c, esdb.ReadAllOptions{}, 100)
	if len(all) != 6 {
		t.Fatalf("$all holds %d events, want 6", len(all))
	}
	pos := func(i int) esdb.Position { return all[i].Event.Position }

	type read struct {
		stream string
		opts   esdb.ReadStreamOptions
		count  uint64
	}
	streamTests := []struct {
		name string
		read read
		want []uint64 // revisions
	}{
		{name: "forwards from a revision with a count", read: read{"a-1", esdb.ReadStreamOptions{From: esdb.Revision(1)}, 2}, want: []uint64{1, 2}},
		{name: "forwards past the end", read: read{"a-1", esdb.ReadStreamOptions{From: esdb.Revision(9)}, 5}, want: nil},
		{name: "backwards from the end", read: read{"a-1", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 2}, want: []uint64{3, 2}},
		{name: "backwards from beyond the end", read: read{"b-1", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(9)}, 9}, want: []uint64{1, 0}},
	}
	for _, tt := range streamTests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := c.ReadStream(t.Context(), tt.read.stream, tt.read.opts, tt.read.count)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			var got []uint64
			for {
				ev, err := rs.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ev.Event.EventNumber)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("revisions read (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("a missing stream is not found on the first Recv", func(t *testing.T) {
		rs, err := c.ReadStream(t.Context(), "missing", esdb.ReadStreamOptions{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		var e *esdb.Error
		if _, err := rs.Recv(); !errors.As(err, &e) || e.Code() != esdb.ErrorCodeResourceNotFound {
			t.Errorf("Recv: %v, want a resource-not-found error", err)
		}
	})

	allTests := []struct {
		name string
		opts esdb.ReadAllOptions
		want []esdb.Position
	}{
		{name: "$all forwards from a position includes it", opts: esdb.ReadAllOptions{From: pos(2)}, want: []esdb.Position{pos(2), pos(3), pos(4), pos(5)}},
		{name: "$all backwards from a position excludes it", opts: esdb.ReadAllOptions{Direction: esdb.Backwards, From: pos(2)}, want: []esdb.Position{pos(1), pos(0)}},
		{name: "$all backwards from the end", opts: esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, want: []esdb.Position{pos(5), pos(4), pos(3), pos(2), pos(1), pos(0)}},
	}
	for _, tt := range allTests {
		t.Run(tt.name, func(t *testing.T) {
			var got []esdb.Position
			for _, ev := range readAll(t, c, tt.opts, 100) {
				got = append(got, ev.Event.Position)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("positions read (-want +got):\n%s", diff)
			}
		})
	}
	for i := 1; i < len(all); i++ {
		if p, q := pos(i-1), pos(i); p.Commit != p.Prepare || q.Commit <= p.Commit+1 {
			t.Errorf("positions %+v then %+v: want commit equal to prepare, growing with gaps", p, q)
		}
	}
}

func readAll(t *testing.T, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) []*esdb.ResolvedEvent {
	t.Helper()
	rs, err := c.ReadAll(t.Context(), opts, count)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

// TestFilteredSubscriptionSendsCheckpoints subscribes to $all after an
// event, with a stream prefix filter, and checks the order of what comes:
// the events after it that match, checkpoints every window of events
// considered and at the end of catch-up, caught up, then live events.
func TestFilteredSubscriptionSendsCheckpoints(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	c := client(t, srv)
	start := mustAppend(t, c, "case-1", esdb.NoStream{}, events(1)...)
	mustAppend(t, c, "other", esdb.NoStream{}, events(5)...)
	mustAppend(t, c, "case-1", esdb.Revision(0), events(1)...)

	sub, err := c.SubscribeToAll(t.Context(), esdb.SubscribeToAllOptions{
		From:            esdb.Position{Commit: start.CommitPosition, Prepare: start.PreparePosition},
		Filter:          &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"case-"}},
		MaxSearchWindow: 2, CheckpointInterval: 2, // a checkpoint every 4 events considered
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []string
	recv := func() {
		m := sub.Recv()
		switch {
		case m.EventAppeared != nil:
			got = append(got, "event "+m.EventAppeared.Event.StreamID)
		case m.CheckPointReached != nil:
			got = append(got, "checkpoint")
		case m.CaughtUp != nil:
			got = append(got, "caught up")
		default:
			t.Fatalf("the subscription dropped: %v", m.SubscriptionDropped.Error)
		}
	}
	for range 4 {
		recv()
	}
	mustAppend(t, c, "case-2", esdb.NoStream{}, events(1)...)
	recv()
	want := []string{"checkpoint", "event case-1", "checkpoint", "caught up", "event case-2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what the subscription sent (-want +got):\n%s", diff)
	}
}

func TestDropAndRestartEndSubscriptions(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	c := client(t, srv)
	for _, end := range []func() error{
		func() error { srv.DropSubscriptions(); return nil },
		srv.Restart,
	} {
		sub, err := c.SubscribeToAll(t.Context(), esdb.SubscribeToAllOptions{From: esdb.Start{}})
		if err != nil {
			t.Fatal(err)
		}
		if m := sub.Recv(); m.CaughtUp == nil {
			t.Fatalf("the subscription to an empty log sent %+v first, want caught up", m)
		}
		if err := end(); err != nil {
			t.Fatal(err)
		}
		done := make(chan *esdb.SubscriptionEvent, 1)
		go func() { done <- sub.Recv() }()
		select {
		case m := <-done:
			if m.SubscriptionDropped == nil {
				t.Errorf("after the drop the subscription sent %+v, want it dropped", m)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the subscription was not dropped")
		}
		sub.Close()
	}
	if srv.Subscriptions() != 0 {
		t.Errorf("%d subscriptions open after both ended", srv.Subscriptions())
	}
}
