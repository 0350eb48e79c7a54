package testbed

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// Organisation is an employer of the synthetic history with its
// departments.
type Organisation struct {
	ID          string
	Departments []string
}

// Config describes a synthetic history. The same Config always gives the
// same events.
type Config struct {
	// Seed seeds the random choices.
	Seed uint64
	// Tenant owns the cases; Cases is how many.
	Tenant string
	Cases  int
	// OtherTenant owns OtherCases more cases, which no query of Tenant may
	// ever show.
	OtherTenant string
	OtherCases  int
	// Organisations are the employers; a case asked for by an employer
	// picks one at random. About a quarter of the cases come on the
	// client's own account, without an employer.
	Organisations []Organisation
	// Coaches is how many coaches (coach-001, …) share the cases.
	Coaches int
	// From is the first day a case may open; Until the last day anything
	// happens. Cases open evenly between From and Until.
	From, Until casework.Date
	// Location is the practice's calendar.
	Location *time.Location
}

// Golden is the history the golden files pin: a few dozen cases of every
// question type, context, outplacements and re-integrations, over two
// years, in two tenants.
func Golden(loc *time.Location) Config {
	return Config{
		Seed:   20251201,
		Tenant: "rivierstad", Cases: 120,
		OtherTenant: "noorderlicht", OtherCases: 8,
		Organisations: []Organisation{
			{ID: "havenbedrijf", Departments: []string{"logistiek", "techniek"}},
			{ID: "zorggroep-oost", Departments: []string{"verpleging", "facilitair"}},
		},
		Coaches:  4,
		From:     casework.Date{Year: 2024, Month: time.January, Day: 8},
		Until:    casework.Date{Year: 2025, Month: time.November, Day: 28},
		Location: loc,
	}
}

// Large is a history of n cases for benchmarks: 20 employers with 5
// departments each, 500 coaches, over three years.
func Large(n int, loc *time.Location) Config {
	orgs := make([]Organisation, 20)
	for i := range orgs {
		orgs[i] = Organisation{ID: fmt.Sprintf("org-%02d", i+1), Departments: []string{"a", "b", "c", "d", "e"}}
	}
	return Config{
		Seed: 7, Tenant: "rivierstad", Cases: n,
		Organisations: orgs, Coaches: 500,
		From:     casework.Date{Year: 2023, Month: time.January, Day: 2},
		Until:    casework.Date{Year: 2025, Month: time.November, Day: 28},
		Location: loc,
	}
}

// History returns the events of the synthetic history in global order, at
// positions 1, 2, …: the order the store recorded them in, cases
// interleaved. Every case's events come from casework.Decide on the case's
// state, so the history obeys the domain's rules.
func History(cfg Config) []projections.Event {
	var cmds []command
	cfg.each(func(c []command) { cmds = append(cmds, c...) })
	// The store's global order is the order the commands were recorded in;
	// one case's commands keep their own order.
	slices.SortStableFunc(cmds, func(a, b command) int {
		return cmp.Or(a.recorded.Compare(b.recorded), cmp.Compare(a.caseIndex, b.caseIndex), cmp.Compare(a.seq, b.seq))
	})
	var out []projections.Event
	e := emitter{loc: cfg.Location, revisions: map[string]uint64{}}
	for _, c := range cmds {
		out = e.emit(out, c)
	}
	return out
}

// Stream calls fn with the same cases' events as History, but one case
// after the other instead of interleaved, so that a large history never
// sits in memory whole. A projection that keeps each case to itself (as
// the read models do) ends the same either way. fn gets each case's events
// in a slice it may keep.
func Stream(cfg Config, fn func(events []projections.Event) error) error {
	e := emitter{loc: cfg.Location}
	var err error
	cfg.each(func(c []command) {
		if err != nil {
			return
		}
		e.revisions = map[string]uint64{}
		var events []projections.Event
		for _, cmd := range c {
			events = e.emit(events, cmd)
		}
		err = fn(events)
	})
	return err
}

// each plays every case of the configuration in turn.
func (cfg Config) each(fn func([]command)) {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	for i := range cfg.Cases {
		fn(newScript(cfg, cfg.Tenant, i, rng).run())
	}
	for i := range cfg.OtherCases {
		fn(newScript(cfg, cfg.OtherTenant, cfg.Cases+i, rng).run())
	}
}

// emitter turns decided commands into events with positions.
type emitter struct {
	loc       *time.Location
	position  eventstore.Position
	revisions map[string]uint64
}

