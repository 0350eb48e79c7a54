package kurrentdb_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/kurrentdb"
	"github.com/koers-io/koers/eventstore/kurrentdb/kurrentdbtest"
)

// patience bounds waits for what a correct store does at once; it measures
// nothing.
const patience = 30 * time.Second

func open(t *testing.T, url string, opts kurrentdb.Options) *kurrentdb.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	st, err := kurrentdb.Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func someEvents(n int, tag string) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{ID: uuid.New(), Type: "test.Happened", Data: fmt.Appendf(nil, "%s %d", tag, i)}
	}
	return evs
}

// appendRounds appends rounds × 3 events, one to each of a case stream, a
// stream outside the case prefix, and a second case stream, and returns the
// IDs of the case events in the order appended.
func appendRounds(t *testing.T, st eventstore.Store, rounds int, tag string) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for i := range rounds {
		for _, stream := range []string{"case-a-" + tag, "audit-" + tag, "case-b-" + tag} {
			evs := someEvents(1, fmt.Sprintf("%s %d", tag, i))
			if _, err := st.Append(t.Context(), stream, eventstore.Any, evs...); err != nil {
				t.Fatalf("Append(%q): %v", stream, err)
			}
			if strings.HasPrefix(stream, "case-") {
				ids = append(ids, evs[0].ID)
			}
		}
	}
	return ids
}

