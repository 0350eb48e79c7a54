package querysvc

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
)

// The read models' answers as the API's messages. Nothing here can add a
// client's identity: the answers hold none.

func dashboardProto(d dashboard.Dashboard) *queryv1.CoachDashboard {
	out := &queryv1.CoachDashboard{
		CoachId:    d.Coach,
		AsOf:       timestamppb.New(d.Now),
		Today:      d.Today.Proto(),
		IdleDays:   uint32(d.IdleDays),
		RecentDays: uint32(d.RecentDays),
	}
	for _, s := range d.ByStage {
		out.ByStage = append(out.ByStage, &queryv1.StageCount{Stage: s.Stage, Count: uint32(s.Count)})
	}
	for _, t := range d.ByQuestionType {
		out.ByQuestionType = append(out.ByQuestionType, &queryv1.QuestionTypeCount{QuestionType: t.QuestionType, Count: uint32(t.Count)})
	}
	for _, c := range d.Cases {
		out.Cases = append(out.Cases, caseProto(c))
	}
	for _, dl := range d.Overdue {
		out.Overdue = append(out.Overdue, deadlineProto(dl))
	}
	for _, c := range d.Idle {
		out.Idle = append(out.Idle, &queryv1.IdleCase{
			CaseId: c.CaseID, LastActivityAt: timestamppb.New(c.LastActivity), IdleDays: uint32(max(0, c.IdleDays)),
		})
	}
	for _, c := range d.ReferralSignals {
		out.ReferralSignals = append(out.ReferralSignals, &queryv1.ReferralSignal{
			CaseId: c.CaseID, ReferralAdvised: c.ReferralAdvised, WarningSignals: c.WarningSignals, Referred: c.Referred,
		})
	}
	for _, r := range d.Reclassifications {
		out.Reclassifications = append(out.Reclassifications, &queryv1.Reclassification{
			CaseId: r.CaseID, From: r.From, To: r.To, Reason: r.Reason,
			OccurredOn: r.OccurredOn.Proto(), RecordedAt: timestamppb.New(r.RecordedAt),
		})
	}
	return out
}

// caseProto leaves out the warning signals: they are health-related and
// shown only in the coach's own dashboard, as referral signals.
func caseProto(c dashboard.Case) *queryv1.CaseSummary {
	out := &queryv1.CaseSummary{
		CaseId:            c.CaseID,
		CoachId:           c.CoachID,
		Stage:             c.Stage,
		QuestionType:      c.QuestionType,
		OrganisationId:    c.OrganisationID,
		Department:        c.Department,
		OpenedOn:          c.OpenedOn.Proto(),
		LastActivityAt:    timestamppb.New(c.LastActivity),
		IdleDays:          uint32(max(0, c.IdleDays)),
		Position:          c.Position,
		OutplacementPhase: c.OutplacementPhase,
		ReferralAdvised:   c.ReferralAdvised,
		Referred:          c.Referred,
	}
	if c.Next != nil {
		out.NextDeadline = deadlineProto(*c.Next)
	}
	for _, dl := range c.Overdue {
		out.OverdueDeadlines = append(out.OverdueDeadlines, deadlineProto(dl))
	}
	return out
}

func deadlineProto(d dashboard.Deadline) *queryv1.Deadline {
	return &queryv1.Deadline{
		CaseId: d.CaseID, Kind: d.Kind, Week: uint32(d.Week),
		Opens: d.Opens.Proto(), Due: d.Due.Proto(), Status: statusProto(d.Status),
	}
}

// statusProto names a casework status in the API; the enums share their
// numbers.
func statusProto(s casework.DeadlineStatus) casev1.DeadlineStatus { return casev1.DeadlineStatus(s) }

func listProto(l dashboard.List, fresh *queryv1.Freshness) *queryv1.ListCasesResponse {
	out := &queryv1.ListCasesResponse{NextPageToken: l.NextPageToken, Today: l.Today.Proto(), Freshness: fresh}
	for _, c := range l.Cases {
		out.Cases = append(out.Cases, caseProto(c))
	}
	return out
}

func reportProto(r report.Report) *queryv1.OrganisationReport {
	out := &queryv1.OrganisationReport{
		OrganisationId: r.Organisation,
		Department:     r.Department,
		PeriodFrom:     r.From.Proto(),
		PeriodTo:       r.To.Proto(),
		AsOf:           timestamppb.New(r.AsOf),
		AsOfDay:        r.AsOfDay.Proto(),
		K:              uint32(r.K),
		View:           queryv1.ReportView_REPORT_VIEW_ANALYST,
		Cases:          &queryv1.CaseFigures{Active: countProto(r.Cases.Active)},
		Reclassifications: &queryv1.ReclassificationFigures{
			Total: countProto(r.Reclassifications.Total),
		},
		Outplacement:  outplacementProto(r.Outplacement),
		Reintegration: reintegrationProto(r.Reintegration),
	}
	for _, c := range r.Cases.ByContextAndType {
		out.Cases.ByContextAndType = append(out.Cases.ByContextAndType, &queryv1.ContextTypeCount{
			Context: c.Context, QuestionType: c.QuestionType, Count: countProto(c.Count),
		})
	}
	for _, q := range r.Cases.Mobility {
		out.Cases.Mobility = append(out.Cases.Mobility, &queryv1.QuadrantCount{Quadrant: quadrantProto(q.Quadrant), Count: countProto(q.Count)})
	}
	for _, c := range r.Cases.Caseload {
		out.Cases.Caseload = append(out.Cases.Caseload, &queryv1.CoachCount{CoachId: c.CoachID, Count: countProto(c.Count)})
	}
	for _, m := range r.Reclassifications.Matrix {
		out.Reclassifications.Matrix = append(out.Reclassifications.Matrix, &queryv1.ReclassificationCount{
			From: m.From, To: m.To, Count: countProto(m.Count),
		})
	}
	return out
}

