package casesvc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/protobuf/testing/protocmp"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// walk drives one case through the API step by step, keeping each step's
// result.
type walk struct {
	t       *testing.T
	tn      *testNode
	ctx     context.Context
	tenant  string
	caseID  string
	results []*casev1.CommandResult
}

func newWalk(t *testing.T, tn *testNode, tenant string) *walk {
	return &walk{t: t, tn: tn, ctx: as(tenant, "coach-anna"), tenant: tenant, caseID: uuid.NewString()}
}

// step runs one command with a fresh request ID and checks that it
// succeeded on this case.
func step[R interface{ GetResult() *casev1.CommandResult }](w *walk, name string, call func(requestID string) (R, error)) *casev1.CommandResult {
	w.t.Helper()
	resp, err := call(fmt.Sprintf("req-%d", len(w.results)+1))
	if err != nil {
		w.t.Fatalf("%s: %v", name, err)
	}
	r := resp.GetResult()
	if r.GetCaseId() != w.caseID {
		w.t.Fatalf("%s: result for case %q, want %q", name, r.GetCaseId(), w.caseID)
	}
	w.results = append(w.results, r)
	return r
}

// check compares the stored events with the expected types, checks every
// step's result against the event it names, and waits for the events on
// JetStream.
func (w *walk) check(wantTypes ...string) *casev1.GetCaseResponse {
	w.t.Helper()
	events := w.tn.events(w.caseID)
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		w.t.Errorf("event types (-want +got):\n%s", diff)
	}
	prev := int64(-1)
	for i, r := range w.results {
		if int64(r.GetRevision()) <= prev || r.GetRevision() >= uint64(len(events)) {
			w.t.Fatalf("step %d: revision %d after %d, with %d events", i+1, r.GetRevision(), prev, len(events))
		}
		prev = int64(r.GetRevision())
		if got, want := r.GetPosition(), uint64(events[r.GetRevision()].Position); got != want {
			w.t.Errorf("step %d: position %d, but the event at revision %d is at %d", i+1, got, r.GetRevision(), want)
		}
	}
	if last := w.results[len(w.results)-1].GetRevision(); last != uint64(len(events)-1) {
		w.t.Errorf("last step at revision %d, stream ends at %d", last, len(events)-1)
	}
	w.tn.relayed(w.tenant, w.caseID, events)
	got, err := w.tn.client.GetCase(w.ctx, &casev1.GetCaseRequest{CaseId: w.caseID})
	if err != nil {
		w.t.Fatalf("GetCase: %v", err)
	}
	if n := len(got.GetHistory()); n != len(events) {
		w.t.Errorf("GetCase history has %d entries, the stream %d events", n, len(events))
	}
	for i, h := range got.GetHistory() {
		if h.GetEventType() != events[i].Type || h.GetPosition() != uint64(events[i].Position) || h.GetEventId() != events[i].ID.String() {
			w.t.Errorf("history entry %d is %s at %d (%s), the stream's %s at %d (%s)",
				i, h.GetEventType(), h.GetPosition(), h.GetEventId(), events[i].Type, events[i].Position, events[i].ID)
		}
		if h.GetEvent() == nil {
			w.t.Errorf("history entry %d (%s) has no event body", i, h.GetEventType())
		}
	}
	return got
}

// ignoreTimes leaves the history's moving parts out of a comparison.
var caseOpts = []cmp.Option{
	protocmp.Transform(),
	protocmp.IgnoreFields(&casev1.Case_Reintegration{}, "deadlines", "deadlines_as_of"),
}

