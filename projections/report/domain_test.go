package report_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/report"
	"github.com/koers-io/koers/projections/report/testbed"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// TestReportAgreesWithTheDomain recomputes the unsuppressed report of the
// synthetic history as of now straight from the events, with the
// domain's own fold (casework.Evolve) and deadline calculator
// (casework.Schedule), and compares every count and statistic.
func TestReportAgreesWithTheDomain(t *testing.T) {
	loc := amsterdam(t)
	events := testbed.History(testbed.Golden(loc))
	queries := map[string]report.Query{
		"now":                       {Tenant: "rivierstad", Now: now(t), K: 1},
		"2025":                      {Tenant: "rivierstad", Now: now(t), K: 1, From: date(2025, 1, 1), To: date(2025, 12, 31)},
		"2024 as of 2025":           {Tenant: "rivierstad", AsOf: at(t, date(2025, 1, 1)), K: 1, From: date(2024, 1, 1), To: date(2024, 12, 31)},
		"spring 2025 as of its end": {Tenant: "rivierstad", AsOf: at(t, date(2025, 6, 1)), K: 1, From: date(2025, 3, 1), To: date(2025, 5, 31)},
	}
	forEachDialect(t, func(t *testing.T, d projections.Dialect) {
		rm := build(t, d, events)
		for name, q := range queries {
			t.Run(name, func(t *testing.T) {
				r := rm.get(t, q)
				want := expectedFigures(events, q.Tenant, r.AsOf, r.From, r.To, loc)
				if diff := cmp.Diff(want, reportFigures(r)); diff != "" {
					t.Errorf("the report differs from the domain's figures (-domain +report):\n%s", diff)
				}
			})
		}
	})
}

// figures are a report's counts by a readable key, zeros left out, and its
// statistics.
type figures struct {
	Counts map[string]int
	Days   map[string]string
}

func (f *figures) add(key string, n int) {
	if n != 0 {
		f.Counts[key] += n
	}
}

func reportFigures(r report.Report) figures {
	f := figures{Counts: map[string]int{}, Days: map[string]string{}}
	f.add("cases", r.Cases.Active.N)
	for _, c := range r.Cases.ByContextAndType {
		f.add(fmt.Sprintf("cases %s %s", c.Context, c.QuestionType), c.Count.N)
	}
	for _, c := range r.Cases.Mobility {
		f.add("quadrant "+c.Quadrant.String(), c.Count.N)
	}
	for _, c := range r.Cases.Caseload {
		f.add("coach "+c.CoachID, c.Count.N)
	}
	f.add("reclassifications", r.Reclassifications.Total.N)
	for _, c := range r.Reclassifications.Matrix {
		f.add(fmt.Sprintf("reclassified %s %s", c.From, c.To), c.Count.N)
	}
	o := r.Outplacement
	f.add("outplacements", o.Started.N)
	for _, c := range o.ByPhase {
		f.add("phase "+c.Phase.String(), c.Count.N)
	}
	for _, c := range o.ByOutcome {
		f.add("outcome "+c.Outcome.String(), c.Count.N)
	}
	f.Days["all"] = fmt.Sprintf("%.1f %.1f %t", o.DaysToPlacement.Median, o.DaysToPlacement.P90, o.DaysToPlacement.OK)
	for _, b := range o.ByAgeBand {
		f.add("band "+b.Band.String(), b.Started.N)
		for _, c := range b.ByOutcome {
			f.add(fmt.Sprintf("band %s %s", b.Band, c.Outcome), c.Count.N)
		}
		f.Days[b.Band.String()] = fmt.Sprintf("%.1f %.1f %t", b.DaysToPlacement.Median, b.DaysToPlacement.P90, b.DaysToPlacement.OK)
	}
	ri := r.Reintegration
	f.add("checkpoints", ri.Checkpoints.N)
	for _, c := range ri.Compliance {
		f.add(fmt.Sprintf("checkpoint %s %s", c.Kind, c.Status), c.Count.N)
	}
	for _, c := range ri.ByKind {
		f.add("checkpoint "+c.Kind.String(), c.Count.N)
	}
	for _, c := range ri.ByStatus {
		f.add("checkpoints "+c.Status.String(), c.Count.N)
	}
	f.add("ended", ri.Ended.N)
	for _, c := range ri.ByOutcome {
		f.add("ended "+c.Outcome.String(), c.Count.N)
	}
	return f
}

