package demo

import (
	"math"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Re-integration trajectories after sick leave, under the Gatekeeper Act:
// the statutory checkpoints counted from the sick report, recorded mostly
// on time, sometimes late and now and then not at all, so that compliance
// reports and overdue lists have something to show; an agency for some,
// a second track after the first-year evaluation for some of the long
// ones, and an end: back to work, with another employer, or a disability
// benefit after 104 weeks.

const (
	physicianReport = casev1.CheckpointKind_CHECKPOINT_KIND_OCCUPATIONAL_PHYSICIAN_REPORT
	problemAnalysis = casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS
	actionPlan      = casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN
	progressReview  = casev1.CheckpointKind_CHECKPOINT_KIND_PROGRESS_REVIEW
	uwvReport       = casev1.CheckpointKind_CHECKPOINT_KIND_UWV_SICKNESS_REPORT
	firstYearEval   = casev1.CheckpointKind_CHECKPOINT_KIND_FIRST_YEAR_EVALUATION
	trackDecision   = casev1.CheckpointKind_CHECKPOINT_KIND_SECOND_TRACK_DECISION
	wiaForm         = casev1.CheckpointKind_CHECKPOINT_KIND_WIA_FORM_RECEIVED
	wiaApplication  = casev1.CheckpointKind_CHECKPOINT_KIND_WIA_APPLICATION
	gatekeeperTest  = casev1.CheckpointKind_CHECKPOINT_KIND_GATEKEEPER_TEST
	wiaDecision     = casev1.CheckpointKind_CHECKPOINT_KIND_WIA_DECISION

	decideStart  = casev1.SecondTrackDecision_SECOND_TRACK_DECISION_START
	decideReturn = casev1.SecondTrackDecision_SECOND_TRACK_DECISION_RETURN_EXPECTED
)

// recovery is how a re-integration goes.
type recovery int

const (
	recoverQuickly recovery = iota // back within three months
	recoverMedium                  // back within the first year
	recoverLong                    // past the first-year evaluation
	recoverNever                   // no return in 104 weeks: WIA
)

// reintegration is the plan of one re-integration.
type reintegration struct {
	sick   casework.Date // the sick report, day 0
	opened int           // the day the case opened, counted from the sick report
	end    int           // the return to work or the end of the waiting period
	path   recovery
	// contract is the client's hours per week; load the share of it the
	// client could work at the sick report.
	contract, load int
	fml            bool
}

// reintegration writes a re-integration trajectory.
func (s *story) reintegration() {
	ages := weighted(s.d, w(35, [2]int{25, 39}), w(45, [2]int{40, 56}), w(20, [2]int{57, 64}))
	age := s.d.between(ages[0], ages[1])
	r := reintegration{contract: pick(s.d, []int{24, 32, 36, 36, 38, 40}), load: 5 * s.d.between(0, 8)}
	r.path = weighted(s.d, w(45, recoverQuickly), w(25, recoverMedium), w(18, recoverLong), w(12, recoverNever))
	// Most cases come to the coach in the first days of the sickness; some
	// later, when the employer wants help with the action plan, and long
	// ones often only for the second track, bringing their file along
	// (the checkpoints so far are recorded on the day the case opens).
	switch x := s.d.Float64(); {
	case r.path == recoverNever && x < 0.6:
		r.opened = s.d.between(250, 450)
	case r.path == recoverLong && x < 0.25:
		r.opened = s.d.between(150, 300)
	case x < 0.2:
		r.opened = s.d.between(35, 70)
	default:
		r.opened = s.d.between(0, 10)
	}
	r.sick = s.day.AddDays(-r.opened)
	switch r.path {
	case recoverQuickly:
		r.end = s.d.between(14, 90)
	case recoverMedium:
		r.end = s.d.between(91, 300)
	case recoverLong:
		r.end = s.d.between(301, 640)
	default:
		r.end = s.d.between(728, 745) // the waiting period ends on day 728
	}
	r.end = max(r.end, r.opened+s.d.between(14, 30))
	s.quiet = s.d.chance(0.06)

	open := &casev1.OpenCaseRequest{BirthYear: birthYear(age, s.day.Year), InitiatedBy: casev1.Initiator_INITIATOR_ORGANISATION, CoachId: s.anyCoach()}
	open.OrganisationId, open.Department = s.organisation()
	switch weighted(s.d, w(80, 0), w(10, 1), w(10, 2)) {
	case 1:
		open.OrganisationalContext = mismatch
	case 2:
		open.OrganisationalContext, open.OrganisationalQuestion = mismatch, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PROBLEM_CASE
	}
	open.OrganisationalAims = s.aimsFor(mismatch, age)
	s.open(open)
	s.do(&casev1.StartReintegrationRequest{SickReportedOn: r.sick.Proto(), Track: casev1.ReintegrationTrack_REINTEGRATION_TRACK_FIRST})
	if s.d.chance(0.85) {
		s.grantEmployer(scopeReint, scopeProgress)
	}
	var quietFrom casework.Date
	if s.quiet {
		quietFrom = r.sick.AddDays(s.d.between(r.opened+14, max(r.opened+15, r.end-1)))
	}
	s.play(s.reintegrationAgenda(&r, age), quietFrom)
}

func (s *story) reintegrationAgenda(r *reintegration, age int) agenda {
	var a agenda
	if day := r.opened + s.d.between(3, 14); s.d.chance(0.6) && day < r.end {
		a.at(r.sick.AddDays(day), func() { s.reintegrationIntake(age) })
	}
	s.planCheckpoints(&a, r)
	for day := r.opened + s.d.between(7, 14); day < r.end; day += s.d.between(14, 35) {
		a.at(r.sick.AddDays(day), func() { s.session(weighted(s.d, w(85, sessionCoaching), w(15, sessionTripartite))) })
	}
	if r.end > 100 && s.d.chance(0.45) {
		s.planAgency(&a, r, max(r.opened, s.d.between(56, 120)))
	}
	a.at(r.sick.AddDays(r.end+s.d.between(0, 14)), func() { s.close(s.reintegrationOutcome(r.path)) })
	return a
}

func (s *story) reintegrationIntake(age int) {
	signals, advised := s.warningSignals(0.45)
	advised = advised && s.d.chance(0.25) // the occupational physician leads; few need another referral
	willing, able := s.mobility(0.5, mismatch, age)
	s.intake(&casev1.CompleteIntakeRequest{
		QuestionType:   weighted(s.d, w(35, competence), w(30, counseling), w(20, life), w(15, choice)),
		WarningSignals: signals, ReferralAdvised: advised, MobilityWillingness: willing, MobilityCapacity: able})
	if advised {
		s.referOutside(casev1.ReferralReason_REFERRAL_REASON_WARNING_SIGNALS)
	}
}

// checkpointDay draws the day a checkpoint due by day due takes place:
// within from to due mostly, after due with probability late, never with
// probability missing.
func (s *story) checkpointDay(from, due int, late, missing float64) (int, bool) {
	switch x := s.d.Float64(); {
	case x < missing:
		return 0, false
	case x < missing+late:
		return due + s.d.between(1, 28), true
	}
	return s.d.between(from, due), true
}

// planCheckpoints plans the statutory checkpoints that fall before the
// re-integration's end.
func (s *story) planCheckpoints(a *agenda, r *reintegration) {
	record := func(kind casev1.CheckpointKind, day int, assess bool, decision casev1.SecondTrackDecision) bool {
		if day >= r.end {
			return false
		}
		a.at(r.sick.AddDays(max(day, r.opened)), func() { s.checkpoint(r, kind, day, assess, decision) })
		return true
	}
	if day, ok := s.checkpointDay(0, 6, 0.07, 0.03); ok {
		record(physicianReport, day, false, 0)
	}
	analysis, ok := s.checkpointDay(28, 41, 0.10, 0.05)
	if ok {
		record(problemAnalysis, analysis, true, 0)
	}
	plan := 55 // the action plan's last day, when it did not take place
	if day, ok := s.checkpointDay(max(42, analysis), 55, 0.10, 0.05); ok {
		plan = max(day, analysis)
		record(actionPlan, plan, true, 0)
	}
	for review := plan; ; {
		switch x := s.d.Float64(); {
		case x < 0.05:
			review = math.MaxInt // the coach stops recording reviews
		case x < 0.15:
			review += s.d.between(57, 80)
		default:
			review += s.d.between(42, 56)
		}
		if review > 727 || !record(progressReview, review, true, 0) {
			break
		}
	}
	if day, ok := s.checkpointDay(280, 293, 0.08, 0.03); ok {
		record(uwvReport, day, false, 0)
	}
	s.planSecondTrack(a, r, record)
	if r.path == recoverNever {
		for _, c := range []struct {
			kind     casev1.CheckpointKind
			from, to int
		}{{wiaForm, 609, 615}, {wiaApplication, 622, 636}, {gatekeeperTest, 644, 650}, {wiaDecision, 714, 727}} {
			if day, ok := s.checkpointDay(c.from, c.to, 0.05, 0.03); ok {
				record(c.kind, day, false, 0)
			}
		}
	}
}

// planSecondTrack plans the first-year evaluation and, for those not back
// by then, the second-track decision: a second track starts for most who
// will not return soon, sometimes early.
func (s *story) planSecondTrack(a *agenda, r *reintegration, record func(casev1.CheckpointKind, int, bool, casev1.SecondTrackDecision) bool) {
	eval, evaluated := 0, false
	switch x := s.d.Float64(); {
	case x < 0.03:
	case x < 0.07:
		eval, evaluated = s.d.between(290, 314), true // too early to count
	case x < 0.15:
		eval, evaluated = s.d.between(364, 390), true
	default:
		eval, evaluated = s.d.between(315, 363), true
	}
	if evaluated {
		evaluated = record(firstYearEval, eval, true, 0)
	}
	if r.path != recoverLong && r.path != recoverNever {
		return
	}
	startChance := either(r.path == recoverNever, 0.7, 0.55)
	switch {
	case s.d.chance(0.06):
		decided := s.d.between(180, 300)
		if record(trackDecision, decided, false, decideStart) {
			s.planSecondTrackStart(a, r, decided+s.d.between(0, 14))
		}
	case evaluated:
		decided := eval + s.d.between(0, 42)
		if s.d.chance(0.12) {
			decided = eval + s.d.between(43, 70)
		}
		switch {
		case !s.d.chance(startChance):
			record(trackDecision, decided, false, decideReturn)
		case s.d.chance(0.5):
			if record(trackDecision, decided, false, decideStart) {
				s.planSecondTrackStart(a, r, decided+s.d.between(0, 14))
			}
		default:
			s.planSecondTrackStart(a, r, decided) // the start records the decision
		}
	}
}

func (s *story) planSecondTrackStart(a *agenda, r *reintegration, day int) {
	if day >= r.end {
		return
	}
	agency := s.d.chance(0.8)
	a.at(r.sick.AddDays(max(day, r.opened)), func() {
		s.do(&casev1.StartSecondTrackRequest{StartedOn: r.sick.AddDays(day).Proto()})
		if agency {
			s.assignAgency(pick(s.d, s.p.agencies))
		}
	})
}

// checkpoint records a checkpoint that took place on day, with what the
// occupational physician assessed.
func (s *story) checkpoint(r *reintegration, kind casev1.CheckpointKind, day int, assess bool, decision casev1.SecondTrackDecision) {
	req := &casev1.RecordCheckpointRequest{Kind: kind, HeldOn: r.sick.AddDays(day).Proto(), SecondTrackDecision: decision}
	if assess {
		r.fml = r.fml || (kind == problemAnalysis && s.d.chance(0.4))
		percent := r.loadAt(day)
		req.LoadCapacity = &casev1.LoadCapacity{Percent: uint32(percent), HoursPerWeek: uint32(percent * r.contract / 100),
			FunctionalCapabilityList: r.fml}
	}
	if s.d.chance(0.3) {
		req.Notes = pick(s.d, checkpointNotes)
	}
	s.do(req)
}

var checkpointNotes = []string{
	"Discussed with the occupational physician; plan adjusted.",
	"Employer and employee agree on gradually more hours.",
	"Client tried adapted work; going reasonably well.",
}

// loadAt is the share of the contract the client can work on day: rising
// towards full recovery at the return, or staying low on the way to a
// disability benefit. In steps of 5%.
func (r *reintegration) loadAt(day int) int {
	p := float64(r.load)
	if r.path == recoverNever {
		p += 15 * float64(day) / float64(r.end)
	} else {
		p += (100 - p) * float64(day) / float64(r.end)
	}
	return min(100, 5*int(math.Round(p/5)))
}

// planAgency plans an agency on the case from day on, and what becomes of
// it: its consent revoked, replaced by another, finished before the end,
// or on the case until the close.
func (s *story) planAgency(a *agenda, r *reintegration, day int) {
	if s.quiet || day >= r.end {
		return
	}
	first := pick(s.d, s.p.agencies)
	a.at(r.sick.AddDays(day), func() { s.assignAgency(first) })
	later := day + s.d.between(30, 120)
	switch weighted(s.d, w(12, "revoke"), w(8, "replace"), w(20, "complete"), w(60, "")) {
	case "revoke":
		if later < r.end {
			a.at(r.sick.AddDays(later), func() { s.revokeAgency() })
		}
	case "replace":
		if later < r.end {
			a.at(r.sick.AddDays(later), func() { s.replaceAgency() })
		}
	case "complete":
		if done := r.end - s.d.between(0, 14); done > day {
			a.at(r.sick.AddDays(done), func() { s.unassignAgency(casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_COMPLETED) })
		}
	}
}

func agencyRecipient(id string) *casev1.Recipient {
	return &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, Id: id}
}

