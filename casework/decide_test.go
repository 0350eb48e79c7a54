package casework

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// decideCase is one rule as a table row: given these events, when this
// command, then these events, or this error and none.
type decideCase struct {
	name  string
	given []proto.Message
	when  Command
	then  []proto.Message
	err   *Error
}

func runDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decide(Replay(tc.given), tc.when)
			if tc.err != nil {
				assertRefused(t, got, err, tc.err)
				return
			}
			if err != nil {
				t.Fatalf("Decide: unexpected error %v", err)
			}
			if diff := cmp.Diff(tc.then, got, protocmp.Transform()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func assertRefused(t *testing.T, got []proto.Message, err error, want *Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %s", err, want.Reason)
	}
	var de *Error
	if !errors.As(err, &de) || de.Reason != want.Reason {
		t.Errorf("errors.As reason = %v, want %s", de, want.Reason)
	}
	if got != nil {
		t.Errorf("refused command still decided events: %v", got)
	}
}

// plus is base followed by es, in a new slice: the tables share bases.
func plus(base []proto.Message, es ...proto.Message) []proto.Message {
	return slices.Concat(base, es)
}

// history is an opened case followed by es.
func history(es ...proto.Message) []proto.Message {
	return append([]proto.Message{caseOpened()}, es...)
}

