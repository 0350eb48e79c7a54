package demo_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/demo"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/node"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	"github.com/koers-io/koers/services/authn"
)

// koers is a real node in a data folder of the test, as `koers serve`
// runs it (SQLite store, embedded NATS, relay, gRPC on free loopback
// ports), with a CaseService client acting for a tenant.
type koers struct {
	node   *node.Node
	client casev1.CaseServiceClient
	ctx    context.Context
}

func startKoers(t *testing.T, tenant string) *koers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	n, err := node.Start(ctx, node.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("starting a node: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Stop(context.Background()); err != nil {
			t.Errorf("stopping the node: %v", err)
		}
	})
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	issuer, err := authn.OpenLocalIssuer(node.LocalIssuerDir(dir), false)
	if err != nil {
		t.Fatal(err)
	}
	// The demo looks for an earlier run with GetCase, so it needs a
	// centre administrator, as `koers demo` mints locally.
	token, err := issuer.Mint(authn.Principal{Subject: "koers-demo", Tenant: tenant, Roles: []authn.Role{authn.RoleAdmin}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	callCtx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	return &koers{node: n, client: casev1.NewCaseServiceClient(conn), ctx: callCtx}
}

func (k *koers) head() eventstore.Position {
	return k.node.Store().(interface{ Head() eventstore.Position }).Head()
}

// run sends p and fails the test on an error or a refused command.
func (k *koers) run(t *testing.T, p *demo.Population) *demo.Result {
	t.Helper()
	res, err := demo.Run(k.ctx, k.client, p, demo.Options{Workers: 8, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("running the demo: %v", err)
	}
	for _, r := range res.Refused {
		t.Errorf("refused: %v", r)
	}
	if res.Commands != res.Summary.Commands {
		t.Errorf("%d commands answered, %d generated", res.Commands, res.Summary.Commands)
	}
	return res
}

// caseView is what the test compares of a case, from the generator's
// domain state and from the server's GetCase.
type caseView struct {
	Stage                             casev1.Stage
	Coach                             string
	IntakeType, QuestionType          casev1.QuestionType
	Context                           casev1.OrganisationalContext
	Question                          casev1.OrganisationalQuestion
	Reclassifications, Referrals      int
	Consents, Sessions, PlanRevisions int
	Phase                             casev1.OutplacementPhase
	Placement                         casev1.PlacementOutcome
	Track                             casev1.ReintegrationTrack
	Checkpoints                       int
	Agency                            string
	Closed                            bool
	CloseOutcome                      casev1.CloseOutcome
	Reopenings                        int
	Erasure                           casev1.ErasureReason
}

func viewOfState(s casework.State) caseView {
	v := caseView{
		Stage: s.Stage, Coach: s.CoachID, IntakeType: s.Intake.QuestionType, QuestionType: s.QuestionType,
		Context: s.Context, Question: s.Question, Reclassifications: len(s.Reclassifications), Referrals: len(s.Referrals),
		Consents: len(s.Consents), Sessions: s.Sessions.Count, PlanRevisions: s.Plan.Revisions,
		Phase: s.Outplacement.Phase, Placement: s.Outplacement.Outcome, Track: s.Reintegration.Track,
		Checkpoints: len(s.Reintegration.Checkpoints), Agency: s.Reintegration.AgencyID,
		Closed: s.Closure.Closed, CloseOutcome: s.Closure.Outcome, Reopenings: s.Closure.Reopenings, Erasure: s.Erasure,
	}
	return v
}

func viewOfCase(c *casev1.Case) caseView {
	return caseView{
		Stage: c.GetStage(), Coach: c.GetCoachId(), IntakeType: c.GetIntake().GetQuestionType(), QuestionType: c.GetQuestionType(),
		Context: c.GetOrganisationalContext(), Question: c.GetOrganisationalQuestion(),
		Reclassifications: len(c.GetReclassifications()), Referrals: len(c.GetReferrals()),
		Consents: len(c.GetConsents()), Sessions: int(c.GetSessions().GetCount()), PlanRevisions: int(c.GetDevelopmentPlan().GetRevisions()),
		Phase: c.GetOutplacement().GetPhase(), Placement: c.GetOutplacement().GetOutcome(), Track: c.GetReintegration().GetTrack(),
		Checkpoints: len(c.GetReintegration().GetCheckpoints()), Agency: c.GetReintegration().GetAgencyId(),
		Closed: c.GetClosure().GetClosed(), CloseOutcome: c.GetClosure().GetOutcome(), Reopenings: int(c.GetClosure().GetReopenings()),
		Erasure: c.GetErasureReason(),
	}
}

func TestDemoFillsARunningKoersAndRunsAgainHarmlessly(t *testing.T) {
	const tenant, seed, cases = "demo-test", 11, 90
	k := startKoers(t, tenant)
	if _, found, err := demo.Anchor(k.ctx, k.client, tenant, seed); err != nil || found {
		t.Fatalf("Anchor on an empty Koers = found %t, %v; want nothing found", found, err)
	}
	p := population(t, cases, seed)
	res := k.run(t, p)
	if res.Commands == 0 || k.head() < eventstore.Position(res.Commands) {
		t.Fatalf("%d commands answered, store head %d: want at least one event per command", res.Commands, k.head())
	}

	// The server holds every case as the generator's domain state says,
	// and the population covers what dashboards and reports show.
	seen := struct {
		types    map[casev1.QuestionType]bool
		contexts map[casev1.OrganisationalContext]bool
		kinds    map[demo.Kind]bool
		outcomes map[casev1.PlacementOutcome]bool
		ends     map[casev1.CloseOutcome]bool
	}{map[casev1.QuestionType]bool{}, map[casev1.OrganisationalContext]bool{}, map[demo.Kind]bool{},
		map[casev1.PlacementOutcome]bool{}, map[casev1.CloseOutcome]bool{}}
	for i := range cases {
		tr := caseOf(t, p, i)
		got, err := k.client.GetCase(k.ctx, &casev1.GetCaseRequest{CaseId: tr.CaseID})
		if err != nil {
			t.Fatalf("GetCase of case %d: %v", i, err)
		}
		if diff := cmp.Diff(viewOfState(tr.State), viewOfCase(got.GetCase())); diff != "" {
			t.Errorf("case %d (%s, %s) on the server differs from the generator's (-generator +server):\n%s", i, tr.Kind, tr.CaseID, diff)
		}
		c := got.GetCase()
		seen.types[c.GetIntake().GetQuestionType()] = true
		seen.contexts[c.GetOrganisationalContext()] = true
		seen.kinds[tr.Kind] = true
		seen.outcomes[c.GetOutplacement().GetOutcome()] = true
		seen.ends[c.GetClosure().GetOutcome()] = true
	}
	for _, want := range []struct {
		what string
		n    int
		all  int
	}{
		{"question types", len(seen.types), 1 + 4},
		{"organisational contexts", len(seen.contexts), 1 + 3},
		{"kinds of trajectory", len(seen.kinds), 4},
		{"outplacement outcomes", len(seen.outcomes), 1 + 4},
	} {
		if want.n != want.all {
			t.Errorf("%d %s (with none) among %d cases, want all %d", want.n, want.what, cases, want.all)
		}
	}
	for _, end := range []casev1.CloseOutcome{casev1.CloseOutcome_CLOSE_OUTCOME_GOAL_ACHIEVED,
		casev1.CloseOutcome_CLOSE_OUTCOME_OUTPLACEMENT_CONCLUDED, casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER} {
		if !seen.ends[end] {
			t.Errorf("no case closed %s among %d cases", end, cases)
		}
	}

	// A later run finds the population's last day and writes nothing.
	if got, found, err := demo.Anchor(k.ctx, k.client, tenant, seed); err != nil || !found || got != today {
		t.Errorf("Anchor after the run = %s, found %t, %v; want %s", got, found, err, today)
	}
	head := k.head()
	again := k.run(t, p)
	if k.head() != head {
		t.Errorf("running the same demo again moved the store head from %d to %d", head, k.head())
	}
	if again.Commands != res.Commands {
		t.Errorf("running again answered %d commands, the first run %d", again.Commands, res.Commands)
	}

	// The same seed with another last day sends other commands under the
	// same request IDs: each case is refused at its first command, and
	// nothing is written.
	shifted, err := demo.New(demo.Config{Tenant: tenant, Seed: seed, Cases: 3, Today: today.AddDays(-1)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := demo.Run(k.ctx, k.client, shifted, demo.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("running a shifted demo: %v", err)
	}
	var refused []string
	for _, r := range other.Refused {
		refused = append(refused, fmt.Sprintf("case %d step %d %s: %s", r.Case, r.Step, r.Method, status.Code(r.Err)))
	}
	want := []string{"case 0 step 0 OpenCase: InvalidArgument", "case 1 step 0 OpenCase: InvalidArgument", "case 2 step 0 OpenCase: InvalidArgument"}
	if diff := cmp.Diff(want, refused); diff != "" {
		t.Errorf("refusals of a shifted demo (-want +got):\n%s", diff)
	}
	if k.head() != head {
		t.Errorf("a refused demo moved the store head from %d to %d", head, k.head())
	}
}

func TestDemoStopsWhenKoersIsUnreachable(t *testing.T) {
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer not-a-token") // refused, if a server answered
	_, err = demo.Run(ctx, casev1.NewCaseServiceClient(conn), population(t, 5, 1),
		demo.Options{Attempts: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Run against a closed port = %v, want Unavailable", err)
	}
}
