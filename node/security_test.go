package node_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/koers-io/koers/node"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/authz"
)

// The parties of the matrix: the case under test belongs to tenant acme,
// coach anna, employer acme-bv, and is assigned (with consent) to agency
// reintegra.
const (
	matrixTenant   = "acme"
	matrixCoach    = "coach-anna"
	matrixEmployer = "acme-bv"
	matrixAgency   = "reintegra"
)

// outcome is what a call under an identity must end in.
type outcome int

const (
	unauthenticated outcome = iota
	permissionDenied
	notFound
	// allowed: past authentication and the policy; the call may still fail
	// for what the case's state says (FailedPrecondition), but not with
	// Unauthenticated, PermissionDenied or NotFound.
	allowed
)

func (o outcome) String() string {
	return [...]string{"Unauthenticated", "PermissionDenied", "NotFound", "allowed"}[o]
}

func (o outcome) matches(err error) bool {
	code := status.Code(err)
	switch o {
	case unauthenticated:
		return code == codes.Unauthenticated
	case permissionDenied:
		return code == codes.PermissionDenied
	case notFound:
		return code == codes.NotFound
	default:
		return !slices.Contains([]codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.NotFound,
			codes.InvalidArgument, codes.Internal, codes.Unimplemented, codes.Unknown}, code)
	}
}

// matrixIdentity is one column of the matrix: how the call authenticates
// and what the policy table says it must get for a method.
type matrixIdentity struct {
	name   string
	token  func(*matrix) string
	expect func(method string) outcome
}

// fromTable expects what the policy table says for role: PermissionDenied
// where it reaches nothing, allowed where it does. With foreign set the
// principal is of the right role but not the case's party (another coach,
// employer or agency): where the role reaches only its own, it is refused.
func fromTable(role authn.Role, foreign bool) func(string) outcome {
	return func(method string) outcome {
		switch reach := authz.Table()[method][role]; {
		case reach == authz.Denied:
			return permissionDenied
		case foreign && slices.Contains([]authz.Reach{authz.OwnCases, authz.OwnCaseload, authz.OwnOrganisation, authz.AgencyCases}, reach):
			return permissionDenied
		default:
			return allowed
		}
	}
}

func everyMethod(o outcome) func(string) outcome { return func(string) outcome { return o } }

// matrix is the node under test and its issuer.
type matrix struct {
	t      *testing.T
	node   *node.Node
	conn   *grpc.ClientConn
	issuer *authn.LocalIssuer
}

func (m *matrix) mint(p authn.Principal) string {
	token, err := m.issuer.Mint(p, time.Hour)
	if err != nil {
		m.t.Fatal(err)
	}
	return token
}

func (m *matrix) sign(c authn.Claims) string {
	token, err := m.issuer.Sign(c)
	if err != nil {
		m.t.Fatal(err)
	}
	return token
}

func principal(role authn.Role, subject string) authn.Principal {
	p := authn.Principal{Subject: subject, Tenant: matrixTenant, Roles: []authn.Role{role}}
	switch role {
	case authn.RoleCoach:
		p.CoachID = subject
	case authn.RoleEmployer:
		p.OrganisationID = subject
	case authn.RoleAgency:
		p.AgencyID = subject
	}
	return p
}

