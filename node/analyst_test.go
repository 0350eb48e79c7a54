package node_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/koers-io/koers/node"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
	"github.com/koers-io/koers/services/authn"
)

// TestAnAnalystSeesNoCountsOfASmallDepartmentAndNoPersonalData records
// three cases of one department, with names and notes, through the public
// API of a real node, and asks as an analyst and as the employer: the
// department's report shows no count at all, and no answer an analyst or
// employer gets holds any of the seeded plaintext.
func TestAnAnalystSeesNoCountsOfASmallDepartmentAndNoPersonalData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cases := casev1.NewCaseServiceClient(conn)
	queries := queryv1.NewQueryServiceClient(conn)

	admin := adminCtx(t, ctx, dir, "acme", "admin-1")
	var secrets []string
	var last uint64
	for i := range 3 {
		id := uuid.NewString()
		given, family := fmt.Sprintf("Wilhelmina%d", i), fmt.Sprintf("Zwanenburg%d", i)
		note := fmt.Sprintf("Vertelde over burn-out klachten nummer %d", i)
		secrets = append(secrets, given, family, note)
		steps := []func() (*casev1.CommandResult, error){
			func() (*casev1.CommandResult, error) {
				r, err := cases.OpenCase(admin, &casev1.OpenCaseRequest{CaseId: id, RequestId: "open", ClientId: "client-" + id[:8],
					Client:      &casev1.ClientDetails{GivenName: given, FamilyName: family, Email: family + "@example.org"},
					InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION, OrganisationId: "acme-bv", Department: "Logistiek",
					OpenedOn: day(2026, 1, 5), CoachId: "coach-anna", BirthYear: 1980})
				return r.GetResult(), err
			},
			func() (*casev1.CommandResult, error) {
				r, err := cases.CompleteIntake(admin, &casev1.CompleteIntakeRequest{CaseId: id, RequestId: "intake",
					HeldOn: day(2026, 1, 12), QuestionType: casev1.QuestionType_QUESTION_TYPE_COMPETENCE,
					Answers: &casev1.IntakeAnswers{ReasonForComing: "Wil verder groeien, " + family}})
				return r.GetResult(), err
			},
			func() (*casev1.CommandResult, error) {
				r, err := cases.RecordSession(admin, &casev1.RecordSessionRequest{CaseId: id, RequestId: "session",
					HeldOn: day(2026, 1, 19), Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60, Notes: note})
				return r.GetResult(), err
			},
		}
		for j, step := range steps {
			r, err := step()
			if err != nil {
				t.Fatalf("case %d, step %d: %v", i, j, err)
			}
			last = r.GetPosition()
		}
	}

	analyst := tokenCtx(t, ctx, dir, authn.Principal{Subject: "analyst-1", Tenant: "acme", Roles: []authn.Role{authn.RoleAnalyst}})
	employer := tokenCtx(t, ctx, dir, authn.Principal{Subject: "hr-1", Tenant: "acme",
		Roles: []authn.Role{authn.RoleEmployer}, OrganisationID: "acme-bv"})
	department := &queryv1.GetOrganisationReportRequest{OrganisationId: "acme-bv", Department: "Logistiek", MinPosition: last}
	var answers []proto.Message
	for _, who := range []struct {
		name string
		ctx  context.Context
	}{{"analyst", analyst}, {"employer", employer}} {
		resp, err := queries.GetOrganisationReport(who.ctx, department)
		if err != nil {
			t.Fatalf("%s: department report: %v", who.name, err)
		}
		if resp.GetFreshness().GetStale() {
			t.Fatalf("%s: the report did not catch up with the cases", who.name)
		}
		counts, shown := 0, 0
		walk(resp.ProtoReflect(), func(m protoreflect.Message) {
			if c, ok := m.Interface().(*queryv1.Count); ok {
				counts++
				if !c.GetSuppressed() || c.Value != nil {
					shown++
				}
			}
		})
		if counts == 0 {
			t.Fatalf("%s: the report holds no counts at all: the test shows nothing", who.name)
		}
		if shown > 0 {
			t.Errorf("%s: %d of %d counts of a 3-case department are shown", who.name, shown, counts)
		}
		answers = append(answers, resp)
	}
	whole, err := queries.GetOrganisationReport(analyst, &queryv1.GetOrganisationReportRequest{MinPosition: last})
	if err != nil {
		t.Fatalf("analyst: whole-tenant report: %v", err)
	}
	answers = append(answers, whole)
	for i, a := range answers {
		b, err := proto.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("answer %d holds the client's %q", i, s)
			}
		}
	}
}

// walk calls f for m and every message below it.
func walk(m protoreflect.Message, f func(protoreflect.Message)) {
	f(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				walk(v.List().Get(i).Message(), f)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walk(mv.Message(), f)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			walk(v.Message(), f)
		}
		return true
	})
}
