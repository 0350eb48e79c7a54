package casesvc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	"github.com/koers-io/koers/services/authn"
)

// seeded is a node with cases in known states, for tests that send
// commands that must fail.
type seeded struct {
	tn      *testNode
	ctx     context.Context
	open    string // opened, intake (COMPETENCE) done
	reint   string // opened, re-integration running since 2025-01-06
	closed  string // opened and closed
	session string // the request ID of a session recorded on open
}

const tenant = "acme-coaching"

func seed(t *testing.T) *seeded {
	t.Helper()
	tn := startNode(t, t.TempDir())
	s := &seeded{tn: tn, ctx: as(tenant, "coach-anna"), open: uuid.NewString(), reint: uuid.NewString(), closed: uuid.NewString(), session: "session-1"}
	c := tn.client
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("seeding: %v", err)
		}
	}
	for _, id := range []string{s.open, s.reint, s.closed} {
		must(c.OpenCase(s.ctx, openRequest(id, "open-"+id)))
	}
	must(c.CompleteIntake(s.ctx, &casev1.CompleteIntakeRequest{CaseId: s.open, RequestId: "intake", HeldOn: day(2025, 2, 1),
		QuestionType: casev1.QuestionType_QUESTION_TYPE_COMPETENCE, Answers: &casev1.IntakeAnswers{ReasonForComing: "groei"}}))
	must(c.RecordSession(s.ctx, &casev1.RecordSessionRequest{CaseId: s.open, RequestId: s.session, HeldOn: day(2025, 2, 8),
		Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60}))
	must(c.StartReintegration(s.ctx, &casev1.StartReintegrationRequest{CaseId: s.reint, RequestId: "reint", SickReportedOn: day(2025, 1, 6)}))
	must(c.CloseCase(s.ctx, &casev1.CloseCaseRequest{CaseId: s.closed, RequestId: "close", ClosedOn: day(2025, 3, 1),
		Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_GOAL_ACHIEVED}))
	return s
}

// openRequest is a valid OpenCase request.
func openRequest(caseID, requestID string) *casev1.OpenCaseRequest {
	return &casev1.OpenCaseRequest{
		CaseId: caseID, RequestId: requestID, ClientId: "client-" + requestID,
		Client:      &casev1.ClientDetails{GivenName: "Eva", FamilyName: "Visser"},
		InitiatedBy: casev1.Initiator_INITIATOR_CLIENT,
		OpenedOn:    day(2025, 1, 15),
	}
}

func session(caseID, requestID string) *casev1.RecordSessionRequest {
	return &casev1.RecordSessionRequest{CaseId: caseID, RequestId: requestID, HeldOn: day(2025, 2, 15),
		Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 45}
}

