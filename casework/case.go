package casework

import (
	"slices"

	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// The commands of a case's lifecycle: opening, ownership, referral, closing,
// reopening and erasure.

// OpenCase starts a client's trajectory. With a CoachID the coach owns the
// case from the start.
type OpenCase struct {
	// ClientID is the client's pseudonymous ID in the practice.
	ClientID string
	// Client is the client's details, sealed with the client's key
	// (plaintext koers.case.v1.ClientDetails). Its key seals every later
	// piece of the client's personal data in the case.
	Client         *eventv1.Sealed
	BirthYear      int
	InitiatedBy    casev1.Initiator
	OrganisationID string
	Department     string
	Context        casev1.OrganisationalContext
	Question       casev1.OrganisationalQuestion
	Aims           []casev1.OrganisationalAim
	OpenedOn       Date
	// CoachID is optional.
	CoachID string
}

// Ages a client can have at opening, for the birth year's check: from
// school leavers choosing a study to people far past retirement age.
const (
	minClientAge = 12
	maxClientAge = 100
)

// questionContext is the context each named organisational question belongs
// to (chapter table 1.2).
var questionContext = map[casev1.OrganisationalQuestion]casev1.OrganisationalContext{
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_TALENT_POOL:              casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_GROWTH,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_MANAGEMENT_DEVELOPMENT:   casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_GROWTH,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_TALENT_DEVELOPMENT:       casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_GROWTH,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PROBLEM_CASE:             casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_MISMATCH,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PREDICTABLE_STAGNATION:   casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_MISMATCH,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_FULL_BLOCKADE:            casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_MISMATCH,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_FORCED_INTERNAL_MOBILITY: casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_REORGANISATION,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT:             casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_REORGANISATION,
}

// ContextOf returns the organisational context a named question belongs to;
// unspecified for an unspecified or unknown question.
func ContextOf(q casev1.OrganisationalQuestion) casev1.OrganisationalContext {
	return questionContext[q]
}

// Validate checks the fields: a client and their sealed details, a known
// initiator, the employer when the employer asked, and a named question only
// with the context it belongs to. Context and question stay optional even
// when the employer asked: chapter table 1.2 covers career questions, and a
// re-integration after sick leave has no row in it.
func (c OpenCase) Validate() []FieldViolation {
	var v violations
	v.subjectID("client_id", c.ClientID, true)
	v.sealed("client", c.Client, true)
	v.date("opened_on", c.OpenedOn)
	c.validateBirthYear(&v)
	v.enum("initiated_by", c.InitiatedBy)
	c.validateOrganisation(&v)
	v.subjectID("coach_id", c.CoachID, false)
	return v
}

func (c OpenCase) validateBirthYear(v *violations) {
	if c.BirthYear == 0 || !c.OpenedOn.IsValid() {
		return
	}
	v.intRange("birth_year", c.BirthYear, c.OpenedOn.Year-maxClientAge, c.OpenedOn.Year-minClientAge)
}

func (c OpenCase) validateOrganisation(v *violations) {
	byOrganisation := c.InitiatedBy == casev1.Initiator_INITIATOR_ORGANISATION
	v.tokenID("organisation_id", c.OrganisationID, byOrganisation)
	v.text("department", c.Department, MaxDepartmentLength)
	if c.Department != "" && c.OrganisationID == "" {
		v.add("department", "needs organisation_id")
	}
	v.optionalEnum("organisational_context", c.Context)
	v.optionalEnum("organisational_question", c.Question)
	if c.Question != 0 && c.Context != 0 && known(c.Question) && ContextOf(c.Question) != c.Context {
		v.add("organisational_question", "%s belongs to %s, not %s", c.Question, ContextOf(c.Question), c.Context)
	}
	if c.Question != 0 && c.Context == 0 {
		v.add("organisational_context", "required with organisational_question")
	}
	enumList(v, "organisational_aims", c.Aims, false)
}

// opensCase marks the command that may meet a case not yet opened.
func (OpenCase) opensCase() {}

func (c OpenCase) decide(State) ([]proto.Message, error) {
	events := []proto.Message{&casev1.CaseOpened{
		ClientId:               c.ClientID,
		Client:                 c.Client,
		BirthYear:              int32(c.BirthYear),
		InitiatedBy:            c.InitiatedBy,
		OrganisationId:         c.OrganisationID,
		Department:             c.Department,
		OrganisationalContext:  c.Context,
		OrganisationalQuestion: c.Question,
		OrganisationalAims:     slices.Clone(c.Aims),
		OpenedOn:               c.OpenedOn.Proto(),
	}}
	if c.CoachID != "" {
		events = append(events, &casev1.CoachAssigned{CoachId: c.CoachID})
	}
	return events, nil
}

// AssignCoach makes a coach the owner of the case, replacing any other.
type AssignCoach struct {
	CoachID string
}

// Validate checks that a coach is named.
func (c AssignCoach) Validate() []FieldViolation {
	var v violations
	v.subjectID("coach_id", c.CoachID, true)
	return v
}

func (c AssignCoach) decide(s State) ([]proto.Message, error) {
	if c.CoachID == s.CoachID {
		return nil, refuse(ErrCoachAlreadyAssigned, "coach %q", c.CoachID)
	}
	return decided(&casev1.CoachAssigned{CoachId: c.CoachID})
}

// ReferCase hands the case to a colleague, who becomes its coach, or to a
// professional outside the practice, when the question is deeper than the
// coach can handle or other help is needed first.
type ReferCase struct {
	Target casev1.ReferralTarget
	// ColleagueCoachID is required for a colleague and empty otherwise.
	ColleagueCoachID string
	Reason           casev1.ReferralReason
	// Details is optional unless Reason is OTHER (plaintext
	// koers.case.v1.Note).
	Details *eventv1.Sealed
}

// Validate checks the target and reason, the colleague's ID when the target
// is a colleague, and the details when the reason is OTHER.
func (c ReferCase) Validate() []FieldViolation {
	var v violations
	v.enum("target", c.Target)
	toColleague := c.Target == casev1.ReferralTarget_REFERRAL_TARGET_COLLEAGUE
	v.subjectID("colleague_coach_id", c.ColleagueCoachID, toColleague)
	if !toColleague && c.ColleagueCoachID != "" {
		v.add("colleague_coach_id", "only for a referral to a colleague")
	}
	v.enum("reason", c.Reason)
	v.sealed("details", c.Details, c.Reason == casev1.ReferralReason_REFERRAL_REASON_OTHER)
	return v
}

func (c ReferCase) decide(s State) ([]proto.Message, error) {
	if err := s.sealedByClient(c.Details); err != nil {
		return nil, err
	}
	referred := &casev1.CaseReferred{
		Target:           c.Target,
		ColleagueCoachId: c.ColleagueCoachID,
		Reason:           c.Reason,
		Details:          c.Details,
	}
	if c.Target != casev1.ReferralTarget_REFERRAL_TARGET_COLLEAGUE {
		return decided(referred)
	}
	if c.ColleagueCoachID == s.CoachID {
		return nil, refuse(ErrReferralToCurrentCoach, "coach %q", c.ColleagueCoachID)
	}
	return decided(referred, &casev1.CoachAssigned{CoachId: c.ColleagueCoachID})
}

// CloseCase ends the trajectory, and with it any running outplacement or
// re-integration. An assigned agency is unassigned right after the close,
// so that it still receives the close.
type CloseCase struct {
	ClosedOn Date
	Outcome  casev1.CloseOutcome
	// Summary is optional unless Outcome is OTHER (plaintext
	// koers.case.v1.Note).
	Summary *eventv1.Sealed
}

// Validate checks the day, the outcome, and the summary when the outcome is
// OTHER.
func (c CloseCase) Validate() []FieldViolation {
	var v violations
	v.date("closed_on", c.ClosedOn)
	v.enum("outcome", c.Outcome)
	v.sealed("summary", c.Summary, c.Outcome == casev1.CloseOutcome_CLOSE_OUTCOME_OTHER)
	return v
}

func (c CloseCase) decide(s State) ([]proto.Message, error) {
	if err := c.check(s); err != nil {
		return nil, err
	}
	events := []proto.Message{&casev1.CaseClosed{
		Outcome:  c.Outcome,
		ClosedOn: c.ClosedOn.Proto(),
		Summary:  c.Summary,
	}}
	if agency := s.Reintegration.AgencyID; agency != "" {
		events = append(events, &casev1.ReintegrationAgencyUnassigned{
			AgencyId: agency,
			Reason:   casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CASE_CLOSED,
		})
	}
	return events, nil
}

func (c CloseCase) check(s State) error {
	if err := s.sealedByClient(c.Summary); err != nil {
		return err
	}
	if c.ClosedOn.Before(s.OpenedOn) {
		return refuse(ErrDateOutOfOrder, "closed_on %s is before the opening on %s", c.ClosedOn, s.OpenedOn)
	}
	out := s.Outplacement
	if out.Running && out.Outcome == casev1.PlacementOutcome_PLACEMENT_OUTCOME_UNSPECIFIED {
		return ErrOutplacementUnresolved
	}
	return c.checkOutcome(s)
}

// checkOutcome makes the outcome fit the case: re-integration outcomes need
// a running re-integration, and "outplacement concluded" an outplacement
// with its outcome.
func (c CloseCase) checkOutcome(s State) error {
	switch c.Outcome {
	case casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER,
		casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER,
		casev1.CloseOutcome_CLOSE_OUTCOME_DISABILITY_BENEFIT,
		casev1.CloseOutcome_CLOSE_OUTCOME_EMPLOYMENT_ENDED:
		if !s.Reintegration.Running {
			return refuse(ErrCloseOutcomeMismatch, "%s needs a running re-integration", c.Outcome)
		}
	case casev1.CloseOutcome_CLOSE_OUTCOME_OUTPLACEMENT_CONCLUDED:
		if s.Outplacement.Outcome == casev1.PlacementOutcome_PLACEMENT_OUTCOME_UNSPECIFIED {
			return refuse(ErrCloseOutcomeMismatch, "%s needs an outplacement with its outcome", c.Outcome)
		}
	}
	return nil
}

// ReopenCase opens a closed case again. No outplacement or re-integration
// runs after it; a new one is started with its own command.
type ReopenCase struct {
	ReopenedOn Date
	Reason     casev1.ReopenReason
}

// Validate checks the day and the reason.
func (c ReopenCase) Validate() []FieldViolation {
	var v violations
	v.date("reopened_on", c.ReopenedOn)
	v.enum("reason", c.Reason)
	return v
}

// acceptedWhenClosed marks a command a closed case accepts.
func (ReopenCase) acceptedWhenClosed() {}

func (c ReopenCase) decide(s State) ([]proto.Message, error) {
	if !s.Closure.Closed {
		return nil, ErrCaseNotClosed
	}
	if c.ReopenedOn.Before(s.Closure.ClosedOn) {
		return nil, refuse(ErrDateOutOfOrder, "reopened_on %s is before the close on %s", c.ReopenedOn, s.Closure.ClosedOn)
	}
	return decided(&casev1.CaseReopened{ReopenedOn: c.ReopenedOn.Proto(), Reason: c.Reason})
}

// EraseClientData records that the client's data key was destroyed. On the
// client's request it may happen at any time; when the retention period
// expired, only to a closed case.
type EraseClientData struct {
	Reason casev1.ErasureReason
}

// Validate checks the reason.
func (c EraseClientData) Validate() []FieldViolation {
	var v violations
	v.enum("reason", c.Reason)
	return v
}

func (EraseClientData) acceptedWhenClosed() {}

func (c EraseClientData) decide(s State) ([]proto.Message, error) {
	if c.Reason == casev1.ErasureReason_ERASURE_REASON_RETENTION_EXPIRED && !s.Closure.Closed {
		return nil, refuse(ErrCaseNotClosed, "a retention period runs only after the close")
	}
	return decided(&casev1.ClientDataErased{Reason: c.Reason})
}