func matrixIdentities() []matrixIdentity {
	role := func(r authn.Role, subject string, foreign bool) matrixIdentity {
		name := string(r)
		if foreign {
			name += " (not the case's)"
		}
		return matrixIdentity{name: name,
			token:  func(m *matrix) string { return m.mint(principal(r, subject)) },
			expect: fromTable(r, foreign)}
	}
	admin := principal(authn.RoleAdmin, "admin-1")
	return []matrixIdentity{
		{name: "no token", token: func(*matrix) string { return "" }, expect: everyMethod(unauthenticated)},
		{name: "expired token", expect: everyMethod(unauthenticated), token: func(m *matrix) string {
			return m.sign(authn.Claims{Principal: admin, Issuer: authn.LocalIssuerName, Audience: authn.LocalAudience,
				Expiry: time.Now().Add(-time.Hour)})
		}},
		{name: "wrong audience", expect: everyMethod(unauthenticated), token: func(m *matrix) string {
			return m.sign(authn.Claims{Principal: admin, Issuer: authn.LocalIssuerName, Audience: "another-service",
				Expiry: time.Now().Add(time.Hour)})
		}},
		{name: "forged signature", expect: everyMethod(unauthenticated), token: func(m *matrix) string {
			// A valid token whose payload is swapped for one naming another
			// tenant: the signature no longer matches.
			genuine := strings.Split(m.mint(admin), ".")
			other := admin
			other.Tenant = "other-centre"
			forged := strings.Split(m.mint(other), ".")
			return genuine[0] + "." + forged[1] + "." + genuine[2]
		}},
		{name: "admin of another tenant", expect: otherTenant, token: func(m *matrix) string {
			p := admin
			p.Tenant = "other-centre"
			return m.mint(p)
		}},
		role(authn.RoleIntegration, "centre-system", false),
		role(authn.RoleCoach, matrixCoach, false),
		role(authn.RoleCoach, "coach-bert", true),
		role(authn.RoleAdmin, "admin-1", false),
		role(authn.RoleEmployer, matrixEmployer, false),
		role(authn.RoleEmployer, "other-bv", true),
		role(authn.RoleAnalyst, "analyst-1", false),
		role(authn.RoleAgency, matrixAgency, false),
		role(authn.RoleAgency, "other-agency", true),
	}
}

// otherTenant is what an administrator of another tenant gets: the case
// does not exist for it, while OpenCase (of a new case ID) opens a case in
// its own tenant and queries answer about its own tenant.
func otherTenant(method string) outcome {
	switch {
	case method == casev1.CaseService_OpenCase_FullMethodName:
		return allowed
	case strings.HasPrefix(method, "/koers.case.v1.CaseService/"):
		return notFound
	default:
		return fromTable(authn.RoleAdmin, false)(method)
	}
}

// TestEveryRPCUnderEveryIdentityGetsWhatThePolicySays is the security
// matrix: every RPC of the policy table, called under every role, under
// principals of the right role that are not the case's party, and under
// no, expired, wrongly addressed, forged and other-tenant tokens, ends in
// the status the table says. Each call that can change a case gets a case
// of its own, so that no call's effect decides another's outcome.
func TestEveryRPCUnderEveryIdentityGetsWhatThePolicySays(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	issuer, err := authn.OpenLocalIssuer(node.LocalIssuerDir(dir), false)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	m := &matrix{t: t, node: n, conn: conn, issuer: issuer}

	calls := matrixCalls()
	for _, method := range authz.Methods() {
		if _, ok := calls[method]; !ok {
			t.Errorf("the policy names %s, which the matrix does not call", method)
		}
	}
	for _, id := range matrixIdentities() {
		t.Run(id.name, func(t *testing.T) {
			token := id.token(m)
			for _, method := range authz.Methods() {
				call, ok := calls[method]
				if !ok {
					continue
				}
				caseID := m.seedCase(t)
				callCtx := ctx
				if token != "" {
					callCtx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
				}
				err := call(callCtx, m, caseID)
				if want := id.expect(method); !want.matches(err) {
					t.Errorf("%s: %v, want %s", method, err, want)
				}
			}
		})
	}
}