func TestDecideLifecycle(t *testing.T) {
	open := validCommands()["OpenCase"].(OpenCase)
	withCoach := open
	withCoach.CoachID = "coach-a"
	closed := caseClosedOn(Date{2026, 1, 5}, goalAchieved)
	runDecide(t, []decideCase{
		{name: "opening a case records it", when: open, then: events(caseOpened())},
		{name: "opening with a coach makes the coach the owner", when: withCoach,
			then: events(caseOpened(), coachAssigned("coach-a"))},
		{name: "a case is opened once", given: history(), when: open, err: ErrCaseAlreadyOpened},
		{name: "an erased case cannot be opened again", given: history(&casev1.ClientDataErased{Reason: onRequest}),
			when: open, err: ErrCaseAlreadyOpened},
		{name: "assigning a coach records the owner", given: history(), when: AssignCoach{CoachID: "coach-a"},
			then: events(coachAssigned("coach-a"))},
		{name: "assigning another coach replaces the owner", given: history(coachAssigned("coach-a")),
			when: AssignCoach{CoachID: "coach-b"}, then: events(coachAssigned("coach-b"))},
		{name: "assigning the owning coach again is refused", given: history(coachAssigned("coach-a")),
			when: AssignCoach{CoachID: "coach-a"}, err: ErrCoachAlreadyAssigned},
		{name: "a referral to a colleague makes the colleague the coach", given: history(coachAssigned("coach-a")),
			when: ReferCase{Target: toColleague, ColleagueCoachID: "coach-b", Reason: beyondExpertise},
			then: events(&casev1.CaseReferred{Target: toColleague, ColleagueCoachId: "coach-b", Reason: beyondExpertise}, coachAssigned("coach-b"))},
		{name: "a referral outside the practice keeps the coach", given: history(coachAssigned("coach-a")),
			when: ReferCase{Target: toOutside, Reason: referralWarnings, Details: sealed(clientKey)},
			then: events(&casev1.CaseReferred{Target: toOutside, Reason: referralWarnings, Details: sealed(clientKey)})},
		{name: "a referral to the owning coach is refused", given: history(coachAssigned("coach-a")),
			when: ReferCase{Target: toColleague, ColleagueCoachID: "coach-a", Reason: beyondExpertise}, err: ErrReferralToCurrentCoach},
		{name: "referral details sealed with another key are refused", given: history(),
			when: ReferCase{Target: toOutside, Reason: referralWarnings, Details: sealed(otherKey)}, err: ErrSealedWithOtherKey},
		{name: "closing records the outcome", given: history(),
			when: CloseCase{ClosedOn: Date{2026, 1, 5}, Outcome: goalAchieved}, then: events(closed)},
		{name: "closing on the opening day is accepted", given: history(),
			when: CloseCase{ClosedOn: openedOn, Outcome: goalAchieved}, then: events(caseClosedOn(openedOn, goalAchieved))},
		{name: "closing before the opening day is refused", given: history(),
			when: CloseCase{ClosedOn: openedOn.AddDays(-1), Outcome: goalAchieved}, err: ErrDateOutOfOrder},
		{name: "closing unassigns the agency right after the close",
			given: history(reintegrationStartedOn(sickOn), consentGrantedTo(agencyOf("werkfit"), scopeReint), agencyAssigned("werkfit")),
			when:  CloseCase{ClosedOn: Date{2026, 1, 5}, Outcome: returnedOwn},
			then: events(caseClosedOn(Date{2026, 1, 5}, returnedOwn),
				&casev1.ReintegrationAgencyUnassigned{AgencyId: "werkfit", Reason: caseClosedR})},
		{name: "a running outplacement without outcome blocks the close", given: history(outplacementStartedOn(intakeOn)),
			when: CloseCase{ClosedOn: Date{2026, 1, 5}, Outcome: goalAchieved}, err: ErrOutplacementUnresolved},
		{name: "a re-integration outcome needs a running re-integration", given: history(),
			when: CloseCase{ClosedOn: Date{2026, 1, 5}, Outcome: returnedOwn}, err: ErrCloseOutcomeMismatch},
		{name: "outplacement concluded needs an outplacement outcome", given: history(),
			when: CloseCase{ClosedOn: Date{2026, 1, 5}, Outcome: concluded}, err: ErrCloseOutcomeMismatch},
		{name: "outplacement concluded after an ending without placement is accepted",
			given: history(outplacementStartedOn(intakeOn), &casev1.OutplacementEndedWithoutPlacement{EndedOn: intakeOn.AddDays(90).Proto(), Reason: termEnded}),
			when:  CloseCase{ClosedOn: Date{2026, 1, 5}, Outcome: concluded}, then: events(caseClosedOn(Date{2026, 1, 5}, concluded))},
		{name: "a closing summary sealed with another key is refused", given: history(),
			when: CloseCase{ClosedOn: Date{2026, 1, 5}, Outcome: goalAchieved, Summary: sealed(otherKey)}, err: ErrSealedWithOtherKey},
		{name: "a closed case cannot close again", given: history(closed),
			when: CloseCase{ClosedOn: Date{2026, 2, 5}, Outcome: goalAchieved}, err: ErrCaseClosed},
		{name: "reopening a closed case records it", given: history(closed),
			when: ReopenCase{ReopenedOn: Date{2026, 2, 1}, Reason: clientReturn},
			then: events(&casev1.CaseReopened{ReopenedOn: Date{2026, 2, 1}.Proto(), Reason: clientReturn})},
		{name: "only a closed case can be reopened", given: history(),
			when: ReopenCase{ReopenedOn: Date{2026, 2, 1}, Reason: clientReturn}, err: ErrCaseNotClosed},
		{name: "reopening before the close is refused", given: history(closed),
			when: ReopenCase{ReopenedOn: Date{2026, 1, 4}, Reason: clientReturn}, err: ErrDateOutOfOrder},
		{name: "erasure on the client's request is accepted while open", given: history(),
			when: EraseClientData{Reason: onRequest}, then: events(&casev1.ClientDataErased{Reason: onRequest})},
		{name: "erasure after the retention period is accepted when closed", given: history(closed),
			when: EraseClientData{Reason: retention}, then: events(&casev1.ClientDataErased{Reason: retention})},
		{name: "erasure for retention needs a closed case", given: history(),
			when: EraseClientData{Reason: retention}, err: ErrCaseNotClosed},
	})
}

