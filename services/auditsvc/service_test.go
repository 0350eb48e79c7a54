package auditsvc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/sqlite"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	"github.com/koers-io/koers/services/auditsvc"
	"github.com/koers-io/koers/services/authn"
)

const caseA = "3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b"

// testPrincipalKey is the metadata key with which a test names the
// principal testPrincipalInterceptor puts into the call's context.
const testPrincipalKey = "test-principal"

// principals are the callers the tests name.
var principals = map[string]authn.Principal{
	"acme-admin": {Subject: "admin-1", Tenant: "acme", Roles: []authn.Role{authn.RoleAdmin}, Via: authn.ViaJWT, CorrelationID: "corr-9"},
	"bolt-admin": {Subject: "admin-2", Tenant: "bolt", Roles: []authn.Role{authn.RoleAdmin}, Via: authn.ViaJWT},
}

// testPrincipalInterceptor is a test double for the authentication and
// policy interceptors of services/authz: it puts the principal the call's
// test-principal metadata names into the context, and none when the call
// names none.
func testPrincipalInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if names := md.Get(testPrincipalKey); len(names) == 1 {
		p, ok := principals[names[0]]
		if !ok {
			return nil, status.Errorf(codes.Internal, "test: no principal %q", names[0])
		}
		ctx = authn.WithPrincipal(ctx, p)
	}
	return handler(ctx, req)
}

// fixture is the AuditService on a loopback port over a SQLite store.
type fixture struct {
	store  eventstore.Store
	rec    *audit.Recorder
	client auditv1.AuditServiceClient
}

func newFixture(t *testing.T, wrap func(eventstore.Store) eventstore.Store) *fixture {
	t.Helper()
	sq, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	var store eventstore.Store = sq
	if wrap != nil {
		store = wrap(store)
	}
	rec := audit.New(store, audit.Options{})
	srv := grpc.NewServer(grpc.UnaryInterceptor(testPrincipalInterceptor))
	auditsvc.New(rec, auditsvc.Options{}).Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fixture{store: sq, rec: rec, client: auditv1.NewAuditServiceClient(conn)}
}

// as returns a context whose calls come from the named principal.
func as(name string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), testPrincipalKey, name)
}

// seed records reads of caseA by coach-0, coach-1, … in tenant.
func (f *fixture) seed(t *testing.T, tenant string, n int) {
	t.Helper()
	for i := range n {
		err := f.rec.Record(context.Background(), audit.Entry{
			Principal: authn.Principal{Subject: fmt.Sprintf("coach-%d", i), Tenant: tenant, Roles: []authn.Role{authn.RoleCoach}},
			Action:    auditv1.AuditAction_AUDIT_ACTION_READ_CASE, Method: "/koers.case.v1.CaseService/GetCase",
			CaseID: caseA, PersonalData: true,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// trailLength is how many records tenant's trail holds.
func (f *fixture) trailLength(t *testing.T, tenant string) int {
	t.Helper()
	events, err := f.store.ReadStream(context.Background(), audit.StreamName(tenant), eventstore.ReadOptions{})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(events)
}

func subjects(entries []*auditv1.AuditEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.GetRecord().GetPrincipal().GetSubject()
	}
	return out
}

func TestListAuditRecordsNeedsAPrincipal(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t, "acme", 2)
	_, err := f.client.ListAuditRecords(context.Background(), &auditv1.ListAuditRecordsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListAuditRecords without a principal: %v, want UNAUTHENTICATED", err)
	}
	if n := f.trailLength(t, "acme"); n != 2 {
		t.Errorf("the trail holds %d records, want the 2 seeded: a refused call records nothing", n)
	}
}

func TestListAuditRecordsListsTheCallersTenantNewestFirst(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t, "acme", 3)
	f.seed(t, "bolt", 2)
	resp, err := f.client.ListAuditRecords(as("bolt-admin"), &auditv1.ListAuditRecordsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"coach-1", "coach-0"}, subjects(resp.GetEntries())); diff != "" {
		t.Errorf("bolt's admin sees (-want +got):\n%s", diff)
	}
	for i, e := range resp.GetEntries() {
		if _, err := uuid.Parse(e.GetId()); err != nil || e.GetRevision() != uint64(1-i) || e.GetRecordedAt() == nil ||
			e.GetRecord().GetPrincipal().GetTenantId() != "bolt" || e.GetRecord().GetCaseId() != caseA {
			t.Errorf("entry %d: %v; want ID, revision %d, recorded_at and bolt's read of %s", i, e, 1-i, caseA)
		}
	}
	if resp.GetNextPageToken() != "" {
		t.Errorf("next page token %q for the whole trail, want none", resp.GetNextPageToken())
	}
}

func TestListAuditRecordsRecordsTheQueryItself(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t, "acme", 1)
	first, err := f.client.ListAuditRecords(as("acme-admin"), &auditv1.ListAuditRecordsRequest{CaseId: strings.ToUpper(caseA)})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.GetEntries()) != 1 {
		t.Fatalf("first query lists %d records, want the 1 seeded: the query is recorded after it is answered", len(first.GetEntries()))
	}
	second, err := f.client.ListAuditRecords(as("acme-admin"), &auditv1.ListAuditRecordsRequest{
		Action: auditv1.AuditAction_AUDIT_ACTION_LIST_AUDIT,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.GetEntries()) != 1 {
		t.Fatalf("second query lists %d LIST_AUDIT records, want the first query's", len(second.GetEntries()))
	}
	got := second.GetEntries()[0].GetRecord()
	if got.GetPrincipal().GetSubject() != "admin-1" || got.GetMethod() != auditv1.AuditService_ListAuditRecords_FullMethodName ||
		got.GetCaseId() != caseA || got.GetCorrelationId() != "corr-9" || got.GetPersonalDataDisclosed() {
		t.Errorf("recorded query %v; want admin-1's ListAuditRecords filtered to %s, correlation corr-9, no personal data", got, caseA)
	}
}