// seedCase opens a case of anna's at acme-bv, in re-integration, assigned
// with consent to reintegra.
func (m *matrix) seedCase(t *testing.T) string {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization",
		"Bearer "+m.mint(principal(authn.RoleAdmin, "seeder")))
	c := casev1.NewCaseServiceClient(m.conn)
	id := uuid.NewString()
	steps := []func() error{
		func() error {
			_, err := c.OpenCase(ctx, &casev1.OpenCaseRequest{CaseId: id, RequestId: "open", ClientId: "client-" + id[:8],
				Client:      &casev1.ClientDetails{GivenName: "Test", FamilyName: "Client"},
				InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION, OrganisationId: matrixEmployer,
				OpenedOn: day(2026, 1, 5), CoachId: matrixCoach})
			return err
		},
		func() error {
			_, err := c.StartReintegration(ctx, &casev1.StartReintegrationRequest{CaseId: id, RequestId: "reint",
				SickReportedOn: day(2026, 1, 2), Track: casev1.ReintegrationTrack_REINTEGRATION_TRACK_FIRST})
			return err
		},
		func() error {
			_, err := c.GrantReportingConsent(ctx, &casev1.GrantReportingConsentRequest{CaseId: id, RequestId: "consent",
				Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, Id: matrixAgency},
				Scopes:    []casev1.ReportingScope{casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION}})
			return err
		},
		func() error {
			_, err := c.AssignAgency(ctx, &casev1.AssignAgencyRequest{CaseId: id, RequestId: "agency", AgencyId: matrixAgency})
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("seeding case %s, step %d: %v", id, i, err)
		}
	}
	return id
}

func day(y, m, d int32) *casev1.Date { return &casev1.Date{Year: y, Month: m, Day: d} }

// matrixCall calls one RPC on the case.
type matrixCall func(ctx context.Context, m *matrix, caseID string) error

// unary calls method with the request build makes, decoding the answer
// into the method's response type.
func unary(method string, build func(caseID string) proto.Message) matrixCall {
	return func(ctx context.Context, m *matrix, caseID string) error {
		reply, err := responseOf(method)
		if err != nil {
			return err
		}
		return m.conn.Invoke(ctx, method, build(caseID), reply)
	}
}

// responseOf makes an empty response message of method.
func responseOf(method string) (proto.Message, error) {
	service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, fmt.Errorf("service of %s: %w", method, err)
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, fmt.Errorf("no method %s", method)
	}
	return dynamicpb.NewMessage(md.Output()), nil
}

