package demo_test

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/demo"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// today is the last day of the tests' histories.
var today = casework.Date{Year: 2026, Month: time.May, Day: 12}

// population generates a population or fails the test.
func population(t testing.TB, cases int, seed uint64) *demo.Population {
	t.Helper()
	p, err := demo.New(demo.Config{Tenant: "demo-test", Seed: seed, Cases: cases, Today: today})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// largePopulation is the summary of 5,000 cases generated without a
// server, made once for the tests that look at distributions. Summarize
// decides every command with the domain's own rules, so it fails on a
// trajectory the server would refuse.
var largePopulation = sync.OnceValues(func() (*demo.Summary, error) {
	p, err := demo.New(demo.Config{Tenant: "demo-test", Seed: 1, Cases: 5000, Today: today})
	if err != nil {
		return nil, err
	}
	return demo.Summarize(p)
})

func summaryOfLargePopulation(t *testing.T) *demo.Summary {
	t.Helper()
	sum, err := largePopulation()
	if err != nil {
		t.Fatalf("a generated command breaks a rule of the domain: %v", err)
	}
	return sum
}

func TestLargePopulationCoversEveryKindOfCase(t *testing.T) {
	sum := summaryOfLargePopulation(t)
	missing := func(what string, have func(int32) int, values ...int32) {
		t.Helper()
		for _, v := range values {
			if have(v) == 0 {
				t.Errorf("no %s %d among %d cases", what, v, sum.Cases)
			}
		}
	}
	missing("kind", func(v int32) int { return sum.ByKind[demo.Kind(v)] }, 1, 2, 3, 4)
	missing("intake question type", func(v int32) int { return sum.ByIntakeType[casev1.QuestionType(v)] }, numbers(casev1.QuestionType(0).Descriptor())...)
	missing("organisational context", func(v int32) int { return sum.ByContext[casev1.OrganisationalContext(v)] }, append(numbers(casev1.OrganisationalContext(0).Descriptor()), 0)...)
	missing("named question", func(v int32) int { return sum.ByQuestion[casev1.OrganisationalQuestion(v)] }, numbers(casev1.OrganisationalQuestion(0).Descriptor())...)
	missing("stage", func(v int32) int { return sum.ByStage[casev1.Stage(v)] }, numbers(casev1.Stage(0).Descriptor())...)
	missing("outplacement outcome", func(v int32) int { return sum.Outplacements.Outcomes[casev1.PlacementOutcome(v)] }, numbers(casev1.PlacementOutcome(0).Descriptor())...)
	missing("checkpoint kind", func(v int32) int { return sum.Reintegrations.ByCheckpoint[casev1.CheckpointKind(v)] }, numbers(casev1.CheckpointKind(0).Descriptor())...)
	missing("referral target", func(v int32) int { return sum.Referrals[casev1.ReferralTarget(v)] }, numbers(casev1.ReferralTarget(0).Descriptor())...)
	missing("close outcome", func(v int32) int { return sum.Closes[casev1.CloseOutcome(v)] }, numbers(casev1.CloseOutcome(0).Descriptor())...)

	for _, flow := range [][2]casev1.QuestionType{
		{casev1.QuestionType_QUESTION_TYPE_COMPETENCE, casev1.QuestionType_QUESTION_TYPE_COUNSELING},
		{casev1.QuestionType_QUESTION_TYPE_CHOICE, casev1.QuestionType_QUESTION_TYPE_LIFE},
	} {
		if sum.Reclassifications[flow] == 0 {
			t.Errorf("no reclassification %s → %s", flow[0], flow[1])
		}
	}
	counts := []struct {
		what string
		n    int
	}{
		{"intakes with warning signals", sum.WarningSignals},
		{"intakes advising referral", sum.ReferralAdvised},
		{"intakes with mobility scores", sum.MobilityAssessed},
		{"consents granted", sum.ConsentsGranted},
		{"consents revoked", sum.ConsentsRevoked},
		{"development plans", sum.PlansAgreed},
		{"plan revisions", sum.PlanRevisions},
		{"second tracks", sum.Reintegrations.SecondTracks},
		{"agencies assigned", sum.Reintegrations.AgenciesAssigned},
		{"checkpoints done late", sum.Reintegrations.Compliance[casework.StatusDoneLate]},
		{"checkpoints missing", sum.Reintegrations.Compliance[casework.StatusOverdue]},
		{"checkpoints due on the last day", sum.Reintegrations.Due},
		{"checkpoints overdue on the last day", sum.Reintegrations.Overdue},
		{"idle open cases", sum.Idle},
		{"reopenings", sum.Reopenings},
		{"erasures", sum.Erasures},
	}
	for _, c := range counts {
		if c.n == 0 {
			t.Errorf("no %s among %d cases", c.what, sum.Cases)
		}
	}
	// Running cases fill the dashboards: a fair share of the cases is
	// still open on the last day.
	open := sum.Cases - sum.ByStage[casev1.Stage_STAGE_CLOSED] - sum.ByStage[casev1.Stage_STAGE_ERASED]
	if share := float64(open) / float64(sum.Cases); share < 0.15 || share > 0.5 {
		t.Errorf("%d of %d cases open on the last day (%.0f%%), want 15%% to 50%%", open, sum.Cases, 100*share)
	}
}

// numbers returns the numbers of an enum's values other than zero.
func numbers(desc protoreflect.EnumDescriptor) []int32 {
	var out []int32
	for i := range desc.Values().Len() {
		if n := desc.Values().Get(i).Number(); n != 0 {
			out = append(out, int32(n))
		}
	}
	return out
}

func TestPlacementRatesFollowTheSectorFigures(t *testing.T) {
	sum := summaryOfLargePopulation(t)
	out := sum.Outplacements
	// The sector's 2018 figures count completed trajectories; the demo's
	// concluded ones lean a little towards the quick outcomes of the last
	// months (fast placements of the young, slow ones of the old), so the
	// range is a few points wide.
	const tolerance = 0.08
	for _, band := range []demo.AgeBand{demo.AgeUnder40, demo.Age40To56, demo.Age57AndOver} {
		got := out.ByBand[band]
		if got == nil || got.Concluded < 100 {
			t.Fatalf("band %s: %+v concluded outplacements, want at least 100 for a rate", band, got)
		}
		if want := demo.PlacementChance[band]; math.Abs(got.Rate()-want) > tolerance {
			t.Errorf("placement rate %s: %.1f%% of %d, want %.0f%% ± %.0f points", band, 100*got.Rate(), got.Concluded, 100*want, 100*tolerance)
		}
	}
	if total := out.Total(); math.Abs(total.Rate()-0.73) > 0.05 {
		t.Errorf("placement rate overall: %.1f%% of %d, want 73%% ± 5 points", 100*total.Rate(), total.Concluded)
	}
	days := out.DaysToPlacement
	if median := days[len(days)/2]; median < 90 || median > 240 {
		t.Errorf("median time to placement %d days, want 3 to 8 months", median)
	}
	if p90 := days[len(days)*9/10]; p90 > 400 {
		t.Errorf("p90 time to placement %d days, want about a year at most", p90)
	}
	split := out.Outcomes
	if split[casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL] <= split[casev1.PlacementOutcome_PLACEMENT_OUTCOME_INTERNAL] {
		t.Errorf("outcome split %v: external placements should outnumber internal ones", split)
	}
}

func TestOutplacementsLastThreeToTwelveMonths(t *testing.T) {
	p := population(t, 3000, 2)
	var months []float64
	for i := range p.Config().Cases {
		tr := caseOf(t, p, i)
		var started, closed casework.Date
		for _, s := range tr.Steps {
			switch r := s.Request.(type) {
			case *casev1.StartOutplacementRequest:
				started = casework.DateFromProto(r.GetStartedOn())
			case *casev1.CloseCaseRequest:
				closed = casework.DateFromProto(r.GetClosedOn())
			}
		}
		if !started.IsZero() && !closed.IsZero() {
			months = append(months, float64(closed.DaysSince(started))/30.4)
		}
	}
	slices.Sort(months)
	median := months[len(months)/2]
	within := 0
	for _, m := range months {
		if m >= 2.5 && m <= 13 {
			within++
		}
	}
	if median < 4 || median > 8 {
		t.Errorf("median outplacement %.1f months, want about 6", median)
	}
	if share := float64(within) / float64(len(months)); share < 0.8 {
		t.Errorf("%.0f%% of %d closed outplacements took 3 to 12 months, want most", 100*share, len(months))
	}
}

func caseOf(t testing.TB, p *demo.Population, i int) demo.Trajectory {
	t.Helper()
	tr, err := p.Case(i)
	if err != nil {
		t.Fatalf("case %d: %v", i, err)
	}
	return tr
}

var requestIDForm = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func TestCasesAreDatedWithinTheHistoryAndUniquelyIdentified(t *testing.T) {
	p := population(t, 2000, 3)
	first := today.AddDays(-demo.HistoryDays)
	caseIDs := map[string]int{}
	for i := range p.Config().Cases {
		tr := caseOf(t, p, i)
		if j, ok := caseIDs[tr.CaseID]; ok {
			t.Fatalf("cases %d and %d share ID %s", j, i, tr.CaseID)
		}
		caseIDs[tr.CaseID] = i
		requests := map[string]bool{}
		for n, s := range tr.Steps {
			if s.Day.After(today) || s.Day.Before(first) {
				t.Errorf("case %d step %d (%s) on %s, outside %s to %s", i, n, s.Method(), s.Day, first, today)
			}
			if n > 0 && s.Day.Before(tr.Steps[n-1].Day) {
				t.Errorf("case %d step %d (%s) on %s, before the step before it (%s)", i, n, s.Method(), s.Day, tr.Steps[n-1].Day)
			}
			id := s.Request.GetRequestId()
			if !requestIDForm.MatchString(id) || requests[id] || s.Request.GetCaseId() != tr.CaseID {
				t.Errorf("case %d step %d: request ID %q, case %q: want a fresh valid request ID for case %s", i, n, id, s.Request.GetCaseId(), tr.CaseID)
			}
			requests[id] = true
		}
		if opened := tr.Steps[0].Request.(*casev1.OpenCaseRequest); !strings.HasSuffix(opened.GetClient().GetEmail(), "@example.org") {
			t.Errorf("case %d: e-mail %q is not on the reserved example.org", i, opened.GetClient().GetEmail())
		}
	}
}

func TestACaseIsTheSameWhateverElseIsGenerated(t *testing.T) {
	small, large := population(t, 10, 4), population(t, 1000, 4)
	for i := range 10 {
		a, b := caseOf(t, small, i), caseOf(t, large, i)
		if len(a.Steps) != len(b.Steps) {
			t.Fatalf("case %d has %d steps in a population of 10, %d in one of 1000", i, len(a.Steps), len(b.Steps))
		}
		for n := range a.Steps {
			if a.Steps[n].Day != b.Steps[n].Day || !proto.Equal(a.Steps[n].Request, b.Steps[n].Request) {
				t.Errorf("case %d step %d differs:\n%v\n%v", i, n, a.Steps[n].Request, b.Steps[n].Request)
			}
		}
	}
	other := caseOf(t, population(t, 10, 5), 0)
	if other.CaseID == caseOf(t, small, 0).CaseID {
		t.Errorf("seeds 4 and 5 give case 0 the same ID %s", other.CaseID)
	}
}

func TestConfigIsChecked(t *testing.T) {
	tests := []struct {
		cfg  demo.Config
		want string
	}{
		{demo.Config{Tenant: "Demo", Cases: 1, Today: today}, "tenant"},
		{demo.Config{Tenant: "demo", Cases: 0, Today: today}, "cases 0"},
		{demo.Config{Tenant: "demo", Cases: demo.MaxCases + 1, Today: today}, "cases"},
		{demo.Config{Tenant: "demo", Cases: 1}, "today"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.cfg), func(t *testing.T) {
			_, err := demo.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%+v) = %v, want an error about %s", tt.cfg, err, tt.want)
			}
		})
	}
}
