package casework

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

func TestValidCommandsHaveNoViolations(t *testing.T) {
	for name, cmd := range validCommands() {
		if v := cmd.Validate(); v != nil {
			t.Errorf("%s: %v", name, v)
		}
	}
}

// validateCase is a command with wrong fields and the field paths Validate
// must name, in order.
type validateCase struct {
	name   string
	cmd    Command
	fields []string
}

func runValidate(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cmd.Validate()
			var fields []string
			for _, v := range got {
				fields = append(fields, v.Field)
				if v.Description == "" {
					t.Errorf("%s: no description", v.Field)
				}
			}
			if diff := cmp.Diff(tc.fields, fields); diff != "" {
				t.Errorf("violated fields (-want +got):\n%s\nviolations: %v", diff, got)
			}
		})
	}
}

func TestValidateOpenCase(t *testing.T) {
	valid := validCommands()["OpenCase"].(OpenCase)
	with := func(change func(*OpenCase)) OpenCase {
		c := valid
		change(&c)
		return c
	}
	runValidate(t, []validateCase{
		{"an empty command names every required field", OpenCase{},
			[]string{"client_id", "client", "opened_on", "initiated_by"}},
		{"a client-initiated case needs no organisation", with(func(c *OpenCase) {
			c.InitiatedBy, c.OrganisationID, c.Department, c.Context, c.Question = byClient, "", "", 0, 0
		}), nil},
		{"an organisation-initiated case needs the organisation", with(func(c *OpenCase) {
			c.OrganisationID, c.Department = "", ""
		}), []string{"organisation_id"}},
		{"an organisation-initiated case may leave out context and question", with(func(c *OpenCase) {
			c.Context, c.Question = 0, 0
		}), nil},
		{"a context may come without a named question", with(func(c *OpenCase) { c.Question = 0 }), nil},
		{"the question must belong to the context", with(func(c *OpenCase) { c.Context = growth }),
			[]string{"organisational_question"}},
		{"a question needs its context", with(func(c *OpenCase) { c.InitiatedBy, c.Context = byClient, 0 }),
			[]string{"organisational_context"}},
		{"a department needs an organisation", with(func(c *OpenCase) { c.InitiatedBy, c.OrganisationID, c.Context, c.Question = byClient, "", 0, 0 }),
			[]string{"department"}},
		{"organisation IDs are subject tokens", with(func(c *OpenCase) { c.OrganisationID = "Acme.Corp" }),
			[]string{"organisation_id"}},
		{"a department has no control characters", with(func(c *OpenCase) { c.Department = "Fin\nance" }),
			[]string{"department"}},
		{"a department is at most 100 characters", with(func(c *OpenCase) { c.Department = strings.Repeat("é", 101) }),
			[]string{"department"}},
		{"a client ID is valid UTF-8", with(func(c *OpenCase) { c.ClientID = "client-\xff" }), []string{"client_id"}},
		{"a department is valid UTF-8", with(func(c *OpenCase) { c.Department = "Fin\xffance" }), []string{"department"}},
		{"a client ID has no spaces", with(func(c *OpenCase) { c.ClientID = "client 7" }), []string{"client_id"}},
		{"a client ID is at most 128 characters", with(func(c *OpenCase) { c.ClientID = strings.Repeat("x", 129) }), []string{"client_id"}},
		{"the birth year makes the client 12 to 100 at opening: 12", with(func(c *OpenCase) { c.BirthYear = 2013 }), nil},
		{"the birth year makes the client 12 to 100 at opening: 11", with(func(c *OpenCase) { c.BirthYear = 2014 }), []string{"birth_year"}},
		{"the birth year makes the client 12 to 100 at opening: 100", with(func(c *OpenCase) { c.BirthYear = 1925 }), nil},
		{"the birth year makes the client 12 to 100 at opening: 101", with(func(c *OpenCase) { c.BirthYear = 1924 }), []string{"birth_year"}},
		{"the birth year may be left out", with(func(c *OpenCase) { c.BirthYear = 0 }), nil},
		{"the opening day is a calendar day", with(func(c *OpenCase) { c.OpenedOn = Date{2025, time.February, 29} }),
			[]string{"opened_on"}},
		{"enums are known values", with(func(c *OpenCase) { c.InitiatedBy = 9 }), []string{"initiated_by"}},
		{"aims are known and not repeated", with(func(c *OpenCase) {
			c.Aims = []casev1.OrganisationalAim{casev1.OrganisationalAim_ORGANISATIONAL_AIM_RETENTION, 0, casev1.OrganisationalAim_ORGANISATIONAL_AIM_RETENTION}
		}), []string{"organisational_aims[1]", "organisational_aims[2]"}},
		{"the client's seal has the shape of AES-GCM", with(func(c *OpenCase) {
			c.Client = &eventv1.Sealed{Nonce: make([]byte, 11), Ciphertext: make([]byte, 15)}
		}), []string{"client.key_id", "client.nonce", "client.ciphertext"}},
		{"a seal's key ID is at most 128 bytes", with(func(c *OpenCase) {
			c.Client = &eventv1.Sealed{KeyId: strings.Repeat("k", 129), Nonce: make([]byte, 12), Ciphertext: make([]byte, 16)}
		}), []string{"client.key_id"}},
		{"a seal is at most 64 KiB", with(func(c *OpenCase) {
			c.Client = &eventv1.Sealed{KeyId: clientKey, Nonce: make([]byte, 12), Ciphertext: make([]byte, MaxSealedBytes+1)}
		}), []string{"client.ciphertext"}},
		{"a coach ID is printable", with(func(c *OpenCase) { c.CoachID = "coach\x00" }), []string{"coach_id"}},
	})
}

