package demo

import (
	"math"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Outplacement trajectories (uitstroombegeleiding): the employer asks, the
// client goes through farewell, orientation, sometimes development, and
// the market approach, and is placed or not. Usually 3 to 12 months, 6
// typical. The placement chances are the sector's 2018 figures by age band
// (../shared/DOMAIN.md): 83% under 40, 77% at 40 to 56, 47% at 57 and
// over; with this population's age mix (30%, 50%, 20%) that is 73%
// overall.

// AgeBand is a client's age group as the sector's placement figures use
// them, by the age reached in the year the outplacement starts.
type AgeBand int

// The age bands.
const (
	AgeUnknown AgeBand = iota
	AgeUnder40
	Age40To56
	Age57AndOver
)

var ageBandNames = [...]string{"unknown", "under 40", "40-56", "57 and over"}

// String names the band.
func (b AgeBand) String() string { return ageBandNames[b] }

// AgeBandOf returns the band of a client born in birthYear, in year.
func AgeBandOf(birthYear, year int) AgeBand {
	switch age := year - birthYear; {
	case birthYear <= 0:
		return AgeUnknown
	case age < 40:
		return AgeUnder40
	case age < 57:
		return Age40To56
	default:
		return Age57AndOver
	}
}

// PlacementChance is the chance that an outplacement of a client of each
// band ends in work: the sector's figures.
var PlacementChance = map[AgeBand]float64{AgeUnder40: 0.83, Age40To56: 0.77, Age57AndOver: 0.47}

// medianDaysToPlacement is the typical time from start to placement by
// band; older clients search longer.
var medianDaysToPlacement = map[AgeBand]float64{AgeUnder40: 130, Age40To56: 160, Age57AndOver: 220}

var outplacementAges = map[AgeBand][2]int{AgeUnder40: {25, 39}, Age40To56: {40, 56}, Age57AndOver: {57, 64}}

const (
	phaseFarewell    = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_FAREWELL
	phaseOrientation = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_ORIENTATION
	phaseDevelopment = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_DEVELOPMENT
	phaseMarket      = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_MARKET_APPROACH
	phaseAftercare   = casev1.OutplacementPhase_OUTPLACEMENT_PHASE_AFTERCARE
)

// outplacementEnd is how an outplacement is going to end.
type outplacementEnd struct {
	placement casev1.PlacementOutcome // unspecified: no placement
	reason    casev1.OutplacementEndReason
	days      int // from the start to the placement or the end
}

// outplacement writes an outplacement trajectory.
func (s *story) outplacement() {
	band := weighted(s.d, w(30, AgeUnder40), w(50, Age40To56), w(20, Age57AndOver))
	age := s.d.between(outplacementAges[band][0], outplacementAges[band][1])
	q := weighted(s.d,
		w(85, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT),
		w(8, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PROBLEM_CASE),
		w(7, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_FULL_BLOCKADE))
	ctx := casework.ContextOf(q)
	intakeGap, startGap := s.d.between(3, 14), s.d.between(0, 14)
	start := s.day.AddDays(intakeGap + startGap)
	s.quiet = s.d.chance(0.04)

	open := &casev1.OpenCaseRequest{
		BirthYear: birthYear(age, start.Year), InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION,
		OrganisationalContext: ctx, OrganisationalQuestion: q, OrganisationalAims: s.aimsFor(ctx, age),
		CoachId: s.anyCoach(),
	}
	open.OrganisationId, open.Department = s.organisation()
	s.open(open)
	s.wait(intakeGap, intakeGap)
	signals, advised := s.warningSignals(0.08)
	willing, able := s.mobility(0.9, ctx, age)
	s.intake(&casev1.CompleteIntakeRequest{
		QuestionType:   weighted(s.d, w(45, choice), w(30, competence), w(15, life), w(10, counseling)),
		WarningSignals: signals, ReferralAdvised: advised, MobilityWillingness: willing, MobilityCapacity: able})
	if s.d.chance(0.85) {
		scopes := []casev1.ReportingScope{scopeProgress, scopeOutcome}
		if s.d.chance(0.2) {
			scopes = append(scopes, scopePlan)
		}
		s.grantEmployer(scopes...)
	}
	s.to(start)
	if s.d.chance(0.6) {
		s.session(sessionTripartite)
	}
	planned := pick(s.d, []int{3, 6, 6, 6, 6, 9, 9, 12})
	first := phaseFarewell
	if s.d.chance(0.15) {
		first = phaseOrientation
	}
	s.do(&casev1.StartOutplacementRequest{StartedOn: s.today(), Phase: first, PlannedMonths: uint32(planned)})
	end := s.outplacementEnd(band, planned)
	var quietFrom casework.Date
	if s.quiet {
		quietFrom = start.AddDays(s.d.between(20, max(21, end.days-1)))
	}
	s.play(s.outplacementAgenda(start, first, end), quietFrom)
}

// outplacementEnd draws how the outplacement ends: placed with the band's
// chance, after a time that varies around the band's median, or not,
// mostly when the agreed term ran out.
func (s *story) outplacementEnd(band AgeBand, planned int) outplacementEnd {
	term := int(float64(planned) * 30.4)
	if s.d.chance(PlacementChance[band]) {
		days := medianDaysToPlacement[band] * math.Exp(0.45*s.d.NormFloat64())
		outcome := weighted(s.d,
			w(68, casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL),
			w(17, casev1.PlacementOutcome_PLACEMENT_OUTCOME_INTERNAL),
			w(15, casev1.PlacementOutcome_PLACEMENT_OUTCOME_SELF_EMPLOYED))
		return outplacementEnd{placement: outcome, days: int(min(540, max(40, days)))}
	}
	reason := weighted(s.d,
		w(68, casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_TERM_ENDED),
		w(15, casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_CLIENT_WITHDREW),
		w(9, casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_CLIENT_ILL),
		w(8, casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_OTHER))
	days := term + s.d.between(-10, 30)
	if reason != casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_TERM_ENDED {
		days = s.d.between(30, max(31, term))
	}
	return outplacementEnd{reason: reason, days: days}
}

// outplacementAgenda plans the phases, the sessions, the plan and the
// ending of an outplacement that started on start.
func (s *story) outplacementAgenda(start casework.Date, first casev1.OutplacementPhase, end outplacementEnd) agenda {
	var a agenda
	frac := func(lo, hi float64) int { return int(float64(end.days) * (lo + (hi-lo)*s.d.Float64())) }
	phase := func(p casev1.OutplacementPhase, day int) {
		if day > 0 && day < end.days {
			a.at(start.AddDays(day), func() {
				// Phases drawn close together can come out of order in
				// a short outplacement; the later one is skipped then.
				if s.state().Outplacement.Phase < p {
					s.do(&casev1.EnterOutplacementPhaseRequest{Phase: p, EnteredOn: s.today()})
				}
			})
		}
	}
	if first == phaseFarewell {
		phase(phaseOrientation, max(14, frac(0.10, 0.20)))
	}
	if s.d.chance(0.5) {
		phase(phaseDevelopment, frac(0.30, 0.45))
	}
	phase(phaseMarket, frac(0.48, 0.65))
	if s.d.chance(0.6) {
		a.at(start.AddDays(max(21, frac(0.15, 0.30))), s.agreePlan)
	}
	for day := s.d.between(7, 14); day < end.days; day += s.d.between(10, 21) {
		a.at(start.AddDays(day), func() {
			s.revisePlanIfDue()
			s.session(s.outplacementSessionKind())
		})
	}
	s.planOutplacementEnd(&a, start, end)
	return a
}

func (s *story) outplacementSessionKind() casev1.SessionKind {
	switch s.state().Outplacement.Phase {
	case phaseOrientation:
		return weighted(s.d, w(2, sessionCoaching), w(1, sessionAssessment))
	case phaseDevelopment:
		return weighted(s.d, w(1, sessionCoaching), w(1, sessionTraining))
	case phaseMarket:
		return weighted(s.d, w(4, sessionCoaching), w(1, sessionTraining))
	}
	return sessionCoaching
}

// planOutplacementEnd plans the placement with aftercare, or the ending
// without one, and the close.
func (s *story) planOutplacementEnd(a *agenda, start casework.Date, end outplacementEnd) {
	at := start.AddDays(end.days)
	if end.placement == 0 {
		ready := s.d.chance(map[casev1.OutplacementEndReason]float64{
			casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_TERM_ENDED:      0.65,
			casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_CLIENT_WITHDREW: 0.3,
			casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_OTHER:           0.4,
		}[end.reason])
		a.at(at.AddDays(s.d.between(0, 3)), func() {
			s.do(&casev1.EndOutplacementWithoutPlacementRequest{EndedOn: at.Proto(), Reason: end.reason, MarketReady: ready})
		})
		a.at(at.AddDays(s.d.between(4, 21)), func() { s.close(casev1.CloseOutcome_CLOSE_OUTCOME_OUTPLACEMENT_CONCLUDED) })
		return
	}
	a.at(at.AddDays(s.d.between(0, 5)), func() {
		s.do(&casev1.RecordPlacementRequest{Outcome: end.placement, PlacedOn: at.Proto()})
	})
	last := at.AddDays(6)
	if s.d.chance(0.8) {
		a.at(last.AddDays(s.d.between(0, 10)), func() {
			s.do(&casev1.EnterOutplacementPhaseRequest{Phase: phaseAftercare, EnteredOn: s.today()})
		})
		for range s.d.between(1, 2) {
			last = last.AddDays(s.d.between(14, 35))
			a.at(last, func() { s.session(sessionFollowUp) })
		}
	}
	a.at(last.AddDays(s.d.between(7, 30)), func() { s.close(casev1.CloseOutcome_CLOSE_OUTCOME_OUTPLACEMENT_CONCLUDED) })
}
