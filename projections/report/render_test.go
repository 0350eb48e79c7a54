package report_test

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/koers-io/koers/projections/report"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// render writes the report as aligned text tables, the form of the golden
// files: "-" marks a suppressed count, "n/a" a rate or statistic without
// values.
func render(w io.Writer, r report.Report) {
	scope := r.Tenant
	if r.Organisation != "" {
		scope += " / " + r.Organisation
	}
	if r.Department != "" {
		scope += " / " + r.Department
	}
	from := "(start)"
	if !r.From.IsZero() {
		from = r.From.String()
	}
	fmt.Fprintf(w, "report %s\nperiod %s .. %s, as of %s (day %s), k=%d\n",
		scope, from, r.To, r.AsOf.UTC().Format("2006-01-02T15:04:05Z"), r.AsOfDay, r.K)

	section(w, "cases open in the period", func(t *tabwriter.Writer) {
		fmt.Fprintf(t, "active\t%s\n", count(r.Cases.Active))
	})
	section(w, "cases by organisational context and question type", func(t *tabwriter.Writer) {
		fmt.Fprintf(t, "context\\type")
		for _, qt := range []casev1.QuestionType{0, 1, 2, 3, 4} {
			fmt.Fprintf(t, "\t%s", short(qt.String(), "QUESTION_TYPE_"))
		}
		fmt.Fprintln(t)
		for i, c := range r.Cases.ByContextAndType {
			if i%5 == 0 {
				fmt.Fprintf(t, "%s", short(c.Context.String(), "ORGANISATIONAL_CONTEXT_"))
			}
			fmt.Fprintf(t, "\t%s", count(c.Count))
			if i%5 == 4 {
				fmt.Fprintln(t)
			}
		}
	})
	section(w, "mobility quadrant (willingness x capacity, high = score 3-5)", func(t *tabwriter.Writer) {
		for _, q := range r.Cases.Mobility {
			fmt.Fprintf(t, "%s\t%s\n", q.Quadrant, count(q.Count))
		}
	})
	section(w, "caseload per coach", func(t *tabwriter.Writer) {
		for _, c := range r.Cases.Caseload {
			coach := c.CoachID
			if coach == "" {
				coach = "(no coach)"
			}
			fmt.Fprintf(t, "%s\t%s\n", coach, count(c.Count))
		}
	})
	section(w, "reclassifications (from -> to)", func(t *tabwriter.Writer) {
		fmt.Fprintf(t, "total\t%s\n", count(r.Reclassifications.Total))
		for _, m := range r.Reclassifications.Matrix {
			fmt.Fprintf(t, "%s -> %s\t%s\n", short(m.From.String(), "QUESTION_TYPE_"), short(m.To.String(), "QUESTION_TYPE_"), count(m.Count))
		}
	})
	o := r.Outplacement
	section(w, "outplacements started in the period", func(t *tabwriter.Writer) {
		fmt.Fprintf(t, "started\t%s\n", count(o.Started))
		fmt.Fprintf(t, "placement rate\t%s\n", rate(o.PlacementRate))
		fmt.Fprintf(t, "days to placement\t%s\n", days(o.DaysToPlacement))
	})
	section(w, "outplacement funnel (furthest phase reached)", func(t *tabwriter.Writer) {
		for _, p := range o.ByPhase {
			fmt.Fprintf(t, "%s\t%s\n", short(p.Phase.String(), "OUTPLACEMENT_PHASE_"), count(p.Count))
		}
	})
	section(w, "outplacement outcome by age band at the start", func(t *tabwriter.Writer) {
		fmt.Fprintf(t, "band\tstarted")
		for _, oc := range o.ByOutcome {
			fmt.Fprintf(t, "\t%s", outcomeName(oc.Outcome))
		}
		fmt.Fprintf(t, "\tplacement rate\tdays to placement\n")
		fmt.Fprintf(t, "all\t%s", count(o.Started))
		for _, oc := range o.ByOutcome {
			fmt.Fprintf(t, "\t%s", count(oc.Count))
		}
		fmt.Fprintf(t, "\t%s\t%s\n", rate(o.PlacementRate), days(o.DaysToPlacement))
		for _, b := range o.ByAgeBand {
			fmt.Fprintf(t, "%s\t%s", b.Band, count(b.Started))
			for _, oc := range b.ByOutcome {
				fmt.Fprintf(t, "\t%s", count(oc.Count))
			}
			fmt.Fprintf(t, "\t%s\t%s\n", rate(b.PlacementRate), days(b.DaysToPlacement))
		}
	})
	ri := r.Reintegration
	section(w, "re-integration checkpoint compliance (deadlines due in the period)", func(t *tabwriter.Writer) {
		fmt.Fprintf(t, "checkpoint")
		for _, s := range ri.ByStatus {
			fmt.Fprintf(t, "\t%s", statusName(s.Status.String()))
		}
		fmt.Fprintf(t, "\ttotal\n")
		for i, k := range ri.ByKind {
			fmt.Fprintf(t, "%s", short(k.Kind.String(), "CHECKPOINT_KIND_"))
			for _, c := range ri.Compliance[i*4 : i*4+4] {
				fmt.Fprintf(t, "\t%s", count(c.Count))
			}
			fmt.Fprintf(t, "\t%s\n", count(k.Count))
		}
		fmt.Fprintf(t, "total")
		for _, s := range ri.ByStatus {
			fmt.Fprintf(t, "\t%s", count(s.Count))
		}
		fmt.Fprintf(t, "\t%s\n", count(ri.Checkpoints))
	})
	section(w, "re-integrations ended in the period", func(t *tabwriter.Writer) {
		fmt.Fprintf(t, "ended\t%s\n", count(ri.Ended))
		for _, e := range ri.ByOutcome {
			fmt.Fprintf(t, "%s\t%s\n", short(e.Outcome.String(), "CLOSE_OUTCOME_"), count(e.Count))
		}
		fmt.Fprintf(t, "return-to-work rate\t%s\n", rate(ri.ReturnToWorkRate))
	})
}

func section(w io.Writer, title string, body func(*tabwriter.Writer)) {
	fmt.Fprintf(w, "\n## %s\n", title)
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	body(t)
	t.Flush()
}

func count(c report.Count) string {
	if c.Suppressed {
		return "-"
	}
	return fmt.Sprint(c.N)
}

func rate(r report.Rate) string {
	switch {
	case r.Suppressed:
		return "-"
	case !r.OK:
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*r.Value)
}

func days(d report.Days) string {
	switch {
	case d.Suppressed:
		return "-"
	case !d.OK:
		return "n/a"
	}
	return fmt.Sprintf("median %.1f, p90 %.1f", d.Median, d.P90)
}

func short(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

func outcomeName(o casev1.PlacementOutcome) string {
	if o == casev1.PlacementOutcome_PLACEMENT_OUTCOME_UNSPECIFIED {
		return "no outcome yet"
	}
	return short(o.String(), "PLACEMENT_OUTCOME_")
}

func statusName(s string) string {
	if s == "overdue" {
		return "missing"
	}
	return s
}
