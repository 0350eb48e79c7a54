package casesvc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

func TestConcurrentCommandsOnOneCaseEndCleanly(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := as(tenant, "coach-anna")
	caseID := uuid.NewString()
	c := tn.client
	if _, err := c.OpenCase(ctx, openRequest(caseID, "open")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteIntake(ctx, &casev1.CompleteIntakeRequest{CaseId: caseID, RequestId: "intake", HeldOn: day(2025, 2, 1),
		QuestionType: casev1.QuestionType_QUESTION_TYPE_CHOICE, Answers: &casev1.IntakeAnswers{}}); err != nil {
		t.Fatal(err)
	}

	// A mix that races for the same case: sessions always fit until the
	// close, coaches and consents may already be what they ask, one plan
	// only, one close.
	const n = 32
	commands := make([]func(ctx context.Context, rid string) (*casev1.CommandResult, error), n)
	for i := range n {
		switch i % 8 {
		case 0, 1, 2:
			commands[i] = func(ctx context.Context, rid string) (*casev1.CommandResult, error) {
				r, err := c.RecordSession(ctx, &casev1.RecordSessionRequest{CaseId: caseID, RequestId: rid, HeldOn: day(2025, 2, int32(2+i%20)),
					Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: uint32(30 + i), Notes: fmt.Sprintf("sessie %d", i)})
				return r.GetResult(), err
			}
		case 3:
			commands[i] = func(ctx context.Context, rid string) (*casev1.CommandResult, error) {
				r, err := c.AssignCoach(ctx, &casev1.AssignCoachRequest{CaseId: caseID, RequestId: rid, CoachId: fmt.Sprintf("coach-%d", i%3)})
				return r.GetResult(), err
			}
		case 4:
			commands[i] = func(ctx context.Context, rid string) (*casev1.CommandResult, error) {
				r, err := c.GrantReportingConsent(ctx, &casev1.GrantReportingConsentRequest{CaseId: caseID, RequestId: rid,
					Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER, Id: "acme-bv"},
					Scopes:    []casev1.ReportingScope{casev1.ReportingScope(1 + i%3)}})
				return r.GetResult(), err
			}
		case 5:
			commands[i] = func(ctx context.Context, rid string) (*casev1.CommandResult, error) {
				r, err := c.AgreeDevelopmentPlan(ctx, &casev1.AgreeDevelopmentPlanRequest{CaseId: caseID, RequestId: rid,
					AgreedOn: day(2025, 3, 1), ReviewOn: day(2025, 6, 1), Goals: []*casev1.DevelopmentGoal{{Description: fmt.Sprintf("doel %d", i)}}})
				return r.GetResult(), err
			}
		case 6:
			commands[i] = func(ctx context.Context, rid string) (*casev1.CommandResult, error) {
				r, err := c.ReclassifyQuestion(ctx, &casev1.ReclassifyQuestionRequest{CaseId: caseID, RequestId: rid,
					To: casev1.QuestionType(2 + i%3), Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_CIRCUMSTANCES_CHANGED})
				return r.GetResult(), err
			}
		case 7:
			commands[i] = func(ctx context.Context, rid string) (*casev1.CommandResult, error) {
				if i != 31 {
					r, err := c.StartOutplacement(ctx, &casev1.StartOutplacementRequest{CaseId: caseID, RequestId: rid, StartedOn: day(2025, 4, 1)})
					return r.GetResult(), err
				}
				r, err := c.CloseCase(ctx, &casev1.CloseCaseRequest{CaseId: caseID, RequestId: rid, ClosedOn: day(2025, 5, 1),
					Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_CLIENT_WITHDREW})
				return r.GetResult(), err
			}
		}
	}

	results := make([]*casev1.CommandResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = commands[i](ctx, fmt.Sprintf("race-%d", i))
		})
	}
	close(start)
	wg.Wait()

	succeeded := map[string]*casev1.CommandResult{}
	outcomes := map[codes.Code]int{}
	for i, err := range errs {
		code, _, reason := statusOf(err)
		outcomes[code]++
		switch code {
		case codes.OK:
			succeeded[fmt.Sprintf("race-%d", i)] = results[i]
		case codes.Aborted:
			if reason != "CONCURRENCY_CONFLICT" {
				t.Errorf("command %d aborted with reason %q", i, reason)
			}
		case codes.FailedPrecondition:
			if reason == "" {
				t.Errorf("command %d failed without a reason: %v", i, err)
			}
		default:
			t.Errorf("command %d ended in %s: %v", i, code, err)
		}
	}
	t.Logf("outcomes of %d concurrent commands: %v", n, outcomes)
	if len(succeeded) == 0 {
		t.Fatal("no command succeeded")
	}

	// The stream: dense revisions, each successful command's events where
	// its result says, nothing of a failed one, and a history that replays
	// into a state the successes explain.
	events := tn.events(caseID)
	var history []proto.Message
	applied := map[string]uint64{} // request ID → last revision
	for i, ev := range events {
		if ev.Revision != uint64(i) {
			t.Fatalf("event %d has revision %d", i, ev.Revision)
		}
		meta := new(eventv1.Metadata)
		if err := proto.Unmarshal(ev.Metadata, meta); err != nil {
			t.Fatal(err)
		}
		applied[meta.GetRequestId()] = ev.Revision
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(ev.Type))
		if err != nil {
			t.Fatal(err)
		}
		body := mt.New().Interface()
		if err := proto.Unmarshal(ev.Data, body); err != nil {
			t.Fatal(err)
		}
		history = append(history, body)
	}
	for rid, r := range succeeded {
		rev, ok := applied[rid]
		if !ok {
			t.Errorf("%s succeeded but wrote nothing", rid)
			continue
		}
		if rev != r.GetRevision() || uint64(events[rev].Position) != r.GetPosition() {
			t.Errorf("%s: result %d@%d, stream has its last event %d@%d", rid, r.GetRevision(), r.GetPosition(), rev, events[rev].Position)
		}
	}
	for rid := range applied {
		if _, ok := succeeded[rid]; !ok && rid != "open" && rid != "intake" {
			t.Errorf("%s did not succeed but its events are in the stream", rid)
		}
	}
	checkReplays(t, history)
}