func TestTrajectoryChoiceGuidanceReclassifiedAndReferred(t *testing.T) {
	tn := startNode(t, t.TempDir())
	w := newWalk(t, tn, "mobiliteit-noord")
	c := tn.client

	step(w, "open", func(rid string) (*casev1.OpenCaseResponse, error) {
		return c.OpenCase(w.ctx, &casev1.OpenCaseRequest{
			CaseId: w.caseID, RequestId: rid, ClientId: "client-0001",
			Client:      &casev1.ClientDetails{GivenName: "Sanne", FamilyName: "de Boer", Email: "sanne@example.nl"},
			BirthYear:   1994,
			InitiatedBy: casev1.Initiator_INITIATOR_CLIENT,
			OpenedOn:    day(2025, 3, 3),
			CoachId:     "coach-anna",
		})
	})
	step(w, "intake", func(rid string) (*casev1.CompleteIntakeResponse, error) {
		return c.CompleteIntake(w.ctx, &casev1.CompleteIntakeRequest{
			CaseId: w.caseID, RequestId: rid, HeldOn: day(2025, 3, 10),
			QuestionType:        casev1.QuestionType_QUESTION_TYPE_CHOICE,
			Answers:             &casev1.IntakeAnswers{ReasonForComing: "Weet niet wat ik wil studeren", WhoAmI: "Creatief"},
			MobilityWillingness: 4, MobilityCapacity: 3,
		})
	})
	step(w, "session", func(rid string) (*casev1.RecordSessionResponse, error) {
		return c.RecordSession(w.ctx, &casev1.RecordSessionRequest{
			CaseId: w.caseID, RequestId: rid, HeldOn: day(2025, 3, 17),
			Kind: casev1.SessionKind_SESSION_KIND_ASSESSMENT, DurationMinutes: 90,
			Notes: "Interessetest afgenomen; twijfel blijft groot.",
		})
	})
	step(w, "reclassify", func(rid string) (*casev1.ReclassifyQuestionResponse, error) {
		return c.ReclassifyQuestion(w.ctx, &casev1.ReclassifyQuestionRequest{
			CaseId: w.caseID, RequestId: rid,
			To:     casev1.QuestionType_QUESTION_TYPE_COUNSELING,
			Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_DISGUISED_QUESTION,
		})
	})
	step(w, "session", func(rid string) (*casev1.RecordSessionResponse, error) {
		return c.RecordSession(w.ctx, &casev1.RecordSessionRequest{
			CaseId: w.caseID, RequestId: rid, HeldOn: day(2025, 3, 31),
			Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60,
		})
	})
	step(w, "refer", func(rid string) (*casev1.ReferCaseResponse, error) {
		return c.ReferCase(w.ctx, &casev1.ReferCaseRequest{
			CaseId: w.caseID, RequestId: rid,
			Target:  casev1.ReferralTarget_REFERRAL_TARGET_OUTSIDE_PROFESSIONAL,
			Reason:  casev1.ReferralReason_REFERRAL_REASON_BEYOND_EXPERTISE,
			Details: "Doorverwezen naar psycholoog via de huisarts.",
		})
	})
	step(w, "close", func(rid string) (*casev1.CloseCaseResponse, error) {
		return c.CloseCase(w.ctx, &casev1.CloseCaseRequest{
			CaseId: w.caseID, RequestId: rid, ClosedOn: day(2025, 4, 2),
			Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_REFERRED,
		})
	})

	got := w.check(
		"koers.case.v1.CaseOpened", "koers.case.v1.CoachAssigned", "koers.case.v1.IntakeCompleted",
		"koers.case.v1.SessionRecorded", "koers.case.v1.QuestionReclassified", "koers.case.v1.SessionRecorded",
		"koers.case.v1.CaseReferred", "koers.case.v1.CaseClosed",
	)
	want := &casev1.Case{
		CaseId: w.caseID, Revision: 7, Position: w.results[6].GetPosition(),
		Stage:    casev1.Stage_STAGE_CLOSED,
		ClientId: "client-0001",
		Client: &casev1.PersonalData{Field: "client", Status: casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_AVAILABLE,
			Plaintext: &casev1.PersonalData_ClientDetails{ClientDetails: &casev1.ClientDetails{GivenName: "Sanne", FamilyName: "de Boer", Email: "sanne@example.nl"}}},
		BirthYear:   1994,
		InitiatedBy: casev1.Initiator_INITIATOR_CLIENT,
		OpenedOn:    day(2025, 3, 3),
		Intake: &casev1.Case_Intake{
			HeldOn: day(2025, 3, 10), QuestionType: casev1.QuestionType_QUESTION_TYPE_CHOICE,
			MobilityWillingness: 4, MobilityCapacity: 3,
			Answers: &casev1.PersonalData{Field: "answers", Status: casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_AVAILABLE,
				Plaintext: &casev1.PersonalData_IntakeAnswers{IntakeAnswers: &casev1.IntakeAnswers{ReasonForComing: "Weet niet wat ik wil studeren", WhoAmI: "Creatief"}}},
		},
		QuestionType: casev1.QuestionType_QUESTION_TYPE_COUNSELING,
		Reclassifications: []*casev1.Case_Reclassification{{
			From: casev1.QuestionType_QUESTION_TYPE_CHOICE, To: casev1.QuestionType_QUESTION_TYPE_COUNSELING,
			Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_DISGUISED_QUESTION,
		}},
		CoachId: "coach-anna",
		Referrals: []*casev1.Case_Referral{{
			Target: casev1.ReferralTarget_REFERRAL_TARGET_OUTSIDE_PROFESSIONAL,
			Reason: casev1.ReferralReason_REFERRAL_REASON_BEYOND_EXPERTISE,
		}},
		Sessions: &casev1.Case_Sessions{Count: 2, SinceIntake: 2, Minutes: 150, LastHeldOn: day(2025, 3, 31)},
		Closure:  &casev1.Case_Closure{Closed: true, ClosedOn: day(2025, 4, 2), Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_REFERRED},
	}
	if diff := cmp.Diff(want, got.GetCase(), caseOpts...); diff != "" {
		t.Errorf("case after the trajectory (-want +got):\n%s", diff)
	}
	referral := got.GetHistory()[6]
	if note := referral.GetPersonalData().GetNote().GetText(); note != "Doorverwezen naar psycholoog via de huisarts." {
		t.Errorf("referral details read back as %q", note)
	}
	if referral.GetCaseReferred().GetDetails() != nil {
		t.Error("the history entry still carries the sealed details")
	}
}