func TestDecideIntake(t *testing.T) {
	intake := validCommands()["CompleteIntake"].(CompleteIntake)
	intake.WarningSignals = []casev1.WarningSignal{overload, anxiety}
	intake.ReferralAdvised = true
	foreign := intake
	foreign.Answers = sealed(otherKey)
	runDecide(t, []decideCase{
		{name: "an intake records its findings", given: history(), when: intake,
			then: events(&casev1.IntakeCompleted{HeldOn: intakeOn.Proto(), QuestionType: competence, Answers: sealed(clientKey),
				WarningSignals: []casev1.WarningSignal{overload, anxiety}, ReferralAdvised: true, MobilityWillingness: 3, MobilityCapacity: 4})},
		{name: "a case has one intake", given: history(intakeCompleted(choice)), when: intake, err: ErrIntakeAlreadyCompleted},
		{name: "intake answers sealed with another key are refused", given: history(), when: foreign, err: ErrSealedWithOtherKey},
		{name: "a reclassification records from and to", given: history(intakeCompleted(competence)),
			when: ReclassifyQuestion{To: counseling, Reason: disguised, Explanation: sealed(clientKey)},
			then: events(&casev1.QuestionReclassified{From: competence, To: counseling, Reason: disguised, Explanation: sealed(clientKey)})},
		{name: "a second reclassification starts from the first one's type",
			given: history(intakeCompleted(choice), &casev1.QuestionReclassified{From: choice, To: life, Reason: disguised}),
			when:  ReclassifyQuestion{To: counseling, Reason: disguised},
			then:  events(&casev1.QuestionReclassified{From: life, To: counseling, Reason: disguised})},
		{name: "a reclassification's explanation sealed with another key is refused", given: history(intakeCompleted(competence)),
			when: ReclassifyQuestion{To: counseling, Reason: disguised, Explanation: sealed(otherKey)}, err: ErrSealedWithOtherKey},
		{name: "a reclassification must change the type", given: history(intakeCompleted(competence)),
			when: ReclassifyQuestion{To: competence, Reason: disguised}, err: ErrQuestionTypeUnchanged},
		{name: "a reclassification needs the intake", given: history(),
			when: ReclassifyQuestion{To: counseling, Reason: disguised}, err: ErrIntakeNotCompleted},
	})
}

func TestDecideConsent(t *testing.T) {
	acme := employerOf("acme")
	progress := []casev1.ReportingScope{scopeProgress}
	runDecide(t, []decideCase{
		{name: "granting consent records recipient and scopes", given: history(),
			when: GrantReportingConsent{Recipient: acme, Scopes: progress}, then: events(consentGrantedTo(acme, scopeProgress))},
		{name: "a grant with other scopes replaces the consent", given: history(consentGrantedTo(acme, scopeProgress)),
			when: GrantReportingConsent{Recipient: acme, Scopes: []casev1.ReportingScope{scopeOutcome, scopeProgress}},
			then: events(consentGrantedTo(acme, scopeOutcome, scopeProgress))},
		{name: "granting the same scopes again is refused, in any order", given: history(consentGrantedTo(acme, scopeProgress, scopeOutcome)),
			when: GrantReportingConsent{Recipient: acme, Scopes: []casev1.ReportingScope{scopeOutcome, scopeProgress}}, err: ErrConsentAlreadyGranted},
		{name: "revoking ends a granted consent", given: history(consentGrantedTo(acme, scopeProgress)),
			when: RevokeReportingConsent{Recipient: acme}, then: events(&casev1.ReportingConsentRevoked{Recipient: acme.proto()})},
		{name: "revoking needs a grant", given: history(), when: RevokeReportingConsent{Recipient: acme}, err: ErrConsentNotGranted},
		{name: "revoking needs a grant to that recipient", given: history(consentGrantedTo(agencyOf("acme"), scopeProgress)),
			when: RevokeReportingConsent{Recipient: acme}, err: ErrConsentNotGranted},
		{name: "revoking a revoked consent is refused", given: history(consentGrantedTo(acme, scopeProgress), &casev1.ReportingConsentRevoked{Recipient: acme.proto()}),
			when: RevokeReportingConsent{Recipient: acme}, err: ErrConsentNotGranted},
		{name: "revoking the assigned agency's consent unassigns the agency",
			given: history(reintegrationStartedOn(sickOn), consentGrantedTo(agencyOf("werkfit"), scopeReint), agencyAssigned("werkfit")),
			when:  RevokeReportingConsent{Recipient: agencyOf("werkfit")},
			then: events(&casev1.ReportingConsentRevoked{Recipient: agencyOf("werkfit").proto()},
				&casev1.ReintegrationAgencyUnassigned{AgencyId: "werkfit", Reason: consentRevokedR})},
	})
}