func TestBadInputIsRefusedPreciselyAndChangesNothing(t *testing.T) {
	s := seed(t)
	c := s.tn.client
	ctx := s.ctx
	withOpen := func(edit func(r *casev1.OpenCaseRequest)) func(context.Context) error {
		return func(ctx context.Context) error {
			r := openRequest(uuid.NewString(), "fresh-open")
			edit(r)
			_, err := c.OpenCase(ctx, r)
			return err
		}
	}
	withSession := func(edit func(r *casev1.RecordSessionRequest)) func(context.Context) error {
		return func(ctx context.Context) error {
			r := session(s.open, "fresh-session")
			edit(r)
			_, err := c.RecordSession(ctx, r)
			return err
		}
	}
	plan := func(edit func(r *casev1.AgreeDevelopmentPlanRequest)) func(context.Context) error {
		return func(ctx context.Context) error {
			r := &casev1.AgreeDevelopmentPlanRequest{CaseId: s.open, RequestId: "fresh-plan", AgreedOn: day(2025, 3, 1), ReviewOn: day(2025, 6, 1),
				Goals: []*casev1.DevelopmentGoal{{Description: "Teamleider worden"}}}
			edit(r)
			_, err := c.AgreeDevelopmentPlan(ctx, r)
			return err
		}
	}
	checkpoint := func(edit func(r *casev1.RecordCheckpointRequest)) func(context.Context) error {
		return func(ctx context.Context) error {
			r := &casev1.RecordCheckpointRequest{CaseId: s.reint, RequestId: "fresh-checkpoint",
				Kind: casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, HeldOn: day(2025, 2, 10)}
			edit(r)
			_, err := c.RecordCheckpoint(ctx, r)
			return err
		}
	}
	consent := func(scopes ...casev1.ReportingScope) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.GrantReportingConsent(ctx, &casev1.GrantReportingConsentRequest{CaseId: s.open, RequestId: "fresh-consent",
				Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER, Id: "acme-bv"}, Scopes: scopes})
			return err
		}
	}
	noToken := context.Background()
	otherIssuer, err := authn.OpenLocalIssuer(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := otherIssuer.Mint(authn.Principal{Subject: "coach-anna", Tenant: tenant, Roles: []authn.Role{authn.RoleAdmin}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forgedToken := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+forged)

	tests := []struct {
		name string
		// stream is the case whose stream must not change.
		stream string
		ctx    context.Context // default s.ctx
		call   func(context.Context) error
		code   codes.Code
		fields []string // BadRequest field violations, for INVALID_ARGUMENT
		reason string   // ErrorInfo reason, for the others
	}{
		// The request's own fields: INVALID_ARGUMENT naming each.
		{name: "missing request ID", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.RequestId = "" }),
			code: codes.InvalidArgument, fields: []string{"request_id"}},
		{name: "request ID with a space", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.RequestId = "my request" }),
			code: codes.InvalidArgument, fields: []string{"request_id"}},
		{name: "request ID over 64 characters", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.RequestId = strings.Repeat("r", 65) }),
			code: codes.InvalidArgument, fields: []string{"request_id"}},
		{name: "missing case ID", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.CaseId = "" }),
			code: codes.InvalidArgument, fields: []string{"case_id"}},
		{name: "malformed case ID", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.CaseId = s.open[:35] + "g" }),
			code: codes.InvalidArgument, fields: []string{"case_id"}},
		{name: "missing client ID", call: withOpen(func(r *casev1.OpenCaseRequest) { r.ClientId = "" }),
			code: codes.InvalidArgument, fields: []string{"client_id"}},
		{name: "missing client details", call: withOpen(func(r *casev1.OpenCaseRequest) { r.Client = nil }),
			code: codes.InvalidArgument, fields: []string{"client"}},
		{name: "client without a name", call: withOpen(func(r *casev1.OpenCaseRequest) { r.Client = &casev1.ClientDetails{Email: "a@b.nl"} }),
			code: codes.InvalidArgument, fields: []string{"client.family_name"}},
		{name: "given name over its limit", call: withOpen(func(r *casev1.OpenCaseRequest) { r.Client.GivenName = strings.Repeat("é", 101) }),
			code: codes.InvalidArgument, fields: []string{"client.given_name"}},
		{name: "unknown initiator", call: withOpen(func(r *casev1.OpenCaseRequest) { r.InitiatedBy = 99 }),
			code: codes.InvalidArgument, fields: []string{"initiated_by"}},
		{name: "question of another context", call: withOpen(func(r *casev1.OpenCaseRequest) {
			r.OrganisationalContext = casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_GROWTH
			r.OrganisationalQuestion = casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT
		}), code: codes.InvalidArgument, fields: []string{"organisational_question"}},
		{name: "client too young", call: withOpen(func(r *casev1.OpenCaseRequest) { r.BirthYear = 2020 }),
			code: codes.InvalidArgument, fields: []string{"birth_year"}},
		{name: "organisation ID in capitals", call: withOpen(func(r *casev1.OpenCaseRequest) { r.OrganisationId = "ACME" }),
			code: codes.InvalidArgument, fields: []string{"organisation_id"}},
		{name: "session of zero minutes", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.DurationMinutes = 0 }),
			code: codes.InvalidArgument, fields: []string{"duration_minutes"}},
		{name: "notes over their limit", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.Notes = strings.Repeat("n", 10_001) }),
			code: codes.InvalidArgument, fields: []string{"notes"}},
		{name: "notes with a control character", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.Notes = "bel \a terug" }),
			code: codes.InvalidArgument, fields: []string{"notes"}},
		{name: "30 February", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.HeldOn = day(2025, 2, 30) }),
			code: codes.InvalidArgument, fields: []string{"held_on"}},
		{name: "unknown session kind", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.Kind = 42 }),
			code: codes.InvalidArgument, fields: []string{"kind"}},
		{name: "review before the agreement", stream: s.open, call: plan(func(r *casev1.AgreeDevelopmentPlanRequest) { r.ReviewOn = day(2025, 2, 1) }),
			code: codes.InvalidArgument, fields: []string{"review_on"}},
		{name: "eleven goals", stream: s.open, call: plan(func(r *casev1.AgreeDevelopmentPlanRequest) {
			for range 10 {
				r.Goals = append(r.Goals, &casev1.DevelopmentGoal{Description: "nog een doel"})
			}
		}), code: codes.InvalidArgument, fields: []string{"goals"}},
		{name: "goal without a description", stream: s.open, call: plan(func(r *casev1.AgreeDevelopmentPlanRequest) { r.Goals[0].Description = "" }),
			code: codes.InvalidArgument, fields: []string{"goals[0].description"}},
		{name: "load capacity over 100 percent", stream: s.reint, call: checkpoint(func(r *casev1.RecordCheckpointRequest) {
			r.LoadCapacity = &casev1.LoadCapacity{Percent: 101, HoursPerWeek: 20}
		}), code: codes.InvalidArgument, fields: []string{"load_capacity.percent"}},
		{name: "61 hours a week", stream: s.reint, call: checkpoint(func(r *casev1.RecordCheckpointRequest) {
			r.LoadCapacity = &casev1.LoadCapacity{Percent: 100, HoursPerWeek: 61}
		}), code: codes.InvalidArgument, fields: []string{"load_capacity.hours_per_week"}},
		{name: "decision on a checkpoint that takes none", stream: s.reint, call: checkpoint(func(r *casev1.RecordCheckpointRequest) {
			r.SecondTrackDecision = casev1.SecondTrackDecision_SECOND_TRACK_DECISION_START
		}), code: codes.InvalidArgument, fields: []string{"second_track_decision"}},
		{name: "repeated scope", stream: s.open, call: consent(casev1.ReportingScope_REPORTING_SCOPE_PROGRESS, casev1.ReportingScope_REPORTING_SCOPE_PROGRESS),
			code: codes.InvalidArgument, fields: []string{"scopes[1]"}},
		{name: "unknown scope", stream: s.open, call: consent(77),
			code: codes.InvalidArgument, fields: []string{"scopes[0]"}},
		{name: "no scope", stream: s.open, call: consent(),
			code: codes.InvalidArgument, fields: []string{"scopes"}},
		{name: "unassignment reason Koers keeps to itself", stream: s.reint, call: func(ctx context.Context) error {
			_, err := c.UnassignAgency(ctx, &casev1.UnassignAgencyRequest{CaseId: s.reint, RequestId: "unassign", AgencyId: "bureau",
				Reason: casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CASE_CLOSED})
			return err
		}, code: codes.InvalidArgument, fields: []string{"reason"}},
		{name: "mobility score 6", stream: s.reint, call: func(ctx context.Context) error {
			_, err := c.CompleteIntake(ctx, &casev1.CompleteIntakeRequest{CaseId: s.reint, RequestId: "intake-6", HeldOn: day(2025, 2, 1),
				QuestionType: casev1.QuestionType_QUESTION_TYPE_LIFE, Answers: &casev1.IntakeAnswers{}, MobilityWillingness: 6})
			return err
		}, code: codes.InvalidArgument, fields: []string{"mobility_willingness"}},
		{name: "request ID reused for another command", stream: s.open, call: func(ctx context.Context) error {
			_, err := c.AssignCoach(ctx, &casev1.AssignCoachRequest{CaseId: s.open, RequestId: s.session, CoachId: "coach-bram"})
			return err
		}, code: codes.InvalidArgument, fields: []string{"request_id"}},
		{name: "request ID reused with other fields", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) {
			r.RequestId = s.session
			r.DurationMinutes = 61
		}), code: codes.InvalidArgument, fields: []string{"request_id"}},
		{name: "GetCase of a malformed ID", call: func(ctx context.Context) error {
			_, err := c.GetCase(ctx, &casev1.GetCaseRequest{CaseId: "case-1"})
			return err
		}, code: codes.InvalidArgument, fields: []string{"case_id"}},

		// The case's state: FAILED_PRECONDITION naming the rule.
		{name: "second intake", stream: s.open, call: func(ctx context.Context) error {
			_, err := c.CompleteIntake(ctx, &casev1.CompleteIntakeRequest{CaseId: s.open, RequestId: "intake-2", HeldOn: day(2025, 2, 2),
				QuestionType: casev1.QuestionType_QUESTION_TYPE_LIFE, Answers: &casev1.IntakeAnswers{}})
			return err
		}, code: codes.FailedPrecondition, reason: "INTAKE_ALREADY_COMPLETED"},
		{name: "reclassification to the same type", stream: s.open, call: func(ctx context.Context) error {
			_, err := c.ReclassifyQuestion(ctx, &casev1.ReclassifyQuestionRequest{CaseId: s.open, RequestId: "same",
				To: casev1.QuestionType_QUESTION_TYPE_COMPETENCE, Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_INTAKE_MISJUDGED})
			return err
		}, code: codes.FailedPrecondition, reason: "QUESTION_TYPE_UNCHANGED"},
		{name: "phase without an outplacement", stream: s.open, call: func(ctx context.Context) error {
			_, err := c.EnterOutplacementPhase(ctx, &casev1.EnterOutplacementPhaseRequest{CaseId: s.open, RequestId: "phase",
				Phase: casev1.OutplacementPhase_OUTPLACEMENT_PHASE_ORIENTATION, EnteredOn: day(2025, 3, 1)})
			return err
		}, code: codes.FailedPrecondition, reason: "OUTPLACEMENT_NOT_RUNNING"},
		{name: "checkpoint before the sick report", stream: s.reint, call: checkpoint(func(r *casev1.RecordCheckpointRequest) { r.HeldOn = day(2025, 1, 5) }),
			code: codes.FailedPrecondition, reason: "CHECKPOINT_BEFORE_SICK_REPORT"},
		{name: "agency without consent", stream: s.reint, call: func(ctx context.Context) error {
			_, err := c.AssignAgency(ctx, &casev1.AssignAgencyRequest{CaseId: s.reint, RequestId: "agency", AgencyId: "bureau"})
			return err
		}, code: codes.FailedPrecondition, reason: "AGENCY_CONSENT_MISSING"},
		{name: "second track before it is due", stream: s.reint, call: func(ctx context.Context) error {
			_, err := c.StartSecondTrack(ctx, &casev1.StartSecondTrackRequest{CaseId: s.reint, RequestId: "second", StartedOn: day(2025, 3, 1)})
			return err
		}, code: codes.FailedPrecondition, reason: "SECOND_TRACK_NOT_DUE"},
		{name: "session on a closed case", stream: s.closed, call: func(ctx context.Context) error {
			_, err := c.RecordSession(ctx, session(s.closed, "late-session"))
			return err
		}, code: codes.FailedPrecondition, reason: "CASE_CLOSED"},
		{name: "reopening an open case", stream: s.open, call: func(ctx context.Context) error {
			_, err := c.ReopenCase(ctx, &casev1.ReopenCaseRequest{CaseId: s.open, RequestId: "reopen", ReopenedOn: day(2025, 3, 1),
				Reason: casev1.ReopenReason_REOPEN_REASON_CLIENT_RETURNED})
			return err
		}, code: codes.FailedPrecondition, reason: "CASE_NOT_CLOSED"},
		{name: "erasure for retention of an open case", stream: s.open, call: func(ctx context.Context) error {
			_, err := c.EraseClientData(ctx, &casev1.EraseClientDataRequest{CaseId: s.open, RequestId: "erase",
				Reason: casev1.ErasureReason_ERASURE_REASON_RETENTION_EXPIRED})
			return err
		}, code: codes.FailedPrecondition, reason: "CASE_NOT_CLOSED"},

		// Existence and tenancy.
		{name: "unknown case", call: withSession(func(r *casev1.RecordSessionRequest) { r.CaseId = uuid.NewString() }),
			code: codes.NotFound, reason: "CASE_NOT_OPENED"},
		{name: "another tenant's case", stream: s.open, ctx: as("other-tenant", "coach-x"), call: withSession(func(*casev1.RecordSessionRequest) {}),
			code: codes.NotFound, reason: "CASE_NOT_OPENED"},
		{name: "GetCase of another tenant's case", stream: s.open, ctx: as("other-tenant", "coach-x"), call: func(ctx context.Context) error {
			_, err := c.GetCase(ctx, &casev1.GetCaseRequest{CaseId: s.open})
			return err
		}, code: codes.NotFound, reason: "CASE_NOT_OPENED"},
		{name: "opening an opened case", stream: s.open, call: func(ctx context.Context) error {
			_, err := c.OpenCase(ctx, openRequest(s.open, "open-again"))
			return err
		}, code: codes.AlreadyExists, reason: "CASE_ALREADY_OPENED"},
		{name: "opening another tenant's case ID", stream: s.open, ctx: as("other-tenant", "coach-x"), call: func(ctx context.Context) error {
			_, err := c.OpenCase(ctx, openRequest(s.open, "open-elsewhere"))
			return err
		}, code: codes.AlreadyExists, reason: "CASE_ALREADY_OPENED"},

		// Who calls, and how much.
		{name: "no token", stream: s.open, ctx: noToken, call: withSession(func(*casev1.RecordSessionRequest) {}),
			code: codes.Unauthenticated},
		{name: "token of an issuer Koers does not trust", stream: s.open, ctx: forgedToken, call: withSession(func(*casev1.RecordSessionRequest) {}),
			code: codes.Unauthenticated},
		{name: "request over 256 KiB", stream: s.open, call: withSession(func(r *casev1.RecordSessionRequest) { r.Notes = strings.Repeat("x", 300<<10) }),
			code: codes.ResourceExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctx
			if tt.ctx != nil {
				ctx = tt.ctx
			}
			head := s.tn.head()
			var before int
			if tt.stream != "" {
				before = len(s.tn.events(tt.stream))
			}
			err := tt.call(ctx)
			code, fields, reason := statusOf(err)
			if code != tt.code {
				t.Fatalf("code %s, want %s (%v)", code, tt.code, err)
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("field violations (-want +got):\n%s\n(%v)", diff, err)
			}
			if reason != tt.reason {
				t.Errorf("reason %q, want %q (%v)", reason, tt.reason, err)
			}
			if got := s.tn.head(); got != head {
				t.Errorf("store head moved from %d to %d", head, got)
			}
			if tt.stream != "" {
				if after := len(s.tn.events(tt.stream)); after != before {
					t.Errorf("case stream went from %d to %d events", before, after)
				}
			}
		})
	}
}
