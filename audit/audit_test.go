package audit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/sqlite"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
	"github.com/koers-io/koers/services/authn"
)

const caseA = "3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b"

func newStore(t *testing.T) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func coach(subject string) authn.Principal {
	return authn.Principal{Subject: subject, Tenant: "acme", Roles: []authn.Role{authn.RoleCoach}, CoachID: subject, Via: authn.ViaJWT}
}

func readCase(p authn.Principal, caseID string) audit.Entry {
	return audit.Entry{Principal: p, Action: auditv1.AuditAction_AUDIT_ACTION_READ_CASE,
		Method: "/koers.case.v1.CaseService/GetCase", CaseID: caseID, PersonalData: true}
}

func trail(t *testing.T, store eventstore.Store, tenant string) []eventstore.RecordedEvent {
	t.Helper()
	events, err := store.ReadStream(context.Background(), audit.StreamName(tenant), eventstore.ReadOptions{})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("reading the trail of %s: %v", tenant, err)
	}
	return events
}

func TestRecordAppendsOneRecordToTheTenantsTrail(t *testing.T) {
	store := newStore(t)
	rec := audit.New(store, audit.Options{})
	p := authn.Principal{Subject: "hr-7", Tenant: "acme", Roles: []authn.Role{authn.RoleEmployer}, OrganisationID: "globex",
		Via: authn.ViaMTLS, CorrelationID: "corr-1"}
	asOf := time.Date(2025, 11, 30, 12, 0, 0, 0, time.UTC)
	before := time.Now()
	err := rec.Record(context.Background(), audit.Entry{
		Principal: p, Action: auditv1.AuditAction_AUDIT_ACTION_EXPORT_REPORT,
		Method:         "/koers.query.v1.QueryService/GetOrganisationReport",
		OrganisationID: "globex", Department: "Finance",
		PeriodFrom: casework.Date{Year: 2025, Month: 1, Day: 1}, PeriodTo: casework.Date{Year: 2025, Month: 6, Day: 30},
		ReportAsOf: asOf,
	})
	after := time.Now()
	if err != nil {
		t.Fatalf("Record: %v", err)
	}

	events := trail(t, store, "acme")
	if len(events) != 1 {
		t.Fatalf("the trail holds %d events, want 1", len(events))
	}
	ev := events[0]
	if ev.Stream != "audit-acme" || ev.Type != audit.EventType || ev.Revision != 0 || ev.ID == uuid.Nil {
		t.Errorf("stored %s@%d type %s ID %s; want audit-acme@0 of type %s with an ID", ev.Stream, ev.Revision, ev.Type, ev.ID, audit.EventType)
	}
	var body auditv1.AuditRecord
	if err := proto.Unmarshal(ev.Data, &body); err != nil {
		t.Fatal(err)
	}
	at := body.GetOccurredAt().AsTime()
	if at.Before(before) || at.After(after) {
		t.Errorf("occurred at %s, not within the call (%s to %s)", at, before, after)
	}
	want := &auditv1.AuditRecord{
		Principal: &auditv1.AuditPrincipal{Subject: "hr-7", TenantId: "acme", Roles: []string{"employer"},
			Authentication: auditv1.AuthenticationMethod_AUTHENTICATION_METHOD_MTLS, OrganisationId: "globex"},
		Action:         auditv1.AuditAction_AUDIT_ACTION_EXPORT_REPORT,
		Method:         "/koers.query.v1.QueryService/GetOrganisationReport",
		OrganisationId: "globex", Department: "Finance",
		PeriodFrom:    &casev1.Date{Year: 2025, Month: 1, Day: 1},
		PeriodTo:      &casev1.Date{Year: 2025, Month: 6, Day: 30},
		ReportAsOf:    timestamppb.New(asOf),
		CorrelationId: "corr-1",
		OccurredAt:    body.GetOccurredAt(),
	}
	if diff := cmp.Diff(want, &body, protocmp.Transform()); diff != "" {
		t.Errorf("stored record (-want +got):\n%s", diff)
	}
	var meta eventv1.Metadata
	if err := proto.Unmarshal(ev.Metadata, &meta); err != nil {
		t.Fatal(err)
	}
	wantMeta := &eventv1.Metadata{TenantId: "acme", Actor: "hr-7", CorrelationId: "corr-1", SchemaVersion: audit.SchemaVersion,
		OccurredAt: body.GetOccurredAt(), RecordedAt: body.GetOccurredAt()}
	if diff := cmp.Diff(wantMeta, &meta, protocmp.Transform()); diff != "" {
		t.Errorf("stored metadata (-want +got):\n%s", diff)
	}
}

