package casework

import (
	"fmt"
	"strings"
)

// Kind says how the edge reports an *Error: which gRPC status code it maps
// to. The domain only names the situation.
type Kind int

const (
	// KindFailedPrecondition: the case's current state forbids the command
	// (gRPC FailedPrecondition).
	KindFailedPrecondition Kind = iota
	// KindAlreadyExists: the command would create what exists already
	// (gRPC AlreadyExists).
	KindAlreadyExists
	// KindNotFound: the command needs a case that was never opened
	// (gRPC NotFound).
	KindNotFound
)

// Error is a rule of the case that a command broke. The package's errors are
// the values below; Decide wraps one of them with the details of the case at
// hand, so callers match with errors.Is against a value, or take Reason and
// Kind with errors.As.
type Error struct {
	// Reason is a stable machine string, for example "CASE_CLOSED"; the gRPC
	// layer puts it in google.rpc.ErrorInfo. It never changes once shipped.
	Reason string
	// Kind says which status code reports it.
	Kind Kind
	// Message says the rule in a sentence a coach understands.
	Message string
}

// Error returns the rule's message.
func (e *Error) Error() string { return e.Message }

func failed(reason, message string) *Error {
	return &Error{Reason: reason, Kind: KindFailedPrecondition, Message: message}
}

// refuse wraps rule with the details of the case at hand.
func refuse(rule *Error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{rule}, args...)...)
}

// The rules of a case. Each is a distinct value; see Error.
var (
	// ErrCaseNotOpened: nothing can happen to a case before it is opened.
	ErrCaseNotOpened = &Error{Reason: "CASE_NOT_OPENED", Kind: KindNotFound,
		Message: "the case has not been opened"}
	// ErrCaseAlreadyOpened: a case is opened once.
	ErrCaseAlreadyOpened = &Error{Reason: "CASE_ALREADY_OPENED", Kind: KindAlreadyExists,
		Message: "the case is already opened"}
	// ErrCaseClosed: a closed case accepts only reopening and erasure.
	ErrCaseClosed = failed("CASE_CLOSED",
		"the case is closed; it can only be reopened or erased")
	// ErrCaseNotClosed: reopening, and erasure because the retention period
	// passed, need a closed case.
	ErrCaseNotClosed = failed("CASE_NOT_CLOSED", "the case is not closed")
	// ErrCaseErased: an erased case accepts nothing.
	ErrCaseErased = failed("CASE_ERASED",
		"the client's data was erased; the case accepts nothing more")
	// ErrSealedWithOtherKey: personal data must be sealed with the client's
	// own key, or erasing that key would leave it readable.
	ErrSealedWithOtherKey = failed("SEALED_WITH_OTHER_KEY",
		"personal data is sealed with a key other than the client's")
	// ErrDateOutOfOrder: a day lies before the day it must follow (a
	// placement before its outplacement, a close before the opening).
	ErrDateOutOfOrder = failed("DATE_OUT_OF_ORDER",
		"a date lies before the date it must follow")

	// ErrIntakeAlreadyCompleted: a case has one intake.
	ErrIntakeAlreadyCompleted = failed("INTAKE_ALREADY_COMPLETED",
		"the intake is already completed")
	// ErrIntakeNotCompleted: reclassifying the question and agreeing a
	// development plan need the intake's classification first.
	ErrIntakeNotCompleted = failed("INTAKE_NOT_COMPLETED",
		"the intake is not completed yet")
	// ErrQuestionTypeUnchanged: a reclassification must change the type.
	ErrQuestionTypeUnchanged = failed("QUESTION_TYPE_UNCHANGED",
		"the question already has that type")

	// ErrCoachAlreadyAssigned: assigning the coach who owns the case
	// changes nothing.
	ErrCoachAlreadyAssigned = failed("COACH_ALREADY_ASSIGNED",
		"that coach already owns the case")
	// ErrReferralToCurrentCoach: a referral to a colleague must name
	// another coach.
	ErrReferralToCurrentCoach = failed("REFERRAL_TO_CURRENT_COACH",
		"a case cannot be referred to the coach who owns it")

	// ErrConsentAlreadyGranted: the recipient already has exactly these
	// scopes.
	ErrConsentAlreadyGranted = failed("CONSENT_ALREADY_GRANTED",
		"the recipient already has this consent")
	// ErrConsentNotGranted: only a granted consent can be revoked.
	ErrConsentNotGranted = failed("CONSENT_NOT_GRANTED",
		"the recipient has no active consent")

	// ErrDevelopmentPlanAlreadyAgreed: a case has one plan; changes are
	// revisions.
	ErrDevelopmentPlanAlreadyAgreed = failed("DEVELOPMENT_PLAN_ALREADY_AGREED",
		"a development plan is already agreed; revise it instead")
	// ErrDevelopmentPlanNotAgreed: only an agreed plan can be revised.
	ErrDevelopmentPlanNotAgreed = failed("DEVELOPMENT_PLAN_NOT_AGREED",
		"no development plan has been agreed")

	// ErrOutplacementAlreadyRunning: one outplacement at a time.
	ErrOutplacementAlreadyRunning = failed("OUTPLACEMENT_ALREADY_RUNNING",
		"an outplacement is already running")
	// ErrOutplacementNotRunning: phases, placements and endings need a
	// running outplacement.
	ErrOutplacementNotRunning = failed("OUTPLACEMENT_NOT_RUNNING",
		"no outplacement is running")
	// ErrOutplacementPhaseNotForward: outplacement phases move forward only.
	ErrOutplacementPhaseNotForward = failed("OUTPLACEMENT_PHASE_NOT_FORWARD",
		"outplacement phases move forward only")
	// ErrPlacementAlreadyRecorded: an outplacement has one outcome.
	ErrPlacementAlreadyRecorded = failed("PLACEMENT_ALREADY_RECORDED",
		"the outplacement already has its outcome")
	// ErrPlacementNotRecorded: aftercare follows a placement.
	ErrPlacementNotRecorded = failed("PLACEMENT_NOT_RECORDED",
		"aftercare needs a placement first")
	// ErrOutplacementUnresolved: a case with a running outplacement closes
	// only after the outplacement's outcome is recorded, so that every
	// outplacement counts in the outcome split.
	ErrOutplacementUnresolved = failed("OUTPLACEMENT_UNRESOLVED",
		"the running outplacement has no outcome yet; record the placement or end it without placement")
	// ErrCloseOutcomeMismatch: the close outcome must fit the case, for
	// example a re-integration outcome needs a running re-integration.
	ErrCloseOutcomeMismatch = failed("CLOSE_OUTCOME_MISMATCH",
		"the close outcome does not fit the case")

	// ErrReintegrationAlreadyRunning: one re-integration at a time.
	ErrReintegrationAlreadyRunning = failed("REINTEGRATION_ALREADY_RUNNING",
		"a re-integration is already running")
	// ErrReintegrationNotRunning: checkpoints, agencies and the second track
	// need a running re-integration.
	ErrReintegrationNotRunning = failed("REINTEGRATION_NOT_RUNNING",
		"no re-integration is running")
	// ErrCheckpointBeforeSickReport: a checkpoint cannot precede the sick
	// report its deadlines count from.
	ErrCheckpointBeforeSickReport = failed("CHECKPOINT_BEFORE_SICK_REPORT",
		"the checkpoint's date lies before the sick report")
	// ErrSecondTrackAlreadyStarted: the second track starts once.
	ErrSecondTrackAlreadyStarted = failed("SECOND_TRACK_ALREADY_STARTED",
		"the second track has already started")
	// ErrSecondTrackNotDue: a second track starts after the first-year
	// evaluation, or earlier only on a recorded decision to start it.
	ErrSecondTrackNotDue = failed("SECOND_TRACK_NOT_DUE",
		"a second track needs a first-year evaluation or a recorded decision to start it")

	// ErrAgencyConsentMissing: an agency works on a case only with the
	// client's active consent for that agency.
	ErrAgencyConsentMissing = failed("AGENCY_CONSENT_MISSING",
		"the client has not consented to reporting to this agency")
	// ErrAgencyAlreadyAssigned: one agency at a time.
	ErrAgencyAlreadyAssigned = failed("AGENCY_ALREADY_ASSIGNED",
		"an agency is already assigned; unassign it first")
	// ErrAgencyNotAssigned: only the assigned agency can be unassigned.
	ErrAgencyNotAssigned = failed("AGENCY_NOT_ASSIGNED",
		"that agency is not assigned to the case")
)

