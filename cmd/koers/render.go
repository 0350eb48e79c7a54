package main

import (
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// render prints a case for a person: its state, section by section, then
// its history, one event a line with its details below.
func render(out io.Writer, resp *casev1.GetCaseResponse) error {
	p := &printer{}
	c := resp.GetCase()
	p.head("Case %s (revision %d, position %d)", c.GetCaseId(), c.GetRevision(), c.GetPosition())
	p.line("Stage", "%s", short(c.GetStage()))
	p.line("Client", "%s — %s", c.GetClientId(), personal(c.GetClient()))
	opened := fmt.Sprintf("%s, initiated by %s", formatDate(c.GetOpenedOn()), short(c.GetInitiatedBy()))
	if c.GetBirthYear() != 0 {
		opened += fmt.Sprintf("; born %d", c.GetBirthYear())
	}
	p.line("Opened", "%s", opened)
	if c.GetOrganisationId() != "" {
		org := c.GetOrganisationId()
		if c.GetDepartment() != "" {
			org += " / " + c.GetDepartment()
		}
		if c.GetOrganisationalContext() != 0 {
			org += fmt.Sprintf(" (%s: %s)", short(c.GetOrganisationalContext()), short(c.GetOrganisationalQuestion()))
		}
		if len(c.GetOrganisationalAims()) > 0 {
			org += "; aims " + enumList(c.GetOrganisationalAims())
		}
		p.line("Organisation", "%s", org)
	}
	p.line("Coach", "%s", orDash(c.GetCoachId()))
	if in := c.GetIntake(); in != nil {
		p.line("Question", "%s (intake: %s)", short(c.GetQuestionType()), short(in.GetQuestionType()))
		p.line("Intake", "%s; warning signals %s; referral advised %s; mobility willingness %s, capacity %s",
			formatDate(in.GetHeldOn()), orDash(enumList(in.GetWarningSignals())), yesNo(in.GetReferralAdvised()),
			score(in.GetMobilityWillingness()), score(in.GetMobilityCapacity()))
		p.more(personal(in.GetAnswers()))
	}
	for _, r := range c.GetReclassifications() {
		p.line("Reclassified", "%s → %s (%s)", short(r.GetFrom()), short(r.GetTo()), short(r.GetReason()))
	}
	for _, r := range c.GetReferrals() {
		p.line("Referred", "to %s %s(%s)", short(r.GetTarget()), suffix(r.GetColleagueCoachId(), " "), short(r.GetReason()))
	}
	for _, cs := range c.GetConsents() {
		p.line("Consent", "%s %s: %s", short(cs.GetRecipient().GetKind()), cs.GetRecipient().GetId(), enumList(cs.GetScopes()))
	}
	if s := c.GetSessions(); s.GetCount() > 0 {
		p.line("Sessions", "%d (%d after the intake), %d minutes, last on %s", s.GetCount(), s.GetSinceIntake(), s.GetMinutes(), formatDate(s.GetLastHeldOn()))
	}
	if pl := c.GetDevelopmentPlan(); pl != nil {
		p.line("Plan", "agreed %s, %d revisions (last %s), next review %s",
			formatDate(pl.GetAgreedOn()), pl.GetRevisions(), formatDate(pl.GetRevisedOn()), formatDate(pl.GetReviewOn()))
		p.more(personal(pl.GetGoals()))
	}
	if o := c.GetOutplacement(); o != nil {
		p.line("Outplacement", "%s since %s, phase %s since %s, planned %d months, outcome %s",
			runningOrEnded(o.GetRunning()), formatDate(o.GetStartedOn()), short(o.GetPhase()), formatDate(o.GetPhaseEnteredOn()),
			o.GetPlannedMonths(), orDash(short(o.GetOutcome())))
	}
	if r := c.GetReintegration(); r != nil {
		renderReintegration(p, r)
	}
	if cl := c.GetClosure(); cl != nil {
		p.line("Closed", "%s on %s (%s); reopened %d times", yesNo(cl.GetClosed()), formatDate(cl.GetClosedOn()), short(cl.GetOutcome()), cl.GetReopenings())
	}
	if c.GetErasureReason() != 0 {
		p.line("Erased", "%s", short(c.GetErasureReason()))
	}
	p.head("\nHistory")
	for _, h := range resp.GetHistory() {
		p.history(h)
	}
	_, err := io.WriteString(out, p.String())
	return err
}

func renderReintegration(p *printer, r *casev1.Case_Reintegration) {
	p.line("Re-integration", "%s; sick since %s, track %s, agency %s", runningOrEnded(r.GetRunning()),
		formatDate(r.GetSickReportedOn()), short(r.GetTrack()), orDash(r.GetAgencyId()))
	if l := r.GetLoadCapacity(); l != nil {
		p.line("Load capacity", "%s", formatMessage(l.ProtoReflect()))
	}
	if len(r.GetDeadlines()) > 0 {
		p.line("Deadlines", "as of %s", formatDate(r.GetDeadlinesAsOf()))
	}
	for _, d := range r.GetDeadlines() {
		week := "      "
		if d.GetWeek() > 0 {
			week = fmt.Sprintf("wk %3d", d.GetWeek())
		}
		done := ""
		if d.GetDoneOn() != nil {
			done = " on " + formatDate(d.GetDoneOn())
		}
		p.more(fmt.Sprintf("%s  %-28s due %s  %s%s", week, short(d.GetKind()), formatDate(d.GetDue()), short(d.GetStatus()), done))
	}
}

// printer builds the text of a case.
type printer struct{ strings.Builder }

func (p *printer) head(format string, args ...any) { fmt.Fprintf(p, format+"\n", args...) }

func (p *printer) line(label, format string, args ...any) {
	fmt.Fprintf(p, "  %-15s %s\n", label+":", fmt.Sprintf(format, args...))
}

// more prints lines under the last one, indented.
func (p *printer) more(text string) {
	for _, l := range strings.Split(text, "\n") {
		if l != "" {
			fmt.Fprintf(p, "  %-15s %s\n", "", l)
		}
	}
}

func (p *printer) history(h *casev1.HistoryEntry) {
	// The days the event is about are among its details; the line says
	// when it was recorded.
	recorded := h.GetRecordedAt().AsTime().Local().Format("2006-01-02 15:04")
	name := h.GetEventType()[strings.LastIndex(h.GetEventType(), ".")+1:]
	fmt.Fprintf(p, "  %3d  %s  %-34s by %s, request %s\n", h.GetRevision(), recorded, name, h.GetActor(), h.GetRequestId())
	body := h.ProtoReflect()
	if fd := body.WhichOneof(body.Descriptor().Oneofs().ByName("event")); fd != nil {
		if details := formatMessage(body.Get(fd).Message()); details != "" {
			fmt.Fprintf(p, "       %s\n", details)
		}
	}
	if pd := h.GetPersonalData(); pd != nil {
		for i, l := range strings.Split(personal(pd), "\n") {
			label := ""
			if i == 0 {
				label = pd.GetField() + ":"
			}
			fmt.Fprintf(p, "       %-12s %s\n", label, l)
		}
	}
}

// personal prints a personal part, or says why it cannot be read.
func personal(pd *casev1.PersonalData) string {
	switch pd.GetStatus() {
	case casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_AVAILABLE:
	case casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_UNSPECIFIED:
		return "-"
	default:
		return "[" + short(pd.GetStatus()) + "]"
	}
	switch p := pd.GetPlaintext().(type) {
	case *casev1.PersonalData_ClientDetails:
		d := p.ClientDetails
		return strings.Join(nonEmpty(strings.TrimSpace(d.GetGivenName()+" "+d.GetFamilyName()), angle(d.GetEmail()), d.GetPhone()), " ")
	case *casev1.PersonalData_Note:
		return p.Note.GetText()
	case *casev1.PersonalData_IntakeAnswers:
		a := p.IntakeAnswers
		var lines []string
		for _, qa := range [][2]string{
			{"Reason for coming", a.GetReasonForComing()}, {"Who am I?", a.GetWhoAmI()}, {"What do I want?", a.GetWhatDoIWant()},
			{"What can I do?", a.GetWhatCanIDo()}, {"Where do I find it?", a.GetWhereDoIFindIt()}, {"How do I get there?", a.GetHowDoIGetThere()},
		} {
			if qa[1] != "" {
				lines = append(lines, qa[0]+": "+qa[1])
			}
		}
		return strings.Join(lines, "\n")
	case *casev1.PersonalData_DevelopmentGoals:
		var lines []string
		for i, g := range p.DevelopmentGoals.GetGoals() {
			l := fmt.Sprintf("%d. %s", i+1, g.GetDescription())
			if g.GetActions() != "" {
				l += " — " + g.GetActions()
			}
			if g.GetTargetOn() != nil {
				l += " (by " + formatDate(g.GetTargetOn()) + ")"
			}
			lines = append(lines, l)
		}
		return strings.Join(lines, "\n")
	}
	return "-"
}

// formatMessage prints a message's set fields as name=value, enums by
// their short names and days as YYYY-MM-DD.
func formatMessage(m protoreflect.Message) string {
	var parts []string
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		parts = append(parts, string(fd.Name())+"="+formatValue(fd, m.Get(fd)))
	}
	return strings.Join(parts, " ")
}

func formatValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	if fd.IsList() {
		l := v.List()
		items := make([]string, l.Len())
		for i := range items {
			items[i] = formatScalar(fd, l.Get(i))
		}
		return strings.Join(items, ",")
	}
	return formatScalar(fd, v)
}

func formatScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		return shortName(fd.Enum(), v.Enum())
	case protoreflect.MessageKind:
		if d, ok := v.Message().Interface().(*casev1.Date); ok {
			return formatDate(d)
		}
		return "{" + formatMessage(v.Message()) + "}"
	case protoreflect.StringKind:
		return fmt.Sprintf("%q", v.String())
	}
	return v.String()
}

func enumList[E protoreflect.Enum](list []E) string {
	names := make([]string, len(list))
	for i, e := range list {
		names[i] = short(e)
	}
	return strings.Join(names, ", ")
}

func nonEmpty(items ...string) []string {
	var out []string
	for _, s := range items {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func angle(email string) string {
	if email == "" {
		return ""
	}
	return "<" + email + ">"
}

func orDash(s string) string {
	if s == "" || s == "unspecified" {
		return "-"
	}
	return s
}

func suffix(s, sep string) string {
	if s == "" {
		return ""
	}
	return s + sep
}

func score(n uint32) string {
	if n == 0 {
		return "not assessed"
	}
	return fmt.Sprintf("%d of 5", n)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func runningOrEnded(running bool) string {
	if running {
		return "running"
	}
	return "ended"
}
