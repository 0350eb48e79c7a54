package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/demo"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/casesvc"
)

// demoCmd fills a running Koers with a synthetic population through the
// public CaseService API, so that dashboards and reports have something to
// show.
type demoCmd struct {
	endpoint
	Tenant  string   `help:"Tenant to fill (lower-case letters, digits and hyphens)." default:"demo"`
	Actor   string   `help:"Who acts in the recorded events: a system ID, never a person's name." default:"koers-demo"`
	Cases   int      `help:"How many cases to generate." default:"3000"`
	Seed    uint64   `help:"Selects the population. The same seed gives the same cases and request IDs: running a demo again writes nothing twice, and a larger --cases adds cases." default:"1"`
	Workers int      `help:"Cases sent at the same time." default:"16"`
	Today   dateFlag `placeholder:"YYYY-MM-DD" help:"Last day of the two-year history. Default: the day of an earlier demo of this tenant and seed, else today."`
	DryRun  bool     `name:"dry-run" help:"Generate the population and print what it holds, without sending anything."`
}

// demoRunTimeout bounds a whole demo; each call has its own, shorter
// bound, and Ctrl-C stops the demo at once.
const demoRunTimeout = 24 * time.Hour

func (d *demoCmd) Run(ctx context.Context, log *slog.Logger, out io.Writer) error {
	if !authn.ValidActor(d.Actor) {
		return fmt.Errorf("--actor %q: must be 1 to %d printable characters without spaces", d.Actor, authn.MaxActorLength)
	}
	if d.DryRun {
		return d.dryRun(out)
	}
	conn := caseConn{endpoint: d.endpoint, Tenant: d.Tenant, Actor: d.Actor, Timeout: demoRunTimeout}
	client, ctx, done, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	today, err := d.today(ctx, client, log)
	if err != nil {
		return err
	}
	p, err := demo.New(demo.Config{Tenant: d.Tenant, Seed: d.Seed, Cases: d.Cases, Today: today})
	if err != nil {
		return err
	}
	progress, finish := d.progress(log)
	if term.IsTerminal(int(os.Stderr.Fd())) {
		// The bar is the progress; keep the log to warnings.
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	res, err := demo.Run(ctx, client, p, demo.Options{Workers: d.Workers, Progress: progress, Logger: log})
	finish()
	if err != nil {
		return fmt.Errorf("demo stopped: %w", describe(err))
	}
	return d.report(out, p, res)
}

// today is the last day of the history: an earlier demo's, so that running
// it again is harmless on any day, else --today, else today in the
// practice's calendar.
func (d *demoCmd) today(ctx context.Context, client casev1.CaseServiceClient, log *slog.Logger) (casework.Date, error) {
	earlier, found, err := demo.Anchor(ctx, client, d.Tenant, d.Seed)
	if err != nil {
		return casework.Date{}, describe(err)
	}
	given := casework.DateFromProto(d.Today.Date)
	switch {
	case found && d.Today.Date != nil && given != earlier:
		return casework.Date{}, fmt.Errorf("tenant %q holds the demo of seed %d with its history up to %s; run it with --today %s or without --today, or choose another --seed",
			d.Tenant, d.Seed, earlier, earlier)
	case found:
		log.Info("continuing an earlier demo", "tenant", d.Tenant, "seed", d.Seed, "today", earlier.String())
		return earlier, nil
	case d.Today.Date != nil:
		return given, nil
	}
	return practiceToday(), nil
}

// practiceToday is today's day in the practice's calendar, as the server
// judges deadlines.
func practiceToday() casework.Date {
	loc, err := time.LoadLocation(casesvc.DefaultLocation)
	if err != nil {
		loc = time.UTC
	}
	return casework.DateOf(time.Now().In(loc))
}

func (d *demoCmd) dryRun(out io.Writer) error {
	today := practiceToday()
	if d.Today.Date != nil {
		today = casework.DateFromProto(d.Today.Date)
	}
	p, err := demo.New(demo.Config{Tenant: d.Tenant, Seed: d.Seed, Cases: d.Cases, Today: today})
	if err != nil {
		return err
	}
	sum, err := demo.Summarize(p)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Demo population of tenant %q, seed %d, history up to %s (not sent)\n", d.Tenant, d.Seed, today)
	describePopulation(out, p)
	return sum.Format(out)
}

// progress shows the run's progress: a bar on a terminal, a log line every
// few seconds otherwise. finish ends the display.
func (d *demoCmd) progress(log *slog.Logger) (func(demo.Progress), func()) {
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar := progressbar.NewOptions(d.Cases,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("demo cases"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("cases"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(os.Stderr) }),
		)
		return func(p demo.Progress) { _ = bar.Set(p.Done) }, func() { _ = bar.Exit() }
	}
	var last time.Time
	return func(p demo.Progress) {
		if p.Done < p.Cases && time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		log.Info("demo progress", "cases", p.Done, "of", p.Cases, "commands", p.Commands,
			"commands_per_s", int(float64(p.Commands)/max(p.Elapsed.Seconds(), 0.001)), "retries", p.Retries, "refused", p.Refused)
	}, func() {}
}

// report prints what the run did and what the population holds; refused
// commands make it fail.
func (d *demoCmd) report(out io.Writer, p *demo.Population, res *demo.Result) error {
	fmt.Fprintf(out, "Filled tenant %q (seed %d, history up to %s) in %s: %d commands answered (%.0f/s), %d sent again, %d cases refused.\n",
		d.Tenant, d.Seed, p.Config().Today, res.Elapsed.Round(time.Millisecond), res.Commands,
		float64(res.Commands)/max(res.Elapsed.Seconds(), 0.001), res.Retries, len(res.Refused))
	describePopulation(out, p)
	if err := res.Summary.Format(out); err != nil {
		return err
	}
	if len(res.Refused) == 0 {
		return nil
	}
	fmt.Fprintln(out, "\nRefused commands:")
	for i, r := range res.Refused {
		if i == 10 {
			fmt.Fprintf(out, "  … and %d more\n", len(res.Refused)-i)
			break
		}
		fmt.Fprintf(out, "  %s\n", r.Error())
	}
	return errors.New("Koers refused commands of the demo (listed above); the generator and the server disagree about a rule")
}

// describePopulation names the population's employers, coaches and
// agencies, which the dashboards and reports are filtered by.
func describePopulation(out io.Writer, p *demo.Population) {
	departments := 0
	for _, o := range p.Organisations() {
		departments += len(o.Departments)
	}
	fmt.Fprintf(out, "%d organisations with %d departments, %d coaches, %d re-integration agencies; for example organisation %s, coach %s.\n\n",
		len(p.Organisations()), departments, len(p.Coaches()), len(p.Agencies()), p.Organisations()[0].ID, p.Coaches()[0])
}
