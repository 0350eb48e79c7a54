package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Defaults of Options.
const (
	// DefaultWorkers is how many cases are sent at the same time.
	DefaultWorkers = 16
	// DefaultCallTimeout bounds one call.
	DefaultCallTimeout = 30 * time.Second
	// DefaultAttempts bounds how often one command is sent when the
	// server is unavailable, times out or reports a conflict.
	DefaultAttempts = 8
)

// Options tune Run. The zero value of each field means its default.
type Options struct {
	// Workers is how many cases are sent concurrently; each case's
	// commands go one after the other, in order.
	Workers int
	// CallTimeout bounds each call; a call that times out is sent again.
	CallTimeout time.Duration
	// Attempts bounds how often a command is sent.
	Attempts int
	// Progress, if set, is called after each case, one call at a time.
	Progress func(Progress)
	// Logger receives refusals and retries; default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Progress is how far a run is.
type Progress struct {
	// Cases is how many cases the run sends; Done how many are finished.
	Cases, Done int
	// Commands counts the commands answered, Retries those sent again,
	// Refused the cases a command was refused in.
	Commands, Retries, Refused int
	// Elapsed is the time since the run started.
	Elapsed time.Duration
}

// Refusal is a command the server refused: the generator and the server
// disagree about a rule (a bug in one of them). The case's later
// commands are not sent.
type Refusal struct {
	Case      int
	Step      int
	CaseID    string
	Method    string
	RequestID string
	Err       error
}

func (r Refusal) Error() string {
	return fmt.Sprintf("case %d (%s) step %d %s (request %s): %v", r.Case, r.CaseID, r.Step, r.Method, r.RequestID, r.Err)
}

// Result is what a run did.
type Result struct {
	// Summary counts the population sent.
	Summary *Summary
	// Commands counts the commands answered, Retries those sent again.
	Commands, Retries int
	// Refused lists the refused commands, by case.
	Refused []Refusal
	// Elapsed is how long the run took.
	Elapsed time.Duration
}

// Anchor returns the Today of an earlier demo of tenant and seed on the
// server, read from its case 0's opening day, and false when there was
// none. Sending a population again with the same Today writes nothing new;
// with another Today its commands differ and are refused as request IDs
// used for other commands.
func Anchor(ctx context.Context, client casev1.CaseServiceClient, tenant string, seed uint64) (casework.Date, bool, error) {
	resp, err := client.GetCase(ctx, &casev1.GetCaseRequest{CaseId: CaseID(tenant, seed, 0)})
	switch {
	case status.Code(err) == codes.NotFound:
		return casework.Date{}, false, nil
	case err != nil:
		return casework.Date{}, false, fmt.Errorf("demo: look for an earlier demo: %w", err)
	}
	opened := casework.DateFromProto(resp.GetCase().GetOpenedOn())
	return opened.AddDays(openedDaysAgo(seed, 0)), true, nil
}

// Run sends every case of p through client, Options.Workers cases at a
// time, each case's commands in order; ctx carries the caller's tenant and
// actor metadata. Case 0 goes first and alone: its opening day tells a
// later run which Today this population has (Anchor).
//
// A refused command is reported in Result.Refused and ends its case; Run
// fails when ctx ends, the server stays unavailable, the caller is not
// let in, or the generator fails.
func Run(ctx context.Context, client casev1.CaseServiceClient, p *Population, opts Options) (*Result, error) {
	r := &runner{client: client, p: p, opts: opts.withDefaults(), start: time.Now(), sum: NewSummary(p.cfg.Today)}
	if err := r.runCase(ctx, 0); err != nil {
		return nil, err
	}
	if err := r.runRest(ctx); err != nil {
		return nil, err
	}
	slices.SortFunc(r.refused, func(a, b Refusal) int { return a.Case - b.Case })
	return &Result{Summary: r.sum, Commands: r.commands, Retries: r.retries, Refused: r.refused, Elapsed: time.Since(r.start)}, nil
}

// runner is one Run.
type runner struct {
	client casev1.CaseServiceClient
	p      *Population
	opts   Options
	start  time.Time

	mu       sync.Mutex // guards what follows
	sum      *Summary
	done     int
	commands int
	retries  int
	refused  []Refusal
}

// runRest sends cases 1 to the last with the workers.
func (r *runner) runRest(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range r.opts.Workers {
		wg.Go(func() {
			for i := range jobs {
				if err := r.runCase(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
feed:
	for i := 1; i < r.p.cfg.Cases; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return context.Cause(ctx)
}

// runCase sends one case's commands in order.
func (r *runner) runCase(ctx context.Context, index int) error {
	t, err := r.p.Case(index)
	if err != nil {
		return err
	}
	var refusal *Refusal
	sent := 0
	for j, step := range t.Steps {
		err := r.send(ctx, step)
		if err == nil {
			sent++
			continue
		}
		if fatal(ctx, err) {
			return fmt.Errorf("demo: case %d step %d %s: %w", index, j, step.Method(), err)
		}
		refusal = &Refusal{Case: index, Step: j, CaseID: t.CaseID, Method: step.Method(), RequestID: step.Request.GetRequestId(), Err: err}
		r.opts.Logger.Warn("command refused", "case", index, "step", j, "method", step.Method(), "err", err)
		break
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Add(t)
	r.done++
	r.commands += sent
	if refusal != nil {
		r.refused = append(r.refused, *refusal)
	}
	if r.opts.Progress != nil {
		r.opts.Progress(Progress{Cases: r.p.cfg.Cases, Done: r.done, Commands: r.commands, Retries: r.retries,
			Refused: len(r.refused), Elapsed: time.Since(r.start)})
	}
	return nil
}

// fatal reports whether err ends the run rather than a case: the run was
// stopped, or the server cannot be reached or does not let the caller in,
// which every other case would meet as well.
func fatal(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Canceled,
		codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented:
		return true
	}
	return false
}

// send sends one command, again with a growing pause while the server is
// unavailable, slow or busy with the same case; the request ID makes a
// repeat harmless.
func (r *runner) send(ctx context.Context, step Step) error {
	pause := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
		err := call(callCtx, r.client, step.Request)
		cancel()
		if err == nil || !retryable(err) || attempt >= r.opts.Attempts || ctx.Err() != nil {
			return err
		}
		r.mu.Lock()
		r.retries++
		r.mu.Unlock()
		r.opts.Logger.Debug("sending again", "method", step.Method(), "request", step.Request.GetRequestId(), "err", err)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		pause = min(2*pause, 2*time.Second)
	}
}

func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

// call sends req to the CaseService method it is the request of.
func call(ctx context.Context, c casev1.CaseServiceClient, req Request) error {
	var err error
	switch r := req.(type) {
	case *casev1.OpenCaseRequest:
		_, err = c.OpenCase(ctx, r)
	case *casev1.CompleteIntakeRequest:
		_, err = c.CompleteIntake(ctx, r)
	case *casev1.ReclassifyQuestionRequest:
		_, err = c.ReclassifyQuestion(ctx, r)
	case *casev1.AssignCoachRequest:
		_, err = c.AssignCoach(ctx, r)
	case *casev1.ReferCaseRequest:
		_, err = c.ReferCase(ctx, r)
	case *casev1.GrantReportingConsentRequest:
		_, err = c.GrantReportingConsent(ctx, r)
	case *casev1.RevokeReportingConsentRequest:
		_, err = c.RevokeReportingConsent(ctx, r)
	case *casev1.RecordSessionRequest:
		_, err = c.RecordSession(ctx, r)
	case *casev1.AgreeDevelopmentPlanRequest:
		_, err = c.AgreeDevelopmentPlan(ctx, r)
	case *casev1.ReviseDevelopmentPlanRequest:
		_, err = c.ReviseDevelopmentPlan(ctx, r)
	default:
		return callTrajectory(ctx, c, req)
	}
	return err
}

func callTrajectory(ctx context.Context, c casev1.CaseServiceClient, req Request) error {
	var err error
	switch r := req.(type) {
	case *casev1.StartOutplacementRequest:
		_, err = c.StartOutplacement(ctx, r)
	case *casev1.EnterOutplacementPhaseRequest:
		_, err = c.EnterOutplacementPhase(ctx, r)
	case *casev1.RecordPlacementRequest:
		_, err = c.RecordPlacement(ctx, r)
	case *casev1.EndOutplacementWithoutPlacementRequest:
		_, err = c.EndOutplacementWithoutPlacement(ctx, r)
	case *casev1.StartReintegrationRequest:
		_, err = c.StartReintegration(ctx, r)
	case *casev1.AssignAgencyRequest:
		_, err = c.AssignAgency(ctx, r)
	case *casev1.UnassignAgencyRequest:
		_, err = c.UnassignAgency(ctx, r)
	case *casev1.RecordCheckpointRequest:
		_, err = c.RecordCheckpoint(ctx, r)
	case *casev1.StartSecondTrackRequest:
		_, err = c.StartSecondTrack(ctx, r)
	case *casev1.CloseCaseRequest:
		_, err = c.CloseCase(ctx, r)
	case *casev1.ReopenCaseRequest:
		_, err = c.ReopenCase(ctx, r)
	case *casev1.EraseClientDataRequest:
		_, err = c.EraseClientData(ctx, r)
	default:
		return errors.New("demo: no CaseService method for " + string(req.ProtoReflect().Descriptor().FullName()))
	}
	return err
}
