package demo

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Kind is the kind of trajectory a case follows.
type Kind int

// The kinds of trajectory.
const (
	// KindCoaching: a client who came on their own account (individuele
	// loopbaanvraag), coached on the question type.
	KindCoaching Kind = iota + 1
	// KindOrganisationalCoaching: coaching the employer asked for, in one
	// of the organisational contexts of chapter table 1.2.
	KindOrganisationalCoaching
	// KindOutplacement: an outplacement (uitstroombegeleiding) after a
	// reorganisation or a mismatch.
	KindOutplacement
	// KindReintegration: a re-integration after sick leave under the
	// Gatekeeper Act.
	KindReintegration
)

var kindNames = map[Kind]string{
	KindCoaching: "coaching (client's own request)", KindOrganisationalCoaching: "coaching (employer's request)",
	KindOutplacement: "outplacement", KindReintegration: "re-integration",
}

// String names the kind.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "kind " + strconv.Itoa(int(k))
}

// Step is one command of a case, on the day the coach records it.
type Step struct {
	// Day is when the command is given; the request's own dates may lie
	// before it (a checkpoint recorded after the fact), never after.
	Day casework.Date
	// Request is the command, with its case and request ID set.
	Request Request
}

// Method is the CaseService method the step calls, for example
// "RecordSession".
func (s Step) Method() string {
	return strings.TrimSuffix(string(s.Request.ProtoReflect().Descriptor().Name()), "Request")
}

// Trajectory is one case of the population: its commands up to Today.
type Trajectory struct {
	// Index is the case's number in the population, from 0.
	Index int
	// CaseID is its ID.
	CaseID string
	// Kind is the kind of trajectory it follows.
	Kind Kind
	// Steps are its commands in the order they are sent.
	Steps []Step
	// State is the case as the domain sees it after the steps: on Today.
	State casework.State
}

// Case returns the trajectory of case index, 0 ≤ index < Config.Cases.
// It fails only when index is out of range or the generator wrote a
// command the domain refuses (a bug).
func (p *Population) Case(index int) (Trajectory, error) {
	if index < 0 || index >= p.cfg.Cases {
		return Trajectory{}, fmt.Errorf("demo: case %d of %d", index, p.cfg.Cases)
	}
	d := caseDice(p.cfg.Seed, index)
	ago := d.IntN(HistoryDays + 1) // first draw: see openedDaysAgo
	s := &story{p: p, d: d, day: p.cfg.Today.AddDays(-ago),
		t: &Trajectory{Index: index, CaseID: CaseID(p.cfg.Tenant, p.cfg.Seed, index)}}
	s.t.Kind = weighted(d, w(22, KindCoaching), w(33, KindOrganisationalCoaching), w(25, KindOutplacement), w(20, KindReintegration))
	switch s.t.Kind {
	case KindCoaching:
		s.coaching(false)
	case KindOrganisationalCoaching:
		s.coaching(true)
	case KindOutplacement:
		s.outplacement()
	case KindReintegration:
		s.reintegration()
	}
	return *s.t, s.err
}

// story writes one case's trajectory: a cursor day that only moves
// forward, the commands in order, and the case's state after each. A story
// goes on past Today in the generator's mind, but from the first command
// after Today nothing more is written; since what happens before Today
// never depends on what comes after, a case is the same prefix of its
// story whatever Today is.
type story struct {
	p   *Population
	d   dice
	t   *Trajectory
	day casework.Date
	// past is set at the first command after Today.
	past bool
	err  error
	// quiet marks a case that goes idle: the client stops coming and the
	// coach stops recording. It gives no commands without a day of their
	// own (consents, reclassifications, referrals, agencies), because the
	// server dates those at the moment they arrive, which would make the
	// case look active today.
	quiet bool
}

// state is the case's current state.
func (s *story) state() casework.State { return s.t.State }

// wait moves the cursor lo to hi days on.
func (s *story) wait(lo, hi int) { s.day = s.day.AddDays(s.d.between(lo, hi)) }

// to moves the cursor to d, unless it is there or later already.
func (s *story) to(d casework.Date) {
	if d.After(s.day) {
		s.day = d
	}
}

// today is the cursor as a request date.
func (s *story) today() *casev1.Date { return s.day.Proto() }

// do writes a command on the cursor day, after the domain accepted it.
func (s *story) do(req Request) {
	if s.err != nil || s.past {
		return
	}
	if s.day.After(s.p.cfg.Today) {
		s.past = true
		return
	}
	n := len(s.t.Steps)
	stamp(req, s.t.CaseID, requestID(s.p.cfg.Seed, s.t.Index, n))
	next, err := decide(s.t.State, req)
	if err != nil {
		s.err = fmt.Errorf("demo: case %d step %d (%T on %s): %w", s.t.Index, n, req, s.day, err)
		return
	}
	s.t.State = next
	s.t.Steps = append(s.t.Steps, Step{Day: s.day, Request: req})
}