func TestValidateCaseCommands(t *testing.T) {
	runValidate(t, []validateCase{
		{"an intake needs day, type and answers", CompleteIntake{}, []string{"held_on", "question_type", "answers"}},
		{"mobility scores are 1 to 5 or not assessed", CompleteIntake{HeldOn: intakeOn, QuestionType: choice, Answers: sealed(clientKey), MobilityWillingness: 6, MobilityCapacity: -1},
			[]string{"mobility_willingness", "mobility_capacity"}},
		{"warning signals are known and not repeated", CompleteIntake{HeldOn: intakeOn, QuestionType: choice, Answers: sealed(clientKey),
			WarningSignals: []casev1.WarningSignal{overload, overload, 7}}, []string{"warning_signals[1]", "warning_signals[2]"}},
		{"a reclassification needs a type and a reason", ReclassifyQuestion{}, []string{"to", "reason"}},
		{"a reclassification for another reason needs the explanation",
			ReclassifyQuestion{To: life, Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_OTHER}, []string{"explanation"}},
		{"a coach is named", AssignCoach{}, []string{"coach_id"}},
		{"a referral needs target and reason", ReferCase{}, []string{"target", "reason"}},
		{"a referral to a colleague names the colleague", ReferCase{Target: toColleague, Reason: beyondExpertise}, []string{"colleague_coach_id"}},
		{"a referral outside names no colleague", ReferCase{Target: toOutside, ColleagueCoachID: "coach-b", Reason: beyondExpertise},
			[]string{"colleague_coach_id"}},
		{"a referral for another reason needs details", ReferCase{Target: toOutside, Reason: casev1.ReferralReason_REFERRAL_REASON_OTHER},
			[]string{"details"}},
		{"a consent needs a recipient and a scope", GrantReportingConsent{}, []string{"recipient.kind", "recipient.id", "scopes"}},
		{"consent scopes are known and not repeated", GrantReportingConsent{Recipient: employerOf("acme"),
			Scopes: []casev1.ReportingScope{scopeContact, scopeContact}}, []string{"scopes[1]"}},
		{"a revocation needs a recipient", RevokeReportingConsent{Recipient: Recipient{Kind: 5, ID: "A B"}}, []string{"recipient.kind", "recipient.id"}},
		{"a session needs day, kind and duration", RecordSession{}, []string{"held_on", "kind", "duration_minutes"}},
		{"a session lasts 1 to 480 minutes: 480", RecordSession{HeldOn: intakeOn, Kind: assessmentKind, DurationMinutes: 480}, nil},
		{"a session lasts 1 to 480 minutes: 481", RecordSession{HeldOn: intakeOn, Kind: assessmentKind, DurationMinutes: 481}, []string{"duration_minutes"}},
		{"session notes are a seal", RecordSession{HeldOn: intakeOn, Kind: coachingKind, DurationMinutes: 1, Notes: &eventv1.Sealed{}},
			[]string{"notes.key_id", "notes.nonce", "notes.ciphertext"}},
		{"a plan needs days and goals", AgreeDevelopmentPlan{}, []string{"agreed_on", "review_on", "goals"}},
		{"a plan's review is not before its agreement", AgreeDevelopmentPlan{AgreedOn: intakeOn, ReviewOn: intakeOn.AddDays(-1), Goals: sealed(clientKey)},
			[]string{"review_on"}},
		{"a plan's review may be on the day of agreement", AgreeDevelopmentPlan{AgreedOn: intakeOn, ReviewOn: intakeOn, Goals: sealed(clientKey)}, nil},
		{"a revision needs days and goals", ReviseDevelopmentPlan{}, []string{"revised_on", "review_on", "goals"}},
		{"a revision's next review is not before it", ReviseDevelopmentPlan{RevisedOn: intakeOn, ReviewOn: intakeOn.AddDays(-1), Goals: sealed(clientKey)},
			[]string{"review_on"}},
		{"a close needs day and outcome", CloseCase{}, []string{"closed_on", "outcome"}},
		{"a close for another reason needs the summary", CloseCase{ClosedOn: intakeOn, Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_OTHER},
			[]string{"summary"}},
		{"a reopening needs day and reason", ReopenCase{}, []string{"reopened_on", "reason"}},
		{"an erasure needs a reason", EraseClientData{}, []string{"reason"}},
	})
}

