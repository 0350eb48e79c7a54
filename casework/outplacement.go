package casework

import (
	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// The commands of an outplacement (uitstroombegeleiding): start, phases
// forward, and an outcome.

// maxPlannedMonths caps an outplacement's agreed length; 3 to 12 months is
// usual, a year and a half the exception.
const maxPlannedMonths = 24

const (
	phaseFarewell  = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_FAREWELL
	phasePlacement = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_PLACEMENT
	phaseAftercare = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_AFTERCARE
	noPlacement    = casev1.PlacementOutcome_PLACEMENT_OUTCOME_NO_PLACEMENT
	noOutcome      = casev1.PlacementOutcome_PLACEMENT_OUTCOME_UNSPECIFIED
)

// StartOutplacement starts an outplacement; a case runs one at a time.
type StartOutplacement struct {
	StartedOn Date
	// Phase is the phase it starts in; unspecified means FAREWELL. Never
	// PLACEMENT or AFTERCARE.
	Phase casev1.OutplacementPhase
	// PlannedMonths is the agreed length, 1 to 24, or 0 when none was
	// agreed.
	PlannedMonths int
}

// Validate checks the day, the starting phase and the planned length.
func (c StartOutplacement) Validate() []FieldViolation {
	var v violations
	v.date("started_on", c.StartedOn)
	v.optionalEnum("phase", c.Phase)
	if known(c.Phase) && c.Phase >= phasePlacement {
		v.add("phase", "an outplacement cannot start in %s", c.Phase)
	}
	if c.PlannedMonths != 0 {
		v.intRange("planned_months", c.PlannedMonths, 1, maxPlannedMonths)
	}
	return v
}

func (c StartOutplacement) decide(s State) ([]proto.Message, error) {
	if s.Outplacement.Running {
		return nil, refuse(ErrOutplacementAlreadyRunning, "started on %s", s.Outplacement.StartedOn)
	}
	phase := c.Phase
	if phase == 0 {
		phase = phaseFarewell
	}
	return decided(&casev1.OutplacementStarted{
		StartedOn:     c.StartedOn.Proto(),
		Phase:         phase,
		PlannedMonths: uint32(c.PlannedMonths),
	})
}

// EnterOutplacementPhase moves the running outplacement to a later phase. A
// phase may be skipped; PLACEMENT is entered by RecordPlacement, and
// AFTERCARE only after it.
type EnterOutplacementPhase struct {
	Phase     casev1.OutplacementPhase
	EnteredOn Date
}

// Validate checks the phase (not PLACEMENT) and the day.
func (c EnterOutplacementPhase) Validate() []FieldViolation {
	var v violations
	v.enum("phase", c.Phase)
	if c.Phase == phasePlacement {
		v.add("phase", "a placement is recorded with RecordPlacement")
	}
	v.date("entered_on", c.EnteredOn)
	return v
}

func (c EnterOutplacementPhase) decide(s State) ([]proto.Message, error) {
	out := s.Outplacement
	switch {
	case !out.Running:
		return nil, ErrOutplacementNotRunning
	case c.Phase <= out.Phase:
		return nil, refuse(ErrOutplacementPhaseNotForward, "from %s to %s", out.Phase, c.Phase)
	case c.Phase == phaseAftercare && out.Outcome == noOutcome:
		return nil, ErrPlacementNotRecorded
	case c.EnteredOn.Before(out.PhaseEnteredOn):
		return nil, refuse(ErrDateOutOfOrder, "entered_on %s is before the current phase began on %s", c.EnteredOn, out.PhaseEnteredOn)
	}
	return decided(&casev1.OutplacementPhaseEntered{Phase: c.Phase, EnteredOn: c.EnteredOn.Proto()})
}

// RecordPlacement records that the client found work: the outplacement
// enters its PLACEMENT phase and stays running for aftercare.
type RecordPlacement struct {
	// Outcome is INTERNAL, EXTERNAL or SELF_EMPLOYED; no placement is
	// EndOutplacementWithoutPlacement.
	Outcome  casev1.PlacementOutcome
	PlacedOn Date
}

// Validate checks the outcome (a placement, not NO_PLACEMENT) and the day.
func (c RecordPlacement) Validate() []FieldViolation {
	var v violations
	v.enum("outcome", c.Outcome)
	if c.Outcome == noPlacement {
		v.add("outcome", "no placement is recorded with EndOutplacementWithoutPlacement")
	}
	v.date("placed_on", c.PlacedOn)
	return v
}

func (c RecordPlacement) decide(s State) ([]proto.Message, error) {
	if err := s.Outplacement.unresolved(); err != nil {
		return nil, err
	}
	if start := s.Outplacement.StartedOn; c.PlacedOn.Before(start) {
		return nil, refuse(ErrDateOutOfOrder, "placed_on %s is before the outplacement started on %s", c.PlacedOn, start)
	}
	return decided(&casev1.PlacementAchieved{Outcome: c.Outcome, PlacedOn: c.PlacedOn.Proto()})
}

// EndOutplacementWithoutPlacement ends the running outplacement without
// work.
type EndOutplacementWithoutPlacement struct {
	EndedOn Date
	Reason  casev1.OutplacementEndReason
	// MarketReady is true when the client can approach the job market on
	// their own.
	MarketReady bool
}

// Validate checks the day and the reason.
func (c EndOutplacementWithoutPlacement) Validate() []FieldViolation {
	var v violations
	v.date("ended_on", c.EndedOn)
	v.enum("reason", c.Reason)
	return v
}

func (c EndOutplacementWithoutPlacement) decide(s State) ([]proto.Message, error) {
	if err := s.Outplacement.unresolved(); err != nil {
		return nil, err
	}
	if start := s.Outplacement.StartedOn; c.EndedOn.Before(start) {
		return nil, refuse(ErrDateOutOfOrder, "ended_on %s is before the outplacement started on %s", c.EndedOn, start)
	}
	return decided(&casev1.OutplacementEndedWithoutPlacement{
		EndedOn:     c.EndedOn.Proto(),
		Reason:      c.Reason,
		MarketReady: c.MarketReady,
	})
}

// unresolved checks that an outplacement runs and has no outcome yet.
func (o Outplacement) unresolved() error {
	switch {
	case !o.Running:
		return ErrOutplacementNotRunning
	case o.Outcome != noOutcome:
		return refuse(ErrPlacementAlreadyRecorded, "%s", o.Outcome)
	}
	return nil
}
