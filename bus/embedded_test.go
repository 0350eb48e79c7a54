package bus_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

func TestStartEmbeddedNeedsAStoreDir(t *testing.T) {
	if srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: bus.RandomPort}); err == nil {
		srv.Shutdown()
		t.Fatal("StartEmbedded without StoreDir succeeded")
	}
}

func TestStartEmbeddedRefusesABadPort(t *testing.T) {
	for _, port := range []int{-2, 65536} {
		if srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), Port: port}); err == nil {
			srv.Shutdown()
			t.Errorf("StartEmbedded with port %d succeeded", port)
		}
	}
}

func TestEmbeddedServesOutsideClientsOnLoopback(t *testing.T) {
	srv := bustest.StartServer(t)
	if srv.Port() <= 0 {
		t.Fatalf("Port() = %d, want the chosen port", srv.Port())
	}
	if want := "nats://127.0.0.1:" + strconv.Itoa(srv.Port()); srv.ClientURL() != want {
		t.Errorf("ClientURL() = %q, want %q", srv.ClientURL(), want)
	}
	// A plain TCP client, not the in-process one, must get in.
	nc := bustest.Connect(t, srv)
	if got := nc.ConnectedUrl(); got != srv.ClientURL() {
		t.Errorf("connected to %q, want %q", got, srv.ClientURL())
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Errorf("JetStream account info over TCP: %v", err)
	}
}

func TestEmbeddedWithoutListenerServesInProcess(t *testing.T) {
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: dir, Port: bus.NoListener, Logger: bustest.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if srv.ClientURL() != "" || srv.Port() != bus.NoListener {
		t.Errorf("ClientURL() = %q, Port() = %d; want none", srv.ClientURL(), srv.Port())
	}
	if addr := srv.Server().Addr(); addr != nil {
		t.Errorf("server listens on %v", addr)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{}); err != nil {
		t.Fatalf("EnsureEventStream in process: %v", err)
	}
	if _, err := js.Publish(ctx, "koers.events.a.b.c", []byte("x")); err != nil {
		t.Fatalf("publish in process: %v", err)
	}
	// File storage: the stream lives under the store dir.
	if _, err := os.Stat(filepath.Join(dir, "jetstream", "$G", "streams", bus.DefaultStreamName)); err != nil {
		t.Errorf("stream files not in the store dir: %v", err)
	}
}

func TestEmbeddedFailsFastOnAPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
		StoreDir:     t.TempDir(),
		Port:         port,
		Logger:       slog.New(slog.DiscardHandler),
		ReadyTimeout: time.Minute,
	})
	if err == nil {
		srv.Shutdown()
		t.Fatalf("StartEmbedded on port %d in use succeeded", port)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Errorf("error %q does not name the port", err)
	}
}

// recordingHandler keeps the messages of the records it is given.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func TestEmbeddedLogsThroughSlog(t *testing.T) {
	h := &recordingHandler{}
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	h.mu.Lock()
	defer h.mu.Unlock()
	var starting, jetstreamOn bool
	for _, m := range h.msgs {
		starting = starting || strings.Contains(m, "Starting nats-server")
		jetstreamOn = jetstreamOn || strings.Contains(m, "Starting JetStream")
	}
	if !starting || !jetstreamOn {
		t.Errorf("log lacks the server's start lines; got %d lines, first %q", len(h.msgs), h.msgs[:min(3, len(h.msgs))])
	}
}

func TestEnsureEventStreamAppliesTheConfig(t *testing.T) {
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	ctx := context.Background()

	s, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Name       string
		Subjects   []string
		Storage    jetstream.StorageType
		Retention  jetstream.RetentionPolicy
		Replicas   int
		Duplicates time.Duration
		MaxMsgs    int64
		MaxBytes   int64
		MaxAge     time.Duration
		DenyDelete bool
	}
	viewOf := func(c jetstream.StreamConfig) view {
		return view{c.Name, c.Subjects, c.Storage, c.Retention, c.Replicas, c.Duplicates, c.MaxMsgs, c.MaxBytes, c.MaxAge, c.DenyDelete}
	}
	want := view{"KOERS_EVENTS", []string{"koers.events.>"}, jetstream.FileStorage, jetstream.LimitsPolicy, 1, 2 * time.Minute, -1, -1, 0, true}
	if diff := cmp.Diff(want, viewOf(info.Config)); diff != "" {
		t.Errorf("stream config (-want +got):\n%s", diff)
	}

	// Ensuring again updates in place.
	s, err = bus.EnsureEventStream(ctx, js, bus.StreamConfig{Duplicates: 5 * time.Minute})
	if err != nil {
		t.Fatalf("second EnsureEventStream: %v", err)
	}
	info, err = s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want.Duplicates = 5 * time.Minute
	if diff := cmp.Diff(want, viewOf(info.Config)); diff != "" {
		t.Errorf("updated stream config (-want +got):\n%s", diff)
	}
	if _, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{Name: "bad.name"}); err == nil {
		t.Error("EnsureEventStream with a dotted name succeeded")
	}
}

