package demo

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// IdleDays is the idleness the summary counts: open cases with no activity
// for more than this many days.
const IdleDays = 30

// Summary counts what a population holds on its Today, from the commands
// sent and the cases' states as the domain sees them.
type Summary struct {
	Today    casework.Date
	Cases    int
	Commands int
	// ByMethod counts the commands by CaseService method.
	ByMethod map[string]int

	ByKind  map[Kind]int
	ByStage map[casev1.Stage]int
	// ByIntakeType counts the question types the intakes gave;
	// ByQuestionType the types now, after reclassifications.
	ByIntakeType   map[casev1.QuestionType]int
	ByQuestionType map[casev1.QuestionType]int
	// ByContext and ByQuestion count the organisational contexts and named
	// questions; unspecified is "none".
	ByContext  map[casev1.OrganisationalContext]int
	ByQuestion map[casev1.OrganisationalQuestion]int
	// Reclassifications counts the changes of question type, from → to.
	Reclassifications map[[2]casev1.QuestionType]int
	// WarningSignals counts intakes with warning signals, ReferralAdvised
	// those where other help was advised, MobilityAssessed those with
	// mobility scores.
	WarningSignals, ReferralAdvised, MobilityAssessed int
	Referrals                                         map[casev1.ReferralTarget]int
	ConsentsGranted, ConsentsRevoked                  int
	Sessions, PlansAgreed, PlanRevisions              int

	Outplacements  OutplacementSummary
	Reintegrations ReintegrationSummary

	// Closes counts every close by outcome, also of cases reopened since.
	Closes               map[casev1.CloseOutcome]int
	Reopenings, Erasures int
	// Idle counts open cases without activity for more than IdleDays days
	// as a dashboard dates it: commands without a day of their own count
	// as activity on the day they are sent, Today.
	Idle int
}

// OutplacementSummary counts the outplacements.
type OutplacementSummary struct {
	Started, Running int
	// Outcomes counts the ended ones by outcome; NO_PLACEMENT for those
	// ended without work.
	Outcomes map[casev1.PlacementOutcome]int
	// ByBand counts, per age band at the start, the concluded ones and the
	// placed ones among them.
	ByBand map[AgeBand]*Placements
	// DaysToPlacement are the days from start to placement of the placed
	// ones, sorted.
	DaysToPlacement []int
}

// Placements counts concluded outplacements and the placed among them.
type Placements struct{ Placed, Concluded int }

// Rate is placed / concluded; 0 without any concluded.
func (p Placements) Rate() float64 {
	if p.Concluded == 0 {
		return 0
	}
	return float64(p.Placed) / float64(p.Concluded)
}

// Total returns the placements of every band together.
func (o OutplacementSummary) Total() Placements {
	var t Placements
	for _, p := range o.ByBand {
		t.Placed += p.Placed
		t.Concluded += p.Concluded
	}
	return t
}

// ReintegrationSummary counts the re-integrations and their statutory
// checkpoints.
type ReintegrationSummary struct {
	Started, Running, SecondTracks, AgenciesAssigned, Checkpoints int
	// ByCheckpoint counts the checkpoints recorded by kind.
	ByCheckpoint map[casev1.CheckpointKind]int
	// Compliance counts the statutory checkpoints done (on time, late,
	// early) and those whose last day passed without them (overdue: missing),
	// judged on Today for a running re-integration and on the close day for
	// a closed one.
	Compliance map[casework.DeadlineStatus]int
	// Due and Overdue count, over the running ones, the checkpoints
	// within their week or window on Today and those past it.
	Due, Overdue int
}

// NewSummary returns an empty summary of a population as of today.
func NewSummary(today casework.Date) *Summary {
	return &Summary{
		Today: today, ByMethod: map[string]int{}, ByKind: map[Kind]int{}, ByStage: map[casev1.Stage]int{},
		ByIntakeType: map[casev1.QuestionType]int{}, ByQuestionType: map[casev1.QuestionType]int{},
		ByContext: map[casev1.OrganisationalContext]int{}, ByQuestion: map[casev1.OrganisationalQuestion]int{},
		Reclassifications: map[[2]casev1.QuestionType]int{}, Referrals: map[casev1.ReferralTarget]int{},
		Outplacements:  OutplacementSummary{Outcomes: map[casev1.PlacementOutcome]int{}, ByBand: map[AgeBand]*Placements{}},
		Reintegrations: ReintegrationSummary{Compliance: map[casework.DeadlineStatus]int{}, ByCheckpoint: map[casev1.CheckpointKind]int{}},
		Closes:         map[casev1.CloseOutcome]int{},
	}
}

