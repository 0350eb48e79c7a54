package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
)

// auditCmd lists the audit trail of the caller's tenant through
// AuditService.ListAuditRecords: who read or exported what, and when.
type auditCmd struct {
	endpoint
	Tenant    string                        `help:"Tenant whose trail to list, when minting a local admin token: lower-case letters, digits and hyphens."`
	Actor     string                        `help:"Who asks, when minting a local admin token: your administrator ID (recorded in the trail as the query's subject)."`
	Timeout   time.Duration                 `help:"How long to wait for Koers' answers, every page of --all together." default:"30s"`
	CaseID    string                        `name:"case-id" help:"Only records about this case (UUID)."`
	Subject   string                        `help:"Only records of this caller: a token's subject (sub), as the trail prints it."`
	Action    enumFlag[auditv1.AuditAction] `placeholder:"NAME" help:"Only records of this action: read-case, read-case-list, export-report, feed-subscribe, feed-deliver or list-audit."`
	From      instantFlag                   `placeholder:"TIME" help:"Only records from this instant on: RFC 3339 (2026-02-10T09:00:00+01:00) or a day (YYYY-MM-DD, from its start in the local time zone)."`
	Until     instantFlag                   `placeholder:"TIME" help:"Only records before this instant: RFC 3339, or a day (YYYY-MM-DD), which includes that whole day."`
	PageSize  uint32                        `name:"page-size" placeholder:"N" help:"Records per page; 0 lets Koers choose (100), more than 1000 means 1000."`
	PageToken string                        `name:"page-token" help:"Go on from an earlier page: the next page token it printed, with the same filters."`
	All       bool                          `help:"Follow the page tokens to the first record of the trail, printing every page (with --json: all records in one answer)."`
	JSON      bool                          `name:"json" help:"Print the answer as JSON (protobuf's JSON mapping of ListAuditRecordsResponse) instead of text."`
}

// Run lists one page, or with --all every page from --page-token on.
func (c *auditCmd) Run(ctx context.Context, out io.Writer) error {
	conn, ctx, done, err := c.connect(ctx, c.Tenant, c.Actor, c.Timeout)
	if err != nil {
		return err
	}
	defer done()
	client := auditv1.NewAuditServiceClient(conn)
	req := c.request()
	if !c.All {
		resp, err := client.ListAuditRecords(ctx, req)
		if err != nil {
			return describe(err)
		}
		if c.JSON {
			return printJSON(out, resp)
		}
		return printAuditPage(out, resp)
	}
	var entries []*auditv1.AuditEntry // the whole answer, for --json
	for {
		resp, err := client.ListAuditRecords(ctx, req)
		if err != nil {
			return describe(err)
		}
		if c.JSON {
			entries = append(entries, resp.GetEntries()...)
		} else if err := printAuditEntries(out, resp.GetEntries()); err != nil {
			return err
		}
		next := resp.GetNextPageToken()
		if next == "" {
			break
		}
		if next == req.GetPageToken() {
			return fmt.Errorf("Koers answered page token %q with the same token; stopping rather than asking again forever", next)
		}
		req.PageToken = next
	}
	if c.JSON {
		return printJSON(out, &auditv1.ListAuditRecordsResponse{Entries: entries})
	}
	return nil
}

// request is the first page's request the flags describe.
func (c *auditCmd) request() *auditv1.ListAuditRecordsRequest {
	return &auditv1.ListAuditRecordsRequest{
		CaseId:        c.CaseID,
		Subject:       c.Subject,
		Action:        c.Action.Value,
		OccurredFrom:  c.From.from(),
		OccurredUntil: c.Until.until(),
		PageSize:      c.PageSize,
		PageToken:     c.PageToken,
	}
}

// printAuditPage prints a page's records and, when there is more, how to
// ask for it.
func printAuditPage(out io.Writer, resp *auditv1.ListAuditRecordsResponse) error {
	if len(resp.GetEntries()) == 0 && resp.GetNextPageToken() == "" {
		_, err := fmt.Fprintln(out, "no audit records match")
		return err
	}
	if err := printAuditEntries(out, resp.GetEntries()); err != nil {
		return err
	}
	if next := resp.GetNextPageToken(); next != "" {
		_, err := fmt.Fprintf(out, "next page: --page-token %s\n", next)
		return err
	}
	return nil
}

