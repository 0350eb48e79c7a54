package bus_test

import (
	"context"
	"errors"
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
	"golang.org/x/crypto/bcrypt"
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

// agencyServer is an embedded server with three agency users: reintegra
// and werkfit of tenant acme (werkfit's password given as a bcrypt hash),
// and reintegra of tenant bolt. Each has a consumer and one message on
// the agency stream per case, and the event stream holds one event.
type agencyServer struct {
	srv   *bus.Embedded
	js    jetstream.JetStream // Koers' own
	users map[string]bus.AgencyUser
}

const (
	reintegraPassword = "reintegra-secret"
	werkfitPassword   = "werkfit-secret"
	boltPassword      = "bolt-secret"
)

func startAgencyServer(t *testing.T) agencyServer {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(werkfitPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]bus.AgencyUser{
		"reintegra": {Tenant: "acme", Agency: "reintegra", Username: "reintegra", Password: reintegraPassword},
		"werkfit":   {Tenant: "acme", Agency: "werkfit", Username: "werkfit", Password: string(hash)},
		"bolt":      {Tenant: "bolt", Agency: "reintegra", Username: "bolt-reintegra", Password: boltPassword},
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
		StoreDir:    t.TempDir(),
		Port:        bus.RandomPort,
		Logger:      bustest.Logger(t, slog.LevelWarn),
		AgencyUsers: []bus.AgencyUser{users["reintegra"], users["werkfit"], users["bolt"]},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("Koers' own in-process connection: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureAgencyStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if _, err := bus.EnsureAgencyConsumer(ctx, js, u.Tenant, u.Agency); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{
		bus.AgencySubject("acme", "reintegra", "case1"),
		bus.AgencySubject("acme", "werkfit", "case2"),
		bus.AgencySubject("bolt", "reintegra", "case3"),
		bus.AgencySubject("acme", "reintegra", "case4"),
	} {
		if _, err := js.Publish(ctx, s, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "koers.events.acme.case.case1", []byte("event")); err != nil {
		t.Fatal(err)
	}
	return agencyServer{srv: srv, js: js, users: users}
}

// violations collects the permissions violations a connection's server
// reports.
type violations chan error

// connectAgency connects as user over TCP, as an agency would.
func (a agencyServer) connectAgency(t *testing.T, user, password string) (*nats.Conn, violations) {
	t.Helper()
	return a.connectAgencyTo(t, a.srv.ClientURL(), user, password)
}

// connectAgencyTo connects as user to the server at url.
func (a agencyServer) connectAgencyTo(t *testing.T, url, user, password string) (*nats.Conn, violations) {
	t.Helper()
	u := a.users[user]
	v := make(violations, 16)
	opts := append(bus.AgencyClientOptions(u.Tenant, u.Agency, u.Username, password),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				v <- err
			}
		}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

// refused runs do, which must make the server report a permissions
// violation naming subject; do gets a context that ends once it has.
func (v violations) refused(t *testing.T, what, subject string, do func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- do(ctx) }()
	select {
	case err := <-v:
		if !strings.Contains(err.Error(), `"`+subject+`"`) {
			t.Errorf("%s: violation %q does not name %q", what, err, subject)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s: the server reported no permissions violation for %s", what, subject)
	}
	cancel()
	if err := <-done; err == nil {
		t.Errorf("%s succeeded", what)
	}
}

func TestAgencyReadsItsOwnFeedOverNATS(t *testing.T) {
	a := startAgencyServer(t)
	for _, tt := range []struct {
		user, password string
		want           []string
	}{
		{"reintegra", reintegraPassword, []string{"koers.agency.acme.reintegra.case1", "koers.agency.acme.reintegra.case4"}},
		{"werkfit", werkfitPassword, []string{"koers.agency.acme.werkfit.case2"}},
		{"bolt", boltPassword, []string{"koers.agency.bolt.reintegra.case3"}},
	} {
		t.Run(tt.user, func(t *testing.T) {
			u := a.users[tt.user]
			nc, v := a.connectAgency(t, tt.user, tt.password)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			c, err := js.Consumer(ctx, bus.AgencyStreamName, bus.AgencyConsumerName(u.Tenant, u.Agency))
			if err != nil {
				t.Fatalf("binding to its consumer: %v", err)
			}
			batch, err := c.FetchNoWait(10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for m := range batch.Messages() {
				got = append(got, m.Subject())
				if err := m.DoubleAck(ctx); err != nil {
					t.Errorf("acknowledging %s: %v", m.Subject(), err)
				}
			}
			if err := batch.Error(); err != nil {
				t.Errorf("fetch: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("messages fetched (-want +got):\n%s", diff)
			}
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.NumAckPending != 0 || info.AckFloor.Consumer != uint64(len(tt.want)) {
				t.Errorf("after the acks the consumer has %d pending, ack floor %d; want 0 and %d", info.NumAckPending, info.AckFloor.Consumer, len(tt.want))
			}
			// A long-running pull (heartbeats, requests renewed as it
			// goes) sees a message published later.
			it, err := c.Messages(jetstream.PullHeartbeat(time.Second), jetstream.PullExpiry(3*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer it.Stop()
			later := bus.AgencySubject(u.Tenant, u.Agency, "later")
			if _, err := a.js.Publish(ctx, later, []byte("later")); err != nil {
				t.Fatal(err)
			}
			m, err := it.Next()
			if err != nil || m.Subject() != later {
				t.Fatalf("Messages().Next() = %v, %v; want the message on %s", m, err, later)
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Errorf("acknowledging %s: %v", m.Subject(), err)
			}
			select {
			case err := <-v:
				t.Errorf("reading its own feed caused %v", err)
			default:
			}
		})
	}
}

func TestAgencyUserIsRefusedEverythingButItsOwnFeed(t *testing.T) {
	a := startAgencyServer(t)
	nc, v := a.connectAgency(t, "reintegra", reintegraPassword)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	own := bus.AgencyConsumerName("acme", "reintegra")
	other := bus.AgencyConsumerName("acme", "werkfit")
	subscribe := func(subject string) func(context.Context) error {
		return func(ctx context.Context) error {
			sub, err := nc.SubscribeSync(subject)
			if err != nil {
				return err
			}
			_, err = sub.NextMsgWithContext(ctx)
			return err
		}
	}
	tests := []struct {
		what, subject string
		do            func(ctx context.Context) error
	}{
		{"subscribing to the event stream", "koers.events.>", subscribe("koers.events.>")},
		{"subscribing to another agency's subjects", "koers.agency.acme.werkfit.>", subscribe("koers.agency.acme.werkfit.>")},
		{"subscribing to its own subjects directly", "koers.agency.acme.reintegra.>", subscribe("koers.agency.acme.reintegra.>")},
		{"subscribing to every inbox", "_INBOX.>", subscribe("_INBOX.>")},
		{"subscribing to another agency's inbox", "_INBOX_acme_werkfit.>", subscribe("_INBOX_acme_werkfit.>")},
		{"creating a consumer on the event stream", "$JS.API.CONSUMER.CREATE.KOERS_EVENTS.x.koers.events.>", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, bus.DefaultStreamName, jetstream.ConsumerConfig{Durable: "x", FilterSubject: bus.AllEvents})
			return err
		}},
		{"creating a consumer on another agency's subjects", "$JS.API.CONSUMER.CREATE.KOERS_AGENCY_FEED." + own + ".koers.agency.acme.werkfit.*", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, bus.AgencyStreamName, jetstream.ConsumerConfig{Durable: own, FilterSubject: bus.AgencyFilter("acme", "werkfit")})
			return err
		}},
		// Even its own, pinned filter: the body could name a deliver
		// subject the server would deliver to unchecked.
		{"creating a consumer on its own subjects", "$JS.API.CONSUMER.CREATE.KOERS_AGENCY_FEED." + own + ".koers.agency.acme.reintegra.*", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, bus.AgencyStreamName, bus.AgencyConsumerConfig("acme", "reintegra"))
			return err
		}},
		{"binding to another agency's consumer", "$JS.API.CONSUMER.INFO.KOERS_AGENCY_FEED." + other, func(ctx context.Context) error {
			_, err := js.Consumer(ctx, bus.AgencyStreamName, other)
			return err
		}},
		{"fetching through another agency's consumer", "$JS.API.CONSUMER.MSG.NEXT.KOERS_AGENCY_FEED." + other, func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.KOERS_AGENCY_FEED."+other, []byte(`{"batch":1}`))
			return err
		}},
		{"deleting its own consumer", "$JS.API.CONSUMER.DELETE.KOERS_AGENCY_FEED." + own, func(ctx context.Context) error {
			return js.DeleteConsumer(ctx, bus.AgencyStreamName, own)
		}},
		{"reading the stream's messages directly", "$JS.API.STREAM.MSG.GET.KOERS_AGENCY_FEED", func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KOERS_AGENCY_FEED", []byte(`{"seq":2}`))
			return err
		}},
		{"asking for JetStream account information", "$JS.API.INFO", func(ctx context.Context) error {
			_, err := js.AccountInfo(ctx)
			return err
		}},
		{"publishing into the event stream", "koers.events.acme.case.x", func(ctx context.Context) error {
			_, err := js.Publish(ctx, "koers.events.acme.case.x", []byte("forged"))
			return err
		}},
	}
	for _, tt := range tests {
		v.refused(t, tt.what, tt.subject, tt.do)
	}
	// Nothing of the above left a trace on the streams.
	ctx := context.Background()
	for name, want := range map[string]uint64{bus.DefaultStreamName: 1, bus.AgencyStreamName: 4} {
		s, err := a.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != want {
			t.Errorf("stream %s holds %d messages, want %d", name, n, want)
		}
	}
}