// Summarize generates every case of p and counts them, without a server.
func Summarize(p *Population) (*Summary, error) {
	sum := NewSummary(p.cfg.Today)
	for i := range p.cfg.Cases {
		t, err := p.Case(i)
		if err != nil {
			return nil, err
		}
		sum.Add(t)
	}
	return sum, nil
}

// Add counts one case.
func (s *Summary) Add(t Trajectory) {
	st := t.State
	s.Cases++
	s.Commands += len(t.Steps)
	s.ByKind[t.Kind]++
	s.ByStage[st.Stage]++
	s.ByContext[st.Context]++
	s.ByQuestion[st.Question]++
	if st.Intake.Completed {
		s.ByIntakeType[st.Intake.QuestionType]++
		s.ByQuestionType[st.QuestionType]++
		s.count(&s.WarningSignals, len(st.Intake.WarningSignals) > 0)
		s.count(&s.ReferralAdvised, st.Intake.ReferralAdvised)
		s.count(&s.MobilityAssessed, st.Intake.MobilityWillingness > 0)
	}
	for _, r := range st.Reclassifications {
		s.Reclassifications[[2]casev1.QuestionType{r.From, r.To}]++
	}
	for _, r := range st.Referrals {
		s.Referrals[r.Target]++
	}
	s.Sessions += st.Sessions.Count
	s.count(&s.PlansAgreed, st.Plan.Agreed)
	s.PlanRevisions += st.Plan.Revisions
	s.Reopenings += st.Closure.Reopenings
	s.count(&s.Erasures, st.IsErased())
	s.addSteps(t)
	s.addOutplacement(st)
	s.addReintegration(st)
	if st.IsOpen() && s.Today.DaysSince(lastActivity(t, s.Today)) > IdleDays {
		s.Idle++
	}
}

func (s *Summary) count(n *int, cond bool) {
	if cond {
		*n++
	}
}

func (s *Summary) addSteps(t Trajectory) {
	for _, step := range t.Steps {
		s.ByMethod[step.Method()]++
		switch r := step.Request.(type) {
		case *casev1.GrantReportingConsentRequest:
			s.ConsentsGranted++
		case *casev1.RevokeReportingConsentRequest:
			s.ConsentsRevoked++
		case *casev1.CloseCaseRequest:
			s.Closes[r.GetOutcome()]++
		case *casev1.StartSecondTrackRequest:
			s.Reintegrations.SecondTracks++
		case *casev1.AssignAgencyRequest:
			s.Reintegrations.AgenciesAssigned++
		case *casev1.RecordCheckpointRequest:
			s.Reintegrations.Checkpoints++
			s.Reintegrations.ByCheckpoint[r.GetKind()]++
		}
	}
}

func (s *Summary) addOutplacement(st casework.State) {
	o := st.Outplacement
	if o.StartedOn.IsZero() {
		return
	}
	out := &s.Outplacements
	out.Started++
	if o.Outcome == 0 {
		out.Running++
		return
	}
	out.Outcomes[o.Outcome]++
	band := AgeBandOf(st.BirthYear, o.StartedOn.Year)
	if out.ByBand[band] == nil {
		out.ByBand[band] = &Placements{}
	}
	out.ByBand[band].Concluded++
	if o.Outcome != casev1.PlacementOutcome_PLACEMENT_OUTCOME_NO_PLACEMENT {
		out.ByBand[band].Placed++
		i, _ := slices.BinarySearch(out.DaysToPlacement, o.PlacedOn.DaysSince(o.StartedOn))
		out.DaysToPlacement = slices.Insert(out.DaysToPlacement, i, o.PlacedOn.DaysSince(o.StartedOn))
	}
}