func (e *emitter) emit(out []projections.Event, c command) []projections.Event {
	for _, body := range c.events {
		e.position++
		rev := e.revisions[c.caseID]
		e.revisions[c.caseID] = rev + 1
		out = append(out, projections.Event{
			Position:   e.position,
			ID:         uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s/%d", c.caseID, rev)).String(),
			Stream:     "case-" + c.caseID,
			Revision:   rev,
			Type:       string(proto.MessageName(body)),
			RecordedAt: c.recorded,
			Metadata: &eventv1.Metadata{
				TenantId:      c.tenant,
				CaseId:        c.caseID,
				OccurredAt:    timestamppb.New(midnight(c.day, e.loc)),
				RecordedAt:    timestamppb.New(c.recorded),
				Actor:         c.actor,
				RequestId:     fmt.Sprintf("req-%d-%d", c.caseIndex, c.seq),
				SchemaVersion: 1,
			},
			Body: body,
		})
	}
	return out
}

var eventNamespace = uuid.MustParse("6f1c7f5e-2f0d-4a57-9d86-0c1b8f3f4a11")

// CaseID returns the ID of the synthetic case with the index.
func CaseID(index int) string {
	return uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "case %d", index)).String()
}

// Coach returns the ID of the synthetic coach with the number, from 1.
func Coach(n int) string { return fmt.Sprintf("coach-%03d", n) }

// command is one decided command of a case: its events and when.
type command struct {
	tenant    string
	caseID    string
	caseIndex int
	seq       int
	day       casework.Date
	recorded  time.Time
	actor     string
	events    []proto.Message
}

// script plays one case's life: it decides commands in day order until the
// case closes or the history ends.
type script struct {
	cfg      Config
	rng      *rand.Rand
	tenant   string
	index    int
	caseID   string
	state    casework.State
	day      casework.Date
	recorded time.Time
	out      []command
	stopped  bool
}

func newScript(cfg Config, tenant string, index int, rng *rand.Rand) *script {
	return &script{cfg: cfg, rng: rng, tenant: tenant, index: index, caseID: CaseID(index)}
}

// do decides cmd on day and keeps its events; a day after Until ends the
// case's history there. lateDays records the command that many days after
// it happened, as a coach catching up on paperwork does.
func (s *script) do(day casework.Date, lateDays int, cmd casework.Command) bool {
	if s.stopped || day.After(s.cfg.Until) {
		s.stopped = true
		return false
	}
	if day.Before(s.day) {
		day = s.day
	}
	events, err := casework.Decide(s.state, cmd)
	if err != nil {
		panic(fmt.Sprintf("testbed: case %d on %s: %T: %v", s.index, day, cmd, err))
	}
	rec := midnight(day.AddDays(lateDays), s.cfg.Location).Add(9*time.Hour + time.Duration(s.rng.IntN(8*60))*time.Minute)
	if !rec.After(s.recorded) {
		rec = s.recorded.Add(time.Minute)
	}
	if casework.DateOf(rec.In(s.cfg.Location)).After(s.cfg.Until) {
		s.stopped = true
		return false
	}
	for _, e := range events {
		s.state = casework.Evolve(s.state, e)
	}
	actor := s.state.CoachID
	if actor == "" {
		actor = "intake-desk"
	}
	s.out = append(s.out, command{
		tenant: s.tenant, caseID: s.caseID, caseIndex: s.index, seq: len(s.out),
		day: day, recorded: rec, actor: actor, events: events,
	})
	s.day, s.recorded = day, rec
	return true
}

func (s *script) chance(p float64) bool { return s.rng.Float64() < p }

func (s *script) between(lo, hi int) int { return lo + s.rng.IntN(hi-lo+1) }

func (s *script) coach() string { return Coach(1 + s.rng.IntN(max(1, s.cfg.Coaches))) }

func (s *script) sealed() *eventv1.Sealed {
	return &eventv1.Sealed{
		KeyId:      fmt.Sprintf("key-%s-%d", s.tenant, s.index),
		Nonce:      bytes.Repeat([]byte{1}, 12),
		Ciphertext: bytes.Repeat([]byte{2}, 32),
	}
}

// run plays the case: opening, intake, then coaching, an outplacement or a
// re-integration, and perhaps a close, a reopening or an erasure.
func (s *script) run() []command {
	span := s.cfg.Until.DaysSince(s.cfg.From)
	opened := s.cfg.From.AddDays(s.rng.IntN(span + 1))
	kind := s.open(opened)
	if !s.intake() {
		return s.out
	}
	switch kind {
	case trajectoryOutplacement:
		s.outplacement()
	case trajectoryReintegration:
		s.reintegration()
	default:
		s.coaching()
	}
	if s.state.Closure.Closed && s.chance(0.08) {
		day := s.day.AddDays(s.between(20, 120))
		if s.do(day, 0, casework.ReopenCase{ReopenedOn: day, Reason: casev1.ReopenReason_REOPEN_REASON_CLIENT_RETURNED}) {
			s.coaching()
		}
	}
	if s.state.Closure.Closed && s.chance(0.05) {
		s.do(s.day.AddDays(s.between(1, 30)), 0, casework.EraseClientData{Reason: casev1.ErasureReason_ERASURE_REASON_CLIENT_REQUEST})
	}
	return s.out
}

