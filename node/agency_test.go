package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/node"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	"github.com/koers-io/koers/services/authn"
)

const (
	feedAgency   = "reintegra"
	feedPassword = "agency-password-of-reintegra"
	privateNote  = "Sprak over zijn depressie en de scheiding"
)

// agencyWorld is a node with agency users and the cases of the feed tests.
type agencyWorld struct {
	t        *testing.T
	dir      string
	node     *node.Node
	conn     *grpc.ClientConn
	cases    casev1.CaseServiceClient
	admin    context.Context
	assigned string // assigned to reintegra with consent, later revoked
	other    string // assigned to other-agency
	consent  string // consent for reintegra, never assigned
	sentinel string // assigned to reintegra last of all
}

func startAgencyWorld(t *testing.T) *agencyWorld {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		AgencyUsers: []bus.AgencyUser{
			{Tenant: "acme", Agency: feedAgency, Username: "reintegra-user", Password: feedPassword},
			{Tenant: "acme", Agency: "other-agency", Username: "other-user", Password: "agency-password-of-other"},
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	w := &agencyWorld{t: t, dir: dir, node: n, conn: conn, cases: casev1.NewCaseServiceClient(conn),
		admin: adminCtx(t, ctx, dir, "acme", "admin-1")}
	w.assigned = w.reintegration(feedAgency, true)
	w.checkpoint(w.assigned, "cp-1", casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, day(2026, 2, 10))
	w.must(w.cases.RecordSession(w.admin, &casev1.RecordSessionRequest{CaseId: w.assigned, RequestId: "session",
		HeldOn: day(2026, 2, 11), Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 45, Notes: privateNote}))
	w.other = w.reintegration("other-agency", true)
	w.checkpoint(w.other, "cp-1", casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, day(2026, 2, 10))
	w.consent = w.reintegration(feedAgency, false)
	w.checkpoint(w.consent, "cp-1", casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, day(2026, 2, 10))
	// The client revokes: the agency is unassigned in the same decision,
	// and nothing of the case reaches it after.
	w.must(w.cases.RevokeReportingConsent(w.admin, &casev1.RevokeReportingConsentRequest{CaseId: w.assigned, RequestId: "revoke",
		Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, Id: feedAgency}}))
	w.checkpoint(w.assigned, "cp-2", casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN, day(2026, 2, 24))
	w.sentinel = w.reintegration(feedAgency, true)
	return w
}

func (w *agencyWorld) must(_ any, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

// reintegration opens a case in re-integration with the agency's consent
// (progress and re-integration), assigned to it when assign is set.
func (w *agencyWorld) reintegration(agency string, assign bool) string {
	w.t.Helper()
	id := uuid.NewString()
	w.must(w.cases.OpenCase(w.admin, &casev1.OpenCaseRequest{CaseId: id, RequestId: "open", ClientId: "client-" + id[:8],
		Client:      &casev1.ClientDetails{GivenName: "Piet", FamilyName: "Verzuim"},
		InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION, OrganisationId: "acme-bv", OpenedOn: day(2026, 1, 5)}))
	w.must(w.cases.StartReintegration(w.admin, &casev1.StartReintegrationRequest{CaseId: id, RequestId: "reint",
		SickReportedOn: day(2026, 1, 2), Track: casev1.ReintegrationTrack_REINTEGRATION_TRACK_FIRST}))
	w.must(w.cases.GrantReportingConsent(w.admin, &casev1.GrantReportingConsentRequest{CaseId: id, RequestId: "consent",
		Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, Id: agency},
		Scopes: []casev1.ReportingScope{casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION,
			casev1.ReportingScope_REPORTING_SCOPE_PROGRESS}}))
	if assign {
		w.must(w.cases.AssignAgency(w.admin, &casev1.AssignAgencyRequest{CaseId: id, RequestId: "assign", AgencyId: agency}))
	}
	return id
}

func (w *agencyWorld) checkpoint(caseID, rid string, kind casev1.CheckpointKind, on *casev1.Date) {
	w.t.Helper()
	w.must(w.cases.RecordCheckpoint(w.admin, &casev1.RecordCheckpointRequest{CaseId: caseID, RequestId: rid, Kind: kind, HeldOn: on}))
}

// feed subscribes as the agency from token and reads until the sentinel
// case's assignment arrives: everything recorded before it has been routed
// by then, since the router works in store order.
func (w *agencyWorld) feed(token string) []*feedv1.SubscribeResponse {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(tokenCtx(w.t, context.Background(), w.dir, authn.Principal{
		Subject: "agency-reintegra", Tenant: "acme", Roles: []authn.Role{authn.RoleAgency}, AgencyID: feedAgency}), time.Minute)
	defer cancel()
	stream, err := feedv1.NewFeedServiceClient(w.conn).Subscribe(ctx, &feedv1.SubscribeRequest{ResumeToken: token})
	if err != nil {
		w.t.Fatal(err)
	}
	var got []*feedv1.SubscribeResponse
	for {
		r, err := stream.Recv()
		if err != nil {
			w.t.Fatalf("feed after %d events: %v", len(got), err)
		}
		got = append(got, r)
		if r.GetCaseId() == w.sentinel && r.GetEvent().GetType() == "koers.case.v1.ReintegrationAgencyAssigned" {
			return got
		}
	}
}

