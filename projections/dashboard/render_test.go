package dashboard_test

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/koers-io/koers/projections/dashboard"
)

// render writes a dashboard as aligned text, the form of the golden files.
// Case IDs are cut to their first 8 characters, which are unique in the
// synthetic history.
func render(w io.Writer, d dashboard.Dashboard) {
	fmt.Fprintf(w, "dashboard of %s in %s\nas of %s (today %s), idle after %d days, reclassifications of the last %d days\n",
		d.Coach, d.Tenant, d.Now.UTC().Format("2006-01-02T15:04:05Z"), d.Today, d.IdleDays, d.RecentDays)
	var parts []string
	for _, s := range d.ByStage {
		parts = append(parts, fmt.Sprintf("%s %d", lower(s.Stage.String(), "STAGE_"), s.Count))
	}
	fmt.Fprintf(w, "\nactive cases by stage: %s\n", strings.Join(parts, ", "))
	parts = nil
	for _, q := range d.ByQuestionType {
		parts = append(parts, fmt.Sprintf("%s %d", lower(q.QuestionType.String(), "QUESTION_TYPE_"), q.Count))
	}
	fmt.Fprintf(w, "active cases by question type: %s\n", strings.Join(parts, ", "))

	table(w, "cases, most urgent first", "case\tstage\tquestion\temployer\topened\tlast activity\tidle\tnext deadline\toverdue", func(t io.Writer) {
		for _, c := range d.Cases {
			employer := "-"
			if c.OrganisationID != "" {
				employer = c.OrganisationID + "/" + c.Department
			}
			stage := lower(c.Stage.String(), "STAGE_")
			if c.OutplacementPhase != 0 {
				stage += " (" + lower(c.OutplacementPhase.String(), "OUTPLACEMENT_PHASE_") + ")"
			}
			next := "-"
			if c.Next != nil {
				next = deadline(*c.Next)
			}
			var overdue []string
			for _, o := range c.Overdue {
				overdue = append(overdue, lower(o.Kind.String(), "CHECKPOINT_KIND_")+" "+o.Due.String())
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.CaseID[:8], stage, lower(c.QuestionType.String(), "QUESTION_TYPE_"),
				employer, c.OpenedOn, c.LastActivity.In(d.Now.Location()).Format("2006-01-02"), c.IdleDays, next, orDash(strings.Join(overdue, ", ")))
		}
	})
	table(w, "overdue deadlines", "case\tcheckpoint\tweek\topens\tdue", func(t io.Writer) {
		for _, o := range d.Overdue {
			fmt.Fprintf(t, "%s\t%s\t%d\t%s\t%s\n", o.CaseID[:8], lower(o.Kind.String(), "CHECKPOINT_KIND_"), o.Week, o.Opens, o.Due)
		}
	})
	table(w, fmt.Sprintf("idle for more than %d days", d.IdleDays), "case\tlast activity\tidle days", func(t io.Writer) {
		for _, c := range d.Idle {
			fmt.Fprintf(t, "%s\t%s\t%d\n", c.CaseID[:8], c.LastActivity.In(d.Now.Location()).Format("2006-01-02"), c.IdleDays)
		}
	})
	table(w, "intake signals advising referral", "case\tadvised\tsignals\treferred", func(t io.Writer) {
		for _, c := range d.ReferralSignals {
			var signals []string
			for _, s := range c.WarningSignals {
				signals = append(signals, lower(s.String(), "WARNING_SIGNAL_"))
			}
			fmt.Fprintf(t, "%s\t%t\t%s\t%t\n", c.CaseID[:8], c.ReferralAdvised, orDash(strings.Join(signals, ", ")), c.Referred)
		}
	})
	table(w, "recent reclassifications", "case\tfrom\tto\treason\toccurred\trecorded", func(t io.Writer) {
		for _, r := range d.Reclassifications {
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\n", r.CaseID[:8], lower(r.From.String(), "QUESTION_TYPE_"), lower(r.To.String(), "QUESTION_TYPE_"),
				lower(r.Reason.String(), "RECLASSIFICATION_REASON_"), r.OccurredOn, r.RecordedAt.Format("2006-01-02T15:04Z"))
		}
	})
}

func deadline(d dashboard.Deadline) string {
	return fmt.Sprintf("%s %s..%s (%s)", lower(d.Kind.String(), "CHECKPOINT_KIND_"), d.Opens, d.Due, d.Status)
}

func table(w io.Writer, title, header string, rows func(io.Writer)) {
	fmt.Fprintf(w, "\n## %s\n", title)
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t, header)
	rows(t)
	t.Flush()
}

func lower(name, prefix string) string { return strings.ToLower(strings.TrimPrefix(name, prefix)) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