type trajectory int

const (
	trajectoryCoaching trajectory = iota
	trajectoryOutplacement
	trajectoryReintegration
)

var questions = []casev1.OrganisationalQuestion{
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_TALENT_POOL,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_MANAGEMENT_DEVELOPMENT,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_TALENT_DEVELOPMENT,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PROBLEM_CASE,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_PREDICTABLE_STAGNATION,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_FULL_BLOCKADE,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_FORCED_INTERNAL_MOBILITY,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT,
	casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT,
}

// open opens the case and says which trajectory it is for.
func (s *script) open(day casework.Date) trajectory {
	c := casework.OpenCase{
		ClientID:    fmt.Sprintf("client-%d", s.index),
		Client:      s.sealed(),
		BirthYear:   day.Year - s.between(22, 64),
		InitiatedBy: casev1.Initiator_INITIATOR_CLIENT,
		OpenedOn:    day,
	}
	if s.chance(0.05) {
		c.BirthYear = 0
	}
	if s.chance(0.85) {
		c.CoachID = s.coach()
	}
	kind := trajectoryCoaching
	if len(s.cfg.Organisations) > 0 && s.chance(0.75) {
		org := s.cfg.Organisations[s.rng.IntN(len(s.cfg.Organisations))]
		c.InitiatedBy = casev1.Initiator_INITIATOR_ORGANISATION
		c.OrganisationID = org.ID
		c.Department = org.Departments[s.rng.IntN(len(org.Departments))]
		switch r := s.rng.Float64(); {
		case r < 0.25:
			kind = trajectoryReintegration // no row of table 1.2 fits a re-integration
		default:
			c.Question = questions[s.rng.IntN(len(questions))]
			c.Context = casework.ContextOf(c.Question)
			if c.Question == casev1.OrganisationalQuestion_ORGANISATIONAL_QUESTION_OUTPLACEMENT || s.chance(0.1) {
				kind = trajectoryOutplacement
			}
		}
		if s.chance(0.3) {
			c.Aims = []casev1.OrganisationalAim{casev1.OrganisationalAim(1 + s.rng.IntN(5))}
		}
	}
	s.do(day, 0, c)
	return kind
}

// intake completes the intake after a few days, and reports whether the
// case got that far.
func (s *script) intake() bool {
	if s.state.CoachID == "" && !s.do(s.day.AddDays(s.between(1, 5)), 0, casework.AssignCoach{CoachID: s.coach()}) {
		return false
	}
	if s.chance(0.04) {
		return false // still waiting for the intake
	}
	c := casework.CompleteIntake{
		HeldOn:       s.day.AddDays(s.between(3, 14)),
		QuestionType: casev1.QuestionType(1 + s.rng.IntN(4)),
		Answers:      s.sealed(),
	}
	if s.chance(0.12) {
		c.WarningSignals = []casev1.WarningSignal{casev1.WarningSignal(1 + s.rng.IntN(3))}
		c.ReferralAdvised = s.chance(0.6)
	}
	if s.chance(0.85) {
		c.MobilityWillingness, c.MobilityCapacity = s.between(1, 5), s.between(1, 5)
	}
	return s.do(c.HeldOn, 0, c)
}

// coaching records sessions, perhaps a plan, a reclassification and a
// referral, and closes the case when the coaching is done.
func (s *script) coaching() {
	sessions := s.between(2, 9)
	for i := range sessions {
		day := s.day.AddDays(s.between(7, 24))
		if !s.do(day, 0, casework.RecordSession{HeldOn: day, Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60}) {
			return
		}
		if i == 1 && !s.state.Plan.Agreed && s.chance(0.6) {
			s.do(day, 0, casework.AgreeDevelopmentPlan{AgreedOn: day, ReviewOn: day.AddDays(90), Goals: s.sealed()})
		}
		if i == sessions/2 && s.chance(0.3) {
			s.reclassify()
		}
		if i == 2 && s.chance(0.06) {
			s.refer()
		}
	}
	outcome := casev1.CloseOutcome_CLOSE_OUTCOME_GOAL_ACHIEVED
	if s.chance(0.2) {
		outcome = casev1.CloseOutcome_CLOSE_OUTCOME_CLIENT_WITHDREW
	}
	if s.chance(0.85) {
		day := s.day.AddDays(s.between(5, 30))
		s.do(day, 0, casework.CloseCase{ClosedOn: day, Outcome: outcome})
	}
}