func TestValidateTrajectoryCommands(t *testing.T) {
	runValidate(t, []validateCase{
		{"an outplacement needs a start day", StartOutplacement{}, []string{"started_on"}},
		{"an outplacement cannot start placed", StartOutplacement{StartedOn: intakeOn, Phase: phasePlacement}, []string{"phase"}},
		{"an outplacement cannot start in aftercare", StartOutplacement{StartedOn: intakeOn, Phase: phaseAftercare}, []string{"phase"}},
		{"an outplacement's planned length is 1 to 24 months", StartOutplacement{StartedOn: intakeOn, PlannedMonths: 25}, []string{"planned_months"}},
		{"a phase needs the phase and day", EnterOutplacementPhase{}, []string{"phase", "entered_on"}},
		{"the placement phase is entered by a placement", EnterOutplacementPhase{Phase: phasePlacement, EnteredOn: intakeOn}, []string{"phase"}},
		{"a placement needs outcome and day", RecordPlacement{}, []string{"outcome", "placed_on"}},
		{"no placement is not a placement", RecordPlacement{Outcome: noPlacement, PlacedOn: intakeOn}, []string{"outcome"}},
		{"an ending needs day and reason", EndOutplacementWithoutPlacement{}, []string{"ended_on", "reason"}},
		{"a re-integration needs the sick-report day", StartReintegration{}, []string{"sick_reported_on"}},
		{"a re-integration track is known", StartReintegration{SickReportedOn: sickOn, Track: 3}, []string{"track"}},
		{"an agency is named as a subject token", AssignAgency{AgencyID: "werk.fit"}, []string{"agency_id"}},
		{"an agency ID is at most 63 characters", AssignAgency{AgencyID: strings.Repeat("a", 64)}, []string{"agency_id"}},
		{"an unassignment needs agency and reason", UnassignAgency{}, []string{"agency_id", "reason"}},
		{"Koers' own unassignment reasons are not for callers: consent",
			UnassignAgency{AgencyID: "werkfit", Reason: consentRevokedR}, []string{"reason"}},
		{"Koers' own unassignment reasons are not for callers: close",
			UnassignAgency{AgencyID: "werkfit", Reason: caseClosedR}, []string{"reason"}},
		{"a checkpoint needs kind and day", RecordCheckpoint{}, []string{"kind", "held_on"}},
		{"load capacity is 0 to 100 percent and 0 to 60 hours: inside",
			RecordCheckpoint{Kind: problemAnalysis, HeldOn: sickOn, LoadCapacity: &LoadCapacity{Percent: 100, HoursPerWeek: 60}}, nil},
		{"load capacity is 0 to 100 percent and 0 to 60 hours: zero",
			RecordCheckpoint{Kind: problemAnalysis, HeldOn: sickOn, LoadCapacity: &LoadCapacity{}}, nil},
		{"load capacity is 0 to 100 percent and 0 to 60 hours: outside",
			RecordCheckpoint{Kind: problemAnalysis, HeldOn: sickOn, LoadCapacity: &LoadCapacity{Percent: 101, HoursPerWeek: 61}},
			[]string{"load_capacity.percent", "load_capacity.hours_per_week"}},
		{"load capacity is never negative",
			RecordCheckpoint{Kind: problemAnalysis, HeldOn: sickOn, LoadCapacity: &LoadCapacity{Percent: -1, HoursPerWeek: -1}},
			[]string{"load_capacity.percent", "load_capacity.hours_per_week"}},
		{"a second-track decision checkpoint says what was decided",
			RecordCheckpoint{Kind: decisionCheckpoint, HeldOn: sickOn}, []string{"second_track_decision"}},
		{"only a second-track decision checkpoint carries a decision",
			RecordCheckpoint{Kind: problemAnalysis, HeldOn: sickOn, SecondTrackDecision: decideStart}, []string{"second_track_decision"}},
		{"a second track needs its start day", StartSecondTrack{}, []string{"started_on"}},
	})
}