// addReintegration judges the statutory checkpoints with the domain's own
// deadline calculator: a running re-integration on Today, a closed one on
// the day it closed.
func (s *Summary) addReintegration(st casework.State) {
	r := st.Reintegration
	if r.SickReportedOn.IsZero() {
		return
	}
	ri := &s.Reintegrations
	ri.Started++
	judged := s.Today
	if r.Running {
		ri.Running++
	} else if st.Closure.Closed || st.IsErased() {
		judged = st.Closure.ClosedOn
	}
	at := time.Date(judged.Year, judged.Month, judged.Day, 12, 0, 0, 0, time.UTC)
	for _, d := range casework.Schedule(r.SickReportedOn, r.Checkpoints, at) {
		if d.Status.Done() || d.Status == casework.StatusOverdue {
			ri.Compliance[d.Status]++
		}
		if r.Running {
			s.count(&ri.Due, d.Status == casework.StatusDue)
			s.count(&ri.Overdue, d.Status == casework.StatusOverdue)
		}
	}
}

// lastActivity is the day of a case's last activity as a dashboard dates
// it: a command's own day, or sentOn for one without.
func lastActivity(t Trajectory, sentOn casework.Date) casework.Date {
	var last casework.Date
	for _, step := range t.Steps {
		d, ok := occurredOn(step.Request)
		if !ok {
			d = sentOn
		}
		if d.After(last) {
			last = d
		}
	}
	return last
}

// occurredOn is the day a request says its command happened, as the
// service dates its events; false for a command without one, which the
// service dates when it arrives.
func occurredOn(req Request) (casework.Date, bool) {
	var d *casev1.Date
	switch r := req.(type) {
	case *casev1.OpenCaseRequest:
		d = r.GetOpenedOn()
	case *casev1.CompleteIntakeRequest:
		d = r.GetHeldOn()
	case *casev1.RecordSessionRequest:
		d = r.GetHeldOn()
	case *casev1.AgreeDevelopmentPlanRequest:
		d = r.GetAgreedOn()
	case *casev1.ReviseDevelopmentPlanRequest:
		d = r.GetRevisedOn()
	case *casev1.StartOutplacementRequest:
		d = r.GetStartedOn()
	case *casev1.EnterOutplacementPhaseRequest:
		d = r.GetEnteredOn()
	case *casev1.RecordPlacementRequest:
		d = r.GetPlacedOn()
	case *casev1.EndOutplacementWithoutPlacementRequest:
		d = r.GetEndedOn()
	case *casev1.StartReintegrationRequest:
		d = r.GetSickReportedOn()
	case *casev1.RecordCheckpointRequest:
		d = r.GetHeldOn()
	case *casev1.StartSecondTrackRequest:
		d = r.GetStartedOn()
	case *casev1.CloseCaseRequest:
		d = r.GetClosedOn()
	case *casev1.ReopenCaseRequest:
		d = r.GetReopenedOn()
	default:
		return casework.Date{}, false
	}
	return casework.DateFromProto(d), true
}