var reclassReasons = []casev1.ReclassificationReason{
	casev1.ReclassificationReason_RECLASSIFICATION_REASON_COACHING_INEFFECTIVE,
	casev1.ReclassificationReason_RECLASSIFICATION_REASON_DISGUISED_QUESTION,
	casev1.ReclassificationReason_RECLASSIFICATION_REASON_INTAKE_MISJUDGED,
	casev1.ReclassificationReason_RECLASSIFICATION_REASON_CIRCUMSTANCES_CHANGED,
}

// reclassify moves the question, usually one step deeper (chapter 1: a
// question develops from one type into the next).
func (s *script) reclassify() {
	to := s.state.QuestionType + 1
	if to > casev1.QuestionType_QUESTION_TYPE_COUNSELING || s.chance(0.25) {
		to = casev1.QuestionType(1 + s.rng.IntN(4))
	}
	if to == s.state.QuestionType {
		return
	}
	s.do(s.day, 0, casework.ReclassifyQuestion{To: to, Reason: reclassReasons[s.rng.IntN(len(reclassReasons))]})
}

func (s *script) refer() {
	colleague := s.coach()
	if colleague == s.state.CoachID {
		return
	}
	s.do(s.day, 0, casework.ReferCase{
		Target: casev1.ReferralTarget_REFERRAL_TARGET_COLLEAGUE, ColleagueCoachID: colleague,
		Reason: casev1.ReferralReason_REFERRAL_REASON_BEYOND_EXPERTISE,
	})
}

// placementChance is the share of outplacements that end in work by age at
// the start, after the sector figures of 2018 (83% under 40, 77% at 40–56,
// 47% at 57 and over).
func placementChance(age int) float64 {
	switch {
	case age < 40:
		return 0.83
	case age < 57:
		return 0.77
	default:
		return 0.47
	}
}

// outplacement runs an outplacement through its phases to a placement or an
// ending without one, and closes the case.
func (s *script) outplacement() {
	start := s.day.AddDays(s.between(5, 20))
	months := s.between(3, 12)
	if !s.do(start, 0, casework.StartOutplacement{StartedOn: start, PlannedMonths: months}) {
		return
	}
	for _, ph := range []casev1.OutplacementPhase{
		casev1.OutplacementPhase_OUTPLACEMENT_PHASE_ORIENTATION,
		casev1.OutplacementPhase_OUTPLACEMENT_PHASE_DEVELOPMENT,
		casev1.OutplacementPhase_OUTPLACEMENT_PHASE_MARKET_APPROACH,
	} {
		if ph == casev1.OutplacementPhase_OUTPLACEMENT_PHASE_DEVELOPMENT && s.chance(0.4) {
			continue // the phases may be skipped
		}
		day := s.day.AddDays(s.between(14, 50))
		if !s.do(day, 0, casework.EnterOutplacementPhase{Phase: ph, EnteredOn: day}) {
			return
		}
		if s.chance(0.5) {
			s.do(day, 0, casework.RecordSession{HeldOn: day, Kind: casev1.SessionKind_SESSION_KIND_TRAINING, DurationMinutes: 180})
		}
	}
	age := start.Year - s.state.BirthYear
	if s.state.BirthYear == 0 {
		age = 45
	}
	if s.chance(placementChance(age)) {
		placed := s.day.AddDays(s.between(20, 160))
		outcome := casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL
		switch r := s.rng.Float64(); {
		case r < 0.25:
			outcome = casev1.PlacementOutcome_PLACEMENT_OUTCOME_INTERNAL
		case r < 0.35:
			outcome = casev1.PlacementOutcome_PLACEMENT_OUTCOME_SELF_EMPLOYED
		}
		if !s.do(placed, 0, casework.RecordPlacement{Outcome: outcome, PlacedOn: placed}) {
			return
		}
		if s.chance(0.5) {
			day := s.day.AddDays(s.between(14, 40))
			s.do(day, 0, casework.EnterOutplacementPhase{Phase: casev1.OutplacementPhase_OUTPLACEMENT_PHASE_AFTERCARE, EnteredOn: day})
		}
	} else {
		ended := start.AddDays(months * 30)
		if ended.Before(s.day) {
			ended = s.day.AddDays(7)
		}
		reason := casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_TERM_ENDED
		if s.chance(0.2) {
			reason = casev1.OutplacementEndReason_OUTPLACEMENT_END_REASON_CLIENT_WITHDREW
		}
		if !s.do(ended, 0, casework.EndOutplacementWithoutPlacement{EndedOn: ended, Reason: reason, MarketReady: s.chance(0.6)}) {
			return
		}
	}
	day := s.day.AddDays(s.between(10, 60))
	s.do(day, 0, casework.CloseCase{ClosedOn: day, Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_OUTPLACEMENT_CONCLUDED})
}

