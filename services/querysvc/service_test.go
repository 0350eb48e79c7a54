package querysvc_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report"
	"github.com/koers-io/koers/projections/report/testbed"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/authz"
	"github.com/koers-io/koers/services/querysvc"
)

// fixture is a whole read side: embedded NATS with the event stream
// holding the synthetic history, the projection engine applying it into a
// SQLite read model, and the QueryService on a loopback gRPC port.
type fixture struct {
	client queryv1.QueryServiceClient
	db     *projections.DB
	t      *testing.T
	loc    *time.Location
	now    time.Time
	// head is the position of the history's last event.
	head   uint64
	events []projections.Event
}

func newFixture(t *testing.T, opts querysvc.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, loc: loc, now: time.Date(2025, time.December, 1, 10, 0, 0, 0, loc)}
	f.events = testbed.History(testbed.Golden(loc))
	f.head = uint64(f.events[len(f.events)-1].Position)

	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	if _, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	db, err := projections.Open(ctx, projections.Options{Path: filepath.Join(t.TempDir(), "readmodel.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	engine, err := projections.Start(ctx, projections.Config{
		DB: db, JetStream: js, Logger: bustest.Logger(t, 0),
		Projections: []projections.Projection{dashboard.New(dashboard.Options{Location: loc}), report.New(report.Options{Location: loc})},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(engine.Stop)
	publish(t, js, f.events)
	f.client = f.serve(opts)
	return f
}

// serve starts a QueryService with opts on a loopback port, behind the
// authentication and policy interceptor as in a node, and returns a client
// of it.
func (f *fixture) serve(opts querysvc.Options) queryv1.QueryServiceClient {
	t := f.t
	t.Helper()
	opts.Location, opts.Now = f.loc, func() time.Time { return f.now }
	svc, err := querysvc.New(f.db.Reader(dashboard.Name), f.db.Reader(report.Name), opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authn.New(context.Background(), issuer.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	server := grpc.NewServer(grpc.ChainUnaryInterceptor(authz.UnaryInterceptor(auth)))
	svc.Register(server)
	go server.Serve(lis)
	t.Cleanup(server.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return queryv1.NewQueryServiceClient(conn)
}

// TestQueryService runs the service's tests on one read side: the history
// published once, the engine catching up while the first test waits for
// it through min_position.
func TestQueryService(t *testing.T) {
	// A bound far above the catch-up time, so that the first test waits
	// for the engine however busy the machine is; the stale test serves
	// with a short one.
	f := newFixture(t, querysvc.Options{MaxWait: time.Minute})
	for _, tc := range []struct {
		name string
		test func(*testing.T, *fixture)
	}{
		{"read your writes", testReadYourWrites},
		{"stale after the bound", testStaleAfterTheBound},
		{"pages", testListCasesPages},
		{"tenant from the call", testTenantComesFromTheCall},
		{"no personal data", testAnswersHoldNoPersonalData},
		{"small cells suppressed", testReportSuppressesSmallDepartments},
		{"bad requests", testBadRequests},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, f) })
	}
}

// publish puts the events on the stream as the relay does.
func publish(t *testing.T, js jetstream.JetStream, events []projections.Event) {
	t.Helper()
	var prev eventstore.Position
	for _, ev := range events {
		data, err := proto.Marshal(ev.Body)
		if err != nil {
			t.Fatal(err)
		}
		meta, err := proto.Marshal(ev.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := bus.Message(eventstore.RecordedEvent{
			ID: uuid.MustParse(ev.ID), Stream: ev.Stream, Type: ev.Type, Data: data, Metadata: meta,
			Revision: ev.Revision, Position: ev.Position, RecordedAt: ev.RecordedAt.UTC(),
		}, prev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		prev = ev.Position
	}
}

// caughtUp waits, without the service, until both projections applied the
// whole history.
func (f *fixture) caughtUp(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, name := range []string{dashboard.Name, report.Name} {
		if err := f.db.Reader(name).WaitForPosition(ctx, eventstore.Position(f.head)); err != nil {
			t.Fatalf("%s did not catch up: %v", name, err)
		}
	}
}

// testReadYourWrites asks with the history's last position: the answers
// wait for it and equal what the read models say directly.
func testReadYourWrites(t *testing.T, f *fixture) {
	ctx := as("rivierstad", testbed.Coach(2))

	dash, err := f.client.GetCoachDashboard(ctx, &queryv1.GetCoachDashboardRequest{MinPosition: f.head})
	if err != nil {
		t.Fatal(err)
	}
	if fr := dash.GetFreshness(); fr.GetStale() || fr.GetPosition() < f.head {
		t.Fatalf("freshness %v after waiting for %d", fr, f.head)
	}
	direct, err := dashboard.Get(context.Background(), f.db.Reader(dashboard.Name), f.loc,
		dashboard.Query{Tenant: "rivierstad", Coach: testbed.Coach(2), Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	if len(direct.Cases) == 0 {
		t.Fatal("coach-002 has no active cases: the test shows nothing")
	}
	if got, want := len(dash.GetDashboard().GetCases()), len(direct.Cases); got != want {
		t.Errorf("dashboard over gRPC has %d cases, the read model %d", got, want)
	}
	for i, c := range dash.GetDashboard().GetCases() {
		if c.GetCaseId() != direct.Cases[i].CaseID || c.GetStage() != direct.Cases[i].Stage {
			t.Errorf("case %d: %s %s over gRPC, %s %s in the read model", i, c.GetCaseId(), c.GetStage(), direct.Cases[i].CaseID, direct.Cases[i].Stage)
		}
	}
	if len(dash.GetDashboard().GetOverdue()) != len(direct.Overdue) || dash.GetDashboard().GetToday().GetDay() != 1 {
		t.Errorf("overdue %d over gRPC, %d in the read model; today %v", len(dash.GetDashboard().GetOverdue()), len(direct.Overdue), dash.GetDashboard().GetToday())
	}

	rep, err := f.client.GetOrganisationReport(ctx, &queryv1.GetOrganisationReportRequest{MinPosition: f.head})
	if err != nil {
		t.Fatal(err)
	}
	if rep.GetFreshness().GetStale() || rep.GetReport().GetK() != 5 || rep.GetReport().GetCases().GetActive().GetValue() != 120 {
		t.Errorf("report: freshness %v, k %d, active %v; want fresh, k 5, 120 cases",
			rep.GetFreshness(), rep.GetReport().GetK(), rep.GetReport().GetCases().GetActive())
	}
}

// testStaleAfterTheBound asks for a position the stream never reaches: the
// answer comes anyway, after the bound, flagged stale.
func testStaleAfterTheBound(t *testing.T, f *fixture) {
	f.caughtUp(t)
	client := f.serve(querysvc.Options{MaxWait: 50 * time.Millisecond})
	ctx := as("rivierstad", testbed.Coach(1))
	resp, err := client.ListCases(ctx, &queryv1.ListCasesRequest{MinPosition: f.head + 1000})
	if err != nil {
		t.Fatal(err)
	}
	if fr := resp.GetFreshness(); !fr.GetStale() || fr.GetPosition() != f.head {
		t.Errorf("freshness %v, want stale at position %d", fr, f.head)
	}
	if len(resp.GetCases()) == 0 {
		t.Error("a stale answer holds no cases; it should answer from the read model as it is")
	}
	fresh, err := client.ListCases(ctx, &queryv1.ListCasesRequest{MinPosition: f.head})
	if err != nil || fresh.GetFreshness().GetStale() {
		t.Errorf("asking for the head: %v, freshness %v; want fresh", err, fresh.GetFreshness())
	}
}

// testListCasesPages walks the tenant's cases a page at a time.
func testListCasesPages(t *testing.T, f *fixture) {
	f.caughtUp(t)
	ctx := as("rivierstad", "analyst-1")
	all := []casev1.Stage{1, 2, 3, 4, 5, 6, 7}
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		if pages > 50 {
			t.Fatal("paging does not end")
		}
		resp, err := f.client.ListCases(ctx, &queryv1.ListCasesRequest{Stages: all, PageSize: 25, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.GetCases() {
			if seen[c.GetCaseId()] {
				t.Errorf("case %s listed twice", c.GetCaseId())
			}
			seen[c.GetCaseId()] = true
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if pages == 0 {
			_, err := f.client.ListCases(ctx, &queryv1.ListCasesRequest{PageSize: 25, PageToken: token})
			checkViolation(t, err, "page_token")
		}
	}
	if len(seen) != 120 {
		t.Errorf("listed %d cases of rivierstad, want 120", len(seen))
	}
}

// testTenantComesFromTheCall checks that a call states its tenant, and
// sees that tenant's cases only.
func testTenantComesFromTheCall(t *testing.T, f *fixture) {
	f.caughtUp(t)
	if _, err := f.client.ListCases(context.Background(), &queryv1.ListCasesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a call without tenant: %v, want UNAUTHENTICATED", err)
	}
	theirs := map[string]bool{}
	for _, ev := range f.events {
		if ev.Metadata.GetTenantId() == "noorderlicht" {
			theirs[ev.Metadata.GetCaseId()] = true
		}
	}
	resp, err := f.client.ListCases(as("noorderlicht", "analyst-2"), &queryv1.ListCasesRequest{Stages: []casev1.Stage{1, 2, 3, 4, 5, 6, 7}, PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetCases()) != len(theirs) {
		t.Errorf("noorderlicht lists %d cases, it has %d", len(resp.GetCases()), len(theirs))
	}
	for _, c := range resp.GetCases() {
		if !theirs[c.GetCaseId()] {
			t.Errorf("noorderlicht sees case %s of another tenant", c.GetCaseId())
		}
	}
}

// testAnswersHoldNoPersonalData reads every kind of answer and looks for
// the synthetic clients' IDs and their data keys' IDs.
func testAnswersHoldNoPersonalData(t *testing.T, f *fixture) {
	f.caughtUp(t)
	var answers []proto.Message
	for n := 1; n <= 4; n++ {
		d, err := f.client.GetCoachDashboard(as("rivierstad", testbed.Coach(n)), &queryv1.GetCoachDashboardRequest{RecentDays: 3000})
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, d)
	}
	l, err := f.client.ListCases(as("rivierstad", "x"), &queryv1.ListCasesRequest{Stages: []casev1.Stage{1, 2, 3, 4, 5, 6, 7}, PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.client.GetOrganisationReport(as("rivierstad", "x"), &queryv1.GetOrganisationReportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	answers = append(answers, l, r)
	for _, a := range answers {
		text := prototext.Format(a)
		for _, needle := range []string{"client-", "key-"} {
			if strings.Contains(text, needle) {
				t.Errorf("an answer holds %q:\n%.2000s", needle, text)
			}
		}
	}
}

// testReportSuppressesSmallDepartments asks for a department of the
// synthetic history as the analyst: suppressed counts carry no value.
func testReportSuppressesSmallDepartments(t *testing.T, f *fixture) {
	f.caughtUp(t)
	resp, err := f.client.GetOrganisationReport(as("rivierstad", "analyst-1"), &queryv1.GetOrganisationReportRequest{
		OrganisationId: "havenbedrijf", Department: "logistiek",
		PeriodFrom: &casev1.Date{Year: 2025, Month: 1, Day: 1}, PeriodTo: &casev1.Date{Year: 2025, Month: 11, Day: 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := report.Get(context.Background(), f.db.Reader(report.Name), f.loc, report.Query{
		Tenant: "rivierstad", Organisation: "havenbedrijf", Department: "logistiek", Now: f.now,
		From: casework.Date{Year: 2025, Month: 1, Day: 1}, To: casework.Date{Year: 2025, Month: 11, Day: 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	suppressed := 0
	for i, c := range resp.GetReport().GetCases().GetByContextAndType() {
		want := direct.Cases.ByContextAndType[i].Count
		switch {
		case c.GetCount().GetSuppressed() && c.GetCount().Value != nil:
			t.Errorf("a suppressed count carries the value %d", c.GetCount().GetValue())
		case c.GetCount().GetSuppressed() != want.Suppressed || uint32(want.N) != c.GetCount().GetValue():
			t.Errorf("cell %d: %v over gRPC, %+v in the read model", i, c.GetCount(), want)
		case c.GetCount().GetSuppressed():
			suppressed++
		}
	}
	if suppressed == 0 {
		t.Error("no count of the department is suppressed: the test shows nothing")
	}
	if got := resp.GetReport().GetView(); got != queryv1.ReportView_REPORT_VIEW_ANALYST {
		t.Errorf("view %s, want ANALYST", got)
	}
}

// testBadRequests checks that malformed requests fail with
// INVALID_ARGUMENT naming the field, before any query runs.
func testBadRequests(t *testing.T, f *fixture) {
	ctx := as("rivierstad", "analyst-1")
	future := timestamppb.New(f.now.Add(time.Hour))
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"a department alone", func() error {
			_, err := f.client.GetOrganisationReport(ctx, &queryv1.GetOrganisationReportRequest{Department: "x"})
			return err
		}, "department"},
		{"an organisation ID with capitals", func() error {
			_, err := f.client.ListCases(ctx, &queryv1.ListCasesRequest{OrganisationId: "Acme"})
			return err
		}, "organisation_id"},
		{"as of the future", func() error {
			_, err := f.client.GetOrganisationReport(ctx, &queryv1.GetOrganisationReportRequest{AsOf: future})
			return err
		}, "as_of"},
		{"a period that ends first", func() error {
			_, err := f.client.GetOrganisationReport(ctx, &queryv1.GetOrganisationReportRequest{
				PeriodFrom: &casev1.Date{Year: 2025, Month: 2, Day: 1}, PeriodTo: &casev1.Date{Year: 2025, Month: 1, Day: 1}})
			return err
		}, "period_to"},
		{"30 February", func() error {
			_, err := f.client.GetOrganisationReport(ctx, &queryv1.GetOrganisationReportRequest{PeriodFrom: &casev1.Date{Year: 2025, Month: 2, Day: 30}})
			return err
		}, "period_from"},
		{"an unknown view", func() error {
			_, err := f.client.GetOrganisationReport(ctx, &queryv1.GetOrganisationReportRequest{View: 9})
			return err
		}, "view"},
		{"too many idle days", func() error {
			_, err := f.client.GetCoachDashboard(ctx, &queryv1.GetCoachDashboardRequest{IdleDays: 99999})
			return err
		}, "idle_days"},
		{"a coach ID with a space", func() error {
			_, err := f.client.GetCoachDashboard(ctx, &queryv1.GetCoachDashboardRequest{CoachId: "coach 1"})
			return err
		}, "coach_id"},
		{"an unknown stage", func() error {
			_, err := f.client.ListCases(ctx, &queryv1.ListCasesRequest{Stages: []casev1.Stage{42}})
			return err
		}, "stages[0]"},
		{"a garbage page token", func() error {
			_, err := f.client.ListCases(ctx, &queryv1.ListCasesRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkViolation(t, tc.call(), tc.field) })
	}
}

// checkViolation fails unless err is INVALID_ARGUMENT with a BadRequest
// naming field.
func checkViolation(t *testing.T, err error, field string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("error %v, want INVALID_ARGUMENT", err)
	}
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if diff := cmp.Diff([]string{field}, fields); diff != "" {
		t.Errorf("violations of %v: (-want +got):\n%s", err, diff)
	}
}
