package casework

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// decideAll runs the commands one after another on a new case, as the
// command service would, and returns the state and every event decided.
func decideAll(t *testing.T, cmds ...Command) (State, []proto.Message) {
	t.Helper()
	var s State
	var all []proto.Message
	for i, c := range cmds {
		evs, err := Decide(s, c)
		if err != nil {
			t.Fatalf("command %d (%T): %v", i, c, err)
		}
		for _, e := range evs {
			s = Evolve(s, e)
		}
		all = append(all, evs...)
	}
	return s, all
}

// assertTrajectory checks the state the commands left, that replaying their
// events gives the same state, and the order of event types.
func assertTrajectory(t *testing.T, got State, history []proto.Message, want State, wantTypes []string) {
	t.Helper()
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(got, Replay(history), protocmp.Transform()); diff != "" {
		t.Errorf("replayed state differs from the decided one (-decided +replayed):\n%s", diff)
	}
	var types []string
	for _, e := range history {
		types = append(types, string(e.ProtoReflect().Descriptor().Name()))
	}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("event types (-want +got):\n%s", diff)
	}
}

func TestReplayChoiceGuidanceReclassifiedAndReferred(t *testing.T) {
	opened, intake := Date{2025, time.March, 3}, Date{2025, time.March, 10}
	got, history := decideAll(t,
		OpenCase{ClientID: "client-1", Client: sealed(clientKey), BirthYear: 1998, InitiatedBy: byClient, OpenedOn: opened, CoachID: "coach-a"},
		CompleteIntake{HeldOn: intake, QuestionType: choice, Answers: sealed(clientKey), WarningSignals: []casev1.WarningSignal{anxiety}, MobilityWillingness: 4, MobilityCapacity: 2},
		RecordSession{HeldOn: intake.AddDays(7), Kind: assessmentKind, DurationMinutes: 90},
		RecordSession{HeldOn: intake.AddDays(14), Kind: coachingKind, DurationMinutes: 60, Notes: sealed(clientKey)},
		AgreeDevelopmentPlan{AgreedOn: intake.AddDays(14), ReviewOn: intake.AddDays(42), Goals: sealed(clientKey)},
		ReclassifyQuestion{To: counseling, Reason: disguised, Explanation: sealed(clientKey)},
		ReferCase{Target: toColleague, ColleagueCoachID: "coach-b", Reason: beyondExpertise},
		RecordSession{HeldOn: intake.AddDays(28), Kind: coachingKind, DurationMinutes: 75},
		ReviseDevelopmentPlan{RevisedOn: intake.AddDays(42), ReviewOn: intake.AddDays(84), Goals: sealed(clientKey)},
		CloseCase{ClosedOn: intake.AddDays(90), Outcome: goalAchieved},
	)
	want := State{
		Stage:    casev1.Stage_STAGE_CLOSED,
		ClientID: "client-1", Client: sealed(clientKey), ClientKeyID: clientKey, BirthYear: 1998, InitiatedBy: byClient,
		OpenedOn: opened,
		Intake: Intake{Completed: true, HeldOn: intake, QuestionType: choice,
			WarningSignals: []casev1.WarningSignal{anxiety}, MobilityWillingness: 4, MobilityCapacity: 2},
		QuestionType:      counseling,
		Reclassifications: []Reclassification{{From: choice, To: counseling, Reason: disguised}},
		CoachID:           "coach-b",
		Referrals:         []Referral{{Target: toColleague, ColleagueCoachID: "coach-b", Reason: beyondExpertise}},
		Sessions:          Sessions{Count: 3, SinceIntake: 3, Minutes: 225, LastHeldOn: intake.AddDays(28)},
		Plan: DevelopmentPlan{Agreed: true, AgreedOn: intake.AddDays(14), RevisedOn: intake.AddDays(42),
			ReviewOn: intake.AddDays(84), Revisions: 1},
		Closure: Closure{Closed: true, ClosedOn: intake.AddDays(90), Outcome: goalAchieved},
	}
	assertTrajectory(t, got, history, want, []string{
		"CaseOpened", "CoachAssigned", "IntakeCompleted", "SessionRecorded", "SessionRecorded",
		"DevelopmentPlanAgreed", "QuestionReclassified", "CaseReferred", "CoachAssigned", "SessionRecorded",
		"DevelopmentPlanRevised", "CaseClosed",
	})
}