// checkReplays folds the history event by event and checks invariants a
// coach relies on at every step.
func checkReplays(t *testing.T, history []proto.Message) {
	t.Helper()
	var s casework.State
	sessions, plans, outplacements := 0, 0, 0
	for i, e := range history {
		if s.Closure.Closed {
			if _, ok := e.(*casev1.ReintegrationAgencyUnassigned); !ok {
				t.Errorf("event %d (%T) follows the close", i, e)
			}
		}
		switch e := e.(type) {
		case *casev1.SessionRecorded:
			sessions++
		case *casev1.DevelopmentPlanAgreed:
			plans++
		case *casev1.OutplacementStarted:
			outplacements++
		case *casev1.QuestionReclassified:
			if e.GetFrom() != s.QuestionType || e.GetTo() == e.GetFrom() {
				t.Errorf("event %d reclassifies %s→%s while the question is %s", i, e.GetFrom(), e.GetTo(), s.QuestionType)
			}
		case *casev1.CoachAssigned:
			if e.GetCoachId() == s.CoachID {
				t.Errorf("event %d assigns coach %q who already owns the case", i, s.CoachID)
			}
		}
		s = casework.Evolve(s, e)
	}
	if plans > 1 || outplacements > 1 {
		t.Errorf("%d plans and %d outplacements agreed; a case has at most one of each", plans, outplacements)
	}
	if s.Sessions.Count != sessions {
		t.Errorf("state counts %d sessions, history holds %d", s.Sessions.Count, sessions)
	}
	if s.Stage == casev1.Stage_STAGE_UNSPECIFIED {
		t.Error("history replays into a case that was never opened")
	}
}