// Format writes the summary as text for a person: the population, then
// each count.
func (s *Summary) Format(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("Cases\t%d\t(%d commands)", s.Cases, s.Commands)
	for _, k := range sortedKeys(s.ByKind) {
		p("  %s\t%d", k, s.ByKind[k])
	}
	p("Stage on %s", s.Today)
	for _, k := range sortedKeys(s.ByStage) {
		p("  %s\t%d", short(k), s.ByStage[k])
	}
	p("  idle > %d days (open)\t%d", IdleDays, s.Idle)
	p("Question type\tat intake\tnow")
	for _, k := range sortedKeys(s.ByIntakeType) {
		p("  %s\t%d\t%d", short(k), s.ByIntakeType[k], s.ByQuestionType[k])
	}
	p("Organisational context / named question")
	for _, c := range sortedKeys(s.ByContext) {
		p("  %s\t%d", either(c == 0, "none", short(c)), s.ByContext[c])
		for _, q := range sortedKeys(s.ByQuestion) {
			if q != 0 && casework.ContextOf(q) == c {
				p("    %s\t%d", short(q), s.ByQuestion[q])
			}
		}
	}
	p("Reclassifications")
	for _, k := range slices.SortedFunc(maps.Keys(s.Reclassifications), func(a, b [2]casev1.QuestionType) int {
		return int(a[0]-b[0])*16 + int(a[1]-b[1])
	}) {
		p("  %s → %s\t%d", short(k[0]), short(k[1]), s.Reclassifications[k])
	}
	p("Intakes with warning signals\t%d\t(referral advised %d)", s.WarningSignals, s.ReferralAdvised)
	p("Intakes with mobility scores\t%d", s.MobilityAssessed)
	p("Referrals\t%s", counts(s.Referrals))
	p("Consents granted / revoked\t%d / %d", s.ConsentsGranted, s.ConsentsRevoked)
	p("Sessions\t%d", s.Sessions)
	p("Development plans (revisions)\t%d\t(%d)", s.PlansAgreed, s.PlanRevisions)
	s.formatOutplacements(p)
	s.formatReintegrations(p)
	p("Closes\t%s", counts(s.Closes))
	p("Reopenings / erasures\t%d / %d", s.Reopenings, s.Erasures)
	p("Commands by method")
	for _, m := range slices.Sorted(maps.Keys(s.ByMethod)) {
		p("  %s\t%d", m, s.ByMethod[m])
	}
	return tw.Flush()
}

func (s *Summary) formatOutplacements(p func(string, ...any)) {
	o := s.Outplacements
	p("Outplacements\t%d\t(running %d)", o.Started, o.Running)
	p("  outcome\t%s", counts(o.Outcomes))
	total := o.Total()
	p("  placement rate\t%s\t(sector 2018: 73%%)", rate(total))
	for _, b := range []AgeBand{AgeUnder40, Age40To56, Age57AndOver} {
		p("    %s\t%s\t(sector: %.0f%%)", b, rate(*o.band(b)), 100*PlacementChance[b])
	}
	if n := len(o.DaysToPlacement); n > 0 {
		p("  days to placement\tmedian %d, p90 %d", o.DaysToPlacement[n/2], o.DaysToPlacement[n*9/10])
	}
}

func (o OutplacementSummary) band(b AgeBand) *Placements {
	if p := o.ByBand[b]; p != nil {
		return p
	}
	return &Placements{}
}

func rate(p Placements) string {
	return fmt.Sprintf("%.1f%% of %d", 100*p.Rate(), p.Concluded)
}

func (s *Summary) formatReintegrations(p func(string, ...any)) {
	r := s.Reintegrations
	p("Re-integrations\t%d\t(running %d)", r.Started, r.Running)
	p("  second tracks / agencies assigned\t%d / %d", r.SecondTracks, r.AgenciesAssigned)
	p("  checkpoints recorded\t%d", r.Checkpoints)
	for _, k := range sortedKeys(r.ByCheckpoint) {
		p("    %s\t%d", short(k), r.ByCheckpoint[k])
	}
	p("  statutory checkpoints\ton time %d, late %d, early %d, missing %d",
		r.Compliance[casework.StatusDoneOnTime], r.Compliance[casework.StatusDoneLate],
		r.Compliance[casework.StatusDoneEarly], r.Compliance[casework.StatusOverdue])
	p("  running: due now / overdue\t%d / %d", r.Due, r.Overdue)
}

// counts lists enum counts as "name n, name n" in the enum's order.
func counts[E interface {
	~int32
	protoreflect.Enum
}](m map[E]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", short(k), m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[K interface{ ~int | ~int32 }, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}

// short names an enum value as the command line does: lower case, without
// the enum's prefix, hyphens for underscores ("choice", "talent-pool").
func short(e protoreflect.Enum) string {
	desc := e.Descriptor()
	prefix := strings.TrimSuffix(string(desc.Values().ByNumber(0).Name()), "UNSPECIFIED")
	v := desc.Values().ByNumber(e.Number())
	if v == nil {
		return fmt.Sprint(e.Number())
	}
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(string(v.Name()), prefix), "_", "-"))
}