func TestReplayOutplacementFromReorganisationToExternalPlacement(t *testing.T) {
	opened, start := Date{2025, time.February, 3}, Date{2025, time.February, 17}
	acme := employerOf("acme")
	got, history := decideAll(t,
		OpenCase{ClientID: "client-2", Client: sealed(clientKey), BirthYear: 1968, InitiatedBy: byOrganisation,
			OrganisationID: "acme", Department: "Logistics", Context: reorganisation, Question: outplacementQ, OpenedOn: opened, CoachID: "coach-c"},
		CompleteIntake{HeldOn: opened.AddDays(7), QuestionType: choice, Answers: sealed(clientKey), MobilityWillingness: 3, MobilityCapacity: 3},
		GrantReportingConsent{Recipient: acme, Scopes: []casev1.ReportingScope{scopeProgress, scopeOutcome}},
		StartOutplacement{StartedOn: start, PlannedMonths: 6},
		EnterOutplacementPhase{Phase: orientation, EnteredOn: start.AddDays(21)},
		EnterOutplacementPhase{Phase: development, EnteredOn: start.AddDays(56)},
		EnterOutplacementPhase{Phase: marketApproach, EnteredOn: start.AddDays(91)},
		RecordPlacement{Outcome: external, PlacedOn: start.AddDays(150)},
		EnterOutplacementPhase{Phase: phaseAftercare, EnteredOn: start.AddDays(151)},
		CloseCase{ClosedOn: start.AddDays(200), Outcome: concluded},
	)
	want := State{
		Stage:    casev1.Stage_STAGE_CLOSED,
		ClientID: "client-2", Client: sealed(clientKey), ClientKeyID: clientKey, BirthYear: 1968, InitiatedBy: byOrganisation,
		OrganisationID: "acme", Department: "Logistics", Context: reorganisation, Question: outplacementQ, OpenedOn: opened,
		Intake:       Intake{Completed: true, HeldOn: opened.AddDays(7), QuestionType: choice, MobilityWillingness: 3, MobilityCapacity: 3},
		QuestionType: choice,
		CoachID:      "coach-c",
		Consents:     []Consent{{Recipient: acme, Scopes: []casev1.ReportingScope{scopeProgress, scopeOutcome}}},
		Outplacement: Outplacement{StartedOn: start, PlannedMonths: 6, Phase: phaseAftercare, PhaseEnteredOn: start.AddDays(151),
			Outcome: external, PlacedOn: start.AddDays(150)},
		Closure: Closure{Closed: true, ClosedOn: start.AddDays(200), Outcome: concluded},
	}
	assertTrajectory(t, got, history, want, []string{
		"CaseOpened", "CoachAssigned", "IntakeCompleted", "ReportingConsentGranted", "OutplacementStarted",
		"OutplacementPhaseEntered", "OutplacementPhaseEntered", "OutplacementPhaseEntered", "PlacementAchieved",
		"OutplacementPhaseEntered", "CaseClosed",
	})
}