func TestDecideCoaching(t *testing.T) {
	session := RecordSession{HeldOn: intakeOn.AddDays(7), Kind: coachingKind, DurationMinutes: 60, Notes: sealed(clientKey)}
	foreignNotes := session
	foreignNotes.Notes = sealed(otherKey)
	plan := validCommands()["AgreeDevelopmentPlan"].(AgreeDevelopmentPlan)
	agreed := &casev1.DevelopmentPlanAgreed{AgreedOn: plan.AgreedOn.Proto(), ReviewOn: plan.ReviewOn.Proto(), Goals: sealed(clientKey)}
	revise := validCommands()["ReviseDevelopmentPlan"].(ReviseDevelopmentPlan)
	early := revise
	early.RevisedOn = plan.AgreedOn.AddDays(-1)
	runDecide(t, []decideCase{
		{name: "a session is recorded with its private notes", given: history(), when: session,
			then: events(&casev1.SessionRecorded{HeldOn: session.HeldOn.Proto(), Kind: coachingKind, DurationMinutes: 60, Notes: sealed(clientKey)})},
		{name: "session notes sealed with another key are refused", given: history(), when: foreignNotes, err: ErrSealedWithOtherKey},
		{name: "a development plan is agreed after the intake", given: history(intakeCompleted(competence)), when: plan, then: events(agreed)},
		{name: "a development plan needs the intake", given: history(), when: plan, err: ErrIntakeNotCompleted},
		{name: "a case has one development plan", given: history(intakeCompleted(competence), agreed), when: plan, err: ErrDevelopmentPlanAlreadyAgreed},
		{name: "a revision records the new goals and review day", given: history(intakeCompleted(competence), agreed), when: revise,
			then: events(&casev1.DevelopmentPlanRevised{RevisedOn: revise.RevisedOn.Proto(), ReviewOn: revise.ReviewOn.Proto(), Goals: sealed(clientKey)})},
		{name: "a revision needs an agreed plan", given: history(intakeCompleted(competence)), when: revise, err: ErrDevelopmentPlanNotAgreed},
		{name: "a revision cannot predate the plan", given: history(intakeCompleted(competence), agreed), when: early, err: ErrDateOutOfOrder},
		{name: "a revision cannot predate the last revision", given: history(intakeCompleted(competence), agreed,
			&casev1.DevelopmentPlanRevised{RevisedOn: revise.RevisedOn.AddDays(1).Proto(), ReviewOn: revise.ReviewOn.Proto(), Goals: sealed(clientKey)}),
			when: revise, err: ErrDateOutOfOrder},
		{name: "plan goals sealed with another key are refused", given: history(intakeCompleted(competence)),
			when: AgreeDevelopmentPlan{AgreedOn: plan.AgreedOn, ReviewOn: plan.ReviewOn, Goals: sealed(otherKey)}, err: ErrSealedWithOtherKey},
		{name: "revised goals sealed with another key are refused", given: history(intakeCompleted(competence), agreed),
			when: ReviseDevelopmentPlan{RevisedOn: revise.RevisedOn, ReviewOn: revise.ReviewOn, Goals: sealed(otherKey)}, err: ErrSealedWithOtherKey},
	})
}

