package casework

import (
	"bytes"
	"time"

	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// Short names for the enum values the tests use most.
const (
	byClient       = casev1.Initiator_INITIATOR_CLIENT
	byOrganisation = casev1.Initiator_INITIATOR_ORGANISATION

	choice     = casev1.QuestionType_QUESTION_TYPE_CHOICE
	competence = casev1.QuestionType_QUESTION_TYPE_COMPETENCE
	life       = casev1.QuestionType_QUESTION_TYPE_LIFE
	counseling = casev1.QuestionType_QUESTION_TYPE_COUNSELING

	growth         = casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_GROWTH
	mismatch       = casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_MISMATCH
	reorganisation = casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_REORGANISATION
	talentPool     = casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_TALENT_POOL
	problemCase    = casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PROBLEM_CASE
	outplacementQ  = casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT

	overload  = casev1.WarningSignal_WARNING_SIGNAL_OVERLOAD
	anxiety   = casev1.WarningSignal_WARNING_SIGNAL_ANXIETY
	disguised = casev1.ReclassificationReason_RECLASSIFICATION_REASON_DISGUISED_QUESTION

	toColleague      = casev1.ReferralTarget_REFERRAL_TARGET_COLLEAGUE
	toOutside        = casev1.ReferralTarget_REFERRAL_TARGET_OUTSIDE_PROFESSIONAL
	beyondExpertise  = casev1.ReferralReason_REFERRAL_REASON_BEYOND_EXPERTISE
	referralWarnings = casev1.ReferralReason_REFERRAL_REASON_WARNING_SIGNALS

	employer       = casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER
	agency         = casev1.RecipientKind_RECIPIENT_KIND_AGENCY
	scopeProgress  = casev1.ReportingScope_REPORTING_SCOPE_PROGRESS
	scopeOutcome   = casev1.ReportingScope_REPORTING_SCOPE_OUTCOME
	scopeReint     = casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION
	scopeContact   = casev1.ReportingScope_REPORTING_SCOPE_CONTACT_DETAILS
	coachingKind   = casev1.SessionKind_SESSION_KIND_COACHING
	assessmentKind = casev1.SessionKind_SESSION_KIND_ASSESSMENT

	orientation    = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_ORIENTATION
	development    = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_DEVELOPMENT
	marketApproach = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_MARKET_APPROACH
	external       = casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL
	termEnded      = casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_TERM_ENDED

	physicianReport = casev1.CheckpointKind_CHECKPOINT_KIND_OCCUPATIONAL_PHYSICIAN_REPORT
	problemAnalysis = casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS
	uwvReport       = casev1.CheckpointKind_CHECKPOINT_KIND_UWV_SICKNESS_REPORT
	wiaForm         = casev1.CheckpointKind_CHECKPOINT_KIND_WIA_FORM_RECEIVED
	wiaApplication  = casev1.CheckpointKind_CHECKPOINT_KIND_WIA_APPLICATION
	gatekeeperTest  = casev1.CheckpointKind_CHECKPOINT_KIND_GATEKEEPER_TEST
	wiaDecision     = casev1.CheckpointKind_CHECKPOINT_KIND_WIA_DECISION
	returnExpected  = casev1.SecondTrackDecision_SECOND_TRACK_DECISION_RETURN_EXPECTED
	completed       = casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_COMPLETED
	consentRevokedR = casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CONSENT_REVOKED
	caseClosedR     = casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CASE_CLOSED

	goalAchieved  = casev1.CloseOutcome_CLOSE_OUTCOME_GOAL_ACHIEVED
	concluded     = casev1.CloseOutcome_CLOSE_OUTCOME_OUTPLACEMENT_CONCLUDED
	returnedOwn   = casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER
	otherEmployer = casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER
	clientReturn  = casev1.ReopenReason_REOPEN_REASON_CLIENT_RETURNED
	onRequest     = casev1.ErasureReason_ERASURE_REASON_CLIENT_REQUEST
	retention     = casev1.ErasureReason_ERASURE_REASON_RETENTION_EXPIRED
)

// The client's data key, and another one.
const (
	clientKey = "key-client-7"
	otherKey  = "key-someone-else"
)

// Days the fixtures use.
var (
	openedOn = Date{2025, time.March, 3}
	intakeOn = Date{2025, time.March, 10}
	sickOn   = Date{2025, time.January, 6}
)

// sealed returns a Sealed value of the right shape under key.
func sealed(key string) *eventv1.Sealed {
	return &eventv1.Sealed{KeyId: key, Nonce: bytes.Repeat([]byte{1}, 12), Ciphertext: bytes.Repeat([]byte{2}, 40)}
}

func agencyOf(id string) Recipient   { return Recipient{Kind: agency, ID: id} }
func employerOf(id string) Recipient { return Recipient{Kind: employer, ID: id} }

// The events the tests start from.

func caseOpened() *casev1.CaseOpened {
	return &casev1.CaseOpened{
		ClientId:               "client-7",
		Client:                 sealed(clientKey),
		BirthYear:              1980,
		InitiatedBy:            byOrganisation,
		OrganisationId:         "acme",
		Department:             "Finance",
		OrganisationalContext:  mismatch,
		OrganisationalQuestion: problemCase,
		OpenedOn:               openedOn.Proto(),
	}
}

func coachAssigned(id string) *casev1.CoachAssigned { return &casev1.CoachAssigned{CoachId: id} }

func intakeCompleted(q casev1.QuestionType) *casev1.IntakeCompleted {
	return &casev1.IntakeCompleted{HeldOn: intakeOn.Proto(), QuestionType: q, Answers: sealed(clientKey)}
}

func consentGrantedTo(r Recipient, scopes ...casev1.ReportingScope) *casev1.ReportingConsentGranted {
	return &casev1.ReportingConsentGranted{Recipient: r.proto(), Scopes: scopes}
}

func outplacementStartedOn(d Date) *casev1.OutplacementStarted {
	return &casev1.OutplacementStarted{StartedOn: d.Proto(), Phase: phaseFarewell}
}

func placementAchievedOn(d Date) *casev1.PlacementAchieved {
	return &casev1.PlacementAchieved{Outcome: external, PlacedOn: d.Proto()}
}

func reintegrationStartedOn(d Date) *casev1.ReintegrationStarted {
	return &casev1.ReintegrationStarted{SickReportedOn: d.Proto(), Track: firstTrack}
}

func checkpointRecordedOn(kind casev1.CheckpointKind, d Date) *casev1.ReintegrationCheckpointRecorded {
	return &casev1.ReintegrationCheckpointRecorded{Kind: kind, HeldOn: d.Proto()}
}

func agencyAssigned(id string) *casev1.ReintegrationAgencyAssigned {
	return &casev1.ReintegrationAgencyAssigned{AgencyId: id}
}

func caseClosedOn(d Date, outcome casev1.CloseOutcome) *casev1.CaseClosed {
	return &casev1.CaseClosed{Outcome: outcome, ClosedOn: d.Proto()}
}

func events(es ...proto.Message) []proto.Message { return es }

// validCommands holds one valid command of every type, each accepted by the
// state validState builds.
func validCommands() map[string]Command {
	return map[string]Command{
		"OpenCase": OpenCase{ClientID: "client-7", Client: sealed(clientKey), BirthYear: 1980, InitiatedBy: byOrganisation,
			OrganisationID: "acme", Department: "Finance", Context: mismatch, Question: problemCase, OpenedOn: openedOn},
		"CompleteIntake":                  CompleteIntake{HeldOn: intakeOn, QuestionType: competence, Answers: sealed(clientKey), MobilityWillingness: 3, MobilityCapacity: 4},
		"ReclassifyQuestion":              ReclassifyQuestion{To: counseling, Reason: disguised},
		"AssignCoach":                     AssignCoach{CoachID: "coach-b"},
		"ReferCase":                       ReferCase{Target: toOutside, Reason: referralWarnings},
		"GrantReportingConsent":           GrantReportingConsent{Recipient: employerOf("acme"), Scopes: []casev1.ReportingScope{scopeProgress}},
		"RevokeReportingConsent":          RevokeReportingConsent{Recipient: agencyOf("werkfit")},
		"RecordSession":                   RecordSession{HeldOn: intakeOn.AddDays(7), Kind: coachingKind, DurationMinutes: 60},
		"AgreeDevelopmentPlan":            AgreeDevelopmentPlan{AgreedOn: intakeOn.AddDays(7), ReviewOn: intakeOn.AddDays(60), Goals: sealed(clientKey)},
		"ReviseDevelopmentPlan":           ReviseDevelopmentPlan{RevisedOn: intakeOn.AddDays(70), ReviewOn: intakeOn.AddDays(120), Goals: sealed(clientKey)},
		"StartOutplacement":               StartOutplacement{StartedOn: intakeOn, PlannedMonths: 6},
		"EnterOutplacementPhase":          EnterOutplacementPhase{Phase: orientation, EnteredOn: intakeOn.AddDays(30)},
		"RecordPlacement":                 RecordPlacement{Outcome: external, PlacedOn: intakeOn.AddDays(150)},
		"EndOutplacementWithoutPlacement": EndOutplacementWithoutPlacement{EndedOn: intakeOn.AddDays(180), Reason: termEnded, MarketReady: true},
		"StartReintegration":              StartReintegration{SickReportedOn: sickOn},
		"AssignAgency":                    AssignAgency{AgencyID: "werkfit"},
		"UnassignAgency":                  UnassignAgency{AgencyID: "werkfit", Reason: completed},
		"RecordCheckpoint":                RecordCheckpoint{Kind: problemAnalysis, HeldOn: sickOn.AddDays(35), LoadCapacity: &LoadCapacity{Percent: 50, HoursPerWeek: 20}},
		"StartSecondTrack":                StartSecondTrack{StartedOn: sickOn.AddDays(365)},
		"CloseCase":                       CloseCase{ClosedOn: Date{2026, time.March, 1}, Outcome: goalAchieved},
		"ReopenCase":                      ReopenCase{ReopenedOn: Date{2026, time.April, 1}, Reason: clientReturn},
		"EraseClientData":                 EraseClientData{Reason: onRequest},
	}
}
