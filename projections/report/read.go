package report

import (
	"context"
	"runtime"
	"sync"

	"github.com/koers-io/koers/projections"
)

// A report's queries are independent of each other: each fills cells of
// its own. On a read model that can share its snapshot with a second
// connection (projections.Forker: the engine's read transactions) or needs
// none (the engine's Reader, whose queries each read the latest state),
// the queries of a report for a whole tenant run on two connections at
// once, which on two cores takes about half as long. A report of one
// organisation reads too little to gain: a second connection and snapshot
// would cost more than they save.

// readStep is one of a report's queries.
type readStep struct {
	name string
	run  func(context.Context, Querier) error
}

// reads returns the report's queries, the longest first, so that two
// workers taking them in turn finish about together.
func (b *builder) reads() []readStep {
	b.initCompliance()
	return []readStep{
		{"checkpoint compliance", func(ctx context.Context, q Querier) error { return b.compliance(ctx, q, false) }},
		{"caseload", b.caseload},
		{"progress review compliance", func(ctx context.Context, q Querier) error { return b.compliance(ctx, q, true) }},
		{"cases by cell", b.caseCells},
		{"outplacements", b.outplacements},
		{"reclassifications", b.reclassifications},
		{"re-integration ends", b.reintegrationEnds},
	}
}

// tenantReaders is how many connections a report of a whole tenant reads
// on at most.
const tenantReaders = 2

// read runs steps on db, on up to readers connections at once when db
// allows it. An error names the step that failed.
func read(ctx context.Context, db Querier, steps []readStep, readers int) error {
	others, release := forks(ctx, db, min(readers, runtime.GOMAXPROCS(0))-1)
	defer release()
	if len(others) == 0 {
		for _, st := range steps {
			if err := st.run(ctx, db); err != nil {
				return &stepError{st.name, err}
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan readStep, len(steps))
	for _, st := range steps {
		next <- st
	}
	close(next)
	errs := make([]error, len(others)+1)
	var wg sync.WaitGroup
	for i, q := range append([]Querier{db}, others...) {
		wg.Go(func() {
			for st := range next {
				if err := st.run(ctx, q); err != nil {
					errs[i] = &stepError{st.name, err}
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// stepError is the failure of one of a report's queries.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// forks returns up to n more Queriers that read what db reads and may run
// at the same time as db, and a function that releases them. It returns
// none when db offers none; a fork that fails is only a lost chance to
// read in parallel.
func forks(ctx context.Context, db Querier, n int) ([]Querier, func()) {
	if n <= 0 {
		return nil, func() {}
	}
	switch f := db.(type) {
	case *projections.Reader:
		// Its queries take connections from a pool, each its own.
		out := make([]Querier, n)
		for i := range out {
			out[i] = f
		}
		return out, func() {}
	case projections.Forker:
		var out []Querier
		var releases []func()
		for range n {
			tx, release, err := f.Fork(ctx)
			if err != nil {
				break
			}
			out = append(out, tx)
			releases = append(releases, release)
		}
		return out, func() {
			for _, r := range releases {
				r()
			}
		}
	}
	return nil, func() {}
}