func TestReplayReintegrationToASecondTrack(t *testing.T) {
	opened := Date{2025, time.January, 8}
	analysed := &LoadCapacity{Percent: 40, HoursPerWeek: 16, FunctionalCapabilityList: true}
	evaluated := &LoadCapacity{Percent: 60, HoursPerWeek: 24, FunctionalCapabilityList: true}
	got, history := decideAll(t,
		OpenCase{ClientID: "client-3", Client: sealed(clientKey), BirthYear: 1975, InitiatedBy: byOrganisation,
			OrganisationID: "acme", Department: "Warehouse", OpenedOn: opened, CoachID: "coach-d"},
		StartReintegration{SickReportedOn: sickOn},
		RecordCheckpoint{Kind: physicianReport, HeldOn: day(2)},
		GrantReportingConsent{Recipient: agencyOf("werkfit"), Scopes: []casev1.ReportingScope{scopeReint, scopeContact}},
		AssignAgency{AgencyID: "werkfit"},
		RecordCheckpoint{Kind: problemAnalysis, HeldOn: day(38), LoadCapacity: analysed},
		RecordCheckpoint{Kind: actionPlan, HeldOn: day(52), Notes: sealed(clientKey)},
		RecordCheckpoint{Kind: progressReview, HeldOn: day(100)},
		RecordCheckpoint{Kind: firstYearEval, HeldOn: day(330), LoadCapacity: evaluated},
		StartSecondTrack{StartedOn: day(350)},
		CloseCase{ClosedOn: day(500), Outcome: otherEmployer},
	)
	want := State{
		Stage:    casev1.Stage_STAGE_CLOSED,
		ClientID: "client-3", Client: sealed(clientKey), ClientKeyID: clientKey, BirthYear: 1975, InitiatedBy: byOrganisation,
		OrganisationID: "acme", Department: "Warehouse", OpenedOn: opened,
		CoachID:  "coach-d",
		Consents: []Consent{{Recipient: agencyOf("werkfit"), Scopes: []casev1.ReportingScope{scopeReint, scopeContact}}},
		Reintegration: Reintegration{
			SickReportedOn: sickOn, Track: secondTrack, SecondTrackStartedOn: day(350),
			Checkpoints: []Checkpoint{
				{Kind: physicianReport, HeldOn: day(2)},
				{Kind: problemAnalysis, HeldOn: day(38), LoadCapacity: analysed},
				{Kind: actionPlan, HeldOn: day(52)},
				{Kind: progressReview, HeldOn: day(100)},
				{Kind: firstYearEval, HeldOn: day(330), LoadCapacity: evaluated},
				{Kind: decisionCheckpoint, HeldOn: day(350), SecondTrackDecision: decideStart},
			},
			LoadCapacity: evaluated,
		},
		Closure: Closure{Closed: true, ClosedOn: day(500), Outcome: otherEmployer},
	}
	assertTrajectory(t, got, history, want, []string{
		"CaseOpened", "CoachAssigned", "ReintegrationStarted", "ReintegrationCheckpointRecorded",
		"ReportingConsentGranted", "ReintegrationAgencyAssigned", "ReintegrationCheckpointRecorded",
		"ReintegrationCheckpointRecorded", "ReintegrationCheckpointRecorded", "ReintegrationCheckpointRecorded",
		"ReintegrationCheckpointRecorded", "SecondTrackStarted", "CaseClosed", "ReintegrationAgencyUnassigned",
	})
	wantStatus := map[casev1.CheckpointKind]DeadlineStatus{
		physicianReport: StatusDoneOnTime, problemAnalysis: StatusDoneOnTime, actionPlan: StatusDoneOnTime,
		firstYearEval: StatusDoneOnTime, decisionCheckpoint: StatusDoneOnTime, uwvReport: StatusOverdue,
	}
	for kind, want := range wantStatus {
		if d := find(t, got.Deadlines(at(day(400))), kind); d.Status != want {
			t.Errorf("%s on day 400: %s, want %s", kind, d.Status, want)
		}
	}
}

