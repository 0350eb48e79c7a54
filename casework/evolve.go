package casework

import (
	"slices"

	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Evolve returns the state after event. It trusts the event, which Decide
// made from the state it followed, and never fails: an event type it does
// not know (from a newer Koers) leaves the state as it was. s itself is not
// changed.
func Evolve(s State, event proto.Message) State {
	switch e := event.(type) {
	case *casev1.CaseOpened:
		s = onCaseOpened(s, e)
	case *casev1.IntakeCompleted:
		s = onIntakeCompleted(s, e)
	case *casev1.QuestionReclassified:
		s.QuestionType = e.GetTo()
		s.Reclassifications = appended(s.Reclassifications, Reclassification{From: e.GetFrom(), To: e.GetTo(), Reason: e.GetReason()})
	case *casev1.CoachAssigned:
		s.CoachID = e.GetCoachId()
	case *casev1.CaseReferred:
		s.Referrals = appended(s.Referrals, Referral{Target: e.GetTarget(), ColleagueCoachID: e.GetColleagueCoachId(), Reason: e.GetReason()})
	case *casev1.ReportingConsentGranted:
		s.Consents = onConsentGranted(s.Consents, e)
	case *casev1.ReportingConsentRevoked:
		s.Consents = onConsentRevoked(s.Consents, recipientFromProto(e.GetRecipient()))
	case *casev1.SessionRecorded:
		s.Sessions = onSessionRecorded(s, e)
	case *casev1.DevelopmentPlanAgreed:
		s.Plan = DevelopmentPlan{Agreed: true, AgreedOn: DateFromProto(e.GetAgreedOn()), ReviewOn: DateFromProto(e.GetReviewOn())}
	case *casev1.DevelopmentPlanRevised:
		s.Plan = onPlanRevised(s.Plan, e)
	default:
		s = evolveTrajectory(s, event)
	}
	s.Stage = s.stage()
	return s
}

// evolveTrajectory folds the events of outplacement, re-integration and
// the case's end.
func evolveTrajectory(s State, event proto.Message) State {
	switch e := event.(type) {
	case *casev1.OutplacementStarted:
		s.Outplacement = onOutplacementStarted(e)
	case *casev1.OutplacementPhaseEntered:
		s.Outplacement.Phase = e.GetPhase()
		s.Outplacement.PhaseEnteredOn = DateFromProto(e.GetEnteredOn())
	case *casev1.PlacementAchieved:
		s.Outplacement = onPlacementAchieved(s.Outplacement, e)
	case *casev1.OutplacementEndedWithoutPlacement:
		s.Outplacement = onOutplacementEnded(s.Outplacement, e)
	case *casev1.ReintegrationStarted:
		s.Reintegration = Reintegration{Running: true, SickReportedOn: DateFromProto(e.GetSickReportedOn()), Track: e.GetTrack()}
	case *casev1.ReintegrationAgencyAssigned:
		s.Reintegration.AgencyID = e.GetAgencyId()
	case *casev1.ReintegrationAgencyUnassigned:
		s.Reintegration.AgencyID = ""
	case *casev1.ReintegrationCheckpointRecorded:
		s.Reintegration = onCheckpointRecorded(s.Reintegration, e)
	case *casev1.SecondTrackStarted:
		s.Reintegration.Track = secondTrack
		s.Reintegration.SecondTrackStartedOn = DateFromProto(e.GetStartedOn())
	case *casev1.CaseClosed:
		s = onCaseClosed(s, e)
	case *casev1.CaseReopened:
		s.Closure = onCaseReopened(s.Closure, e)
	case *casev1.ClientDataErased:
		s.Erasure = e.GetReason()
		s.Client = nil
	}
	return s
}

// Replay folds a case's history, oldest event first, into its current
// state.
func Replay(events []proto.Message) State {
	var s State
	for _, e := range events {
		s = Evolve(s, e)
	}
	return s
}

func onCaseOpened(s State, e *casev1.CaseOpened) State {
	s.ClientID = e.GetClientId()
	s.Client = e.GetClient()
	s.ClientKeyID = e.GetClient().GetKeyId()
	s.BirthYear = int(e.GetBirthYear())
	s.InitiatedBy = e.GetInitiatedBy()
	s.OrganisationID = e.GetOrganisationId()
	s.Department = e.GetDepartment()
	s.Context = e.GetOrganisationalContext()
	s.Question = e.GetOrganisationalQuestion()
	s.Aims = slices.Clone(e.GetOrganisationalAims())
	s.OpenedOn = DateFromProto(e.GetOpenedOn())
	return s
}

func onIntakeCompleted(s State, e *casev1.IntakeCompleted) State {
	s.Intake = Intake{
		Completed:           true,
		HeldOn:              DateFromProto(e.GetHeldOn()),
		QuestionType:        e.GetQuestionType(),
		WarningSignals:      slices.Clone(e.GetWarningSignals()),
		ReferralAdvised:     e.GetReferralAdvised(),
		MobilityWillingness: int(e.GetMobilityWillingness()),
		MobilityCapacity:    int(e.GetMobilityCapacity()),
	}
	s.QuestionType = e.GetQuestionType()
	return s
}

// onConsentGranted puts the recipient's new scopes in place of any old ones,
// keeping the recipient's place in the list.
func onConsentGranted(consents []Consent, e *casev1.ReportingConsentGranted) []Consent {
	c := Consent{Recipient: recipientFromProto(e.GetRecipient()), Scopes: slices.Clone(e.GetScopes())}
	i := slices.IndexFunc(consents, func(had Consent) bool { return had.Recipient == c.Recipient })
	if i < 0 {
		return appended(consents, c)
	}
	consents = slices.Clone(consents)
	consents[i] = c
	return consents
}

func onConsentRevoked(consents []Consent, r Recipient) []Consent {
	return slices.DeleteFunc(slices.Clone(consents), func(c Consent) bool { return c.Recipient == r })
}

func onSessionRecorded(s State, e *casev1.SessionRecorded) Sessions {
	out := s.Sessions
	out.Count++
	out.Minutes += int(e.GetDurationMinutes())
	if s.Intake.Completed {
		out.SinceIntake++
	}
	if held := DateFromProto(e.GetHeldOn()); held.After(out.LastHeldOn) {
		out.LastHeldOn = held
	}
	return out
}

func onPlanRevised(p DevelopmentPlan, e *casev1.DevelopmentPlanRevised) DevelopmentPlan {
	p.RevisedOn = DateFromProto(e.GetRevisedOn())
	p.ReviewOn = DateFromProto(e.GetReviewOn())
	p.Revisions++
	return p
}

func onOutplacementStarted(e *casev1.OutplacementStarted) Outplacement {
	started := DateFromProto(e.GetStartedOn())
	return Outplacement{
		Running:        true,
		StartedOn:      started,
		PlannedMonths:  int(e.GetPlannedMonths()),
		Phase:          e.GetPhase(),
		PhaseEnteredOn: started,
	}
}

func onPlacementAchieved(o Outplacement, e *casev1.PlacementAchieved) Outplacement {
	o.Outcome = e.GetOutcome()
	o.PlacedOn = DateFromProto(e.GetPlacedOn())
	o.Phase = phasePlacement
	o.PhaseEnteredOn = o.PlacedOn
	return o
}

func onOutplacementEnded(o Outplacement, e *casev1.OutplacementEndedWithoutPlacement) Outplacement {
	o.Running = false
	o.Outcome = noPlacement
	o.EndedOn = DateFromProto(e.GetEndedOn())
	o.EndReason = e.GetReason()
	o.MarketReady = e.GetMarketReady()
	return o
}

func onCheckpointRecorded(r Reintegration, e *casev1.ReintegrationCheckpointRecorded) Reintegration {
	c := Checkpoint{
		Kind:                e.GetKind(),
		HeldOn:              DateFromProto(e.GetHeldOn()),
		LoadCapacity:        loadCapacityFromProto(e.GetLoadCapacity()),
		SecondTrackDecision: e.GetSecondTrackDecision(),
	}
	r.Checkpoints = appended(r.Checkpoints, c)
	if c.LoadCapacity != nil {
		r.LoadCapacity = c.LoadCapacity
	}
	return r
}

func loadCapacityFromProto(p *casev1.LoadCapacity) *LoadCapacity {
	if p == nil {
		return nil
	}
	return &LoadCapacity{
		Percent:                  int(p.GetPercent()),
		HoursPerWeek:             int(p.GetHoursPerWeek()),
		FunctionalCapabilityList: p.GetFunctionalCapabilityList(),
	}
}

// onCaseClosed ends the case and every trajectory running in it.
func onCaseClosed(s State, e *casev1.CaseClosed) State {
	s.Closure.Closed = true
	s.Closure.ClosedOn = DateFromProto(e.GetClosedOn())
	s.Closure.Outcome = e.GetOutcome()
	s.Outplacement.Running = false
	s.Reintegration.Running = false
	return s
}

func onCaseReopened(c Closure, e *casev1.CaseReopened) Closure {
	c.Closed = false
	c.ReopenedOn = DateFromProto(e.GetReopenedOn())
	c.Reopenings++
	return c
}