// A NATS server does not check a request's reply subject against the
// requester's permissions, so in Koers' own account a next-message
// request answered on koers.events.… makes the consumer deliver into the
// event stream (the control below). An agency's requests are answered
// inside its own account instead.
func TestAgencyCannotMakeJetStreamWriteIntoKoersSubjects(t *testing.T) {
	a := startAgencyServer(t)
	nc, v := a.connectAgency(t, "reintegra", reintegraPassword)
	next := "$JS.API.CONSUMER.MSG.NEXT.KOERS_AGENCY_FEED." + bus.AgencyConsumerName("acme", "reintegra")
	pull := []byte(`{"batch":1,"no_wait":true}`)
	if err := nc.PublishRequest(next, "koers.events.acme.case.attack", pull); err != nil {
		t.Fatal(err)
	}
	// Its own request after it is answered in its inbox: the consumer has
	// handled the first.
	inbox := bus.AgencyInboxPrefix("acme", "reintegra") + ".pull"
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	// It waits for a message rather than asking with no_wait, which
	// JetStream may answer "no messages" while it still handles the first.
	if err := nc.PublishRequest(next, inbox, []byte(`{"batch":1,"expires":10000000000}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(15 * time.Second); err != nil || !strings.HasPrefix(m.Subject, "koers.agency.acme.reintegra.") {
		t.Fatalf("the agency's own pull got %v, %v; want one of its messages", m, err)
	}
	// Koers' own connection sends the attack's request after both. The
	// consumer answers requests in order and the event stream stores in
	// order, so once Koers' delivery is on the event stream, an answer to
	// the agency's request that leaked out of its account would be there
	// before it.
	internal, err := a.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer internal.Close()
	if err := internal.PublishRequest(next, "koers.events.acme.case.control", pull); err != nil {
		t.Fatal(err)
	}
	if err := internal.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	var state jetstream.StreamState
	for {
		s, err := a.js.Stream(ctx, bus.DefaultStreamName)
		if err != nil {
			t.Fatal(err)
		}
		state = s.CachedInfo().State
		if m, err := s.GetMsg(ctx, state.LastSeq); err == nil && strings.HasPrefix(m.Subject, bus.AgencySubjectRoot+".") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Koers' own request never made the consumer deliver into the event stream; the test cannot tell anything")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The event stream's own event and Koers' delivery; nothing of the
	// agency's.
	if state.Msgs != 2 {
		t.Errorf("the event stream holds %d messages, want 2: the agency's request made JetStream write into it", state.Msgs)
	}
	select {
	case err := <-v:
		t.Errorf("the agency's own next-message request was refused: %v", err)
	default:
	}
}

func TestEmbeddedWithUsersRefusesClientsWithoutTheRightCredentials(t *testing.T) {
	a := startAgencyServer(t)
	tests := []struct {
		what string
		opts []nats.Option
	}{
		{"no credentials", nil},
		{"a wrong password", []nats.Option{nats.UserInfo("reintegra", "guess")}},
		{"another agency's password", []nats.Option{nats.UserInfo("reintegra", werkfitPassword)}},
		{"the bcrypt hash as password", []nats.Option{nats.UserInfo("werkfit", a.users["werkfit"].Password)}},
		{"Koers' user with a wrong password", []nats.Option{nats.UserInfo(bus.InternalUser, "guess")}},
		{"an unknown user", []nats.Option{nats.UserInfo("nobody", reintegraPassword)}},
	}
	for _, tt := range tests {
		nc, err := nats.Connect(a.srv.ClientURL(), append(tt.opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Errorf("connecting with %s succeeded", tt.what)
			continue
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("connecting with %s: %v; want an authorization error", tt.what, err)
		}
	}
	// Koers' own credentials work over the network too.
	nc, err := nats.Connect(a.srv.ClientURL(), a.srv.InternalOptions()...)
	if err != nil {
		t.Fatalf("connecting as %s over TCP: %v", bus.InternalUser, err)
	}
	nc.Close()
}

func TestStartEmbeddedRefusesBadAgencyUsers(t *testing.T) {
	good := bus.AgencyUser{Tenant: "acme", Agency: "reintegra", Username: "reintegra", Password: "pw"}
	with := func(f func(*bus.AgencyUser)) []bus.AgencyUser {
		u := good
		f(&u)
		return []bus.AgencyUser{u}
	}
	tests := []struct {
		what  string
		users []bus.AgencyUser
		want  string
	}{
		{"an empty tenant", with(func(u *bus.AgencyUser) { u.Tenant = "" }), "tenant"},
		{"a tenant with a dot", with(func(u *bus.AgencyUser) { u.Tenant = "ac.me" }), "tenant"},
		{"an upper-case agency", with(func(u *bus.AgencyUser) { u.Agency = "Reintegra" }), "agency"},
		{"an agency of 64 characters", with(func(u *bus.AgencyUser) { u.Agency = strings.Repeat("a", 64) }), "agency"},
		{"no username", with(func(u *bus.AgencyUser) { u.Username = "" }), "username"},
		{"Koers' username", with(func(u *bus.AgencyUser) { u.Username = bus.InternalUser }), "username"},
		{"no password", with(func(u *bus.AgencyUser) { u.Password = "" }), "password"},
		{"a broken bcrypt hash", with(func(u *bus.AgencyUser) { u.Password = "$2a$10$short" }), "bcrypt"},
		{"a username twice", []bus.AgencyUser{good, {Tenant: "acme", Agency: "werkfit", Username: "reintegra", Password: "x"}}, "taken"},
	}
	for _, tt := range tests {
		srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), Port: bus.NoListener, AgencyUsers: tt.users, Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			srv.Shutdown()
			t.Errorf("StartEmbedded with %s succeeded", tt.what)
			continue
		}
		if !errors.Is(err, bus.ErrBadAgencyUser) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("StartEmbedded with %s: %v; want ErrBadAgencyUser naming %q", tt.what, err, tt.want)
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), Port: bus.NoListener, InternalPassword: string(hash)}); err == nil {
		srv.Shutdown()
		t.Error("StartEmbedded with a bcrypt hash as InternalPassword succeeded")
	}
}

func TestEmbeddedWithAgencyUsersKeepsKoersStreamsWhereTheyWere(t *testing.T) {
	a := startAgencyServer(t)
	cfg := a.srv.Config()
	if cfg.InternalPassword == "" {
		t.Fatal("Config() reports no InternalPassword; a restart could not log in")
	}
	// The global account, as on a server without agency users.
	for _, name := range []string{bus.DefaultStreamName, bus.AgencyStreamName} {
		if _, err := os.Stat(filepath.Join(cfg.StoreDir, "jetstream", "$G", "streams", name)); err != nil {
			t.Errorf("stream %s is not in the global account's folder: %v", name, err)
		}
	}
	restarted := bustest.Restart(t, a.srv)
	if restarted.Config().InternalPassword != cfg.InternalPassword {
		t.Error("the restarted server chose another InternalPassword than the one it was given")
	}
	nc, err := restarted.Connect()
	if err != nil {
		t.Fatalf("Koers' in-process connection after a restart: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), bus.AgencyStreamName)
	if err != nil {
		t.Fatalf("agency stream after a restart: %v", err)
	}
	if n := s.CachedInfo().State.Msgs; n != 4 {
		t.Errorf("agency stream holds %d messages after a restart, want 4", n)
	}
	anc, err := nats.Connect(restarted.ClientURL(), bus.AgencyClientOptions("acme", "reintegra", "reintegra", reintegraPassword)...)
	if err != nil {
		t.Fatalf("agency connecting after a restart: %v", err)
	}
	anc.Close()
}

func TestEmbeddedWithAnInternalPasswordOnlyRequiresIt(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), Port: bus.RandomPort, InternalPassword: "s3cret", Logger: bustest.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if nc, err := nats.Connect(srv.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("an anonymous client got in")
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
	if _, err := bus.EnsureEventStream(context.Background(), js, bus.StreamConfig{}); err != nil {
		t.Errorf("JetStream for Koers' own user: %v", err)
	}
}
