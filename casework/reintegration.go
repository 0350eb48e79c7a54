package casework

import (
	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// The commands of a re-integration after sick leave under the Gatekeeper
// Act: its start, the agency, the statutory checkpoints and the second
// track.

// Ranges of a load-capacity assessment.
const (
	maxLoadPercent = 100
	maxLoadHours   = 60
)

const (
	firstTrack         = casev1.ReintegrationTrack_REINTEGRATION_TRACK_FIRST
	secondTrack        = casev1.ReintegrationTrack_REINTEGRATION_TRACK_SECOND
	decisionCheckpoint = casev1.CheckpointKind_CHECKPOINT_KIND_SECOND_TRACK_DECISION
	firstYearEval      = casev1.CheckpointKind_CHECKPOINT_KIND_FIRST_YEAR_EVALUATION
	decideStart        = casev1.SecondTrackDecision_SECOND_TRACK_DECISION_START
)

// StartReintegration starts a re-integration from the day of the sick
// report; a case runs one at a time.
type StartReintegration struct {
	SickReportedOn Date
	// Track is the track it starts on; unspecified means FIRST.
	Track casev1.ReintegrationTrack
}

// Validate checks the sick-report day and the track.
func (c StartReintegration) Validate() []FieldViolation {
	var v violations
	v.date("sick_reported_on", c.SickReportedOn)
	v.optionalEnum("track", c.Track)
	return v
}

func (c StartReintegration) decide(s State) ([]proto.Message, error) {
	if s.Reintegration.Running {
		return nil, refuse(ErrReintegrationAlreadyRunning, "sick report on %s", s.Reintegration.SickReportedOn)
	}
	track := c.Track
	if track == 0 {
		track = firstTrack
	}
	return decided(&casev1.ReintegrationStarted{SickReportedOn: c.SickReportedOn.Proto(), Track: track})
}

// AssignAgency puts a re-integration agency on the running re-integration.
// The client must have consented to reporting to that agency, and only one
// agency works on a case at a time.
type AssignAgency struct {
	AgencyID string
}

// Validate checks the agency's ID.
func (c AssignAgency) Validate() []FieldViolation {
	var v violations
	v.tokenID("agency_id", c.AgencyID, true)
	return v
}

func (c AssignAgency) decide(s State) ([]proto.Message, error) {
	r := s.Reintegration
	switch {
	case !r.Running:
		return nil, ErrReintegrationNotRunning
	case r.AgencyID != "":
		return nil, refuse(ErrAgencyAlreadyAssigned, "agency %q", r.AgencyID)
	}
	if _, ok := s.Consent(agencyRecipient(c.AgencyID)); !ok {
		return nil, refuse(ErrAgencyConsentMissing, "agency %q", c.AgencyID)
	}
	return decided(&casev1.ReintegrationAgencyAssigned{AgencyId: c.AgencyID})
}

// UnassignAgency takes the assigned agency off the case. The reasons
// CONSENT_REVOKED and CASE_CLOSED are Koers' own: it unassigns by itself
// when those happen.
type UnassignAgency struct {
	// AgencyID names the agency expected to be assigned, so that a stale
	// request cannot take off an agency assigned in between.
	AgencyID string
	Reason   casev1.AgencyUnassignmentReason
}

// Validate checks the agency's ID and a reason a caller may give.
func (c UnassignAgency) Validate() []FieldViolation {
	var v violations
	v.tokenID("agency_id", c.AgencyID, true)
	v.enum("reason", c.Reason)
	switch c.Reason {
	case casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CONSENT_REVOKED,
		casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CASE_CLOSED:
		v.add("reason", "%s is recorded by Koers itself", c.Reason)
	}
	return v
}

func (c UnassignAgency) decide(s State) ([]proto.Message, error) {
	if c.AgencyID != s.Reintegration.AgencyID {
		return nil, refuse(ErrAgencyNotAssigned, "agency %q", c.AgencyID)
	}
	return decided(&casev1.ReintegrationAgencyUnassigned{AgencyId: c.AgencyID, Reason: c.Reason})
}

// RecordCheckpoint records that a statutory checkpoint took place, on a day
// not before the sick report.
type RecordCheckpoint struct {
	Kind   casev1.CheckpointKind
	HeldOn Date
	// LoadCapacity is what was assessed, if anything; nil otherwise.
	LoadCapacity *LoadCapacity
	// SecondTrackDecision is required for a SECOND_TRACK_DECISION checkpoint
	// and must be unspecified for the others.
	SecondTrackDecision casev1.SecondTrackDecision
	// Notes are optional (plaintext koers.case.v1.Note).
	Notes *eventv1.Sealed
}

// Validate checks the kind, the day, the load capacity's ranges (0 to 100
// percent, 0 to 60 hours), the decision and the sealed notes.
func (c RecordCheckpoint) Validate() []FieldViolation {
	var v violations
	v.enum("kind", c.Kind)
	v.date("held_on", c.HeldOn)
	if l := c.LoadCapacity; l != nil {
		v.intRange("load_capacity.percent", l.Percent, 0, maxLoadPercent)
		v.intRange("load_capacity.hours_per_week", l.HoursPerWeek, 0, maxLoadHours)
	}
	if c.Kind == decisionCheckpoint {
		v.enum("second_track_decision", c.SecondTrackDecision)
	} else if c.SecondTrackDecision != 0 {
		v.add("second_track_decision", "only for a %s checkpoint", decisionCheckpoint)
	}
	v.sealed("notes", c.Notes, false)
	return v
}

func (c RecordCheckpoint) decide(s State) ([]proto.Message, error) {
	r := s.Reintegration
	switch {
	case !r.Running:
		return nil, ErrReintegrationNotRunning
	case c.HeldOn.Before(r.SickReportedOn):
		return nil, refuse(ErrCheckpointBeforeSickReport, "held_on %s, sick report on %s", c.HeldOn, r.SickReportedOn)
	}
	if err := s.sealedByClient(c.Notes); err != nil {
		return nil, err
	}
	return decided(&casev1.ReintegrationCheckpointRecorded{
		Kind:                c.Kind,
		HeldOn:              c.HeldOn.Proto(),
		LoadCapacity:        c.LoadCapacity.proto(),
		SecondTrackDecision: c.SecondTrackDecision,
		Notes:               c.Notes,
	})
}

func (l *LoadCapacity) proto() *casev1.LoadCapacity {
	if l == nil {
		return nil
	}
	return &casev1.LoadCapacity{
		Percent:                  uint32(l.Percent),
		HoursPerWeek:             uint32(l.HoursPerWeek),
		FunctionalCapabilityList: l.FunctionalCapabilityList,
	}
}

// StartSecondTrack starts the search for work with another employer. It
// needs a first-year evaluation, or, for an earlier start, a recorded
// decision to start it. Starting is itself the decision: when the latest
// recorded decision is not START, a SECOND_TRACK_DECISION checkpoint on the
// same day precedes SecondTrackStarted, so deadline tracking sees it.
type StartSecondTrack struct {
	StartedOn Date
}

// Validate checks the day.
func (c StartSecondTrack) Validate() []FieldViolation {
	var v violations
	v.date("started_on", c.StartedOn)
	return v
}

func (c StartSecondTrack) decide(s State) ([]proto.Message, error) {
	if err := c.check(s.Reintegration); err != nil {
		return nil, err
	}
	started := &casev1.SecondTrackStarted{StartedOn: c.StartedOn.Proto()}
	if s.Reintegration.latestDecision() == decideStart {
		return decided(started)
	}
	decision := &casev1.ReintegrationCheckpointRecorded{
		Kind:                decisionCheckpoint,
		HeldOn:              c.StartedOn.Proto(),
		SecondTrackDecision: decideStart,
	}
	return decided(decision, started)
}

func (c StartSecondTrack) check(r Reintegration) error {
	switch {
	case !r.Running:
		return ErrReintegrationNotRunning
	case r.Track == secondTrack:
		return refuse(ErrSecondTrackAlreadyStarted, "track %s", r.Track)
	case c.StartedOn.Before(r.SickReportedOn):
		return refuse(ErrDateOutOfOrder, "started_on %s is before the sick report on %s", c.StartedOn, r.SickReportedOn)
	case !r.has(firstYearEval) && r.latestDecision() != decideStart:
		return ErrSecondTrackNotDue
	}
	return nil
}

// has reports whether a checkpoint of the kind was recorded.
func (r Reintegration) has(kind casev1.CheckpointKind) bool {
	for _, c := range r.Checkpoints {
		if c.Kind == kind {
			return true
		}
	}
	return false
}

// latestDecision is the decision of the last SECOND_TRACK_DECISION
// checkpoint recorded; unspecified when none was.
func (r Reintegration) latestDecision() casev1.SecondTrackDecision {
	for i := len(r.Checkpoints) - 1; i >= 0; i-- {
		if r.Checkpoints[i].Kind == decisionCheckpoint {
			return r.Checkpoints[i].SecondTrackDecision
		}
	}
	return 0
}