// undated writes a command without a day of its own, unless the case is
// quiet; it reports whether it did.
func (s *story) undated(req Request) bool {
	if s.quiet {
		return false
	}
	before := len(s.t.Steps)
	s.do(req)
	return len(s.t.Steps) > before
}

// stamp sets the case and request ID every command request has.
func stamp(m proto.Message, caseID, requestID string) {
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	r.Set(fields.ByName("case_id"), protoreflect.ValueOfString(caseID))
	r.Set(fields.ByName("request_id"), protoreflect.ValueOfString(requestID))
}

// clientID is the client's pseudonymous ID: one client per case.
func (s *story) clientID() string {
	return "demo-" + strconv.FormatUint(s.p.cfg.Seed, 10) + "-client-" + strconv.Itoa(s.t.Index)
}

// open opens the case on the cursor day; r carries what is particular to
// the trajectory.
func (s *story) open(r *casev1.OpenCaseRequest) {
	r.ClientId = s.clientID()
	r.Client = fakeClient(s.d, s.t.Index)
	r.OpenedOn = s.today()
	s.do(r)
}

// anyCoach picks a coach other than the case's current one.
func (s *story) anyCoach() string {
	for {
		if c := pick(s.d, s.p.coaches); c != s.state().CoachID {
			return c
		}
	}
}

// organisation picks an employer, by the share of cases each sends, and a
// department.
func (s *story) organisation() (string, string) {
	opts := make([]option[int], len(s.p.organisations))
	for i, o := range s.p.organisations {
		opts[i] = w(o.weight, i)
	}
	o := s.p.organisations[weighted(s.d, opts...)]
	return o.ID, pick(s.d, o.Departments)
}

// birthYear is the year of birth of a client who is age in year.
func birthYear(age, year int) int32 { return int32(year - age) }

// score draws a 1-to-5 assessment around mean.
func (s *story) score(mean float64) uint32 {
	v := math.Round(mean + 1.1*s.d.NormFloat64())
	return uint32(min(5, max(1, v)))
}

// warningSignals draws the intake's warning signals: with probability p
// one or two, and whether the coach advises other help first.
func (s *story) warningSignals(p float64) ([]casev1.WarningSignal, bool) {
	if !s.d.chance(p) {
		return nil, false
	}
	all := []casev1.WarningSignal{
		casev1.WarningSignal_WARNING_SIGNAL_OVERLOAD,
		casev1.WarningSignal_WARNING_SIGNAL_PSYCHOLOGICAL_COMPLAINTS,
		casev1.WarningSignal_WARNING_SIGNAL_ANXIETY,
	}
	first := weighted(s.d, w(50, 0), w(30, 1), w(20, 2))
	signals := []casev1.WarningSignal{all[first]}
	if s.d.chance(0.25) {
		signals = append(signals, all[(first+1+s.d.IntN(2))%3])
	}
	return signals, s.d.chance(0.45)
}

// intake records the intake conversation and the intake on the cursor
// day.
func (s *story) intake(r *casev1.CompleteIntakeRequest) {
	s.session(casev1.SessionKind_SESSION_KIND_INTAKE)
	r.HeldOn = s.today()
	r.Answers = fakeAnswers(s.d, r.GetQuestionType())
	s.do(r)
}

// sessionMinutes are the usual lengths of each kind of session.
var sessionMinutes = map[casev1.SessionKind][2]int{
	casev1.SessionKind_SESSION_KIND_INTAKE:     {60, 90},
	casev1.SessionKind_SESSION_KIND_COACHING:   {45, 90},
	casev1.SessionKind_SESSION_KIND_ASSESSMENT: {90, 180},
	casev1.SessionKind_SESSION_KIND_TRIPARTITE: {45, 75},
	casev1.SessionKind_SESSION_KIND_TRAINING:   {120, 480},
	casev1.SessionKind_SESSION_KIND_FOLLOW_UP:  {30, 60},
}

// session records a session of kind on the cursor day, in quarter hours.
func (s *story) session(kind casev1.SessionKind) {
	m := sessionMinutes[kind]
	minutes := s.d.between(m[0]/15, m[1]/15) * 15
	s.do(&casev1.RecordSessionRequest{HeldOn: s.today(), Kind: kind, DurationMinutes: uint32(minutes), Notes: fakeNotes(s.d)})
}

// agreePlan agrees the development plan on the cursor day, to be reviewed
// in two to three months.
func (s *story) agreePlan() {
	if !s.state().Intake.Completed || s.state().Plan.Agreed {
		return
	}
	s.do(&casev1.AgreeDevelopmentPlanRequest{AgreedOn: s.today(), ReviewOn: s.day.AddDays(s.d.between(56, 98)).Proto(),
		Goals: fakeGoals(s.d, s.day.AddDays(s.d.between(90, 270)).Proto())})
}