func TestDecideOutplacement(t *testing.T) {
	start := intakeOn
	running := history(outplacementStartedOn(start))
	placed := history(outplacementStartedOn(start), placementAchievedOn(start.AddDays(120)))
	ended := history(outplacementStartedOn(start), &casev1.OutplacementEndedWithoutPlacement{EndedOn: start.AddDays(180).Proto(), Reason: termEnded})
	inMarket := history(outplacementStartedOn(start), &casev1.OutplacementPhaseEntered{Phase: marketApproach, EnteredOn: start.AddDays(60).Proto()})
	aftercare := casev1.OutplacementPhase_OUTPLACEMENT_PHASE_AFTERCARE
	runDecide(t, []decideCase{
		{name: "an outplacement starts in the farewell phase unless told otherwise", given: history(),
			when: StartOutplacement{StartedOn: start, PlannedMonths: 6},
			then: events(&casev1.OutplacementStarted{StartedOn: start.Proto(), Phase: phaseFarewell, PlannedMonths: 6})},
		{name: "an outplacement may start in a later phase", given: history(),
			when: StartOutplacement{StartedOn: start, Phase: orientation},
			then: events(&casev1.OutplacementStarted{StartedOn: start.Proto(), Phase: orientation})},
		{name: "one outplacement runs at a time", given: running, when: StartOutplacement{StartedOn: start}, err: ErrOutplacementAlreadyRunning},
		{name: "one outplacement runs at a time, also after a placement", given: placed, when: StartOutplacement{StartedOn: start}, err: ErrOutplacementAlreadyRunning},
		{name: "a new outplacement may start after one ended without placement", given: ended,
			when: StartOutplacement{StartedOn: start.AddDays(200)},
			then: events(&casev1.OutplacementStarted{StartedOn: start.AddDays(200).Proto(), Phase: phaseFarewell})},
		{name: "a phase is entered forward", given: running, when: EnterOutplacementPhase{Phase: orientation, EnteredOn: start.AddDays(14)},
			then: events(&casev1.OutplacementPhaseEntered{Phase: orientation, EnteredOn: start.AddDays(14).Proto()})},
		{name: "a phase may be skipped", given: running, when: EnterOutplacementPhase{Phase: marketApproach, EnteredOn: start.AddDays(14)},
			then: events(&casev1.OutplacementPhaseEntered{Phase: marketApproach, EnteredOn: start.AddDays(14).Proto()})},
		{name: "phases move forward only: not back", given: inMarket,
			when: EnterOutplacementPhase{Phase: development, EnteredOn: start.AddDays(70)}, err: ErrOutplacementPhaseNotForward},
		{name: "phases move forward only: not the same again", given: inMarket,
			when: EnterOutplacementPhase{Phase: marketApproach, EnteredOn: start.AddDays(70)}, err: ErrOutplacementPhaseNotForward},
		{name: "a phase's day cannot precede the current phase's", given: running,
			when: EnterOutplacementPhase{Phase: orientation, EnteredOn: start.AddDays(-1)}, err: ErrDateOutOfOrder},
		{name: "aftercare needs a placement", given: inMarket,
			when: EnterOutplacementPhase{Phase: aftercare, EnteredOn: start.AddDays(70)}, err: ErrPlacementNotRecorded},
		{name: "aftercare follows a placement", given: placed, when: EnterOutplacementPhase{Phase: aftercare, EnteredOn: start.AddDays(150)},
			then: events(&casev1.OutplacementPhaseEntered{Phase: aftercare, EnteredOn: start.AddDays(150).Proto()})},
		{name: "phases need a running outplacement", given: history(),
			when: EnterOutplacementPhase{Phase: orientation, EnteredOn: start}, err: ErrOutplacementNotRunning},
		{name: "a placement is recorded", given: inMarket, when: RecordPlacement{Outcome: external, PlacedOn: start.AddDays(120)},
			then: events(placementAchievedOn(start.AddDays(120)))},
		{name: "a placement on the starting day is accepted", given: running, when: RecordPlacement{Outcome: external, PlacedOn: start},
			then: events(placementAchievedOn(start))},
		{name: "a placement needs a running outplacement", given: history(),
			when: RecordPlacement{Outcome: external, PlacedOn: start}, err: ErrOutplacementNotRunning},
		{name: "a placement needs a running outplacement, not an ended one", given: ended,
			when: RecordPlacement{Outcome: external, PlacedOn: start.AddDays(190)}, err: ErrOutplacementNotRunning},
		{name: "an outplacement has one placement", given: placed,
			when: RecordPlacement{Outcome: external, PlacedOn: start.AddDays(130)}, err: ErrPlacementAlreadyRecorded},
		{name: "a placement cannot precede the outplacement", given: running,
			when: RecordPlacement{Outcome: external, PlacedOn: start.AddDays(-1)}, err: ErrDateOutOfOrder},
		{name: "an outplacement ends without placement", given: inMarket,
			when: EndOutplacementWithoutPlacement{EndedOn: start.AddDays(180), Reason: termEnded, MarketReady: true},
			then: events(&casev1.OutplacementEndedWithoutPlacement{EndedOn: start.AddDays(180).Proto(), Reason: termEnded, MarketReady: true})},
		{name: "a placed outplacement cannot end without placement", given: placed,
			when: EndOutplacementWithoutPlacement{EndedOn: start.AddDays(180), Reason: termEnded}, err: ErrPlacementAlreadyRecorded},
		{name: "ending needs a running outplacement", given: history(),
			when: EndOutplacementWithoutPlacement{EndedOn: start, Reason: termEnded}, err: ErrOutplacementNotRunning},
		{name: "ending cannot precede the outplacement", given: running,
			when: EndOutplacementWithoutPlacement{EndedOn: start.AddDays(-1), Reason: termEnded}, err: ErrDateOutOfOrder},
		{name: "closing ends the outplacement", given: plus(placed, caseClosedOn(Date{2026, 1, 5}, concluded),
			&casev1.CaseReopened{ReopenedOn: Date{2026, 2, 1}.Proto(), Reason: clientReturn}),
			when: RecordPlacement{Outcome: external, PlacedOn: Date{2026, 3, 1}}, err: ErrOutplacementNotRunning},
	})
}