func outplacementProto(o report.Outplacement) *queryv1.OutplacementFigures {
	out := &queryv1.OutplacementFigures{
		Started:         countProto(o.Started),
		ByOutcome:       outcomesProto(o.ByOutcome),
		PlacementRate:   rateProto(o.PlacementRate),
		DaysToPlacement: daysProto(o.DaysToPlacement),
	}
	for _, p := range o.ByPhase {
		out.ByPhase = append(out.ByPhase, &queryv1.PhaseCount{Phase: p.Phase, Count: countProto(p.Count)})
	}
	for _, b := range o.ByAgeBand {
		out.ByAgeBand = append(out.ByAgeBand, &queryv1.AgeBandFigures{
			Band:            ageBandProto(b.Band),
			Started:         countProto(b.Started),
			ByOutcome:       outcomesProto(b.ByOutcome),
			PlacementRate:   rateProto(b.PlacementRate),
			DaysToPlacement: daysProto(b.DaysToPlacement),
		})
	}
	return out
}

func reintegrationProto(ri report.Reintegration) *queryv1.ReintegrationFigures {
	out := &queryv1.ReintegrationFigures{
		Checkpoints:      countProto(ri.Checkpoints),
		Ended:            countProto(ri.Ended),
		ReturnToWorkRate: rateProto(ri.ReturnToWorkRate),
	}
	for _, c := range ri.Compliance {
		out.Compliance = append(out.Compliance, &queryv1.ComplianceCount{Kind: c.Kind, Status: statusProto(c.Status), Count: countProto(c.Count)})
	}
	for _, k := range ri.ByKind {
		out.ByKind = append(out.ByKind, &queryv1.KindCount{Kind: k.Kind, Count: countProto(k.Count)})
	}
	for _, s := range ri.ByStatus {
		out.ByStatus = append(out.ByStatus, &queryv1.StatusCount{Status: statusProto(s.Status), Count: countProto(s.Count)})
	}
	for _, e := range ri.ByOutcome {
		out.ByOutcome = append(out.ByOutcome, &queryv1.CloseOutcomeCount{Outcome: e.Outcome, Count: countProto(e.Count)})
	}
	return out
}

func outcomesProto(in []report.OutcomeCount) []*queryv1.OutcomeCount {
	out := make([]*queryv1.OutcomeCount, 0, len(in))
	for _, o := range in {
		out = append(out, &queryv1.OutcomeCount{Outcome: o.Outcome, Count: countProto(o.Count)})
	}
	return out
}

func countProto(c report.Count) *queryv1.Count {
	if c.Suppressed {
		return &queryv1.Count{Suppressed: true}
	}
	n := uint32(c.N)
	return &queryv1.Count{Value: &n}
}

func rateProto(r report.Rate) *queryv1.Rate {
	out := &queryv1.Rate{Suppressed: r.Suppressed}
	if r.OK {
		v := r.Value
		out.Value = &v
	}
	return out
}

func daysProto(d report.Days) *queryv1.Days {
	out := &queryv1.Days{Suppressed: d.Suppressed}
	if d.OK {
		median, p90 := d.Median, d.P90
		out.Median, out.P90 = &median, &p90
	}
	return out
}

var quadrants = map[report.Quadrant]queryv1.MobilityQuadrant{
	report.QuadrantNotAssessed:    queryv1.MobilityQuadrant_MOBILITY_QUADRANT_NOT_ASSESSED,
	report.QuadrantWillingAndAble: queryv1.MobilityQuadrant_MOBILITY_QUADRANT_WILLING_AND_ABLE,
	report.QuadrantWillingNotAble: queryv1.MobilityQuadrant_MOBILITY_QUADRANT_WILLING_NOT_ABLE,
	report.QuadrantAbleNotWilling: queryv1.MobilityQuadrant_MOBILITY_QUADRANT_ABLE_NOT_WILLING,
	report.QuadrantNeither:        queryv1.MobilityQuadrant_MOBILITY_QUADRANT_NEITHER,
}

func quadrantProto(q report.Quadrant) queryv1.MobilityQuadrant { return quadrants[q] }

var ageBands = map[report.AgeBand]queryv1.AgeBand{
	report.AgeUnder40:   queryv1.AgeBand_AGE_BAND_UNDER_40,
	report.Age40To56:    queryv1.AgeBand_AGE_BAND_40_TO_56,
	report.Age57AndOver: queryv1.AgeBand_AGE_BAND_57_AND_OVER,
	report.AgeUnknown:   queryv1.AgeBand_AGE_BAND_UNKNOWN,
}

func ageBandProto(b report.AgeBand) queryv1.AgeBand { return ageBands[b] }
