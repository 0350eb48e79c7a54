package demo

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/google/uuid"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/services/authn"
)

// HistoryDays is how far back the demo's history reaches: cases open
// spread over the two years up to Config.Today.
const HistoryDays = 730

// MaxCases caps Config.Cases: a demo, not a load test.
const MaxCases = 1_000_000

// Config says which population to generate.
type Config struct {
	// Tenant is the tenant the cases belong to.
	Tenant string
	// Seed selects the population: the same seed, tenant and Today give
	// the same cases, commands and request IDs.
	Seed uint64
	// Cases is how many cases, 1 to MaxCases. Case i does not depend on
	// Cases, so a larger demo after a smaller one adds cases.
	Cases int
	// Today is the last day of the history: nothing happens after it.
	// Trajectories that would go on past it are running on it.
	Today casework.Date
}

func (c Config) validate() error {
	var errs []error
	if !authn.ValidTenant(c.Tenant) {
		errs = append(errs, fmt.Errorf("tenant %q: must be 1 to %d lower-case letters, digits and hyphens", c.Tenant, authn.MaxTenantLength))
	}
	if c.Cases < 1 || c.Cases > MaxCases {
		errs = append(errs, fmt.Errorf("cases %d: must be 1 to %d", c.Cases, MaxCases))
	}
	if !c.Today.IsValid() {
		errs = append(errs, fmt.Errorf("today %s: not a calendar day", c.Today))
	} else if c.Today.Year < 2000 {
		errs = append(errs, fmt.Errorf("today %s: the demo's history lies in this century", c.Today))
	}
	return errors.Join(errs...)
}

// Organisation is an employer that sends clients, with its departments.
type Organisation struct {
	// ID is the organisation ID the cases carry.
	ID string
	// Name is its display name (for the summary only; the API takes IDs).
	Name string
	// Departments are the departments its clients come from.
	Departments []string
	// weight is how many cases it sends, relative to the others.
	weight int
}

// Population is a tenant's synthetic world: its employers, coaches and
// agencies, and the trajectory of every case, generated on demand.
type Population struct {
	cfg           Config
	organisations []Organisation
	coaches       []string
	agencies      []string
}

// New returns the population cfg describes.
func New(cfg Config) (*Population, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return &Population{
		cfg:           cfg,
		organisations: organisationTemplates,
		coaches:       coachIDs(),
		agencies:      agencyIDs,
	}, nil
}

func coachIDs() []string {
	ids := make([]string, len(coachNames))
	for i, n := range coachNames {
		ids[i] = "demo-coach-" + n
	}
	return ids
}

// Config returns the configuration the population was made with.
func (p *Population) Config() Config { return p.cfg }

// Organisations returns the employers.
func (p *Population) Organisations() []Organisation { return p.organisations }

// Coaches returns the coaches' subject IDs.
func (p *Population) Coaches() []string { return p.coaches }

// Agencies returns the re-integration agencies' IDs.
func (p *Population) Agencies() []string { return p.agencies }

// caseNamespace is the namespace of the demo's case IDs; fixed forever, so
// that a demo run again finds the cases of the earlier run.
var caseNamespace = uuid.MustParse("5e0c2a7b-93d1-4f8e-a6b2-7c41d0e9f358")

// CaseID returns the ID of case index of the population of tenant and
// seed.
func CaseID(tenant string, seed uint64, index int) string {
	return uuid.NewSHA1(caseNamespace, []byte(tenant+"\x00"+strconv.FormatUint(seed, 10)+"\x00"+strconv.Itoa(index))).String()
}

// requestID is the request ID of a case's step: the same seed, case and
// step always send the same request, so a run again is answered as before.
func requestID(seed uint64, index, step int) string {
	return "demo-" + strconv.FormatUint(seed, 10) + "-" + strconv.Itoa(index) + "-" + strconv.Itoa(step)
}

// caseDice returns the random source of case index: one stream per case,
// so a case is the same whatever else is generated.
func caseDice(seed uint64, index int) dice {
	return dice{rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(index)))}
}

// openedDaysAgo is how many days before Today case index opens: the
// case's first draw, independent of Today, so that an earlier run's Today
// can be found again from case 0's opening day (see Anchor).
func openedDaysAgo(seed uint64, index int) int {
	return caseDice(seed, index).IntN(HistoryDays + 1)
}

// dice draws the population's random choices.
type dice struct{ *rand.Rand }

// chance is true with probability p.
func (d dice) chance(p float64) bool { return d.Float64() < p }

// between returns an int from lo to hi, both included.
func (d dice) between(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + d.IntN(hi-lo+1)
}

// pick returns one of xs, each as likely.
func pick[T any](d dice, xs []T) T { return xs[d.IntN(len(xs))] }

// option is a choice with its weight.
type option[T any] struct {
	weight int
	value  T
}

// weighted picks one of the options with probability proportional to its
// weight.
func weighted[T any](d dice, options ...option[T]) T {
	total := 0
	for _, o := range options {
		total += o.weight
	}
	n := d.IntN(total)
	for _, o := range options {
		if n < o.weight {
			return o.value
		}
		n -= o.weight
	}
	panic("demo: weighted: unreachable")
}

// w is an option of value with weight: short, because the trajectories
// list many.
func w[T any](weight int, value T) option[T] { return option[T]{weight, value} }
