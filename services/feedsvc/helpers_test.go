package feedsvc_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/feedsvc"
)

// The parties of the tests: two tenants, and two agencies of which one,
// agencyA, works for both tenants.
const (
	tenantA = "acme"
	tenantB = "globex"
	agencyA = "reintegra"
	agencyB = "werkfit"
)

// testPrincipalKey is the metadata key through which a test names the
// principal testPrincipalInterceptor puts in the server-side context.
const testPrincipalKey = "test-principal"

// principals are the callers tests can name.
var principals = map[string]authn.Principal{
	"agency-a":              {Subject: "agency-a", Tenant: tenantA, Roles: []authn.Role{authn.RoleAgency}, AgencyID: agencyA, Via: authn.ViaJWT},
	"agency-a-slow":         {Subject: "agency-a-slow", Tenant: tenantA, Roles: []authn.Role{authn.RoleAgency}, AgencyID: agencyA, Via: authn.ViaJWT},
	"agency-b":              {Subject: "agency-b", Tenant: tenantA, Roles: []authn.Role{authn.RoleAgency}, AgencyID: agencyB, Via: authn.ViaJWT},
	"agency-a-other-tenant": {Subject: "agency-a", Tenant: tenantB, Roles: []authn.Role{authn.RoleAgency}, AgencyID: agencyA, Via: authn.ViaJWT},
	"coach":                 {Subject: "coach-1", Tenant: tenantA, Roles: []authn.Role{authn.RoleCoach}, CoachID: "coach-1", Via: authn.ViaJWT},
	"admin-with-agency-id":  {Subject: "admin-1", Tenant: tenantA, Roles: []authn.Role{authn.RoleAdmin}, AgencyID: agencyA, Via: authn.ViaJWT},
	"agency-without-id":     {Subject: "agency-x", Tenant: tenantA, Roles: []authn.Role{authn.RoleAgency}, Via: authn.ViaJWT},
}

// testPrincipalInterceptor stands in for the real authentication, which
// is built and tested elsewhere: it puts the principal the call names in
// its testPrincipalKey metadata into the context, and leaves calls that
// name none without a principal. It reports each handler's end on ended.
func testPrincipalInterceptor(ended chan<- error) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		if names := md.Get(testPrincipalKey); len(names) == 1 {
			if p, ok := principals[names[0]]; ok {
				ss = &contextStream{ServerStream: ss, ctx: authn.WithPrincipal(ss.Context(), p)}
			}
		}
		err := handler(srv, ss)
		select {
		case ended <- err:
		default:
		}
		return err
	}
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// harness is a FeedService on a loopback gRPC port over a real embedded
// NATS server that holds the agency feed stream.
type harness struct {
	t    *testing.T
	nats *bus.Embedded
	// js publishes the test's feed messages.
	js  jetstream.JetStream
	svc *feedsvc.Service
	// grpc serves svc.
	grpc *grpc.Server
	// addr is the gRPC server's address.
	addr string
	// ended receives the error of every Subscribe handler that returns.
	ended chan error

	mu sync.Mutex
	// position is the event store position of the last event published.
	position uint64
}

// newHarness starts NATS with the agency feed stream, and the service
// reading it through its own reconnecting connection.
func newHarness(t *testing.T, opts feedsvc.Options) *harness {
	t.Helper()
	h := &harness{t: t, nats: bustest.StartServer(t), ended: make(chan error, 100)}
	h.js = bustest.JetStream(t, h.nats)
	_, err := h.js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: bus.AgencyStreamName, Subjects: []string{bus.AllAgencyEvents}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatalf("creating the agency stream: %v", err)
	}
	h.startService(bustest.JetStream(t, h.nats), opts)
	return h
}

// startService serves a FeedService reading through js on a loopback
// port; the server stops when the test ends.
func (h *harness) startService(js jetstream.JetStream, opts feedsvc.Options) {
	h.t.Helper()
	if opts.Logger == nil {
		opts.Logger = bustest.Logger(h.t, 0)
	}
	svc, err := feedsvc.New(js, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.StreamInterceptor(testPrincipalInterceptor(h.ended)))
	svc.Register(srv)
	go srv.Serve(lis)
	h.t.Cleanup(srv.Stop)
	h.svc, h.grpc, h.addr = svc, srv, lis.Addr().String()
}

// client returns a FeedService client on its own connection.
func (h *harness) client(opts ...grpc.DialOption) feedv1.FeedServiceClient {
	h.t.Helper()
	cc, err := grpc.NewClient(h.addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cc.Close() })
	return feedv1.NewFeedServiceClient(cc)
}