func TestTrajectoryOutplacementFromReorganisationToExternalPlacement(t *testing.T) {
	tn := startNode(t, t.TempDir())
	w := newWalk(t, tn, "loopbaan-zuid")
	c := tn.client

	step(w, "open", func(rid string) (*casev1.OpenCaseResponse, error) {
		return c.OpenCase(w.ctx, &casev1.OpenCaseRequest{
			CaseId: w.caseID, RequestId: rid, ClientId: "client-0042",
			Client:                 &casev1.ClientDetails{GivenName: "Henk", FamilyName: "Jansen"},
			BirthYear:              1968,
			InitiatedBy:            casev1.Initiator_INITIATOR_ORGANISATION,
			OrganisationId:         "acme-bv",
			Department:             "Logistiek",
			OrganisationalContext:  casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_REORGANISATION,
			OrganisationalQuestion: casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT,
			OrganisationalAims:     []casev1.OrganisationalAim{casev1.OrganisationalAim_ORGANISATIONAL_AIM_EMPLOYABILITY},
			OpenedOn:               day(2025, 1, 13),
		})
	})
	step(w, "coach", func(rid string) (*casev1.AssignCoachResponse, error) {
		return c.AssignCoach(w.ctx, &casev1.AssignCoachRequest{CaseId: w.caseID, RequestId: rid, CoachId: "coach-bram"})
	})
	step(w, "consent", func(rid string) (*casev1.GrantReportingConsentResponse, error) {
		return c.GrantReportingConsent(w.ctx, &casev1.GrantReportingConsentRequest{
			CaseId: w.caseID, RequestId: rid,
			Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER, Id: "acme-bv"},
			Scopes:    []casev1.ReportingScope{casev1.ReportingScope_REPORTING_SCOPE_PROGRESS, casev1.ReportingScope_REPORTING_SCOPE_OUTCOME},
		})
	})
	step(w, "intake", func(rid string) (*casev1.CompleteIntakeResponse, error) {
		return c.CompleteIntake(w.ctx, &casev1.CompleteIntakeRequest{
			CaseId: w.caseID, RequestId: rid, HeldOn: day(2025, 1, 20),
			QuestionType: casev1.QuestionType_QUESTION_TYPE_COMPETENCE,
			Answers:      &casev1.IntakeAnswers{ReasonForComing: "Functie vervalt door reorganisatie"},
		})
	})
	step(w, "start outplacement", func(rid string) (*casev1.StartOutplacementResponse, error) {
		return c.StartOutplacement(w.ctx, &casev1.StartOutplacementRequest{
			CaseId: w.caseID, RequestId: rid, StartedOn: day(2025, 2, 3), PlannedMonths: 6,
		})
	})
	for _, ph := range []struct {
		phase casev1.OutplacementPhase
		on    *casev1.Date
	}{
		{casev1.OutplacementPhase_OUTPLACEMENT_PHASE_ORIENTATION, day(2025, 2, 24)},
		{casev1.OutplacementPhase_OUTPLACEMENT_PHASE_MARKET_APPROACH, day(2025, 4, 7)},
	} {
		step(w, "phase", func(rid string) (*casev1.EnterOutplacementPhaseResponse, error) {
			return c.EnterOutplacementPhase(w.ctx, &casev1.EnterOutplacementPhaseRequest{
				CaseId: w.caseID, RequestId: rid, Phase: ph.phase, EnteredOn: ph.on,
			})
		})
	}
	step(w, "placement", func(rid string) (*casev1.RecordPlacementResponse, error) {
		return c.RecordPlacement(w.ctx, &casev1.RecordPlacementRequest{
			CaseId: w.caseID, RequestId: rid, Outcome: casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL, PlacedOn: day(2025, 6, 1),
		})
	})
	step(w, "aftercare", func(rid string) (*casev1.EnterOutplacementPhaseResponse, error) {
		return c.EnterOutplacementPhase(w.ctx, &casev1.EnterOutplacementPhaseRequest{
			CaseId: w.caseID, RequestId: rid, Phase: casev1.OutplacementPhase_OUTPLACEMENT_PHASE_AFTERCARE, EnteredOn: day(2025, 6, 2),
		})
	})
	step(w, "close", func(rid string) (*casev1.CloseCaseResponse, error) {
		return c.CloseCase(w.ctx, &casev1.CloseCaseRequest{
			CaseId: w.caseID, RequestId: rid, ClosedOn: day(2025, 8, 29),
			Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_OUTPLACEMENT_CONCLUDED,
		})
	})

	got := w.check(
		"koers.case.v1.CaseOpened", "koers.case.v1.CoachAssigned", "koers.case.v1.ReportingConsentGranted",
		"koers.case.v1.IntakeCompleted", "koers.case.v1.OutplacementStarted", "koers.case.v1.OutplacementPhaseEntered",
		"koers.case.v1.OutplacementPhaseEntered", "koers.case.v1.PlacementAchieved", "koers.case.v1.OutplacementPhaseEntered",
		"koers.case.v1.CaseClosed",
	)
	wantOut := &casev1.Case_Outplacement{
		StartedOn: day(2025, 2, 3), PlannedMonths: 6,
		Phase: casev1.OutplacementPhase_OUTPLACEMENT_PHASE_AFTERCARE, PhaseEnteredOn: day(2025, 6, 2),
		Outcome: casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL, PlacedOn: day(2025, 6, 1),
	}
	if diff := cmp.Diff(wantOut, got.GetCase().GetOutplacement(), protocmp.Transform()); diff != "" {
		t.Errorf("outplacement (-want +got):\n%s", diff)
	}
	wantConsents := []*casev1.Case_Consent{{
		Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER, Id: "acme-bv"},
		Scopes:    []casev1.ReportingScope{casev1.ReportingScope_REPORTING_SCOPE_PROGRESS, casev1.ReportingScope_REPORTING_SCOPE_OUTCOME},
	}}
	if diff := cmp.Diff(wantConsents, got.GetCase().GetConsents(), protocmp.Transform()); diff != "" {
		t.Errorf("consents (-want +got):\n%s", diff)
	}
	if st, ctx := got.GetCase().GetStage(), got.GetCase().GetOrganisationalContext(); st != casev1.Stage_STAGE_CLOSED ||
		ctx != casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_REORGANISATION || got.GetCase().GetCoachId() != "coach-bram" {
		t.Errorf("stage %s, context %s, coach %q", st, ctx, got.GetCase().GetCoachId())
	}
}

