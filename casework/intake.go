package casework

import (
	"slices"

	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// The commands about the career question: the intake classifies it, a
// reclassification changes it.

// Mobility scores run from 1 to 5; 0 means "not assessed".
const (
	minMobility = 1
	maxMobility = 5
)

// CompleteIntake records the intake's findings. A case has one intake.
type CompleteIntake struct {
	HeldOn       Date
	QuestionType casev1.QuestionType
	// Answers is the reason for coming and the five questions' answers
	// (plaintext koers.case.v1.IntakeAnswers).
	Answers         *eventv1.Sealed
	WarningSignals  []casev1.WarningSignal
	ReferralAdvised bool
	// MobilityWillingness and MobilityCapacity are 1 to 5, or 0 when not
	// assessed.
	MobilityWillingness int
	MobilityCapacity    int
}

// Validate checks the day, the question type, the sealed answers, the
// signals and the mobility scores.
func (c CompleteIntake) Validate() []FieldViolation {
	var v violations
	v.date("held_on", c.HeldOn)
	v.enum("question_type", c.QuestionType)
	v.sealed("answers", c.Answers, true)
	enumList(&v, "warning_signals", c.WarningSignals, false)
	v.mobility("mobility_willingness", c.MobilityWillingness)
	v.mobility("mobility_capacity", c.MobilityCapacity)
	return v
}

func (v *violations) mobility(field string, score int) {
	if score != 0 {
		v.intRange(field, score, minMobility, maxMobility)
	}
}

func (c CompleteIntake) decide(s State) ([]proto.Message, error) {
	if s.Intake.Completed {
		return nil, refuse(ErrIntakeAlreadyCompleted, "held on %s", s.Intake.HeldOn)
	}
	if err := s.sealedByClient(c.Answers); err != nil {
		return nil, err
	}
	return decided(&casev1.IntakeCompleted{
		HeldOn:              c.HeldOn.Proto(),
		QuestionType:        c.QuestionType,
		Answers:             c.Answers,
		WarningSignals:      slices.Clone(c.WarningSignals),
		ReferralAdvised:     c.ReferralAdvised,
		MobilityWillingness: uint32(c.MobilityWillingness),
		MobilityCapacity:    uint32(c.MobilityCapacity),
	})
}

// ReclassifyQuestion moves the career question to another type, with a
// reason: it developed, or turned out to be disguised.
type ReclassifyQuestion struct {
	To     casev1.QuestionType
	Reason casev1.ReclassificationReason
	// Explanation is optional unless Reason is OTHER (plaintext
	// koers.case.v1.Note).
	Explanation *eventv1.Sealed
}

// Validate checks the new type, the reason, and the explanation when the
// reason is OTHER.
func (c ReclassifyQuestion) Validate() []FieldViolation {
	var v violations
	v.enum("to", c.To)
	v.enum("reason", c.Reason)
	v.sealed("explanation", c.Explanation, c.Reason == casev1.ReclassificationReason_RECLASSIFICATION_REASON_OTHER)
	return v
}

func (c ReclassifyQuestion) decide(s State) ([]proto.Message, error) {
	switch {
	case !s.Intake.Completed:
		return nil, ErrIntakeNotCompleted
	case c.To == s.QuestionType:
		return nil, refuse(ErrQuestionTypeUnchanged, "%s", c.To)
	}
	if err := s.sealedByClient(c.Explanation); err != nil {
		return nil, err
	}
	return decided(&casev1.QuestionReclassified{
		From:        s.QuestionType,
		To:          c.To,
		Reason:      c.Reason,
		Explanation: c.Explanation,
	})
}