// collect ranges over a subscription in a goroutine the test owns and
// sends on what it yields.
func collect(t *testing.T, st eventstore.Store, after eventstore.Position) <-chan item {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan item)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for ev, err := range st.SubscribeAll(ctx, after) {
			select {
			case out <- item{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

type item struct {
	ev  eventstore.RecordedEvent
	err error
}

// next waits for n events and fails on an error or the end.
func next(t *testing.T, items <-chan item, n int) []eventstore.RecordedEvent {
	t.Helper()
	var got []eventstore.RecordedEvent
	timeout := time.After(patience)
	for len(got) < n {
		select {
		case it, ok := <-items:
			if !ok {
				t.Fatalf("the subscription ended after %d of %d events", len(got), n)
			}
			if it.err != nil {
				t.Fatalf("the subscription failed after %d of %d events: %v", len(got), n, it.err)
			}
			got = append(got, it.ev)
		case <-timeout:
			t.Fatalf("the subscription delivered %d of %d events within %v", len(got), n, patience)
		}
	}
	return got
}

func idsOf(recs []eventstore.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSubscribeAllDeliversOnlyCaseStreamsByDefault(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	st := open(t, srv.URL(), kurrentdb.Options{})
	want := appendRounds(t, st, 5, "x")
	got := next(t, collect(t, st, 0), len(want))
	if diff := cmp.Diff(want, idsOf(got)); diff != "" {
		t.Errorf("delivered events (-want +got):\n%s", diff)
	}
	for _, r := range got {
		if !strings.HasPrefix(r.Stream, kurrentdb.DefaultStreamPrefix) {
			t.Errorf("delivered an event of %q, outside the case prefix", r.Stream)
		}
	}
}

// TestSubscribeAllResubscribesWithoutLossOrRepeat drops the subscription
// over and over, restarts the server twice, while events are appended, and
// checks that the sequence goes on as if nothing happened.
func TestSubscribeAllResubscribesWithoutLossOrRepeat(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	st := open(t, srv.URL(), kurrentdb.Options{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	// Many events outside the prefix before the first case event, so that
	// a resubscription resumes from a checkpoint rather than an event.
	for range 3 {
		if _, err := st.Append(t.Context(), "audit-noise", eventstore.Any, someEvents(50, "noise")...); err != nil {
			t.Fatal(err)
		}
	}
	items := collect(t, st, 0)
	var want, got []uuid.UUID
	for round := range 8 {
		want = append(want, appendRounds(t, st, 10, fmt.Sprint(round))...)
		got = append(got, idsOf(next(t, items, len(want)-len(got)))...)
		started := srv.SubscriptionsStarted()
		if round%4 == 3 {
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
		} else {
			waitFor(t, "an open subscription", func() bool { return srv.Subscriptions() > 0 })
			srv.DropSubscriptions()
		}
		waitFor(t, "the store to subscribe again", func() bool { return srv.SubscriptionsStarted() > started })
	}
	want = append(want, appendRounds(t, st, 3, "last")...)
	got = append(got, idsOf(next(t, items, len(want)-len(got)))...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events delivered across drops and restarts (-want +got):\n%s", diff)
	}
}

func TestSubscribeAllGivesUpAfterTheResubscribeAttempts(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	st := open(t, srv.URL(), kurrentdb.Options{ResubscribeAttempts: 2, MinBackoff: time.Millisecond})
	items := collect(t, st, 0)
	deadline := time.After(patience)
	for drops := 0; ; {
		if srv.Subscriptions() > 0 {
			srv.DropSubscriptions()
			drops++
		}
		select {
		case it := <-items:
			if it.err == nil || !strings.Contains(it.err.Error(), "dropped 3 times in a row") {
				t.Fatalf("after %d drops the subscription yielded %v, %v; want an error saying it was dropped 3 times in a row", drops, it.ev, it.err)
			}
			return
		case <-deadline:
			t.Fatalf("after %d drops the subscription has not given up", drops)
		case <-time.After(time.Millisecond):
		}
	}
}

func TestNamespacesKeepStoresApart(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	a := open(t, srv.URL(), kurrentdb.Options{Namespace: "tenant-a/"})
	b := open(t, srv.URL(), kurrentdb.Options{Namespace: "tenant-b/"})
	wantA := appendRounds(t, a, 2, "same")
	wantB := appendRounds(t, b, 3, "same")
	if got := idsOf(next(t, collect(t, a, 0), len(wantA))); !cmp.Equal(wantA, got) {
		t.Errorf("store a delivered %v, want its own %v", got, wantA)
	}
	got := next(t, collect(t, b, 0), len(wantB))
	if !cmp.Equal(wantB, idsOf(got)) {
		t.Errorf("store b delivered %v, want its own %v", idsOf(got), wantB)
	}
	if got[0].Stream != "case-a-same" {
		t.Errorf("store b names its stream %q, want it without the namespace", got[0].Stream)
	}
	recs, err := b.ReadStream(t.Context(), "case-a-same", eventstore.ReadOptions{})
	if err != nil || len(recs) != 3 {
		t.Errorf("store b reads %d events of its case-a-same, error %v; want its own 3", len(recs), err)
	}
}

// TestPositionsAreTheServersCommitAndPreparePositions reads the log with
// the client itself and checks that each event's position is its commit
// position, equal to its prepare position.
func TestPositionsAreTheServersCommitAndPreparePositions(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	st := open(t, srv.URL(), kurrentdb.Options{})
	res, err := st.Append(t.Context(), "case-pos", eventstore.NoStream, someEvents(3, "pos")...)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.ReadStream(t.Context(), "case-pos", eventstore.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := esdb.ParseConnectionString(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rs, err := client.ReadStream(t.Context(), "case-pos", esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for i, r := range recs {
		ev, err := rs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		p := ev.Event.Position
		if p.Commit != p.Prepare || eventstore.Position(p.Commit) != r.Position {
			t.Errorf("event %d: the store says position %d, the server commit %d and prepare %d", i, r.Position, p.Commit, p.Prepare)
		}
		if i > 0 && r.Position <= recs[i-1].Position+1 {
			t.Errorf("event %d at %d right after %d: the double's positions should be sparse", i, r.Position, recs[i-1].Position)
		}
	}
	if res.Position != recs[2].Position {
		t.Errorf("AppendResult.Position %d, want the last event's %d", res.Position, recs[2].Position)
	}
}

func TestOpenRefusesBadConfiguration(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	tests := []struct {
		name string
		url  string
		opts kurrentdb.Options
		want string
	}{
		{name: "a URL of another scheme", url: "postgres://user:secret@localhost:5432", want: "not a valid esdb:// URL"},
		{name: "a namespace with a space", url: srv.URL(), opts: kurrentdb.Options{Namespace: "a b"}, want: "namespace"},
		{name: "a namespace of system streams", url: srv.URL(), opts: kurrentdb.Options{Namespace: "$koers"}, want: "system streams"},
		{name: "a stream prefix with a control character", url: srv.URL(), opts: kurrentdb.Options{StreamPrefixes: []string{"case-\n"}}, want: "stream prefix"},
		{name: "a client certificate without its key", url: srv.URL() + "&userCertFile=/tmp/cert.pem", want: "creating the client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := kurrentdb.Open(t.Context(), tt.url, tt.opts)
			if err == nil {
				st.Close()
				t.Fatalf("Open succeeded, want an error saying %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret") {
				t.Errorf("Open error %q, want one saying %q and no password", err, tt.want)
			}
		})
	}
}

func TestOpenFailsWhenNoServerAnswers(t *testing.T) {
	free := func() string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close() // nothing listens there once the test runs
		return lis.Addr().String()
	}
	a, b := free(), free()
	for _, hosts := range []string{a, a + "," + b} {
		t.Run(hosts, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			st, err := kurrentdb.Open(ctx, "esdb://"+hosts+"?tls=false", kurrentdb.Options{Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded with no server")
			}
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), hosts) {
				t.Errorf("Open error %v, want one naming %s and wrapping context.DeadlineExceeded", err, hosts)
			}
		})
	}
}

func TestReadStreamRefusesANegativeLimit(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	st := open(t, srv.URL(), kurrentdb.Options{})
	if _, err := st.ReadStream(t.Context(), "case-x", eventstore.ReadOptions{Limit: -1}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("ReadStream with limit -1: %v, want an error about the negative limit", err)
	}
}

// TestAnIndexStreamIsNoStream checks that the adapter's event-ID index
// streams are neither readable nor delivered as streams.
func TestAnIndexStreamIsNoStream(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	st := open(t, srv.URL(), kurrentdb.Options{StreamPrefixes: []string{""}})
	evs := someEvents(1, "indexed")
	if _, err := st.Append(t.Context(), "case-indexed", eventstore.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReadStream(t.Context(), "koers-eventid "+evs[0].ID.String(), eventstore.ReadOptions{}); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("reading the index stream: %v, want eventstore.ErrStreamNotFound", err)
	}
	// The sentinel comes after the index events of both appends.
	sentinel := someEvents(1, "sentinel")
	if _, err := st.Append(t.Context(), "zz-sentinel", eventstore.NoStream, sentinel...); err != nil {
		t.Fatal(err)
	}
	got := next(t, collect(t, st, 0), 2)
	if diff := cmp.Diff([]uuid.UUID{evs[0].ID, sentinel[0].ID}, idsOf(got)); diff != "" {
		t.Errorf("subscribing to every stream delivered (-want +got):\n%s", diff)
	}
}

// TestAnAppendLostInFlightKeepsItsIDsUntilItsStreamMoves covers the window
// the package documentation describes: an append whose write failed after
// it claimed its IDs leaves them claimed. A retry of it proceeds; another
// append using one of its IDs is a duplicate while the claimed stream is
// still where the lost append expected it, and may use the ID once the
// stream has moved past.
func TestAnAppendLostInFlightKeepsItsIDsUntilItsStreamMoves(t *testing.T) {
	srv := kurrentdbtest.Start(t)
	st := open(t, srv.URL(), kurrentdb.Options{})
	lost := someEvents(2, "lost")

	srv.FailAppends("case-lost", 1)
	if _, err := st.Append(t.Context(), "case-lost", eventstore.NoStream, lost...); err == nil {
		t.Fatal("the append the server failed succeeded")
	}
	if _, err := st.Append(t.Context(), "case-other", eventstore.NoStream, lost[1]); !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Errorf("another append of a claimed ID: %v, want eventstore.ErrDuplicateEventID", err)
	}
	retry, err := st.Append(t.Context(), "case-lost", eventstore.NoStream, lost...)
	if err != nil || retry.Revision != 1 {
		t.Fatalf("the retry of the lost append: %+v, %v; want it written at revision 1", retry, err)
	}

	// Lose it once more, then let the stream move past it: the claims are
	// void and the IDs free for another append.
	again := someEvents(2, "again")
	srv.FailAppends("case-lost", 1)
	if _, err := st.Append(t.Context(), "case-lost", eventstore.Exact(1), again...); err == nil {
		t.Fatal("the append the server failed succeeded")
	}
	if _, err := st.Append(t.Context(), "case-lost", eventstore.Exact(1), someEvents(1, "mover")...); err != nil {
		t.Fatal(err)
	}
	res, err := st.Append(t.Context(), "case-other", eventstore.NoStream, again[1])
	if err != nil || res.Revision != 0 {
		t.Errorf("an append of an ID whose claiming append can no longer be written: %+v, %v; want it written", res, err)
	}
	if _, err := st.Append(t.Context(), "case-lost", eventstore.Exact(2), again...); !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Errorf("the lost append retried after its ID went elsewhere: %v, want eventstore.ErrDuplicateEventID", err)
	}
}