func summary(rs []*feedv1.SubscribeResponse, names map[string]string) []string {
	var out []string
	for _, r := range rs {
		out = append(out, names[r.GetCaseId()]+" "+strings.TrimPrefix(r.GetEvent().GetType(), "koers.case.v1."))
	}
	return out
}

// TestAnAgencySeesExactlyItsAssignedConsentedCasesUntilTheConsentEnds walks
// the agency feed end to end: commands through CaseService, the relay, the
// router projection and FeedService, on one node.
func TestAnAgencySeesExactlyItsAssignedConsentedCasesUntilTheConsentEnds(t *testing.T) {
	w := startAgencyWorld(t)
	got := w.feed("")
	names := map[string]string{w.assigned: "assigned", w.other: "other", w.consent: "consent-only", w.sentinel: "sentinel"}
	want := []string{
		"assigned ReintegrationAgencyAssigned",
		"assigned ReintegrationCheckpointRecorded",
		"assigned SessionRecorded",
		"assigned ReportingConsentRevoked",
		"assigned ReintegrationAgencyUnassigned",
		"sentinel ReintegrationAgencyAssigned",
	}
	if g := summary(got, names); !slices.Equal(g, want) {
		t.Errorf("the agency's feed:\n  %s\nwant\n  %s", strings.Join(g, "\n  "), strings.Join(want, "\n  "))
	}
	for _, r := range got {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{privateNote, "Piet", "Verzuim"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("feed event %s of %s holds %q", r.GetEvent().GetType(), names[r.GetCaseId()], secret)
			}
		}
	}

	// Resuming from any token gives exactly the rest: no gap, no repeat.
	for i := range got[:len(got)-1] {
		rest := w.feed(got[i].GetResumeToken())
		if g, wnt := summary(rest, names), summary(got[i+1:], names); !slices.Equal(g, wnt) {
			t.Errorf("resumed after event %d: %v, want %v", i, g, wnt)
		}
	}

	// The audit trail has every subscription, each after the event its
	// token named, and every delivery.
	trail, err := auditv1.NewAuditServiceClient(w.conn).ListAuditRecords(w.admin,
		&auditv1.ListAuditRecordsRequest{Action: auditv1.AuditAction_AUDIT_ACTION_FEED_SUBSCRIBE, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var after []uint64
	for _, e := range trail.GetEntries() {
		after = append(after, e.GetRecord().GetPosition())
	}
	wantAfter := []uint64{0}
	for _, r := range got[:len(got)-1] {
		wantAfter = append(wantAfter, r.GetEvent().GetPosition())
	}
	slices.Sort(after)
	if !slices.Equal(after, wantAfter) {
		t.Errorf("the audit trail has subscriptions after positions %v, want %v", after, wantAfter)
	}
	deliveries, err := auditv1.NewAuditServiceClient(w.conn).ListAuditRecords(w.admin,
		&auditv1.ListAuditRecordsRequest{Action: auditv1.AuditAction_AUDIT_ACTION_FEED_DELIVER, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n, want := len(deliveries.GetEntries()), len(got)*(len(got)+1)/2; n != want {
		t.Errorf("the audit trail has %d feed deliveries, want %d", n, want)
	}

	// The same feed over NATS, through the consumer Koers made for the
	// agency, as the agency's own NATS user.
	nc, err := nats.Connect(w.node.NATSURL(), bus.AgencyClientOptions("acme", feedAgency, "reintegra-user", feedPassword)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	consumer, err := js.Consumer(ctx, bus.AgencyStreamName, bus.AgencyConsumerName("acme", feedAgency))
	if err != nil {
		t.Fatalf("binding to the agency's consumer: %v", err)
	}
	batch, err := consumer.Fetch(len(got), jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for m := range batch.Messages() {
		ids = append(ids, m.Headers().Get(jetstream.MsgIDHeader))
	}
	var wantIDs []string
	for _, r := range got {
		wantIDs = append(wantIDs, r.GetEvent().GetId())
	}
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("over NATS the agency read %v, over gRPC %v", ids, wantIDs)
	}
}

// TestAnAgencyCannotReadTheEventStreamOverNATS connects as an agency's NATS
// user and tries the raw event stream and another agency's feed: the
// server refuses both.
func TestAnAgencyCannotReadTheEventStreamOverNATS(t *testing.T) {
	w := startAgencyWorld(t)
	violations := make(chan error, 8)
	opts := append(bus.AgencyClientOptions("acme", feedAgency, "reintegra-user", feedPassword),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	nc, err := nats.Connect(w.node.NATSURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, subject := range []string{bus.AllEvents, bus.AgencyFilter("acme", "other-agency")} {
		if _, err := nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-violations:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Errorf("subscribing to %s: %v, want a permissions violation", subject, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("subscribing to %s: the server did not refuse", subject)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Consumer(ctx, bus.AgencyStreamName, bus.AgencyConsumerName("acme", "other-agency")); err == nil {
		t.Error("an agency bound to another agency's consumer")
	}
	if _, err := nats.Connect(w.node.NATSURL(), nats.UserInfo("reintegra-user", "wrong-password")); err == nil {
		t.Error("a wrong password connected")
	}
}