// assignAgency puts an agency on the case, with the client's consent
// first, unless one works on it already.
func (s *story) assignAgency(id string) {
	if s.quiet || s.state().Reintegration.AgencyID != "" {
		return
	}
	if _, ok := s.state().Consent(casework.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, ID: id}); !ok {
		s.undated(&casev1.GrantReportingConsentRequest{Recipient: agencyRecipient(id),
			Scopes: []casev1.ReportingScope{scopeReint, scopeProgress, scopeContact}})
	}
	s.undated(&casev1.AssignAgencyRequest{AgencyId: id})
}

// revokeAgency lets the client revoke the assigned agency's consent; Koers
// unassigns it with that.
func (s *story) revokeAgency() {
	if id := s.state().Reintegration.AgencyID; id != "" {
		s.undated(&casev1.RevokeReportingConsentRequest{Recipient: agencyRecipient(id)})
	}
}

func (s *story) unassignAgency(reason casev1.AgencyUnassignmentReason) string {
	id := s.state().Reintegration.AgencyID
	if id != "" {
		s.undated(&casev1.UnassignAgencyRequest{AgencyId: id, Reason: reason})
	}
	return id
}

// replaceAgency takes the agency off and puts another on.
func (s *story) replaceAgency() {
	old := s.unassignAgency(casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_REPLACED)
	if old == "" {
		return
	}
	for {
		if next := pick(s.d, s.p.agencies); next != old {
			s.assignAgency(next)
			return
		}
	}
}

// reintegrationOutcome is how a re-integration on path closes.
func (s *story) reintegrationOutcome(path recovery) casev1.CloseOutcome {
	const (
		returned   = casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER
		elsewhere  = casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER
		benefit    = casev1.CloseOutcome_CLOSE_OUTCOME_DISABILITY_BENEFIT
		employment = casev1.CloseOutcome_CLOSE_OUTCOME_EMPLOYMENT_ENDED
	)
	switch {
	case path == recoverQuickly:
		return returned
	case path == recoverNever:
		return weighted(s.d, w(85, benefit), w(15, returned))
	case s.state().Reintegration.Track == casev1.ReintegrationTrack_REINTEGRATION_TRACK_SECOND:
		return weighted(s.d, w(60, elsewhere), w(40, returned))
	}
	return weighted(s.d, w(88, returned), w(12, employment))
}