func TestDecideReintegration(t *testing.T) {
	running := history(reintegrationStartedOn(sickOn))
	consented := history(reintegrationStartedOn(sickOn), consentGrantedTo(agencyOf("werkfit"), scopeReint))
	assigned := plus(consented, agencyAssigned("werkfit"))
	evaluated := history(reintegrationStartedOn(sickOn), checkpointRecordedOn(firstYearEval, sickOn.AddDays(330)))
	decided := func(d casev1.SecondTrackDecision, on Date) *casev1.ReintegrationCheckpointRecorded {
		c := checkpointRecordedOn(decisionCheckpoint, on)
		c.SecondTrackDecision = d
		return c
	}
	startDay := sickOn.AddDays(350)
	runDecide(t, []decideCase{
		{name: "a re-integration starts on the first track unless told otherwise", given: history(),
			when: StartReintegration{SickReportedOn: sickOn}, then: events(reintegrationStartedOn(sickOn))},
		{name: "a re-integration may start on the second track", given: history(),
			when: StartReintegration{SickReportedOn: sickOn, Track: secondTrack},
			then: events(&casev1.ReintegrationStarted{SickReportedOn: sickOn.Proto(), Track: secondTrack})},
		{name: "one re-integration runs at a time", given: running, when: StartReintegration{SickReportedOn: sickOn}, err: ErrReintegrationAlreadyRunning},
		{name: "an agency is assigned with the client's consent", given: consented, when: AssignAgency{AgencyID: "werkfit"},
			then: events(agencyAssigned("werkfit"))},
		{name: "an agency needs the client's consent", given: running, when: AssignAgency{AgencyID: "werkfit"}, err: ErrAgencyConsentMissing},
		{name: "an agency needs consent for that very agency", given: consented, when: AssignAgency{AgencyID: "baanwijs"}, err: ErrAgencyConsentMissing},
		{name: "an employer's consent does not admit an agency of the same ID",
			given: history(reintegrationStartedOn(sickOn), consentGrantedTo(employerOf("werkfit"), scopeReint)),
			when:  AssignAgency{AgencyID: "werkfit"}, err: ErrAgencyConsentMissing},
		{name: "a revoked consent does not admit the agency",
			given: plus(consented, &casev1.ReportingConsentRevoked{Recipient: agencyOf("werkfit").proto()}),
			when:  AssignAgency{AgencyID: "werkfit"}, err: ErrAgencyConsentMissing},
		{name: "an agency needs a running re-integration", given: history(consentGrantedTo(agencyOf("werkfit"), scopeReint)),
			when: AssignAgency{AgencyID: "werkfit"}, err: ErrReintegrationNotRunning},
		{name: "one agency at a time", given: plus(assigned, consentGrantedTo(agencyOf("baanwijs"), scopeReint)),
			when: AssignAgency{AgencyID: "baanwijs"}, err: ErrAgencyAlreadyAssigned},
		{name: "unassigning takes the agency off", given: assigned, when: UnassignAgency{AgencyID: "werkfit", Reason: completed},
			then: events(&casev1.ReintegrationAgencyUnassigned{AgencyId: "werkfit", Reason: completed})},
		{name: "unassigning needs an assignment", given: consented, when: UnassignAgency{AgencyID: "werkfit", Reason: completed}, err: ErrAgencyNotAssigned},
		{name: "unassigning needs that agency to be the assigned one", given: assigned,
			when: UnassignAgency{AgencyID: "baanwijs", Reason: completed}, err: ErrAgencyNotAssigned},
		{name: "a checkpoint is recorded with the load capacity",
			given: running, when: RecordCheckpoint{Kind: problemAnalysis, HeldOn: sickOn.AddDays(35), LoadCapacity: &LoadCapacity{Percent: 50, HoursPerWeek: 20, FunctionalCapabilityList: true}},
			then: events(&casev1.ReintegrationCheckpointRecorded{Kind: problemAnalysis, HeldOn: sickOn.AddDays(35).Proto(),
				LoadCapacity: &casev1.LoadCapacity{Percent: 50, HoursPerWeek: 20, FunctionalCapabilityList: true}})},
		{name: "a checkpoint on the sick-report day is accepted", given: running,
			when: RecordCheckpoint{Kind: physicianReport, HeldOn: sickOn}, then: events(checkpointRecordedOn(physicianReport, sickOn))},
		{name: "a checkpoint cannot precede the sick report", given: running,
			when: RecordCheckpoint{Kind: physicianReport, HeldOn: sickOn.AddDays(-1)}, err: ErrCheckpointBeforeSickReport},
		{name: "a checkpoint needs a running re-integration", given: history(),
			when: RecordCheckpoint{Kind: physicianReport, HeldOn: sickOn}, err: ErrReintegrationNotRunning},
		{name: "checkpoint notes sealed with another key are refused", given: running,
			when: RecordCheckpoint{Kind: physicianReport, HeldOn: sickOn, Notes: sealed(otherKey)}, err: ErrSealedWithOtherKey},
		{name: "a second track after the first-year evaluation records the decision with it", given: evaluated,
			when: StartSecondTrack{StartedOn: startDay},
			then: events(decided(decideStart, startDay), &casev1.SecondTrackStarted{StartedOn: startDay.Proto()})},
		{name: "a second track after a recorded decision to start adds no decision",
			given: history(reintegrationStartedOn(sickOn), decided(decideStart, sickOn.AddDays(200))),
			when:  StartSecondTrack{StartedOn: sickOn.AddDays(210)},
			then:  events(&casev1.SecondTrackStarted{StartedOn: sickOn.AddDays(210).Proto()})},
		{name: "a second track after the evaluation overrides an earlier decision against it",
			given: plus(evaluated, decided(returnExpected, sickOn.AddDays(335))),
			when:  StartSecondTrack{StartedOn: startDay},
			then:  events(decided(decideStart, startDay), &casev1.SecondTrackStarted{StartedOn: startDay.Proto()})},
		{name: "a second track needs the first-year evaluation or a decision to start", given: running,
			when: StartSecondTrack{StartedOn: sickOn.AddDays(100)}, err: ErrSecondTrackNotDue},
		{name: "a decision against a second track does not admit one before the evaluation",
			given: history(reintegrationStartedOn(sickOn), decided(returnExpected, sickOn.AddDays(200))),
			when:  StartSecondTrack{StartedOn: sickOn.AddDays(210)}, err: ErrSecondTrackNotDue},
		{name: "the second track starts once",
			given: plus(evaluated, decided(decideStart, startDay), &casev1.SecondTrackStarted{StartedOn: startDay.Proto()}),
			when:  StartSecondTrack{StartedOn: startDay.AddDays(1)}, err: ErrSecondTrackAlreadyStarted},
		{name: "a second track needs a running re-integration", given: history(),
			when: StartSecondTrack{StartedOn: startDay}, err: ErrReintegrationNotRunning},
		{name: "a second track cannot precede the sick report", given: plus(running, decided(decideStart, sickOn)),
			when: StartSecondTrack{StartedOn: sickOn.AddDays(-1)}, err: ErrDateOutOfOrder},
	})
}