// item is a feed event as the tests compare them.
type item struct {
	EventID  string
	CaseID   string
	Token    string
	Position uint64
}

// publish puts one event of caseID into agency's feed of tenant, as the
// router would, with data of size bytes, and returns it as an agency
// should receive it.
func (h *harness) publish(js jetstream.JetStream, tenant, agency, caseID string, size int) item {
	h.t.Helper()
	h.mu.Lock()
	h.position++
	pos := h.position
	h.mu.Unlock()
	meta, err := proto.Marshal(&eventv1.Metadata{TenantId: tenant, CaseId: caseID, Actor: "coach-1", SchemaVersion: 1})
	if err != nil {
		h.t.Fatal(err)
	}
	ev := eventstore.RecordedEvent{
		ID: uuid.New(), Stream: "case-" + caseID, Type: "koers.case.v1.ReintegrationCheckpointRecorded",
		Data: make([]byte, size), Metadata: meta, Position: eventstore.Position(pos), RecordedAt: time.Now().UTC(),
	}
	msg, err := bus.Message(ev, eventstore.Position(pos-1))
	if err != nil {
		h.t.Fatal(err)
	}
	msg.Subject = bus.AgencySubject(tenant, agency, caseID)
	return h.publishMsg(js, msg, item{EventID: ev.ID.String(), CaseID: caseID, Position: pos})
}

// publishRaw puts a message with the given body and no headers on
// agency's subject for caseID.
func (h *harness) publishRaw(tenant, agency, caseID string, body []byte) {
	h.t.Helper()
	if _, err := h.js.Publish(context.Background(), bus.AgencySubject(tenant, agency, caseID), body); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) publishMsg(js jetstream.JetStream, msg *nats.Msg, it item) item {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		h.t.Fatalf("publishing on %s: %v", msg.Subject, err)
	}
	it.Token = strconv.FormatUint(ack.Sequence, 10)
	return it
}

// publishCases publishes n events of agency's feed of tenant, each of
// one of cases in turn, and returns them.
func (h *harness) publishCases(tenant, agency string, cases []string, n int) []item {
	h.t.Helper()
	var items []item
	for i := range n {
		items = append(items, h.publish(h.js, tenant, agency, cases[i%len(cases)], 16))
	}
	return items
}

// subscribe opens a subscription as the named principal ("" for none).
// The call ends when the test does, at the latest.
func (h *harness) subscribe(ctx context.Context, c feedv1.FeedServiceClient, who string, req *feedv1.SubscribeRequest) grpc.ServerStreamingClient[feedv1.SubscribeResponse] {
	h.t.Helper()
	if who != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, testPrincipalKey, who)
	}
	stream, err := c.Subscribe(ctx, req)
	if err != nil {
		h.t.Fatalf("Subscribe: %v", err)
	}
	return stream
}

// subscribeErr subscribes as who and returns the error the stream ends
// with, failing the test if it delivers an event first.
func (h *harness) subscribeErr(who string, req *feedv1.SubscribeRequest) error {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := h.subscribe(ctx, h.client(), who, req).Recv()
	if err == nil {
		h.t.Fatalf("Subscribe as %q with %v delivered %v, want an error", who, req, resp)
	}
	return err
}

// receive reads n events from stream and returns them.
func receive(t *testing.T, stream grpc.ServerStreamingClient[feedv1.SubscribeResponse], n int) []item {
	t.Helper()
	items := make([]item, 0, n)
	for len(items) < n {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(items), n, err)
		}
		items = append(items, itemOf(resp))
	}
	return items
}

func itemOf(resp *feedv1.SubscribeResponse) item {
	return item{EventID: resp.GetEvent().GetId(), CaseID: resp.GetCaseId(), Token: resp.GetResumeToken(), Position: resp.GetEvent().GetPosition()}
}

// ofCase returns the items of one case.
func ofCase(items []item, caseID string) []item {
	var out []item
	for _, it := range items {
		if it.CaseID == caseID {
			out = append(out, it)
		}
	}
	return out
}

// consumers returns how many consumers the agency stream has.
func (h *harness) consumers() int {
	h.t.Helper()
	st, err := h.js.Stream(context.Background(), bus.AgencyStreamName)
	if err != nil {
		h.t.Fatal(err)
	}
	return st.CachedInfo().State.Consumers
}

// eventually polls cond until it holds, failing the test after a bound
// far above what it needs.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not true after 15s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testContext is a context for a test's calls, bounded so that a bug
// fails the test rather than hangs it.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