func printAuditEntries(out io.Writer, entries []*auditv1.AuditEntry) error {
	for _, e := range entries {
		if _, err := fmt.Fprintln(out, auditLine(e)); err != nil {
			return err
		}
	}
	return nil
}

// auditLine is one record for a person: when, who (with their roles),
// what, through which method, about which case, and which report or feed
// event where the action has one.
func auditLine(e *auditv1.AuditEntry) string {
	r := e.GetRecord()
	p := r.GetPrincipal()
	parts := []string{
		formatInstant(r.GetOccurredAt()),
		fmt.Sprintf("%s (%s)", p.GetSubject(), strings.Join(p.GetRoles(), ", ")),
		fmt.Sprintf("%-14s", short(r.GetAction())),
		orDash(r.GetMethod()),
	}
	if r.GetCaseId() != "" {
		parts = append(parts, "case "+r.GetCaseId())
	}
	switch r.GetAction() {
	case auditv1.AuditAction_AUDIT_ACTION_EXPORT_REPORT:
		parts = append(parts, reportScope(r))
	case auditv1.AuditAction_AUDIT_ACTION_FEED_DELIVER:
		parts = append(parts, fmt.Sprintf("event %s at position %d", r.GetEventId(), r.GetPosition()))
	case auditv1.AuditAction_AUDIT_ACTION_FEED_SUBSCRIBE:
		// Position 0 means "from the start" by the API, but is also what
		// a record without the position holds: say nothing then.
		if r.GetPosition() != 0 {
			parts = append(parts, fmt.Sprintf("after position %d", r.GetPosition()))
		}
	}
	if r.GetPersonalDataDisclosed() {
		parts = append(parts, "personal data disclosed")
	}
	return strings.Join(parts, "  ")
}

// reportScope says which report was exported: whose, which period, as of
// when.
func reportScope(r *auditv1.AuditRecord) string {
	scope := "report on the whole tenant"
	if r.GetOrganisationId() != "" {
		scope = "report on " + r.GetOrganisationId()
		if r.GetDepartment() != "" {
			scope += " / " + r.GetDepartment()
		}
	}
	if r.GetPeriodFrom() != nil || r.GetPeriodTo() != nil {
		scope += fmt.Sprintf(", period %s to %s", formatDate(r.GetPeriodFrom()), formatDate(r.GetPeriodTo()))
	}
	if r.GetReportAsOf() != nil {
		scope += ", as of " + formatInstant(r.GetReportAsOf())
	}
	return scope
}

// formatInstant prints an instant in the local time zone to the second;
// "-" when unset.
func formatInstant(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(time.DateTime)
}

// instantFlag is an instant given as RFC 3339 or as a calendar day.
type instantFlag struct {
	// Time is the instant; for a day, its start in the local time zone.
	// Zero when the flag was not given.
	Time time.Time
	// Day is set when the flag gave a day rather than an instant.
	Day bool
}

// Decode implements kong.MapperValue.
func (f *instantFlag) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("time", &s); err != nil {
		return err
	}
	v, err := parseInstant(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

func parseInstant(s string) (instantFlag, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return instantFlag{Time: t}, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return instantFlag{Time: t, Day: true}, nil
	}
	return instantFlag{}, fmt.Errorf("%q is neither an instant in RFC 3339 (2026-02-10T09:00:00+01:00) nor a day as YYYY-MM-DD", s)
}

// from is the instant a range starting at f starts; nil when not given.
func (f instantFlag) from() *timestamppb.Timestamp {
	if f.Time.IsZero() {
		return nil
	}
	return timestamppb.New(f.Time)
}

// until is the instant a range ending with f ends before: a day ends at
// the start of the next, so that the day itself is in the range.
func (f instantFlag) until() *timestamppb.Timestamp {
	if f.Time.IsZero() {
		return nil
	}
	if f.Day {
		return timestamppb.New(f.Time.AddDate(0, 0, 1))
	}
	return timestamppb.New(f.Time)
}
