package casesvc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/koers-io/koers/eventstore"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

func TestRetriedRequestReturnsTheOriginalResultAndWritesNothing(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := as(tenant, "coach-anna")
	caseID := uuid.NewString()

	opened, err := tn.client.OpenCase(ctx, openRequest(caseID, "open-1"))
	if err != nil {
		t.Fatal(err)
	}
	sessionReq := session(caseID, "session-1")
	sessionReq.Notes = "Eerste gesprek."
	first, err := tn.client.RecordSession(ctx, sessionReq)
	if err != nil {
		t.Fatal(err)
	}
	// Another command in between: the retry must still get its own result,
	// not the case's latest.
	coach, err := tn.client.AssignCoach(ctx, &casev1.AssignCoachRequest{CaseId: caseID, RequestId: "coach-1", CoachId: "coach-bram"})
	if err != nil {
		t.Fatal(err)
	}
	derived, err := tn.client.OpenCase(ctx, openRequest("", "open-derived"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(derived.GetResult().GetCaseId()); err != nil {
		t.Fatalf("derived case ID %q: %v", derived.GetResult().GetCaseId(), err)
	}

	retryAll := func(tn *testNode, when string) {
		t.Helper()
		head := tn.head()
		events := len(tn.events(caseID))
		again, err := tn.client.RecordSession(ctx, sessionReq)
		if err != nil {
			t.Fatalf("%s: retried session: %v", when, err)
		}
		if diff := cmp.Diff(first, again, protocmp.Transform()); diff != "" {
			t.Errorf("%s: retried session (-original +retry):\n%s", when, diff)
		}
		// Personal fields are not compared (they must leave no trace in the
		// IDs): other notes under the same request ID are still the retry.
		otherNotes := proto.CloneOf(sessionReq)
		otherNotes.Notes = "Iets anders."
		if again, err = tn.client.RecordSession(ctx, otherNotes); err != nil || again.GetResult().GetPosition() != first.GetResult().GetPosition() {
			t.Errorf("%s: retried session with other notes: %v, %v", when, again, err)
		}
		reopened, err := tn.client.OpenCase(ctx, openRequest(caseID, "open-1"))
		if err != nil {
			t.Fatalf("%s: retried open: %v", when, err)
		}
		if diff := cmp.Diff(opened, reopened, protocmp.Transform()); diff != "" {
			t.Errorf("%s: retried open (-original +retry):\n%s", when, diff)
		}
		rederived, err := tn.client.OpenCase(ctx, openRequest("", "open-derived"))
		if err != nil {
			t.Fatalf("%s: retried open without case ID: %v", when, err)
		}
		if diff := cmp.Diff(derived, rederived, protocmp.Transform()); diff != "" {
			t.Errorf("%s: retried open without case ID (-original +retry):\n%s", when, diff)
		}
		if got := tn.head(); got != head {
			t.Errorf("%s: retries moved the store head from %d to %d", when, head, got)
		}
		if got := len(tn.events(caseID)); got != events {
			t.Errorf("%s: retries changed the case from %d to %d events", when, events, got)
		}
	}
	retryAll(tn, "running")
	if first.GetResult().GetRevision() >= coach.GetResult().GetRevision() {
		t.Fatalf("session at revision %d, coach at %d", first.GetResult().GetRevision(), coach.GetResult().GetRevision())
	}

	tn = tn.restart()
	retryAll(tn, "after a restart")
}

func TestConcurrentDuplicatesWriteOnce(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := as(tenant, "coach-anna")
	caseID := uuid.NewString()
	if _, err := tn.client.OpenCase(ctx, openRequest(caseID, "open")); err != nil {
		t.Fatal(err)
	}
	before := len(tn.events(caseID))
	const copies = 8
	results := make([]*casev1.RecordSessionResponse, copies)
	errs := make([]error, copies)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Go(func() { results[i], errs[i] = tn.client.RecordSession(ctx, session(caseID, "same-request")) })
	}
	wg.Wait()
	for i := range copies {
		if errs[i] != nil {
			t.Fatalf("copy %d: %v", i, errs[i])
		}
		if diff := cmp.Diff(results[0], results[i], protocmp.Transform()); diff != "" {
			t.Errorf("copy %d answered otherwise than copy 0 (-0 +%d):\n%s", i, i, diff)
		}
	}
	if got := len(tn.events(caseID)); got != before+1 {
		t.Errorf("%d copies of one request wrote %d events, want 1", copies, got-before)
	}
}

// TestCasesChangedBehindTheServiceAreDecidedOnTheirLatestState appends to
// a case directly in the store, as another Koers process sharing a
// clustered store would, behind the service's cached copy of the case.
func TestCasesChangedBehindTheServiceAreDecidedOnTheirLatestState(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := as(tenant, "coach-anna")
	caseID := uuid.NewString()
	if _, err := tn.client.OpenCase(ctx, openRequest(caseID, "open")); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.client.RecordSession(ctx, session(caseID, "cached")); err != nil {
		t.Fatal(err) // the service now holds the case in its cache
	}
	behind := func(rev uint64, event proto.Message) {
		t.Helper()
		body, _ := proto.Marshal(event)
		meta, _ := proto.Marshal(&eventv1.Metadata{TenantId: tenant, CaseId: caseID, RequestId: "elsewhere-" + fmt.Sprint(rev), SchemaVersion: 1})
		if _, err := tn.node.Store().Append(context.Background(), "case-"+caseID, eventstore.Exact(rev), eventstore.EventData{
			ID: uuid.New(), Type: string(event.ProtoReflect().Descriptor().FullName()), Data: body, Metadata: meta,
		}); err != nil {
			t.Fatal(err)
		}
	}

	// Closed behind the service: the cached copy says open, the store wins.
	behind(1, &casev1.CaseClosed{Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_CLIENT_WITHDREW, ClosedOn: day(2025, 3, 1)})
	_, err := tn.client.RecordSession(ctx, session(caseID, "after-close"))
	if code, _, reason := statusOf(err); code != codes.FailedPrecondition || reason != "CASE_CLOSED" {
		t.Errorf("session on a case closed behind the service: %s %s, want FAILED_PRECONDITION CASE_CLOSED", code, reason)
	}
	// Reopened behind the service: the cached copy says closed, and a
	// refusal on a cached copy is checked against the store.
	behind(2, &casev1.CaseReopened{ReopenedOn: day(2025, 3, 2), Reason: casev1.ReopenReason_REOPEN_REASON_CLOSED_IN_ERROR})
	r, err := tn.client.RecordSession(ctx, session(caseID, "after-reopen"))
	if err != nil {
		t.Fatalf("session on a case reopened behind the service: %v", err)
	}
	if r.GetResult().GetRevision() != 4 {
		t.Errorf("session landed at revision %d, want 4, after the two events appended behind the service", r.GetResult().GetRevision())
	}
}