// event returns stored event n (from 1) of a small history spread over
// three tenants and two streams each.
func event(t testing.TB, n int) eventstore.RecordedEvent {
	tenant := []string{"acme", "bolt", ""}[n%3]
	var meta []byte
	if tenant != "" {
		meta = metadataBytes(t, &eventv1.Metadata{TenantId: tenant})
	}
	return eventstore.RecordedEvent{
		ID:         uuid.NewSHA1(uuid.NameSpaceOID, []byte(strconv.Itoa(n))),
		Stream:     "case-" + tenant + strconv.Itoa(n%2),
		Type:       "koers.case.v1.Noted",
		Data:       []byte(strconv.Itoa(n)),
		Metadata:   meta,
		Revision:   uint64(n / 6),
		Position:   eventstore.Position(n),
		RecordedAt: recordedAt.Add(time.Duration(n) * time.Second),
	}
}

func TestEventMessagesSurviveJetStreamAndFilterByTenantAndStream(t *testing.T) {
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	ctx := context.Background()
	s, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	for i := 1; i <= n; i++ {
		msg, err := bus.Message(event(t, i), eventstore.Position(i-1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}

	tests := []struct {
		name   string
		filter string
		want   func(eventstore.RecordedEvent) bool
	}{
		{"all", bus.AllEvents, func(eventstore.RecordedEvent) bool { return true }},
		{"tenant acme", bus.TenantFilter("acme"), func(e eventstore.RecordedEvent) bool { return e.Position%3 == 0 }},
		{"no tenant", bus.TenantFilter(""), func(e eventstore.RecordedEvent) bool { return e.Position%3 == 2 }},
		{"category", bus.CategoryFilter("bolt", "case"), func(e eventstore.RecordedEvent) bool { return e.Position%3 == 1 }},
		{"one stream", bus.StreamFilter("bolt", "case-bolt1"), func(e eventstore.RecordedEvent) bool { return e.Position%3 == 1 && e.Position%2 == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []uint64
			for i := 1; i <= n; i++ {
				if tt.want(event(t, i)) {
					want = append(want, uint64(i))
				}
			}
			c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{tt.filter}})
			if err != nil {
				t.Fatal(err)
			}
			batch, err := c.FetchNoWait(n)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for m := range batch.Messages() {
				ev, err := bus.Decode(m.Data(), m.Headers())
				if err != nil {
					t.Fatalf("Decode %s: %v", m.Subject(), err)
				}
				orig := event(t, int(ev.GetPosition()))
				wantBody, err := bus.Message(orig, orig.Position-1)
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(mustDecode(t, wantBody), ev) || m.Subject() != wantBody.Subject {
					t.Errorf("message at position %d on %s differs from what was published", ev.GetPosition(), m.Subject())
				}
				got = append(got, ev.GetPosition())
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("positions through %s (-want +got):\n%s", tt.filter, diff)
			}
		})
	}
}

func mustDecode(t testing.TB, m *nats.Msg) *eventv1.Event {
	t.Helper()
	ev, err := bus.Decode(m.Data, m.Header)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestEventStreamDropsARepublishedEvent(t *testing.T) {
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	ctx := context.Background()
	s, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(n int) *jetstream.PubAck {
		msg, err := bus.Message(event(t, n), eventstore.Position(n-1))
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatalf("publish %d: %v", n, err)
		}
		return ack
	}
	for n := 1; n <= 3; n++ {
		publish(n)
	}
	ack := publish(2)
	if !ack.Duplicate || ack.Sequence != 2 {
		t.Errorf("republished event 2: ack %+v, want a duplicate of sequence 2", ack)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages, want 3", info.State.Msgs)
	}
}

func TestRestartKeepsTheStreamOnDisk(t *testing.T) {
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	ctx := context.Background()
	if _, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	msg, err := bus.Message(event(t, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}

	restarted := bustest.Restart(t, srv)
	if restarted.Port() != srv.Port() {
		t.Errorf("restarted on port %d, want %d", restarted.Port(), srv.Port())
	}
	// The same connection reconnects to the new server. A request sent as
	// the old server stopped gets no answer, so each try has its own
	// timeout.
	deadline := time.Now().Add(10 * time.Second)
	var last *jetstream.RawStreamMsg
	for {
		last, err = lastMessage(ctx, js)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p, err := bus.PositionOf(last.Header); err != nil || p != 1 {
		t.Errorf("last message after restart has position %d, %v; want 1", p, err)
	}
}

func lastMessage(ctx context.Context, js jetstream.JetStream) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	s, err := js.Stream(ctx, bus.DefaultStreamName)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctx, bus.AllEvents)
}
