package main

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/node"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	"github.com/koers-io/koers/services/authn"
)

// startTestNode starts a node on a fresh data folder and points the
// commands at it through the environment: they mint their tokens with the
// node's local development issuer for tenant, as actor. It returns the
// data folder.
func startTestNode(t *testing.T, tenant, actor string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	n, err := node.Start(ctx, node.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	t.Setenv("KOERS_ADDR", n.GRPCAddr())
	t.Setenv("KOERS_DATA", dir)
	t.Setenv("KOERS_TENANT", tenant)
	t.Setenv("KOERS_ACTOR", actor)
	t.Setenv("KOERS_LOG_LEVEL", "error")
	return dir
}

// mustKoers runs the command line and fails the test if it fails.
func mustKoers(t *testing.T, args ...string) string {
	t.Helper()
	out, err := koers(t, args...)
	if err != nil {
		t.Fatalf("koers %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// openCase opens a case through `koers case open` with extra flags and
// returns its ID.
func openCase(t *testing.T, extra ...string) string {
	t.Helper()
	out := mustKoers(t, append([]string{"case", "open", "--client-id", "client-9",
		"--given-name", "Sanne", "--family-name", "de Boer"}, extra...)...)
	m := regexp.MustCompile(`case ([0-9a-f-]{36}), revision 0`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("case open printed %q, without the case ID", out)
	}
	return m[1]
}

// mintToken mints a token for p with the data folder's local issuer.
func mintToken(t *testing.T, dir string, p authn.Principal) string {
	t.Helper()
	issuer, err := authn.OpenLocalIssuer(node.LocalIssuerDir(dir), false)
	if err != nil {
		t.Fatal(err)
	}
	token, err := issuer.Mint(p, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func lines(out string) []string {
	return strings.Split(strings.TrimRight(out, "\n"), "\n")
}

// readCaseLine matches the line of a GetCase by admin-1 of the case.
func readCaseLine(caseID string) *regexp.Regexp {
	return regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  admin-1 \(admin\)  read-case       /koers\.case\.v1\.CaseService/GetCase  case ` +
		caseID + `  personal data disclosed$`)
}

func TestAuditListsTheTenantsTrailNewestFirstAndFilters(t *testing.T) {
	dir := startTestNode(t, "demo-centre", "admin-1")
	a, b := openCase(t), openCase(t)
	mustKoers(t, "case", "show", a)
	mustKoers(t, "case", "show", a)
	mustKoers(t, "case", "show", b)

	got := lines(mustKoers(t, "audit"))
	wantCases := []string{b, a, a}
	if len(got) != len(wantCases) {
		t.Fatalf("koers audit printed %d lines, want the %d reads:\n%s", len(got), len(wantCases), strings.Join(got, "\n"))
	}
	for i, id := range wantCases {
		if !readCaseLine(id).MatchString(got[i]) {
			t.Errorf("line %d is %q, want the read of case %s", i, got[i], id)
		}
	}

	if got := lines(mustKoers(t, "audit", "--case-id", a)); len(got) != 2 || !readCaseLine(a).MatchString(got[0]) || !readCaseLine(a).MatchString(got[1]) {
		t.Errorf("koers audit --case-id %s printed:\n%s\nwant the case's two reads alone", a, strings.Join(got, "\n"))
	}

	// Each query of the trail is in the trail, with the case it was
	// filtered to: here the --case-id query, then the unfiltered one.
	listed := lines(mustKoers(t, "audit", "--action", "list-audit"))
	if len(listed) != 2 || !strings.Contains(listed[0], "list-audit      /koers.audit.v1.AuditService/ListAuditRecords  case "+a) ||
		strings.Contains(listed[1], "case ") {
		t.Errorf("koers audit --action list-audit printed:\n%s\nwant the filtered query, then the unfiltered one", strings.Join(listed, "\n"))
	}

	var resp auditv1.ListAuditRecordsResponse
	if err := protojson.Unmarshal([]byte(mustKoers(t, "audit", "--case-id", b, "--json")), &resp); err != nil {
		t.Fatalf("koers audit --json is not a ListAuditRecordsResponse: %v", err)
	}
	if len(resp.GetEntries()) != 1 || resp.GetEntries()[0].GetRecord().GetAction() != auditv1.AuditAction_AUDIT_ACTION_READ_CASE ||
		resp.GetEntries()[0].GetRecord().GetPrincipal().GetSubject() != "admin-1" {
		t.Errorf("koers audit --case-id %s --json answered %v, want admin-1's one read", b, &resp)
	}

	// Paging: a page of two says how to go on, and going on gives the rest.
	page := lines(mustKoers(t, "audit", "--action", "read-case", "--page-size", "2"))
	if len(page) != 3 || !strings.HasPrefix(page[2], "next page: --page-token ") {
		t.Fatalf("a page of 2 printed:\n%s\nwant two records and the next page token", strings.Join(page, "\n"))
	}
	token := strings.TrimPrefix(page[2], "next page: --page-token ")
	if rest := lines(mustKoers(t, "audit", "--action", "read-case", "--page-size", "2", "--page-token", token)); len(rest) != 1 || !readCaseLine(a).MatchString(rest[0]) {
		t.Errorf("the next page printed:\n%s\nwant the oldest read alone", strings.Join(rest, "\n"))
	}
	if all := lines(mustKoers(t, "audit", "--action", "read-case", "--page-size", "1", "--all")); len(all) != 3 || strings.Contains(strings.Join(all, "\n"), "next page") {
		t.Errorf("--all with pages of 1 printed:\n%s\nwant the three reads and no page token", strings.Join(all, "\n"))
	}
	resp.Reset()
	if err := protojson.Unmarshal([]byte(mustKoers(t, "audit", "--action", "read-case", "--page-size", "1", "--all", "--json")), &resp); err != nil {
		t.Fatalf("koers audit --all --json is not one ListAuditRecordsResponse: %v", err)
	}
	if len(resp.GetEntries()) != 3 || resp.GetNextPageToken() != "" {
		t.Errorf("--all --json answered %d entries and next page token %q, want 3 and none", len(resp.GetEntries()), resp.GetNextPageToken())
	}

	now := time.Now()
	if got := mustKoers(t, "audit", "--action", "read-case", "--from", now.Add(-time.Hour).Format(time.RFC3339), "--until", now.Add(time.Hour).Format(time.RFC3339)); len(lines(got)) != 3 {
		t.Errorf("the reads of the last hour:\n%s", got)
	}
	if got := mustKoers(t, "audit", "--until", "2000-01-01"); got != "no audit records match\n" {
		t.Errorf("koers audit --until 2000-01-01 printed %q", got)
	}

	coach := mintToken(t, dir, authn.Principal{Subject: "coach-anna", Tenant: "demo-centre", Roles: []authn.Role{authn.RoleCoach}, CoachID: "coach-anna"})
	if _, err := koers(t, "audit", "--token", coach); err == nil || !strings.Contains(err.Error(), "may not call /koers.audit.v1.AuditService/ListAuditRecords") {
		t.Errorf("koers audit with a coach's token: %v, want the permission refused", err)
	}
}

func TestAuditRefusesBadFiltersPrecisely(t *testing.T) {
	startTestNode(t, "demo-centre", "admin-1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--case-id", "not-a-uuid"}, "case_id: must be a UUID"},
		{[]string{"--subject", "two words"}, "subject: must be 1 to 128 printable characters"},
		{[]string{"--from", "2026-02-10", "--until", "2026-02-09"}, "occurred_until: must be after occurred_from"},
		{[]string{"--from", "yesterday"}, `"yesterday" is neither an instant in RFC 3339`},
		{[]string{"--action", "reed-case"}, "read-case, read-case-list, export-report"},
		{[]string{"--page-token", strings.Repeat("x", 2000)}, "page_token"},
	} {
		_, err := koers(t, append([]string{"audit"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("koers audit %s: %v, want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestAuditActionHelpListsEveryAction(t *testing.T) {
	f, _ := reflect.TypeFor[auditCmd]().FieldByName("Action")
	names := enumNames(auditv1.AuditAction(0).Descriptor())
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1] + "."
	if help := f.Tag.Get("help"); !strings.HasSuffix(help, want) {
		t.Errorf("--action's help is %q, want it to end with the actions %q", help, want)
	}
}

func TestAuditTimeFlagsTakeInstantsAndWholeDays(t *testing.T) {
	day := time.Date(2026, 2, 10, 0, 0, 0, 0, time.Local)
	instant := time.Date(2026, 2, 10, 9, 30, 0, 0, time.FixedZone("", 3600))
	for _, tc := range []struct {
		in          string
		from, until time.Time
	}{
		{"2026-02-10", day, day.AddDate(0, 0, 1)},
		{"2026-02-10T09:30:00+01:00", instant, instant},
		{" 2026-02-10T09:30:00+01:00 ", instant, instant},
	} {
		f, err := parseInstant(tc.in)
		if err != nil {
			t.Errorf("parseInstant(%q): %v", tc.in, err)
			continue
		}
		if !f.from().AsTime().Equal(tc.from) || !f.until().AsTime().Equal(tc.until) {
			t.Errorf("%q: from %v until %v, want from %v until %v", tc.in, f.from().AsTime(), f.until().AsTime(), tc.from, tc.until)
		}
	}
	for _, bad := range []string{"", "2026-02-30", "10-02-2026", "2026-02-10 09:30", "now"} {
		if _, err := parseInstant(bad); err == nil {
			t.Errorf("parseInstant(%q) took it", bad)
		}
	}
	if (instantFlag{}).from() != nil || (instantFlag{}).until() != nil {
		t.Error("a flag not given filters")
	}
}

func TestAuditLineNamesTheReportOrFeedEvent(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 2, 10, 9, 30, 15, 0, time.Local))
	analyst := &auditv1.AuditPrincipal{Subject: "analyst-1", Roles: []string{"analyst", "employer"}}
	agency := &auditv1.AuditPrincipal{Subject: "agency-reintegra", Roles: []string{"agency"}}
	for _, tc := range []struct {
		name   string
		record *auditv1.AuditRecord
		want   string
	}{
		{"report of a department for a period", &auditv1.AuditRecord{Principal: analyst, Action: auditv1.AuditAction_AUDIT_ACTION_EXPORT_REPORT,
			Method: "/koers.query.v1.QueryService/GetOrganisationReport", OrganisationId: "acme-bv", Department: "sales",
			PeriodFrom: &casev1.Date{Year: 2025, Month: 1, Day: 1}, PeriodTo: &casev1.Date{Year: 2025, Month: 12, Day: 31}, ReportAsOf: at, OccurredAt: at},
			"2026-02-10 09:30:15  analyst-1 (analyst, employer)  export-report   /koers.query.v1.QueryService/GetOrganisationReport  report on acme-bv / sales, period 2025-01-01 to 2025-12-31, as of 2026-02-10 09:30:15"},
		{"report of the whole tenant", &auditv1.AuditRecord{Principal: analyst, Action: auditv1.AuditAction_AUDIT_ACTION_EXPORT_REPORT,
			Method: "/koers.query.v1.QueryService/GetOrganisationReport", OccurredAt: at},
			"2026-02-10 09:30:15  analyst-1 (analyst, employer)  export-report   /koers.query.v1.QueryService/GetOrganisationReport  report on the whole tenant"},
		{"feed event", &auditv1.AuditRecord{Principal: agency, Action: auditv1.AuditAction_AUDIT_ACTION_FEED_DELIVER,
			Method: "/koers.feed.v1.FeedService/Subscribe", CaseId: "3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b",
			EventId: "0b9c6f8e-1d2a-4c3b-8e7f-6a5b4c3d2e1f", Position: 42, OccurredAt: at},
			"2026-02-10 09:30:15  agency-reintegra (agency)  feed-deliver    /koers.feed.v1.FeedService/Subscribe  case 3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b  event 0b9c6f8e-1d2a-4c3b-8e7f-6a5b4c3d2e1f at position 42"},
		{"subscription without a position", &auditv1.AuditRecord{Principal: agency, Action: auditv1.AuditAction_AUDIT_ACTION_FEED_SUBSCRIBE,
			Method: "/koers.feed.v1.FeedService/Subscribe", OccurredAt: at},
			"2026-02-10 09:30:15  agency-reintegra (agency)  feed-subscribe  /koers.feed.v1.FeedService/Subscribe"},
		{"subscription resumed", &auditv1.AuditRecord{Principal: agency, Action: auditv1.AuditAction_AUDIT_ACTION_FEED_SUBSCRIBE,
			Method: "/koers.feed.v1.FeedService/Subscribe", Position: 41, OccurredAt: at},
			"2026-02-10 09:30:15  agency-reintegra (agency)  feed-subscribe  /koers.feed.v1.FeedService/Subscribe  after position 41"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, auditLine(&auditv1.AuditEntry{Record: tc.record})); diff != "" {
				t.Errorf("auditLine (-want +got):\n%s", diff)
			}
		})
	}
}