// matrixCalls has a call per RPC of the policy: a request that is valid,
// so that what decides its outcome is who calls.
func matrixCalls() map[string]matrixCall {
	agency := &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, Id: matrixAgency}
	goals := []*casev1.DevelopmentGoal{{Description: "Find a role in logistics"}}
	cmd := func(method string, build func(caseID string) proto.Message) (string, matrixCall) {
		return method, unary(method, build)
	}
	calls := map[string]matrixCall{}
	add := func(method string, call matrixCall) { calls[method] = call }
	add(cmd(casev1.CaseService_OpenCase_FullMethodName, func(string) proto.Message {
		return &casev1.OpenCaseRequest{CaseId: uuid.NewString(), RequestId: "m-open", ClientId: "client-m",
			Client:      &casev1.ClientDetails{GivenName: "Other", FamilyName: "Client"},
			InitiatedBy: casev1.Initiator_INITIATOR_CLIENT, OpenedOn: day(2026, 2, 1), CoachId: matrixCoach}
	}))
	add(cmd(casev1.CaseService_CompleteIntake_FullMethodName, func(id string) proto.Message {
		return &casev1.CompleteIntakeRequest{CaseId: id, RequestId: "m", HeldOn: day(2026, 1, 12),
			QuestionType: casev1.QuestionType_QUESTION_TYPE_CHOICE, Answers: &casev1.IntakeAnswers{ReasonForComing: "Stuck."}}
	}))
	add(cmd(casev1.CaseService_ReclassifyQuestion_FullMethodName, func(id string) proto.Message {
		return &casev1.ReclassifyQuestionRequest{CaseId: id, RequestId: "m", To: casev1.QuestionType_QUESTION_TYPE_COMPETENCE,
			Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_COACHING_INEFFECTIVE, Explanation: "Stuck."}
	}))
	add(cmd(casev1.CaseService_AssignCoach_FullMethodName, func(id string) proto.Message {
		return &casev1.AssignCoachRequest{CaseId: id, RequestId: "m", CoachId: "coach-carla"}
	}))
	add(cmd(casev1.CaseService_ReferCase_FullMethodName, func(id string) proto.Message {
		return &casev1.ReferCaseRequest{CaseId: id, RequestId: "m", Target: casev1.ReferralTarget_REFERRAL_TARGET_OUTSIDE_PROFESSIONAL,
			Reason: casev1.ReferralReason_REFERRAL_REASON_BEYOND_EXPERTISE, Details: "Needs a psychologist."}
	}))
	add(cmd(casev1.CaseService_GrantReportingConsent_FullMethodName, func(id string) proto.Message {
		return &casev1.GrantReportingConsentRequest{CaseId: id, RequestId: "m",
			Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER, Id: matrixEmployer},
			Scopes:    []casev1.ReportingScope{casev1.ReportingScope_REPORTING_SCOPE_PROGRESS}}
	}))
	add(cmd(casev1.CaseService_RevokeReportingConsent_FullMethodName, func(id string) proto.Message {
		return &casev1.RevokeReportingConsentRequest{CaseId: id, RequestId: "m", Recipient: agency}
	}))
	add(cmd(casev1.CaseService_RecordSession_FullMethodName, func(id string) proto.Message {
		return &casev1.RecordSessionRequest{CaseId: id, RequestId: "m", HeldOn: day(2026, 1, 20),
			Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60, Notes: "Talked."}
	}))
	add(cmd(casev1.CaseService_AgreeDevelopmentPlan_FullMethodName, func(id string) proto.Message {
		return &casev1.AgreeDevelopmentPlanRequest{CaseId: id, RequestId: "m", AgreedOn: day(2026, 1, 20), ReviewOn: day(2026, 4, 20), Goals: goals}
	}))
	add(cmd(casev1.CaseService_ReviseDevelopmentPlan_FullMethodName, func(id string) proto.Message {
		return &casev1.ReviseDevelopmentPlanRequest{CaseId: id, RequestId: "m", RevisedOn: day(2026, 1, 21), ReviewOn: day(2026, 4, 21), Goals: goals}
	}))
	add(cmd(casev1.CaseService_StartOutplacement_FullMethodName, func(id string) proto.Message {
		return &casev1.StartOutplacementRequest{CaseId: id, RequestId: "m", StartedOn: day(2026, 1, 20),
			Phase: casev1.OutplacementPhase_OUTPLACEMENT_PHASE_FAREWELL, PlannedMonths: 6}
	}))
	add(cmd(casev1.CaseService_EnterOutplacementPhase_FullMethodName, func(id string) proto.Message {
		return &casev1.EnterOutplacementPhaseRequest{CaseId: id, RequestId: "m",
			Phase: casev1.OutplacementPhase_OUTPLACEMENT_PHASE_ORIENTATION, EnteredOn: day(2026, 1, 22)}
	}))
	add(cmd(casev1.CaseService_RecordPlacement_FullMethodName, func(id string) proto.Message {
		return &casev1.RecordPlacementRequest{CaseId: id, RequestId: "m",
			Outcome: casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL, PlacedOn: day(2026, 2, 2)}
	}))
	add(cmd(casev1.CaseService_EndOutplacementWithoutPlacement_FullMethodName, func(id string) proto.Message {
		return &casev1.EndOutplacementWithoutPlacementRequest{CaseId: id, RequestId: "m", EndedOn: day(2026, 2, 2),
			Reason: casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_TERM_ENDED}
	}))
	add(cmd(casev1.CaseService_StartReintegration_FullMethodName, func(id string) proto.Message {
		return &casev1.StartReintegrationRequest{CaseId: id, RequestId: "m", SickReportedOn: day(2026, 1, 3),
			Track: casev1.ReintegrationTrack_REINTEGRATION_TRACK_FIRST}
	}))
	add(cmd(casev1.CaseService_AssignAgency_FullMethodName, func(id string) proto.Message {
		return &casev1.AssignAgencyRequest{CaseId: id, RequestId: "m", AgencyId: "other-agency"}
	}))
	add(cmd(casev1.CaseService_UnassignAgency_FullMethodName, func(id string) proto.Message {
		return &casev1.UnassignAgencyRequest{CaseId: id, RequestId: "m", AgencyId: matrixAgency,
			Reason: casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_COMPLETED}
	}))
	add(cmd(casev1.CaseService_RecordCheckpoint_FullMethodName, func(id string) proto.Message {
		return &casev1.RecordCheckpointRequest{CaseId: id, RequestId: "m",
			Kind: casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, HeldOn: day(2026, 2, 10)}
	}))
	add(cmd(casev1.CaseService_StartSecondTrack_FullMethodName, func(id string) proto.Message {
		return &casev1.StartSecondTrackRequest{CaseId: id, RequestId: "m", StartedOn: day(2026, 2, 10)}
	}))
	add(cmd(casev1.CaseService_CloseCase_FullMethodName, func(id string) proto.Message {
		return &casev1.CloseCaseRequest{CaseId: id, RequestId: "m", ClosedOn: day(2026, 3, 1),
			Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_GOAL_ACHIEVED}
	}))
	add(cmd(casev1.CaseService_ReopenCase_FullMethodName, func(id string) proto.Message {
		return &casev1.ReopenCaseRequest{CaseId: id, RequestId: "m", ReopenedOn: day(2026, 3, 2),
			Reason: casev1.ReopenReason_REOPEN_REASON_CLIENT_RETURNED}
	}))
	add(cmd(casev1.CaseService_EraseClientData_FullMethodName, func(id string) proto.Message {
		return &casev1.EraseClientDataRequest{CaseId: id, RequestId: "m", Reason: casev1.ErasureReason_ERASURE_REASON_CLIENT_REQUEST}
	}))
	add(cmd(casev1.CaseService_GetCase_FullMethodName, func(id string) proto.Message {
		return &casev1.GetCaseRequest{CaseId: id}
	}))
	add(cmd(queryv1.QueryService_GetCoachDashboard_FullMethodName, func(string) proto.Message {
		return &queryv1.GetCoachDashboardRequest{CoachId: matrixCoach}
	}))
	add(cmd(queryv1.QueryService_ListCases_FullMethodName, func(string) proto.Message {
		return &queryv1.ListCasesRequest{CoachId: matrixCoach}
	}))
	add(cmd(queryv1.QueryService_GetOrganisationReport_FullMethodName, func(string) proto.Message {
		return &queryv1.GetOrganisationReportRequest{OrganisationId: matrixEmployer}
	}))
	add(cmd(authz.ListAuditRecords, func(string) proto.Message {
		return &auditv1.ListAuditRecordsRequest{PageSize: 10}
	}))
	// A resume token past the feed's end is answered OUT_OF_RANGE at once by
	// a principal the policy lets in, so the matrix need not wait for
	// events to tell an open feed from a refused one.
	add(authz.FeedSubscribe, func(ctx context.Context, m *matrix, _ string) error {
		stream, err := feedv1.NewFeedServiceClient(m.conn).Subscribe(ctx, &feedv1.SubscribeRequest{ResumeToken: "999999999"})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		if status.Code(err) == codes.OutOfRange {
			return nil
		}
		if err == nil {
			return fmt.Errorf("an event after a token past the end of the feed")
		}
		return err
	})
	reflect := func(ctx context.Context, m *matrix, _ string) error {
		_, err := listServicesVia(ctx, m.conn)
		return err
	}
	add(authz.ReflectionV1, reflect)
	add(authz.ReflectionV1Alpha, func(ctx context.Context, m *matrix, _ string) error {
		_, err := listServicesV1Alpha(ctx, m.conn)
		return err
	})
	return calls
}
