package casework

import (
	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// The commands of the coaching itself: sessions and the personal
// development plan (POP).

// Session lengths, in minutes: a short call to a full-day assessment.
const (
	minSessionMinutes = 1
	maxSessionMinutes = 480
)

// RecordSession records a session held with the client.
type RecordSession struct {
	HeldOn          Date
	Kind            casev1.SessionKind
	DurationMinutes int
	// Notes are the coach's private notes, optional (plaintext
	// koers.case.v1.Note).
	Notes *eventv1.Sealed
}

// Validate checks the day, the kind, the duration (1 to 480 minutes) and the
// sealed notes if any.
func (c RecordSession) Validate() []FieldViolation {
	var v violations
	v.date("held_on", c.HeldOn)
	v.enum("kind", c.Kind)
	v.intRange("duration_minutes", c.DurationMinutes, minSessionMinutes, maxSessionMinutes)
	v.sealed("notes", c.Notes, false)
	return v
}

func (c RecordSession) decide(s State) ([]proto.Message, error) {
	if err := s.sealedByClient(c.Notes); err != nil {
		return nil, err
	}
	return decided(&casev1.SessionRecorded{
		HeldOn:          c.HeldOn.Proto(),
		Kind:            c.Kind,
		DurationMinutes: uint32(c.DurationMinutes),
		Notes:           c.Notes,
	})
}

// AgreeDevelopmentPlan records the personal development plan client and
// coach agreed after the intake. A case has one plan; later changes are
// revisions.
type AgreeDevelopmentPlan struct {
	AgreedOn Date
	ReviewOn Date
	// Goals is the plan's content (plaintext koers.case.v1.DevelopmentGoals).
	Goals *eventv1.Sealed
}

// Validate checks the days (the review not before the agreement) and the
// sealed goals.
func (c AgreeDevelopmentPlan) Validate() []FieldViolation {
	var v violations
	v.date("agreed_on", c.AgreedOn)
	v.date("review_on", c.ReviewOn)
	v.notBefore("review_on", c.ReviewOn, "agreed_on", c.AgreedOn)
	v.sealed("goals", c.Goals, true)
	return v
}

func (c AgreeDevelopmentPlan) decide(s State) ([]proto.Message, error) {
	switch {
	case !s.Intake.Completed:
		return nil, ErrIntakeNotCompleted
	case s.Plan.Agreed:
		return nil, refuse(ErrDevelopmentPlanAlreadyAgreed, "agreed on %s", s.Plan.AgreedOn)
	}
	if err := s.sealedByClient(c.Goals); err != nil {
		return nil, err
	}
	return decided(&casev1.DevelopmentPlanAgreed{
		AgreedOn: c.AgreedOn.Proto(),
		ReviewOn: c.ReviewOn.Proto(),
		Goals:    c.Goals,
	})
}

// ReviseDevelopmentPlan records a review of the plan and its goals as they
// are now.
type ReviseDevelopmentPlan struct {
	RevisedOn Date
	ReviewOn  Date
	// Goals replaces the plan's content as a whole (plaintext
	// koers.case.v1.DevelopmentGoals).
	Goals *eventv1.Sealed
}

// Validate checks the days (the next review not before the revision) and the
// sealed goals.
func (c ReviseDevelopmentPlan) Validate() []FieldViolation {
	var v violations
	v.date("revised_on", c.RevisedOn)
	v.date("review_on", c.ReviewOn)
	v.notBefore("review_on", c.ReviewOn, "revised_on", c.RevisedOn)
	v.sealed("goals", c.Goals, true)
	return v
}

func (c ReviseDevelopmentPlan) decide(s State) ([]proto.Message, error) {
	if !s.Plan.Agreed {
		return nil, ErrDevelopmentPlanNotAgreed
	}
	if last := s.Plan.lastChangedOn(); c.RevisedOn.Before(last) {
		return nil, refuse(ErrDateOutOfOrder, "revised_on %s is before the plan's last change on %s", c.RevisedOn, last)
	}
	if err := s.sealedByClient(c.Goals); err != nil {
		return nil, err
	}
	return decided(&casev1.DevelopmentPlanRevised{
		RevisedOn: c.RevisedOn.Proto(),
		ReviewOn:  c.ReviewOn.Proto(),
		Goals:     c.Goals,
	})
}

// lastChangedOn is the day of the last revision, or of the agreement.
func (p DevelopmentPlan) lastChangedOn() Date {
	if p.RevisedOn.IsZero() {
		return p.AgreedOn
	}
	return p.RevisedOn
}