// TestNothingBeforeOpening checks that every command but OpenCase needs an
// opened case.
func TestNothingBeforeOpening(t *testing.T) {
	for name, cmd := range validCommands() {
		if name == "OpenCase" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			got, err := Decide(State{}, cmd)
			assertRefused(t, got, err, ErrCaseNotOpened)
		})
	}
}

// TestClosedCaseAcceptsOnlyReopeningAndErasure checks every command against
// a closed case.
func TestClosedCaseAcceptsOnlyReopeningAndErasure(t *testing.T) {
	closed := Replay(history(caseClosedOn(Date{2026, 1, 5}, goalAchieved)))
	for name, cmd := range validCommands() {
		t.Run(name, func(t *testing.T) {
			got, err := Decide(closed, cmd)
			switch name {
			case "ReopenCase", "EraseClientData":
				if err != nil || len(got) != 1 {
					t.Errorf("Decide = %v, %v; want one event", got, err)
				}
			case "OpenCase":
				assertRefused(t, got, err, ErrCaseAlreadyOpened)
			default:
				assertRefused(t, got, err, ErrCaseClosed)
			}
		})
	}
}

// TestErasedCaseAcceptsNothing checks every command against an erased case.
func TestErasedCaseAcceptsNothing(t *testing.T) {
	erased := Replay(history(caseClosedOn(Date{2026, 1, 5}, goalAchieved), &casev1.ClientDataErased{Reason: retention}))
	for name, cmd := range validCommands() {
		t.Run(name, func(t *testing.T) {
			got, err := Decide(erased, cmd)
			want := ErrCaseErased
			if name == "OpenCase" {
				want = ErrCaseAlreadyOpened
			}
			assertRefused(t, got, err, want)
		})
	}
}

