package casework

import (
	"slices"
	"time"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// State is what the events of one case add up to: the fold of its history
// with Evolve. It is a value; Evolve returns a new one and never changes the
// old, so a state can be kept and compared. The zero State is a case that
// was never opened.
type State struct {
	// Stage is where the case stands; STAGE_UNSPECIFIED before it opens.
	Stage casev1.Stage

	// ClientID is the client's pseudonymous ID in the practice.
	ClientID string
	// Client holds the client's sealed details; nil after erasure.
	Client *eventv1.Sealed
	// ClientKeyID is the data key that seals the client's personal data;
	// every Sealed value of the case must use it.
	ClientKeyID string
	// BirthYear is the client's year of birth; 0 when not given.
	BirthYear int
	// InitiatedBy says whether the client or the employer asked.
	InitiatedBy casev1.Initiator
	// OrganisationID is the employer's ID; empty without an employer.
	OrganisationID string
	// Department is the client's department at the employer.
	Department string
	// Context and Question are the employer's situation and named question
	// (chapter table 1.2); Aims its further aims.
	Context  casev1.OrganisationalContext
	Question casev1.OrganisationalQuestion
	Aims     []casev1.OrganisationalAim
	// OpenedOn is the day the client was registered.
	OpenedOn Date

	// Intake holds the intake's findings.
	Intake Intake
	// QuestionType is the career question's current type: the intake's,
	// changed by every reclassification.
	QuestionType casev1.QuestionType
	// Reclassifications lists the changes of question type, oldest first.
	Reclassifications []Reclassification

	// CoachID is the coach who owns the case; empty when none is assigned.
	CoachID string
	// Referrals lists the case's referrals, oldest first.
	Referrals []Referral
	// Consents lists the recipients with active reporting consent, in the
	// order they were first granted.
	Consents []Consent

	// Sessions summarises the sessions recorded.
	Sessions Sessions
	// Plan is the personal development plan (POP).
	Plan DevelopmentPlan
	// Outplacement is the case's current or last outplacement.
	Outplacement Outplacement
	// Reintegration is the case's current or last re-integration.
	Reintegration Reintegration

	// Closure says how and when the case last closed.
	Closure Closure
	// Erasure says why the client's data was erased; unspecified while it
	// was not.
	Erasure casev1.ErasureReason
}

// Intake is what the intake found.
type Intake struct {
	// Completed is true once the intake is recorded.
	Completed bool
	// HeldOn is the intake's day.
	HeldOn Date
	// QuestionType is the type the intake gave the question; State's own
	// QuestionType follows later reclassifications.
	QuestionType casev1.QuestionType
	// WarningSignals are the signals that need other help first.
	WarningSignals []casev1.WarningSignal
	// ReferralAdvised is true when the coach advised other help.
	ReferralAdvised bool
	// MobilityWillingness and MobilityCapacity are 1 to 5, 0 when not
	// assessed.
	MobilityWillingness int
	MobilityCapacity    int
}

// Reclassification is one change of the question's type.
type Reclassification struct {
	From, To casev1.QuestionType
	Reason   casev1.ReclassificationReason
}

// Referral is one hand-over of the case.
type Referral struct {
	Target casev1.ReferralTarget
	// ColleagueCoachID is the colleague for a referral to a colleague.
	ColleagueCoachID string
	Reason           casev1.ReferralReason
}

// Recipient is a party that may receive reports about the case. It is
// comparable, so it can key a map.
type Recipient struct {
	Kind casev1.RecipientKind
	// ID is the organisation ID of an employer or the agency ID of an
	// agency.
	ID string
}

// Consent is a recipient's active reporting consent.
type Consent struct {
	Recipient Recipient
	Scopes    []casev1.ReportingScope
}

// Sessions summarises the sessions of a case.
type Sessions struct {
	// Count is how many sessions were recorded.
	Count int
	// SinceIntake counts those recorded after the intake was completed:
	// the first of them starts the coaching stage.
	SinceIntake int
	// Minutes is their summed duration.
	Minutes int
	// LastHeldOn is the latest session day.
	LastHeldOn Date
}

// DevelopmentPlan is the state of the personal development plan.
type DevelopmentPlan struct {
	// Agreed is true once a plan is agreed.
	Agreed bool
	// AgreedOn is the day it was agreed; RevisedOn the day of the last
	// revision, zero before any.
	AgreedOn  Date
	RevisedOn Date
	// ReviewOn is the day of the next planned review.
	ReviewOn Date
	// Revisions counts the revisions.
	Revisions int
}

// Outplacement is the state of an outplacement.
type Outplacement struct {
	// Running is true from its start until it ends without placement or the
	// case closes. A placement does not end it: aftercare follows.
	Running bool
	// StartedOn is its first day; zero when the case never had one.
	StartedOn Date
	// PlannedMonths is the agreed length; 0 when none was agreed.
	PlannedMonths int
	// Phase is the current phase, entered on PhaseEnteredOn.
	Phase          casev1.OutplacementPhase
	PhaseEnteredOn Date
	// Outcome is unspecified until a placement or an ending without one.
	Outcome casev1.PlacementOutcome
	// PlacedOn is the first day of the new work, after a placement.
	PlacedOn Date
	// EndedOn, EndReason and MarketReady describe an ending without
	// placement.
	EndedOn     Date
	EndReason   casev1.OutplacementEndReason
	MarketReady bool
}

// Reintegration is the state of a re-integration after sick leave.
type Reintegration struct {
	// Running is true from its start until the case closes.
	Running bool
	// SickReportedOn is the day of the sick report; deadlines count from it.
	SickReportedOn Date
	// Track is FIRST, or SECOND once the second track started (on
	// SecondTrackStartedOn).
	Track                casev1.ReintegrationTrack
	SecondTrackStartedOn Date
	// Checkpoints are the statutory checkpoints recorded, in the order they
	// were recorded.
	Checkpoints []Checkpoint
	// LoadCapacity is the latest assessment recorded at a checkpoint; nil
	// before any.
	LoadCapacity *LoadCapacity
	// AgencyID is the assigned re-integration agency; empty when none.
	AgencyID string
}

// Checkpoint is a statutory checkpoint that took place.
type Checkpoint struct {
	Kind   casev1.CheckpointKind
	HeldOn Date
	// LoadCapacity is what was assessed at it; nil when nothing was.
	LoadCapacity *LoadCapacity
	// SecondTrackDecision is what a SECOND_TRACK_DECISION checkpoint
	// decided; unspecified for the other kinds.
	SecondTrackDecision casev1.SecondTrackDecision
}

// LoadCapacity is what the client can still do (belastbaarheid). Never a
// diagnosis.
type LoadCapacity struct {
	// Percent of the contract, 0 to 100.
	Percent int
	// HoursPerWeek in whole hours, 0 to 60.
	HoursPerWeek int
	// FunctionalCapabilityList is true when an FML was drawn up.
	FunctionalCapabilityList bool
}

// Closure is how and when the case last closed.
type Closure struct {
	// Closed is true while the case is closed; a reopening makes it false
	// and keeps the rest as the last close.
	Closed   bool
	ClosedOn Date
	Outcome  casev1.CloseOutcome
	// ReopenedOn is the day of the last reopening; zero before any.
	ReopenedOn Date
	// Reopenings counts the reopenings.
	Reopenings int
}

// IsOpen reports whether the case accepts work: opened, not closed, not
// erased.
func (s State) IsOpen() bool {
	return s.Stage != casev1.Stage_STAGE_UNSPECIFIED && !s.Closure.Closed && !s.IsErased()
}

// IsErased reports whether the client's data was erased.
func (s State) IsErased() bool { return s.Erasure != casev1.ErasureReason_ERASURE_REASON_UNSPECIFIED }

// Consent returns the active consent of a recipient, and whether there is
// one.
func (s State) Consent(r Recipient) (Consent, bool) {
	i := slices.IndexFunc(s.Consents, func(c Consent) bool { return c.Recipient == r })
	if i < 0 {
		return Consent{}, false
	}
	return s.Consents[i], true
}

// Deadlines returns the statutory checkpoints of the running or last
// re-integration as of the instant at (see Schedule); nil when the case
// never had one.
func (s State) Deadlines(at time.Time) []Deadline {
	r := s.Reintegration
	if r.SickReportedOn.IsZero() {
		return nil
	}
	return Schedule(r.SickReportedOn, r.Checkpoints, at)
}

// stage derives the Stage from the rest of the state.
func (s State) stage() casev1.Stage {
	switch {
	case s.ClientID == "":
		return casev1.Stage_STAGE_UNSPECIFIED
	case s.IsErased():
		return casev1.Stage_STAGE_ERASED
	case s.Closure.Closed:
		return casev1.Stage_STAGE_CLOSED
	case s.Reintegration.Running:
		return casev1.Stage_STAGE_REINTEGRATION
	case s.Outplacement.Running:
		return casev1.Stage_STAGE_OUTPLACEMENT
	case s.Intake.Completed && (s.Plan.Agreed || s.Sessions.SinceIntake > 0):
		return casev1.Stage_STAGE_COACHING
	case s.Intake.Completed:
		return casev1.Stage_STAGE_INTAKE_COMPLETED
	default:
		return casev1.Stage_STAGE_OPENED
	}
}

// appended returns list with item at its end without touching list's
// backing array, which an earlier State may share.
func appended[T any](list []T, item T) []T {
	return append(slices.Clip(list), item)
}