func TestRecordCanonicalisesTheCaseID(t *testing.T) {
	store := newStore(t)
	rec := audit.New(store, audit.Options{})
	if err := rec.Record(context.Background(), readCase(coach("c-1"), strings.ToUpper(caseA))); err != nil {
		t.Fatal(err)
	}
	page, err := rec.List(context.Background(), "acme", audit.Filter{CaseID: caseA}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 || page.Entries[0].GetRecord().GetCaseId() != caseA {
		t.Errorf("listing case %s found %v, want the one record under its lower-case ID", caseA, page.Entries)
	}
}

func TestRecordRefusesInvalidEntriesAndWritesNothing(t *testing.T) {
	valid := readCase(coach("c-1"), caseA)
	tests := []struct {
		name   string
		change func(*audit.Entry)
		want   string
	}{
		{"no tenant", func(e *audit.Entry) { e.Principal.Tenant = "" }, "tenant"},
		{"tenant not a token", func(e *audit.Entry) { e.Principal.Tenant = "Acme Corp" }, "tenant"},
		{"no subject", func(e *audit.Entry) { e.Principal.Subject = "" }, "subject"},
		{"subject with a space", func(e *audit.Entry) { e.Principal.Subject = "Jan Jansen" }, "subject"},
		{"no role", func(e *audit.Entry) { e.Principal.Roles = nil }, "no role"},
		{"unknown role", func(e *audit.Entry) { e.Principal.Roles = []authn.Role{"root"} }, "role"},
		{"unknown authentication", func(e *audit.Entry) { e.Principal.Via = "password" }, "authentication"},
		{"bad correlation ID", func(e *audit.Entry) { e.Principal.CorrelationID = "a b" }, "correlation"},
		{"bad agency ID", func(e *audit.Entry) { e.Principal.AgencyID = "Re Integra" }, "agency"},
		{"no action", func(e *audit.Entry) { e.Action = 0 }, "action"},
		{"unknown action", func(e *audit.Entry) { e.Action = 99 }, "action"},
		{"method without slash", func(e *audit.Entry) { e.Method = "GetCase" }, "method"},
		{"read without case", func(e *audit.Entry) { e.CaseID = "" }, "case ID is required"},
		{"case ID not a UUID", func(e *audit.Entry) { e.CaseID = "case-1" }, "case ID"},
		{"nil case ID", func(e *audit.Entry) { e.CaseID = uuid.Nil.String() }, "case ID"},
		{"department without organisation", func(e *audit.Entry) { e.Department = "Finance" }, "department"},
		{"department with a line break", func(e *audit.Entry) { e.OrganisationID, e.Department = "globex", "Fin\nance" }, "department"},
		{"impossible day", func(e *audit.Entry) { e.PeriodFrom = casework.Date{Year: 2025, Month: 2, Day: 30} }, "not a real day"},
		{"period backwards", func(e *audit.Entry) {
			e.PeriodFrom, e.PeriodTo = casework.Date{Year: 2025, Month: 3, Day: 1}, casework.Date{Year: 2025, Month: 2, Day: 1}
		}, "before it starts"},
		{"delivery without event", func(e *audit.Entry) { e.Action = auditv1.AuditAction_AUDIT_ACTION_FEED_DELIVER }, "event ID and position"},
		{"event ID not a UUID", func(e *audit.Entry) { e.EventID = "ev-1" }, "event ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newStore(t)
			e := valid
			e.Principal.Roles = slices.Clone(valid.Principal.Roles)
			tt.change(&e)
			err := audit.New(store, audit.Options{}).Record(context.Background(), e)
			if !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, audit.ErrInvalidEntry) {
				t.Fatalf("Record: %v; want an error wrapping ErrNotRecorded and ErrInvalidEntry", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if store.Head() != 0 {
				t.Errorf("the store moved to position %d; an invalid entry must write nothing", store.Head())
			}
		})
	}
}

func TestRecordRetriedWithItsIDWritesOnce(t *testing.T) {
	store := newStore(t)
	rec := audit.New(store, audit.Options{})
	e := readCase(coach("c-1"), caseA)
	e.ID = uuid.New()
	for range 2 {
		if err := rec.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(trail(t, store, "acme")); n != 1 {
		t.Errorf("a retry with the same ID left %d records, want 1", n)
	}

	// Without an ID, each call is its own read and is recorded again.
	e.ID = uuid.Nil
	for range 2 {
		if err := rec.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(trail(t, store, "acme")); n != 3 {
		t.Errorf("two more reads left %d records in all, want 3", n)
	}
}

func TestRecordFailsClosedWhenTheStoreIsClosed(t *testing.T) {
	store := newStore(t)
	rec := audit.New(store, audit.Options{})
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	err := rec.Record(context.Background(), readCase(coach("c-1"), caseA))
	if !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, eventstore.ErrClosed) || errors.Is(err, audit.ErrInvalidEntry) {
		t.Errorf("Record on a closed store: %v; want ErrNotRecorded wrapping eventstore.ErrClosed, not ErrInvalidEntry", err)
	}
}

func TestTrailsAreSeparatePerTenant(t *testing.T) {
	store := newStore(t)
	rec := audit.New(store, audit.Options{})
	other := coach("c-9")
	other.Tenant = "bolt"
	for _, p := range []authn.Principal{coach("c-1"), other, coach("c-2")} {
		if err := rec.Record(context.Background(), readCase(p, caseA)); err != nil {
			t.Fatal(err)
		}
	}
	page, err := rec.List(context.Background(), "bolt", audit.Filter{}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := subjects(page.Entries); !slices.Equal(got, []string{"c-9"}) {
		t.Errorf("bolt's trail lists %v, want only bolt's own record [c-9]", got)
	}
	if !audit.IsAuditStream(audit.StreamName("bolt")) || audit.IsAuditStream("case-"+caseA) {
		t.Error("IsAuditStream does not tell audit streams from case streams")
	}
}

func subjects(entries []*auditv1.AuditEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.GetRecord().GetPrincipal().GetSubject()
	}
	return out
}

func revisions(entries []*auditv1.AuditEntry) []uint64 {
	out := make([]uint64, len(entries))
	for i, e := range entries {
		out[i] = e.GetRevision()
	}
	return out
}

// recordN records n reads of case caseA by subjects c-0, c-1, … (i mod
// subjects).
func recordN(t *testing.T, rec *audit.Recorder, n, subjects int) {
	t.Helper()
	for i := range n {
		if err := rec.Record(context.Background(), readCase(coach(fmt.Sprintf("c-%d", i%subjects)), caseA)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

func TestListPagesNewestFirstWithoutRepeatsOrSkips(t *testing.T) {
	store := newStore(t)
	rec := audit.New(store, audit.Options{})
	recordN(t, rec, 250, 5)

	var got []uint64
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("listing did not end after 10 pages of 40")
		}
		page, err := rec.List(context.Background(), "acme", audit.Filter{}, 40, token)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		got = append(got, revisions(page.Entries)...)
		if pages == 0 {
			// Records made while paging come before the first page.
			recordN(t, rec, 30, 5)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	want := make([]uint64, 250)
	for i := range want {
		want[i] = uint64(249 - i)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("revisions listed (-want +got):\n%s", diff)
	}
}

func TestListFilters(t *testing.T) {
	store := newStore(t)
	rec := audit.New(store, audit.Options{})
	ctx := context.Background()
	caseB := uuid.NewString()
	admin := authn.Principal{Subject: "admin-1", Tenant: "acme", Roles: []authn.Role{authn.RoleAdmin}}
	entries := []audit.Entry{
		readCase(coach("c-1"), caseA), // 0
		readCase(coach("c-2"), caseB), // 1
		readCase(coach("c-1"), caseB), // 2
		{Principal: admin, Action: auditv1.AuditAction_AUDIT_ACTION_LIST_AUDIT, CaseID: caseA}, // 3
		readCase(coach("c-2"), caseA), // 4
	}
	var marks []time.Time // marks[i] is after record i and before record i+1
	for i, e := range entries {
		if err := rec.Record(ctx, e); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		marks = append(marks, time.Now())
	}
	tests := []struct {
		name string
		f    audit.Filter
		want []uint64
	}{
		{"none", audit.Filter{}, []uint64{4, 3, 2, 1, 0}},
		{"case", audit.Filter{CaseID: caseA}, []uint64{4, 3, 0}},
		{"case in upper case", audit.Filter{CaseID: strings.ToUpper(caseB)}, []uint64{2, 1}},
		{"subject", audit.Filter{Subject: "c-1"}, []uint64{2, 0}},
		{"action", audit.Filter{Action: auditv1.AuditAction_AUDIT_ACTION_LIST_AUDIT}, []uint64{3}},
		{"case and subject", audit.Filter{CaseID: caseA, Subject: "c-2"}, []uint64{4}},
		{"from", audit.Filter{From: marks[2]}, []uint64{4, 3}},
		{"until", audit.Filter{Until: marks[1]}, []uint64{1, 0}},
		{"range and action", audit.Filter{From: marks[0], Until: marks[3], Action: auditv1.AuditAction_AUDIT_ACTION_READ_CASE}, []uint64{2, 1}},
		{"no match", audit.Filter{Subject: "nobody"}, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := rec.List(ctx, "acme", tt.f, 0, "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, revisions(page.Entries)); diff != "" {
				t.Errorf("revisions (-want +got):\n%s", diff)
			}
			if page.NextPageToken != "" {
				t.Errorf("next page token %q after scanning the whole trail, want none", page.NextPageToken)
			}
		})
	}
}

func TestListOfAnEmptyTrailIsEmpty(t *testing.T) {
	page, err := audit.New(newStore(t), audit.Options{}).List(context.Background(), "acme", audit.Filter{}, 0, "")
	if err != nil || len(page.Entries) != 0 || page.NextPageToken != "" {
		t.Errorf("List of a tenant without records: %v, %v; want an empty last page", page, err)
	}
}

func TestListRefusesBadInput(t *testing.T) {
	store := newStore(t)
	rec := audit.New(store, audit.Options{})
	recordN(t, rec, 5, 1)
	ctx := context.Background()
	first, err := rec.List(ctx, "acme", audit.Filter{Subject: "c-0"}, 2, "")
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("first page: %v, token %q", err, first.NextPageToken)
	}
	tests := []struct {
		name   string
		tenant string
		f      audit.Filter
		size   int
		token  string
		want   error
	}{
		{"bad tenant", "ACME", audit.Filter{}, 0, "", audit.ErrInvalidFilter},
		{"bad case", "acme", audit.Filter{CaseID: "x"}, 0, "", audit.ErrInvalidFilter},
		{"bad subject", "acme", audit.Filter{Subject: "a b"}, 0, "", audit.ErrInvalidFilter},
		{"unknown action", "acme", audit.Filter{Action: 42}, 0, "", audit.ErrInvalidFilter},
		{"range backwards", "acme", audit.Filter{From: time.Now(), Until: time.Now().Add(-time.Hour)}, 0, "", audit.ErrInvalidFilter},
		{"negative page size", "acme", audit.Filter{}, -1, "", audit.ErrInvalidFilter},
		{"garbage token", "acme", audit.Filter{Subject: "c-0"}, 2, "not a token!", audit.ErrInvalidPageToken},
		{"token of other filters", "acme", audit.Filter{Subject: "c-1"}, 2, first.NextPageToken, audit.ErrInvalidPageToken},
		{"token of another tenant", "bolt", audit.Filter{Subject: "c-0"}, 2, first.NextPageToken, audit.ErrInvalidPageToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rec.List(ctx, tt.tenant, tt.f, tt.size, tt.token)
			if !errors.Is(err, tt.want) {
				t.Errorf("List: %v, want an error wrapping %v", err, tt.want)
			}
		})
	}
}

func TestListStopsAtTheScanBudgetAndGoesOn(t *testing.T) {
	store := newStore(t)
	rec := audit.New(store, audit.Options{MaxScan: 40})
	recordN(t, rec, 100, 50) // c-7 at revisions 7 and 57

	var got []uint64
	token := ""
	calls := 0
	for {
		calls++
		page, err := rec.List(context.Background(), "acme", audit.Filter{Subject: "c-7"}, 10, token)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, revisions(page.Entries)...)
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if diff := cmp.Diff([]uint64{57, 7}, got); diff != "" {
		t.Errorf("revisions (-want +got):\n%s", diff)
	}
	if calls != 3 {
		t.Errorf("%d calls, want 3: 100 records scanned 40 at a time", calls)
	}
}

// shiftedStore is a test double for a store whose clock ran an hour behind
// for the first records: it moves the commit time of the audit records
// below revision shiftBelow an hour back, and counts the records read.
type shiftedStore struct {
	eventstore.Store
	shiftBelow uint64
	read       int
}

func (s *shiftedStore) ReadStream(ctx context.Context, stream string, opts eventstore.ReadOptions) ([]eventstore.RecordedEvent, error) {
	events, err := s.Store.ReadStream(ctx, stream, opts)
	for i := range events {
		if events[i].Revision < s.shiftBelow {
			events[i].RecordedAt = events[i].RecordedAt.Add(-time.Hour)
		}
	}
	s.read += len(events)
	return events, err
}

func TestListStopsScanningPastTheStartOfTheTimeRange(t *testing.T) {
	shifted := &shiftedStore{Store: newStore(t), shiftBelow: 300}
	rec := audit.New(shifted, audit.Options{})
	recordN(t, rec, 600, 3)
	shifted.read = 0

	page, err := rec.List(context.Background(), "acme", audit.Filter{From: time.Now().Add(-30 * time.Minute)}, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	// Revision 299 was committed (by the shifted clock) before the range
	// minus MaxClockSkew, so nothing before it can be in the range.
	if got := revisions(page.Entries); len(got) != 301 || got[0] != 599 || got[300] != 299 {
		t.Errorf("listed %d records from %v to %v, want revisions 599 down to 299", len(got), got[0], got[len(got)-1])
	}
	if page.NextPageToken != "" || shifted.read >= 600 {
		t.Errorf("read %d of 600 records and returned token %q; want the scan to stop at revision 299 with no token", shifted.read, page.NextPageToken)
	}
}