// Errors lists every rule of this package, for the edge's mapping tests and
// documentation.
var Errors = []*Error{
	ErrCaseNotOpened, ErrCaseAlreadyOpened, ErrCaseClosed, ErrCaseNotClosed,
	ErrCaseErased, ErrSealedWithOtherKey, ErrDateOutOfOrder,
	ErrIntakeAlreadyCompleted, ErrIntakeNotCompleted, ErrQuestionTypeUnchanged,
	ErrCoachAlreadyAssigned, ErrReferralToCurrentCoach,
	ErrConsentAlreadyGranted, ErrConsentNotGranted,
	ErrDevelopmentPlanAlreadyAgreed, ErrDevelopmentPlanNotAgreed,
	ErrOutplacementAlreadyRunning, ErrOutplacementNotRunning,
	ErrOutplacementPhaseNotForward, ErrPlacementAlreadyRecorded,
	ErrPlacementNotRecorded, ErrOutplacementUnresolved, ErrCloseOutcomeMismatch,
	ErrReintegrationAlreadyRunning, ErrReintegrationNotRunning,
	ErrCheckpointBeforeSickReport, ErrSecondTrackAlreadyStarted, ErrSecondTrackNotDue,
	ErrAgencyConsentMissing, ErrAgencyAlreadyAssigned, ErrAgencyNotAssigned,
}

// FieldViolation is one thing wrong with one field of a command. The gRPC
// layer turns a list of them into google.rpc.BadRequest.
type FieldViolation struct {
	// Field is the path of the field in snake_case, as the request messages
	// name it, for example "load_capacity.percent" or "scopes[1]".
	Field string
	// Description says what is wrong, for the person who sent it.
	Description string
}

// ValidationError is the answer of Decide to a command whose own fields are
// wrong: the violations its Validate method returned.
type ValidationError struct {
	Violations []FieldViolation
}

// Error lists the violations in one line.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid command: " + strings.Join(parts, "; ")
}