// TestCommandsArePassedByValueOrPointer checks that a pointer to a command
// is the same command.
func TestCommandsArePassedByValueOrPointer(t *testing.T) {
	open := validCommands()["OpenCase"].(OpenCase)
	if _, err := Decide(State{}, &open); err != nil {
		t.Errorf("Decide(&OpenCase) on a new case: %v", err)
	}
	closed := Replay(history(caseClosedOn(Date{2026, 1, 5}, goalAchieved)))
	if _, err := Decide(closed, &ReopenCase{ReopenedOn: Date{2026, 2, 1}, Reason: clientReturn}); err != nil {
		t.Errorf("Decide(&ReopenCase) on a closed case: %v", err)
	}
}

// TestInvalidCommandChangesNothing checks that Decide answers a command with
// wrong fields with the violations of Validate and no events.
func TestInvalidCommandChangesNothing(t *testing.T) {
	cmd := RecordCheckpoint{Kind: problemAnalysis, HeldOn: sickOn, LoadCapacity: &LoadCapacity{Percent: 101, HoursPerWeek: 61}}
	got, err := Decide(Replay(history(reintegrationStartedOn(sickOn))), cmd)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error = %v, want a *ValidationError", err)
	}
	if got != nil {
		t.Errorf("invalid command decided events: %v", got)
	}
	if diff := cmp.Diff(cmd.Validate(), verr.Violations); diff != "" {
		t.Errorf("violations differ from Validate's (-want +got):\n%s", diff)
	}
	const wantMsg = "invalid command: load_capacity.percent: 101 is outside 0 to 100; load_capacity.hours_per_week: 61 is outside 0 to 60"
	if err.Error() != wantMsg {
		t.Errorf("message = %q, want %q", err.Error(), wantMsg)
	}
}

// TestEveryErrorHasAStableReason checks the error table the edge maps.
func TestEveryErrorHasAStableReason(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Errors {
		if seen[e.Reason] {
			t.Errorf("reason %s used twice", e.Reason)
		}
		seen[e.Reason] = true
		for _, r := range e.Reason {
			if !(r >= 'A' && r <= 'Z' || r == '_') {
				t.Errorf("reason %q is not UPPER_SNAKE_CASE", e.Reason)
				break
			}
		}
		if e.Message == "" {
			t.Errorf("%s has no message", e.Reason)
		}
	}
	kinds := map[*Error]Kind{ErrCaseNotOpened: KindNotFound, ErrCaseAlreadyOpened: KindAlreadyExists, ErrCaseClosed: KindFailedPrecondition}
	for e, want := range kinds {
		if e.Kind != want {
			t.Errorf("%s has kind %d, want %d", e.Reason, e.Kind, want)
		}
	}
}