// reintegration runs a re-integration from a sick report shortly before the
// opening: statutory checkpoints mostly on time, some late, some missed,
// until the client returns to work, moves to another employer, leaves, or
// the waiting period ends.
func (s *script) reintegration() {
	sick := s.state.OpenedOn.AddDays(-s.between(0, 4))
	if !s.do(s.day, 0, casework.StartReintegration{SickReportedOn: sick}) {
		return
	}
	if s.chance(0.3) {
		agency := fmt.Sprintf("agency-%d", 1+s.rng.IntN(3))
		s.do(s.day, 0, casework.GrantReportingConsent{
			Recipient: casework.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, ID: agency},
			Scopes:    []casev1.ReportingScope{casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION},
		})
		s.do(s.day, 0, casework.AssignAgency{AgencyID: agency})
	}
	weeks, outcome := s.reintegrationEnd()
	end := sick.AddDays(7*weeks - 1)
	skipped := map[casework.Deadline]bool{}
	for {
		d, ok := s.nextCheckpoint(sick, skipped)
		if !ok || d.Opens.After(end) {
			break
		}
		var held casework.Date
		late := 0
		switch r := s.rng.Float64(); {
		case r < 0.08:
			skipped[d] = true // missed: it stays overdue
			continue
		case r < 0.2:
			held = d.Due.AddDays(s.between(1, 25))
		default:
			held = d.Due.AddDays(-s.between(0, max(0, d.Due.DaysSince(d.Opens))))
		}
		if held.Before(s.day) {
			held = s.day
		}
		if s.chance(0.15) {
			late = s.between(3, 30) // written down weeks later
		}
		c := casework.RecordCheckpoint{Kind: d.Kind, HeldOn: held}
		if d.Kind == casev1.CheckpointKind_CHECKPOINT_KIND_SECOND_TRACK_DECISION {
			c.SecondTrackDecision = casev1.SecondTrackDecision_SECOND_TRACK_DECISION_RETURN_EXPECTED
			if outcome == casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER {
				c.SecondTrackDecision = casev1.SecondTrackDecision_SECOND_TRACK_DECISION_START
			}
		}
		if d.Kind == casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS || d.Kind == casev1.CheckpointKind_CHECKPOINT_KIND_PROGRESS_REVIEW {
			c.LoadCapacity = &casework.LoadCapacity{Percent: 10 * s.between(0, 10), HoursPerWeek: s.between(0, 36)}
		}
		if !s.do(held, late, c) {
			return
		}
		if c.SecondTrackDecision == casev1.SecondTrackDecision_SECOND_TRACK_DECISION_START {
			s.do(held.AddDays(s.between(1, 14)), 0, casework.StartSecondTrack{StartedOn: held.AddDays(14)})
		}
	}
	if end.Before(s.day) {
		end = s.day
	}
	s.do(end, 0, casework.CloseCase{ClosedOn: end, Outcome: outcome})
}

// reintegrationEnd draws how many weeks the re-integration lasts and how it
// ends.
func (s *script) reintegrationEnd() (int, casev1.CloseOutcome) {
	switch r := s.rng.Float64(); {
	case r < 0.55:
		return s.between(3, 30), casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER
	case r < 0.75:
		return s.between(56, 80), casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER
	case r < 0.85:
		return s.between(10, 60), casev1.CloseOutcome_CLOSE_OUTCOME_EMPLOYMENT_ENDED
	default:
		return 104, casev1.CloseOutcome_CLOSE_OUTCOME_DISABILITY_BENEFIT
	}
}

// nextCheckpoint returns the not-done, not-skipped deadline with the
// earliest last day, by the domain's own schedule.
func (s *script) nextCheckpoint(sick casework.Date, skipped map[casework.Deadline]bool) (casework.Deadline, bool) {
	for _, d := range casework.Schedule(sick, s.state.Reintegration.Checkpoints, time.Time{}) {
		if d.DoneOn.IsZero() && !skipped[d] {
			return d, true
		}
	}
	return casework.Deadline{}, false
}

// midnight is the start of day in loc: the occurred-at of an event that
// happened that day, as CaseService writes it.
func midnight(d casework.Date, loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}