// revisePlanIfDue revises the plan when its review day has come.
func (s *story) revisePlanIfDue() {
	plan := s.state().Plan
	if !plan.Agreed || s.day.Before(plan.ReviewOn) || plan.Revisions >= 3 {
		return
	}
	s.do(&casev1.ReviseDevelopmentPlanRequest{RevisedOn: s.today(), ReviewOn: s.day.AddDays(s.d.between(56, 98)).Proto(),
		Goals: fakeGoals(s.d, s.day.AddDays(s.d.between(60, 240)).Proto())})
}

// grantEmployer records the client's consent to reports to the employer.
func (s *story) grantEmployer(scopes ...casev1.ReportingScope) {
	org := s.state().OrganisationID
	if org == "" {
		return
	}
	s.undated(&casev1.GrantReportingConsentRequest{
		Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER, Id: org}, Scopes: scopes})
}

// revokeEmployer ends the employer's consent, if it has one.
func (s *story) revokeEmployer() {
	r := casework.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER, ID: s.state().OrganisationID}
	if _, ok := s.state().Consent(r); !ok {
		return
	}
	s.undated(&casev1.RevokeReportingConsentRequest{Recipient: &casev1.Recipient{Kind: r.Kind, Id: r.ID}})
}

// referOutside refers the case to a professional outside the practice.
func (s *story) referOutside(reason casev1.ReferralReason) bool {
	return s.undated(&casev1.ReferCaseRequest{Target: casev1.ReferralTarget_REFERRAL_TARGET_OUTSIDE_PROFESSIONAL,
		Reason: reason, Details: pick(s.d, referralDetails)})
}

// referColleague hands the case to another coach of the practice.
func (s *story) referColleague(reason casev1.ReferralReason) {
	s.undated(&casev1.ReferCaseRequest{Target: casev1.ReferralTarget_REFERRAL_TARGET_COLLEAGUE,
		ColleagueCoachId: s.anyCoach(), Reason: reason})
}

// close closes the case on the cursor day.
func (s *story) close(outcome casev1.CloseOutcome) {
	r := &casev1.CloseCaseRequest{ClosedOn: s.today(), Outcome: outcome}
	if outcome == casev1.CloseOutcome_CLOSE_OUTCOME_OTHER {
		r.Summary = pick(s.d, closingSummaries)
	}
	s.do(r)
}

// afterClose lets a closed coaching case come back (a follow-up question)
// or be erased when the retention period of about a year has passed, or
// on the client's request.
func (s *story) afterClose() {
	if !s.state().Closure.Closed {
		return
	}
	switch weighted(s.d, w(40, "reopen"), w(80, "retention"), w(5, "request"), w(875, "")) {
	case "reopen":
		s.wait(30, 180)
		s.do(&casev1.ReopenCaseRequest{ReopenedOn: s.today(), Reason: casev1.ReopenReason_REOPEN_REASON_CLIENT_RETURNED})
		for range s.d.between(1, 3) {
			s.wait(7, 21)
			s.session(weighted(s.d, w(2, casev1.SessionKind_SESSION_KIND_COACHING), w(1, casev1.SessionKind_SESSION_KIND_FOLLOW_UP)))
		}
		s.wait(0, 14)
		s.close(casev1.CloseOutcome_CLOSE_OUTCOME_GOAL_ACHIEVED)
	case "retention":
		s.wait(365, 400)
		s.do(&casev1.EraseClientDataRequest{Reason: casev1.ErasureReason_ERASURE_REASON_RETENTION_EXPIRED})
	case "request":
		s.wait(7, 90)
		s.do(&casev1.EraseClientDataRequest{Reason: casev1.ErasureReason_ERASURE_REASON_CLIENT_REQUEST})
	}
}

// agenda collects a trajectory's commands on their days, from parallel
// threads (phases, sessions, checkpoints), and plays them in day order.
type agenda []agendaItem

type agendaItem struct {
	day casework.Date
	do  func()
}

// at plans f on day d.
func (a *agenda) at(d casework.Date, f func()) { *a = append(*a, agendaItem{d, f}) }

// play runs the items in day order, those of one day in the order they
// were planned, each on its day; items after until (when not zero) are
// dropped: the case went quiet.
func (s *story) play(a agenda, until casework.Date) {
	slices.SortStableFunc(a, func(x, y agendaItem) int { return x.day.DaysSince(y.day) })
	for _, it := range a {
		if !until.IsZero() && it.day.After(until) {
			return
		}
		s.to(it.day)
		it.do()
	}
}