func TestTrajectoryReintegrationWithSecondTrack(t *testing.T) {
	tn := startNode(t, t.TempDir())
	w := newWalk(t, tn, "arbo-west")
	c := tn.client
	checkpoint := func(kind casev1.CheckpointKind, on *casev1.Date, load *casev1.LoadCapacity) {
		step(w, kind.String(), func(rid string) (*casev1.RecordCheckpointResponse, error) {
			return c.RecordCheckpoint(w.ctx, &casev1.RecordCheckpointRequest{
				CaseId: w.caseID, RequestId: rid, Kind: kind, HeldOn: on, LoadCapacity: load,
			})
		})
	}

	step(w, "open", func(rid string) (*casev1.OpenCaseResponse, error) {
		return c.OpenCase(w.ctx, &casev1.OpenCaseRequest{
			CaseId: w.caseID, RequestId: rid, ClientId: "client-7",
			Client:         &casev1.ClientDetails{GivenName: "Fatima", FamilyName: "El Amrani", Phone: "+31 6 1234 5678"},
			InitiatedBy:    casev1.Initiator_INITIATOR_ORGANISATION,
			OrganisationId: "bouwbedrijf-oost",
			OpenedOn:       day(2025, 1, 8),
			CoachId:        "coach-anna",
		})
	})
	step(w, "start reintegration", func(rid string) (*casev1.StartReintegrationResponse, error) {
		return c.StartReintegration(w.ctx, &casev1.StartReintegrationRequest{CaseId: w.caseID, RequestId: rid, SickReportedOn: day(2025, 1, 6)})
	})
	checkpoint(casev1.CheckpointKind_CHECKPOINT_KIND_OCCUPATIONAL_PHYSICIAN_REPORT, day(2025, 1, 9), nil)
	checkpoint(casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, day(2025, 2, 12),
		&casev1.LoadCapacity{Percent: 50, HoursPerWeek: 20, FunctionalCapabilityList: true})
	checkpoint(casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN, day(2025, 2, 26), nil)
	step(w, "consent", func(rid string) (*casev1.GrantReportingConsentResponse, error) {
		return c.GrantReportingConsent(w.ctx, &casev1.GrantReportingConsentRequest{
			CaseId: w.caseID, RequestId: rid,
			Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, Id: "reintegratie-noord"},
			Scopes:    []casev1.ReportingScope{casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION, casev1.ReportingScope_REPORTING_SCOPE_CONTACT_DETAILS},
		})
	})
	step(w, "agency", func(rid string) (*casev1.AssignAgencyResponse, error) {
		return c.AssignAgency(w.ctx, &casev1.AssignAgencyRequest{CaseId: w.caseID, RequestId: rid, AgencyId: "reintegratie-noord"})
	})
	checkpoint(casev1.CheckpointKind_CHECKPOINT_KIND_UWV_SICKNESS_REPORT, day(2025, 10, 20), nil)
	checkpoint(casev1.CheckpointKind_CHECKPOINT_KIND_FIRST_YEAR_EVALUATION, day(2025, 12, 1),
		&casev1.LoadCapacity{Percent: 30, HoursPerWeek: 12})
	step(w, "second track", func(rid string) (*casev1.StartSecondTrackResponse, error) {
		return c.StartSecondTrack(w.ctx, &casev1.StartSecondTrackRequest{CaseId: w.caseID, RequestId: rid, StartedOn: day(2025, 12, 15)})
	})
	step(w, "close", func(rid string) (*casev1.CloseCaseResponse, error) {
		return c.CloseCase(w.ctx, &casev1.CloseCaseRequest{
			CaseId: w.caseID, RequestId: rid, ClosedOn: day(2026, 5, 1),
			Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER, Summary: "Plaatsing bij een ander bedrijf.",
		})
	})

	got := w.check(
		"koers.case.v1.CaseOpened", "koers.case.v1.CoachAssigned", "koers.case.v1.ReintegrationStarted",
		"koers.case.v1.ReintegrationCheckpointRecorded", "koers.case.v1.ReintegrationCheckpointRecorded",
		"koers.case.v1.ReintegrationCheckpointRecorded", "koers.case.v1.ReportingConsentGranted",
		"koers.case.v1.ReintegrationAgencyAssigned", "koers.case.v1.ReintegrationCheckpointRecorded",
		"koers.case.v1.ReintegrationCheckpointRecorded", "koers.case.v1.ReintegrationCheckpointRecorded",
		"koers.case.v1.SecondTrackStarted", "koers.case.v1.CaseClosed", "koers.case.v1.ReintegrationAgencyUnassigned",
	)
	r := got.GetCase().GetReintegration()
	if r.GetTrack() != casev1.ReintegrationTrack_REINTEGRATION_TRACK_SECOND || r.GetRunning() || r.GetAgencyId() != "" {
		t.Errorf("re-integration: track %s, running %t, agency %q; want SECOND, ended, none", r.GetTrack(), r.GetRunning(), r.GetAgencyId())
	}
	if diff := cmp.Diff(&casev1.LoadCapacity{Percent: 30, HoursPerWeek: 12}, r.GetLoadCapacity(), protocmp.Transform()); diff != "" {
		t.Errorf("latest load capacity (-want +got):\n%s", diff)
	}
	decision := r.GetCheckpoints()[len(r.GetCheckpoints())-1]
	if decision.GetKind() != casev1.CheckpointKind_CHECKPOINT_KIND_SECOND_TRACK_DECISION ||
		decision.GetSecondTrackDecision() != casev1.SecondTrackDecision_SECOND_TRACK_DECISION_START {
		t.Errorf("last checkpoint %s/%s; want the decision to start the second track", decision.GetKind(), decision.GetSecondTrackDecision())
	}
	done := map[casev1.CheckpointKind]casev1.DeadlineStatus{}
	for _, d := range r.GetDeadlines() {
		done[d.GetKind()] = d.GetStatus()
	}
	for _, kind := range []casev1.CheckpointKind{
		casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS,
		casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN,
		casev1.CheckpointKind_CHECKPOINT_KIND_FIRST_YEAR_EVALUATION,
	} {
		if done[kind] != casev1.DeadlineStatus_DEADLINE_STATUS_DONE_ON_TIME {
			t.Errorf("deadline %s is %s, want done on time", kind, done[kind])
		}
	}
	summary := got.GetHistory()[12].GetPersonalData()
	if summary.GetField() != "summary" || summary.GetNote().GetText() != "Plaatsing bij een ander bedrijf." {
		t.Errorf("closing summary read back as %v", summary)
	}
	if phone := got.GetCase().GetClient().GetClientDetails().GetPhone(); phone != "+31 6 1234 5678" {
		t.Errorf("client's phone read back as %q", phone)
	}
}
