package demo

import (
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Coaching trajectories: a client's own career question, or one the
// employer asked for in an organisational context. Intake, sessions on the
// question type, often a development plan; sometimes the question turns
// out deeper (reclassification) or the coach refers; then a close.

const (
	choice     = casev1.QuestionType_QUESTION_TYPE_CHOICE
	competence = casev1.QuestionType_QUESTION_TYPE_COMPETENCE
	life       = casev1.QuestionType_QUESTION_TYPE_LIFE
	counseling = casev1.QuestionType_QUESTION_TYPE_COUNSELING

	growth         = casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_GROWTH
	mismatch       = casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_MISMATCH
	reorganisation = casev1.OrganisationalContext_ORGANISATIONAL_CONTEXT_REORGANISATION

	scopeProgress = casev1.ReportingScope_REPORTING_SCOPE_PROGRESS
	scopeOutcome  = casev1.ReportingScope_REPORTING_SCOPE_OUTCOME
	scopePlan     = casev1.ReportingScope_REPORTING_SCOPE_DEVELOPMENT_PLAN
	scopeReint    = casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION
	scopeContact  = casev1.ReportingScope_REPORTING_SCOPE_CONTACT_DETAILS

	sessionCoaching   = casev1.SessionKind_SESSION_KIND_COACHING
	sessionAssessment = casev1.SessionKind_SESSION_KIND_ASSESSMENT
	sessionTripartite = casev1.SessionKind_SESSION_KIND_TRIPARTITE
	sessionTraining   = casev1.SessionKind_SESSION_KIND_TRAINING
	sessionFollowUp   = casev1.SessionKind_SESSION_KIND_FOLLOW_UP
)

// employerQuestion is an employer's situation and named question, with the
// ages and question types it usually brings.
type employerQuestion struct {
	context  casev1.OrganisationalContext
	question casev1.OrganisationalQuestion
	ages     [2]int
	types    []option[casev1.QuestionType]
}

// coachingQuestions are the organisational questions of coaching cases
// (outplacement has its own trajectory), weighted by how often they come.
// A few name the context without a question.
var coachingQuestions = []option[employerQuestion]{
	w(14, employerQuestion{growth, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_TALENT_POOL, [2]int{22, 32},
		[]option[casev1.QuestionType]{w(40, choice), w(50, competence), w(5, life), w(5, counseling)}}),
	w(10, employerQuestion{growth, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_MANAGEMENT_DEVELOPMENT, [2]int{30, 52},
		[]option[casev1.QuestionType]{w(10, choice), w(70, competence), w(15, life), w(5, counseling)}}),
	w(9, employerQuestion{growth, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_TALENT_DEVELOPMENT, [2]int{25, 45},
		[]option[casev1.QuestionType]{w(25, choice), w(60, competence), w(10, life), w(5, counseling)}}),
	w(11, employerQuestion{mismatch, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PROBLEM_CASE, [2]int{30, 62},
		[]option[casev1.QuestionType]{w(10, choice), w(30, competence), w(20, life), w(40, counseling)}}),
	w(9, employerQuestion{mismatch, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PREDICTABLE_STAGNATION, [2]int{40, 63},
		[]option[casev1.QuestionType]{w(35, choice), w(40, competence), w(15, life), w(10, counseling)}}),
	w(6, employerQuestion{mismatch, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_FULL_BLOCKADE, [2]int{35, 63},
		[]option[casev1.QuestionType]{w(15, choice), w(10, competence), w(40, life), w(35, counseling)}}),
	w(14, employerQuestion{reorganisation, casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_FORCED_INTERNAL_MOBILITY, [2]int{25, 63},
		[]option[casev1.QuestionType]{w(55, choice), w(30, competence), w(10, life), w(5, counseling)}}),
	w(4, employerQuestion{growth, 0, [2]int{25, 50},
		[]option[casev1.QuestionType]{w(30, choice), w(60, competence), w(10, life)}}),
	w(3, employerQuestion{mismatch, 0, [2]int{30, 62},
		[]option[casev1.QuestionType]{w(20, choice), w(30, competence), w(25, life), w(25, counseling)}}),
	w(2, employerQuestion{reorganisation, 0, [2]int{25, 63},
		[]option[casev1.QuestionType]{w(60, choice), w(30, competence), w(10, life)}}),
}

// ownQuestion is what clients who come on their own account ask.
var ownQuestion = employerQuestion{ages: [2]int{18, 60},
	types: []option[casev1.QuestionType]{w(35, choice), w(30, competence), w(20, life), w(15, counseling)}}

// aimsFor draws the employer's further aims for a context and age.
func (s *story) aimsFor(ctx casev1.OrganisationalContext, age int) []casev1.OrganisationalAim {
	var aims []casev1.OrganisationalAim
	add := func(p float64, a casev1.OrganisationalAim) {
		if s.d.chance(p) {
			aims = append(aims, a)
		}
	}
	old := age >= 50
	switch ctx {
	case growth:
		add(0.5, casev1.OrganisationalAim_ORGANISATIONAL_AIM_TALENT_PROGRAMME)
		add(0.4, casev1.OrganisationalAim_ORGANISATIONAL_AIM_RETENTION)
		add(0.15, casev1.OrganisationalAim_ORGANISATIONAL_AIM_BALANCE)
	case mismatch:
		add(0.4, casev1.OrganisationalAim_ORGANISATIONAL_AIM_EMPLOYABILITY)
		add(0.2, casev1.OrganisationalAim_ORGANISATIONAL_AIM_RETENTION)
	default:
		add(0.6, casev1.OrganisationalAim_ORGANISATIONAL_AIM_EMPLOYABILITY)
	}
	if old {
		add(0.45, casev1.OrganisationalAim_ORGANISATIONAL_AIM_AGE_AWARE_HR)
	}
	return aims
}

// willingnessMean is how willing to move clients in a context usually are.
var willingnessMean = map[casev1.OrganisationalContext]float64{0: 3.6, growth: 4.1, mismatch: 2.5, reorganisation: 2.9}

// capacityMean is how able to move clients of an age usually are.
func capacityMean(age int) float64 {
	switch {
	case age < 40:
		return 3.8
	case age < 57:
		return 3.2
	default:
		return 2.4
	}
}

// mobility draws the intake's mobility scores; not every coach assesses
// them.
func (s *story) mobility(assessed float64, ctx casev1.OrganisationalContext, age int) (uint32, uint32) {
	if !s.d.chance(assessed) {
		return 0, 0
	}
	return s.score(willingnessMean[ctx]), s.score(capacityMean(age))
}

// reclassification is a way a question develops, with its reason.
type reclassification struct {
	to     casev1.QuestionType
	reason casev1.ReclassificationReason
}

// reclassifications are how questions of each type develop: competence
// coaching that does not work becomes counseling, a "disguised" choice
// question turns out to be about life values (chapter 1).
var reclassifications = map[casev1.QuestionType][]option[reclassification]{
	choice: {
		w(45, reclassification{life, casev1.ReclassificationReason_RECLASSIFICATION_REASON_DISGUISED_QUESTION}),
		w(35, reclassification{competence, casev1.ReclassificationReason_RECLASSIFICATION_REASON_INTAKE_MISJUDGED}),
		w(20, reclassification{counseling, casev1.ReclassificationReason_RECLASSIFICATION_REASON_COACHING_INEFFECTIVE}),
	},
	competence: {
		w(55, reclassification{counseling, casev1.ReclassificationReason_RECLASSIFICATION_REASON_COACHING_INEFFECTIVE}),
		w(30, reclassification{life, casev1.ReclassificationReason_RECLASSIFICATION_REASON_DISGUISED_QUESTION}),
		w(15, reclassification{choice, casev1.ReclassificationReason_RECLASSIFICATION_REASON_CIRCUMSTANCES_CHANGED}),
	},
	life: {
		w(60, reclassification{counseling, casev1.ReclassificationReason_RECLASSIFICATION_REASON_COACHING_INEFFECTIVE}),
		w(40, reclassification{choice, casev1.ReclassificationReason_RECLASSIFICATION_REASON_CIRCUMSTANCES_CHANGED}),
	},
	counseling: {
		w(60, reclassification{life, casev1.ReclassificationReason_RECLASSIFICATION_REASON_CIRCUMSTANCES_CHANGED}),
		w(40, reclassification{competence, casev1.ReclassificationReason_RECLASSIFICATION_REASON_INTAKE_MISJUDGED}),
	},
}

// reclassify moves the question on as questions of its type do; a
// deepened question sometimes goes to a colleague who knows it better.
func (s *story) reclassify() {
	if !s.state().Intake.Completed {
		return // the story went past Today before the intake
	}
	r := weighted(s.d, reclassifications[s.state().QuestionType]...)
	req := &casev1.ReclassifyQuestionRequest{To: r.to, Reason: r.reason}
	if s.d.chance(0.05) {
		req.Reason = casev1.ReclassificationReason_RECLASSIFICATION_REASON_OTHER
		req.Explanation = pick(s.d, reclassificationExplanations)
	}
	if s.undated(req) && r.to >= life && s.d.chance(0.3) {
		s.referColleague(casev1.ReferralReason_REFERRAL_REASON_BEYOND_EXPERTISE)
	}
}

// coaching writes a coaching trajectory: on the client's own request, or
// with the employer (org).
func (s *story) coaching(org bool) {
	q := ownQuestion
	if org {
		q = weighted(s.d, coachingQuestions...)
	}
	age := s.d.between(q.ages[0], q.ages[1])
	s.quiet = s.d.chance(0.07)
	coachAtOpen := s.quiet || s.d.chance(0.85)
	open := &casev1.OpenCaseRequest{BirthYear: birthYear(age, s.day.Year), InitiatedBy: casev1.Initiator_INITIATOR_CLIENT}
	if org {
		open.InitiatedBy = casev1.Initiator_INITIATOR_ORGANISATION
		open.OrganisationId, open.Department = s.organisation()
		open.OrganisationalContext, open.OrganisationalQuestion = q.context, q.question
		open.OrganisationalAims = s.aimsFor(q.context, age)
	}
	if coachAtOpen {
		open.CoachId = s.anyCoach()
	}
	s.open(open)
	if s.quiet && s.d.chance(0.15) {
		return // registered, and never came to the intake
	}
	s.wait(3, 21)
	if !coachAtOpen {
		s.undated(&casev1.AssignCoachRequest{CoachId: s.anyCoach()})
	}
	qt := weighted(s.d, q.types...)
	signals, advised := s.warningSignals(either(qt >= life, 0.16, 0.08)) // deeper questions come with more signals
	willing, able := s.mobility(either(org, 0.85, 0.4), q.context, age)
	s.intake(&casev1.CompleteIntakeRequest{QuestionType: qt, WarningSignals: signals, ReferralAdvised: advised,
		MobilityWillingness: willing, MobilityCapacity: able})
	if org && s.d.chance(0.8) {
		scopes := []casev1.ReportingScope{scopeProgress, scopeOutcome}
		if s.d.chance(0.3) {
			scopes = append(scopes, scopePlan)
		}
		s.grantEmployer(scopes...)
	}
	if advised && s.referOutside(casev1.ReferralReason_REFERRAL_REASON_WARNING_SIGNALS) {
		if s.d.chance(0.6) {
			s.wait(0, 14)
			s.close(casev1.CloseOutcome_CLOSE_OUTCOME_REFERRED)
			s.afterClose()
			return
		}
		s.wait(30, 90) // other help first; the coaching resumes after
	}
	if !s.coachingSessions(org, qt) {
		return
	}
	s.wait(0, 14)
	s.closeCoaching(org)
}

// coachingSessions writes the sessions, the plan and what happens on the
// way; false when the case went quiet.
func (s *story) coachingSessions(org bool, qt casev1.QuestionType) bool {
	n := s.d.between(3, 10)
	stallAt, reclassAt, planAt := -1, -1, -1
	if s.quiet {
		stallAt = s.d.between(1, n-1)
	}
	if s.d.chance(0.16) {
		reclassAt = s.d.between(1, min(3, n-1))
	}
	if s.d.chance(0.7) {
		planAt = s.d.between(1, 2)
	}
	for i := range n {
		if i == stallAt {
			return false
		}
		s.wait(7, 21)
		s.revisePlanIfDue()
		s.session(s.coachingSessionKind(i, n, org, qt))
		switch {
		case i == planAt:
			s.agreePlan()
		case i == reclassAt:
			s.reclassify()
		case i > 0 && s.d.chance(0.015):
			s.referColleague(weighted(s.d, w(3, casev1.ReferralReason_REFERRAL_REASON_CASELOAD), w(2, casev1.ReferralReason_REFERRAL_REASON_CLIENT_REQUEST)))
		case org && i == n/2 && s.d.chance(0.03):
			s.revokeEmployer()
		}
	}
	return true
}

func (s *story) coachingSessionKind(i, n int, org bool, qt casev1.QuestionType) casev1.SessionKind {
	switch {
	case i == 0 && org && s.d.chance(0.5):
		return sessionTripartite
	case i <= 1 && qt == choice && s.d.chance(0.6):
		return sessionAssessment
	case i == n-1 && org && s.d.chance(0.4):
		return sessionTripartite
	case i == n-1 && s.d.chance(0.3):
		return sessionFollowUp
	case s.d.chance(0.08):
		return sessionTraining
	}
	return sessionCoaching
}

// closeCoaching ends a coaching trajectory, mostly with its goal reached.
func (s *story) closeCoaching(org bool) {
	withdrew := 0
	if org {
		withdrew = 7
	}
	outcome := weighted(s.d,
		w(74, casev1.CloseOutcome_CLOSE_OUTCOME_GOAL_ACHIEVED),
		w(13, casev1.CloseOutcome_CLOSE_OUTCOME_CLIENT_WITHDREW),
		w(withdrew, casev1.CloseOutcome_CLOSE_OUTCOME_ORGANISATION_WITHDREW),
		w(3, casev1.CloseOutcome_CLOSE_OUTCOME_REFERRED),
		w(3, casev1.CloseOutcome_CLOSE_OUTCOME_OTHER))
	if outcome == casev1.CloseOutcome_CLOSE_OUTCOME_REFERRED {
		s.referOutside(casev1.ReferralReason_REFERRAL_REASON_BEYOND_EXPERTISE)
	}
	s.close(outcome)
	s.afterClose()
}

// either is a if cond holds, else b.
func either[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}
