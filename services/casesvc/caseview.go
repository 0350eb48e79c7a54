package casesvc

import (
	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// caseView renders a case's state for GetCase. last is the case's last
// event; parts its personal parts, opened.
func (s *Service) caseView(caseID string, last eventstore.RecordedEvent, st casework.State, parts personalParts) *casev1.Case {
	c := &casev1.Case{
		CaseId:                 caseID,
		Revision:               last.Revision,
		Position:               uint64(last.Position),
		Stage:                  st.Stage,
		ClientId:               st.ClientID,
		Client:                 clonePD(parts.client),
		BirthYear:              int32(st.BirthYear),
		InitiatedBy:            st.InitiatedBy,
		OrganisationId:         st.OrganisationID,
		Department:             st.Department,
		OrganisationalContext:  st.Context,
		OrganisationalQuestion: st.Question,
		OrganisationalAims:     st.Aims,
		OpenedOn:               st.OpenedOn.Proto(),
		QuestionType:           st.QuestionType,
		CoachId:                st.CoachID,
		Sessions: &casev1.Case_Sessions{
			Count:       uint32(st.Sessions.Count),
			SinceIntake: uint32(st.Sessions.SinceIntake),
			Minutes:     uint32(st.Sessions.Minutes),
			LastHeldOn:  st.Sessions.LastHeldOn.Proto(),
		},
		ErasureReason: st.Erasure,
	}
	if in := st.Intake; in.Completed {
		c.Intake = &casev1.Case_Intake{
			HeldOn:              in.HeldOn.Proto(),
			QuestionType:        in.QuestionType,
			WarningSignals:      in.WarningSignals,
			ReferralAdvised:     in.ReferralAdvised,
			MobilityWillingness: uint32(in.MobilityWillingness),
			MobilityCapacity:    uint32(in.MobilityCapacity),
			Answers:             clonePD(parts.answers),
		}
	}
	for _, r := range st.Reclassifications {
		c.Reclassifications = append(c.Reclassifications, &casev1.Case_Reclassification{From: r.From, To: r.To, Reason: r.Reason})
	}
	for _, r := range st.Referrals {
		c.Referrals = append(c.Referrals, &casev1.Case_Referral{Target: r.Target, ColleagueCoachId: r.ColleagueCoachID, Reason: r.Reason})
	}
	for _, cs := range st.Consents {
		c.Consents = append(c.Consents, &casev1.Case_Consent{
			Recipient: &casev1.Recipient{Kind: cs.Recipient.Kind, Id: cs.Recipient.ID},
			Scopes:    cs.Scopes,
		})
	}
	if p := st.Plan; p.Agreed {
		c.DevelopmentPlan = &casev1.Case_DevelopmentPlan{
			AgreedOn:  p.AgreedOn.Proto(),
			RevisedOn: p.RevisedOn.Proto(),
			ReviewOn:  p.ReviewOn.Proto(),
			Revisions: uint32(p.Revisions),
			Goals:     clonePD(parts.goals),
		}
	}
	if o := st.Outplacement; !o.StartedOn.IsZero() {
		c.Outplacement = &casev1.Case_Outplacement{
			Running:        o.Running,
			StartedOn:      o.StartedOn.Proto(),
			PlannedMonths:  uint32(o.PlannedMonths),
			Phase:          o.Phase,
			PhaseEnteredOn: o.PhaseEnteredOn.Proto(),
			Outcome:        o.Outcome,
			PlacedOn:       o.PlacedOn.Proto(),
			EndedOn:        o.EndedOn.Proto(),
			EndReason:      o.EndReason,
			MarketReady:    o.MarketReady,
		}
	}
	if !st.Reintegration.SickReportedOn.IsZero() {
		c.Reintegration = s.reintegrationView(st)
	}
	if cl := st.Closure; !cl.ClosedOn.IsZero() {
		c.Closure = &casev1.Case_Closure{
			Closed:     cl.Closed,
			ClosedOn:   cl.ClosedOn.Proto(),
			Outcome:    cl.Outcome,
			ReopenedOn: cl.ReopenedOn.Proto(),
			Reopenings: uint32(cl.Reopenings),
		}
	}
	return c
}

func (s *Service) reintegrationView(st casework.State) *casev1.Case_Reintegration {
	r := st.Reintegration
	now := s.opts.Now().In(s.opts.Location)
	out := &casev1.Case_Reintegration{
		Running:              r.Running,
		SickReportedOn:       r.SickReportedOn.Proto(),
		Track:                r.Track,
		SecondTrackStartedOn: r.SecondTrackStartedOn.Proto(),
		LoadCapacity:         loadCapacity(r.LoadCapacity),
		AgencyId:             r.AgencyID,
		DeadlinesAsOf:        casework.DateOf(now).Proto(),
	}
	for _, cp := range r.Checkpoints {
		out.Checkpoints = append(out.Checkpoints, &casev1.Case_Checkpoint{
			Kind:                cp.Kind,
			HeldOn:              cp.HeldOn.Proto(),
			LoadCapacity:        loadCapacity(cp.LoadCapacity),
			SecondTrackDecision: cp.SecondTrackDecision,
		})
	}
	for _, d := range st.Deadlines(now) {
		out.Deadlines = append(out.Deadlines, &casev1.Case_Deadline{
			Kind:   d.Kind,
			Week:   uint32(d.Week),
			Opens:  d.Opens.Proto(),
			Due:    d.Due.Proto(),
			DoneOn: d.DoneOn.Proto(),
			Status: deadlineStatus[d.Status],
		})
	}
	return out
}

var deadlineStatus = map[casework.DeadlineStatus]casev1.DeadlineStatus{
	casework.StatusUpcoming:   casev1.DeadlineStatus_DEADLINE_STATUS_UPCOMING,
	casework.StatusDue:        casev1.DeadlineStatus_DEADLINE_STATUS_DUE,
	casework.StatusOverdue:    casev1.DeadlineStatus_DEADLINE_STATUS_OVERDUE,
	casework.StatusDoneOnTime: casev1.DeadlineStatus_DEADLINE_STATUS_DONE_ON_TIME,
	casework.StatusDoneLate:   casev1.DeadlineStatus_DEADLINE_STATUS_DONE_LATE,
	casework.StatusDoneEarly:  casev1.DeadlineStatus_DEADLINE_STATUS_DONE_EARLY,
}

func loadCapacity(l *casework.LoadCapacity) *casev1.LoadCapacity {
	if l == nil {
		return nil
	}
	return &casev1.LoadCapacity{
		Percent:                  uint32(l.Percent),
		HoursPerWeek:             uint32(l.HoursPerWeek),
		FunctionalCapabilityList: l.FunctionalCapabilityList,
	}
}