// expectedFigures computes what the report of tenant as of asOf over the
// period from..to must say, event by event, without the read model: only
// events recorded by asOf count.
func expectedFigures(events []projections.Event, tenant string, asOf time.Time, from, to casework.Date, loc *time.Location) figures {
	f := figures{Counts: map[string]int{}, Days: map[string]string{}}
	today := casework.DateOf(asOf.In(loc))
	in := func(d casework.Date) bool { return !d.After(to) && (from.IsZero() || !d.Before(from)) }
	states := map[string]casework.State{}
	reintegrationEnd := map[string]casework.Date{}
	var order []string
	for _, ev := range events {
		if ev.Metadata.GetTenantId() != tenant || ev.RecordedAt.After(asOf) {
			continue
		}
		id := ev.Metadata.GetCaseId()
		before := states[id]
		if before.Stage == 0 {
			order = append(order, id)
		}
		states[id] = casework.Evolve(before, ev.Body)
		switch e := ev.Body.(type) {
		case *casev1.QuestionReclassified:
			if in(casework.DateOf(ev.Metadata.GetOccurredAt().AsTime().In(loc))) {
				f.add("reclassifications", 1)
				f.add(fmt.Sprintf("reclassified %s %s", e.GetFrom(), e.GetTo()), 1)
			}
		case *casev1.CaseClosed:
			if before.Reintegration.Running {
				end := casework.DateFromProto(e.GetClosedOn())
				reintegrationEnd[id] = end
				if !in(end) {
					break
				}
				outcome := e.GetOutcome()
				switch outcome {
				case casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER, casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER,
					casev1.CloseOutcome_CLOSE_OUTCOME_DISABILITY_BENEFIT, casev1.CloseOutcome_CLOSE_OUTCOME_EMPLOYMENT_ENDED:
				default:
					outcome = casev1.CloseOutcome_CLOSE_OUTCOME_OTHER
				}
				f.add("ended", 1)
				f.add("ended "+outcome.String(), 1)
			}
		}
	}
	days := map[string][]int{}
	for _, id := range order {
		s := states[id]
		if !s.OpenedOn.After(to) && (!s.Closure.Closed || from.IsZero() || !s.Closure.ClosedOn.Before(from)) {
			f.add("cases", 1)
			f.add(fmt.Sprintf("cases %s %s", s.Context, s.QuestionType), 1)
			f.add("quadrant "+report.QuadrantOf(s.Intake.MobilityWillingness, s.Intake.MobilityCapacity).String(), 1)
			f.add("coach "+s.CoachID, 1)
		}
		if o := s.Outplacement; !o.StartedOn.IsZero() && in(o.StartedOn) {
			band := report.AgeBandAt(s.BirthYear, o.StartedOn).String()
			f.add("outplacements", 1)
			f.add("phase "+o.Phase.String(), 1)
			f.add("outcome "+o.Outcome.String(), 1)
			f.add("band "+band, 1)
			f.add(fmt.Sprintf("band %s %s", band, o.Outcome), 1)
			if !o.PlacedOn.IsZero() {
				n := o.PlacedOn.DaysSince(o.StartedOn)
				days["all"] = append(days["all"], n)
				days[band] = append(days[band], n)
			}
		}
		r := s.Reintegration
		if r.SickReportedOn.IsZero() {
			continue
		}
		end, ended := reintegrationEnd[id]
		for _, d := range casework.Schedule(r.SickReportedOn, r.Checkpoints, asOf.In(loc)) {
			status := d.Status
			switch {
			case !in(d.Due):
				continue // not in the period
			case status.Done():
			case d.Due.Before(today) && (!ended || !d.Due.After(end)):
				status = casework.StatusOverdue
			default:
				continue // still open, or moot after the end
			}
			f.add("checkpoints", 1)
			f.add(fmt.Sprintf("checkpoint %s %s", d.Kind, status), 1)
			f.add("checkpoint "+d.Kind.String(), 1)
			f.add("checkpoints "+status.String(), 1)
		}
	}
	for _, key := range []string{"all", report.AgeUnder40.String(), report.Age40To56.String(), report.Age57AndOver.String(), report.AgeUnknown.String()} {
		if _, ok := days[key]; !ok {
			days[key] = nil
		}
	}
	for key, values := range days {
		slices.Sort(values)
		if len(values) == 0 {
			f.Days[key] = "0.0 0.0 false"
			continue
		}
		f.Days[key] = fmt.Sprintf("%.1f %.1f true", report.Percentile(values, 0.5), report.Percentile(values, 0.9))
	}
	return f
}