func TestStageFollowsTheTrajectory(t *testing.T) {
	cases := []struct {
		name    string
		history []proto.Message
		want    casev1.Stage
	}{
		{"a new case has no stage", nil, casev1.Stage_STAGE_UNSPECIFIED},
		{"events without an opening give no stage", events(&casev1.SessionRecorded{HeldOn: openedOn.Proto()}), casev1.Stage_STAGE_UNSPECIFIED},
		{"opened", history(), casev1.Stage_STAGE_OPENED},
		{"a session before the intake keeps it opened", history(&casev1.SessionRecorded{HeldOn: openedOn.Proto(), Kind: casev1.SessionKind_SESSION_KIND_INTAKE, DurationMinutes: 60}),
			casev1.Stage_STAGE_OPENED},
		{"intake completed", history(intakeCompleted(choice)), casev1.Stage_STAGE_INTAKE_COMPLETED},
		{"a session after the intake starts the coaching",
			history(intakeCompleted(choice), &casev1.SessionRecorded{HeldOn: intakeOn.Proto(), Kind: coachingKind, DurationMinutes: 60}),
			casev1.Stage_STAGE_COACHING},
		{"a development plan starts the coaching",
			history(intakeCompleted(choice), &casev1.DevelopmentPlanAgreed{AgreedOn: intakeOn.Proto(), ReviewOn: intakeOn.Proto()}),
			casev1.Stage_STAGE_COACHING},
		{"a running outplacement", history(outplacementStartedOn(intakeOn)), casev1.Stage_STAGE_OUTPLACEMENT},
		{"an outplacement ended without placement returns to the case's stage",
			history(intakeCompleted(choice), outplacementStartedOn(intakeOn), &casev1.OutplacementEndedWithoutPlacement{EndedOn: intakeOn.Proto()}),
			casev1.Stage_STAGE_INTAKE_COMPLETED},
		{"a running re-integration outranks an outplacement",
			history(outplacementStartedOn(intakeOn), reintegrationStartedOn(sickOn)), casev1.Stage_STAGE_REINTEGRATION},
		{"closed", history(reintegrationStartedOn(sickOn), caseClosedOn(intakeOn, returnedOwn)), casev1.Stage_STAGE_CLOSED},
		{"reopened, with no trajectory running",
			history(reintegrationStartedOn(sickOn), caseClosedOn(intakeOn, returnedOwn), &casev1.CaseReopened{ReopenedOn: intakeOn.Proto()}),
			casev1.Stage_STAGE_OPENED},
		{"erased", history(&casev1.ClientDataErased{Reason: onRequest}), casev1.Stage_STAGE_ERASED},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Replay(tc.history).Stage; got != tc.want {
				t.Errorf("stage = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestEvolveLeavesTheEarlierStateAlone checks that states are values: an
// event folded into a state does not show in the state it came from, even
// where both share list storage.
func TestEvolveLeavesTheEarlierStateAlone(t *testing.T) {
	// Three reclassifications leave spare capacity in a plainly appended
	// list, which is where shared storage would show.
	earlier := func() State {
		return Replay(history(intakeCompleted(choice),
			&casev1.QuestionReclassified{From: choice, To: life, Reason: disguised},
			&casev1.QuestionReclassified{From: life, To: competence, Reason: disguised},
			&casev1.QuestionReclassified{From: competence, To: life, Reason: disguised},
			consentGrantedTo(employerOf("acme"), scopeProgress),
			consentGrantedTo(agencyOf("werkfit"), scopeReint)))
	}
	base, before := earlier(), earlier()
	a := Evolve(base, &casev1.QuestionReclassified{From: life, To: counseling, Reason: disguised})
	b := Evolve(base, &casev1.QuestionReclassified{From: life, To: choice, Reason: disguised})
	Evolve(base, &casev1.ReportingConsentRevoked{Recipient: employerOf("acme").proto()})
	Evolve(base, consentGrantedTo(employerOf("acme"), scopeOutcome))
	if diff := cmp.Diff(before, base, protocmp.Transform()); diff != "" {
		t.Errorf("the earlier state changed (-before +after):\n%s", diff)
	}
	if a.Reclassifications[3].To != counseling || b.Reclassifications[3].To != choice {
		t.Errorf("states evolved from one base share their lists: %v, %v", a.Reclassifications, b.Reclassifications)
	}
}

func TestEvolveIgnoresUnknownEvents(t *testing.T) {
	s := Replay(history())
	if diff := cmp.Diff(s, Evolve(s, &casev1.Date{Year: 2025}), protocmp.Transform()); diff != "" {
		t.Errorf("an unknown event changed the state:\n%s", diff)
	}
}

func TestErasureDropsTheSealedClient(t *testing.T) {
	s := Replay(history(&casev1.ClientDataErased{Reason: onRequest}))
	if s.Client != nil || !s.IsErased() || s.IsOpen() {
		t.Errorf("after erasure: client %v, erased %v, open %v", s.Client, s.IsErased(), s.IsOpen())
	}
}