func TestListAuditRecordsPagesWithTheSameFilters(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t, "acme", 7)
	req := &auditv1.ListAuditRecordsRequest{CaseId: caseA, Action: auditv1.AuditAction_AUDIT_ACTION_READ_CASE, PageSize: 3}
	var got []string
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging did not end")
		}
		resp, err := f.client.ListAuditRecords(as("acme-admin"), req)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		got = append(got, subjects(resp.GetEntries())...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
		if pages == 0 {
			// The token is bound to its filters.
			other := &auditv1.ListAuditRecordsRequest{Subject: "coach-1", PageToken: req.PageToken}
			_, err := f.client.ListAuditRecords(as("acme-admin"), other)
			checkViolation(t, err, "page_token")
		}
	}
	want := []string{"coach-6", "coach-5", "coach-4", "coach-3", "coach-2", "coach-1", "coach-0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

func TestListAuditRecordsPageSizeIsCapped(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t, "acme", audit.MaxPageSize+1)
	resp, err := f.client.ListAuditRecords(as("acme-admin"), &auditv1.ListAuditRecordsRequest{PageSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetEntries()); n != audit.MaxPageSize || resp.GetNextPageToken() == "" {
		t.Errorf("page_size 5000 gave %d records, token %q; want %d and a token", n, resp.GetNextPageToken(), audit.MaxPageSize)
	}
	resp, err = f.client.ListAuditRecords(as("acme-admin"), &auditv1.ListAuditRecordsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetEntries()); n != audit.DefaultPageSize {
		t.Errorf("page_size 0 gave %d records, want %d", n, audit.DefaultPageSize)
	}
}

func TestListAuditRecordsRefusesBadInputAndRecordsNothing(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		req   *auditv1.ListAuditRecordsRequest
		field string
	}{
		{"case ID not a UUID", &auditv1.ListAuditRecordsRequest{CaseId: "case-1"}, "case_id"},
		{"nil case ID", &auditv1.ListAuditRecordsRequest{CaseId: uuid.Nil.String()}, "case_id"},
		{"subject with a space", &auditv1.ListAuditRecordsRequest{Subject: "Jan Jansen"}, "subject"},
		{"subject too long", &auditv1.ListAuditRecordsRequest{Subject: strings.Repeat("x", 129)}, "subject"},
		{"unknown action", &auditv1.ListAuditRecordsRequest{Action: 77}, "action"},
		{"invalid from", &auditv1.ListAuditRecordsRequest{OccurredFrom: &timestamppb.Timestamp{Nanos: -1}}, "occurred_from"},
		{"invalid until", &auditv1.ListAuditRecordsRequest{OccurredUntil: &timestamppb.Timestamp{Seconds: 1 << 40}}, "occurred_until"},
		{"range backwards", &auditv1.ListAuditRecordsRequest{
			OccurredFrom: timestamppb.New(now), OccurredUntil: timestamppb.New(now.Add(-time.Hour))}, "occurred_until"},
		{"empty range", &auditv1.ListAuditRecordsRequest{
			OccurredFrom: timestamppb.New(now), OccurredUntil: timestamppb.New(now)}, "occurred_until"},
		{"garbage token", &auditv1.ListAuditRecordsRequest{PageToken: "garbage"}, "page_token"},
		{"huge token", &auditv1.ListAuditRecordsRequest{PageToken: strings.Repeat("A", 2000)}, "page_token"},
	}
	f := newFixture(t, nil)
	f.seed(t, "acme", 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.client.ListAuditRecords(as("acme-admin"), tt.req)
			checkViolation(t, err, tt.field)
			if n := f.trailLength(t, "acme"); n != 1 {
				t.Errorf("the trail holds %d records, want 1: a refused query records nothing", n)
			}
		})
	}
}

// failingAppends is a test double for a store whose appends fail (a full
// disk, a store shutting down) while reads still work.
type failingAppends struct{ eventstore.Store }

func (failingAppends) Append(context.Context, string, eventstore.ExpectedRevision, ...eventstore.EventData) (eventstore.AppendResult, error) {
	return eventstore.AppendResult{}, errors.New("test: disk full")
}

func TestListAuditRecordsAnswersNothingWhenTheQueryCannotBeRecorded(t *testing.T) {
	var wrapped *failingAppends
	f := newFixture(t, func(s eventstore.Store) eventstore.Store {
		wrapped = &failingAppends{Store: s}
		return wrapped
	})
	// Seed past the double, on the real store.
	err := audit.New(wrapped.Store, audit.Options{}).Record(context.Background(), audit.Entry{
		Principal: principals["acme-admin"], Action: auditv1.AuditAction_AUDIT_ACTION_READ_CASE, CaseID: caseA,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.client.ListAuditRecords(as("acme-admin"), &auditv1.ListAuditRecordsRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "could not be recorded") || resp != nil {
		t.Errorf("ListAuditRecords with failing appends: %v, %v; want UNAVAILABLE because the query could not be recorded, and no answer", resp, err)
	}
}

func TestListAuditRecordsIsUnavailableWhenTheStoreIsClosed(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t, "acme", 1)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.ListAuditRecords(as("acme-admin"), &auditv1.ListAuditRecordsRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("ListAuditRecords on a closed store: %v, want UNAVAILABLE", err)
	}
}

// checkViolation checks that err is INVALID_ARGUMENT with a BadRequest
// naming field.
func checkViolation(t *testing.T, err error, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("error %v, want INVALID_ARGUMENT naming %s", err, field)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return
				}
			}
		}
	}
	t.Errorf("error %v names no violation of %s", err, field)
}
