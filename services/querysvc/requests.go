package querysvc

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/internal/badrequest"
)

// violations collects what is wrong with a request.
type violations struct{ badrequest.List }

func (v *violations) add(field, format string, args ...any) { v.Add(field, format, args...) }

func (v violations) err() error { return v.Err() }

func (v *violations) subjectID(field, id string) {
	if id != "" && !authn.ValidActor(id) {
		v.add(field, "must be 1 to %d printable characters without spaces", casework.MaxSubjectIDLength)
	}
}

func (v *violations) organisation(field, id string) {
	if id == "" {
		return
	}
	ok := len(id) <= casework.MaxTokenIDLength
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		v.add(field, "must be 1 to %d lower-case letters, digits and hyphens", casework.MaxTokenIDLength)
	}
}

func (v *violations) department(field, dept, organisation string) {
	switch {
	case dept == "":
	case organisation == "":
		v.add(field, "needs organisation_id")
	case !utf8.ValidString(dept) || utf8.RuneCountInString(dept) > casework.MaxDepartmentLength:
		v.add(field, "must be valid UTF-8 of at most %d characters", casework.MaxDepartmentLength)
	case strings.ContainsFunc(dept, unicode.IsControl):
		v.add(field, "may not hold control characters")
	}
}

func (v *violations) days(field string, n uint32) {
	if n > dashboard.MaxDays {
		v.add(field, "at most %d", dashboard.MaxDays)
	}
}

// date returns the day a request's Date holds; unset gives the zero Date.
func (v *violations) date(field string, d *casev1.Date) casework.Date {
	day := casework.DateFromProto(d)
	if d != nil && !day.IsValid() {
		v.add(field, "not a real day in the years 1900 to 2199")
		return casework.Date{}
	}
	return day
}

func dashboardQuery(c authn.Principal, req *queryv1.GetCoachDashboardRequest, now time.Time) (dashboard.Query, error) {
	var v violations
	v.subjectID("coach_id", req.GetCoachId())
	v.days("idle_days", req.GetIdleDays())
	v.days("recent_days", req.GetRecentDays())
	return dashboard.Query{
		Tenant: c.Tenant, Coach: req.GetCoachId(), Now: now,
		IdleDays: int(req.GetIdleDays()), RecentDays: int(req.GetRecentDays()),
	}, v.err()
}

func listFilter(c authn.Principal, req *queryv1.ListCasesRequest, now time.Time) (dashboard.Filter, error) {
	var v violations
	v.subjectID("coach_id", req.GetCoachId())
	for i, st := range req.GetStages() {
		if _, ok := casev1.Stage_name[int32(st)]; !ok || st == casev1.Stage_STAGE_UNSPECIFIED {
			v.add(fmt.Sprintf("stages[%d]", i), "unknown stage %d", st)
		}
	}
	for i, t := range req.GetQuestionTypes() {
		if _, ok := casev1.QuestionType_name[int32(t)]; !ok {
			v.add(fmt.Sprintf("question_types[%d]", i), "unknown question type %d", t)
		}
	}
	v.organisation("organisation_id", req.GetOrganisationId())
	v.department("department", req.GetDepartment(), req.GetOrganisationId())
	v.days("idle_days", req.GetIdleDays())
	if len(req.GetPageToken()) > 1024 {
		v.add("page_token", "longer than any token Koers makes")
	}
	return dashboard.Filter{
		Tenant: c.Tenant, Coach: req.GetCoachId(),
		Stages: req.GetStages(), QuestionTypes: req.GetQuestionTypes(),
		Organisation: req.GetOrganisationId(), Department: req.GetDepartment(),
		OverdueOnly: req.GetOverdueOnly(), IdleDays: int(req.GetIdleDays()), Now: now,
	}, v.err()
}

func reportQuery(c authn.Principal, req *queryv1.GetOrganisationReportRequest, now time.Time, k int) (report.Query, error) {
	var v violations
	v.organisation("organisation_id", req.GetOrganisationId())
	v.department("department", req.GetDepartment(), req.GetOrganisationId())
	from := v.date("period_from", req.GetPeriodFrom())
	to := v.date("period_to", req.GetPeriodTo())
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		v.add("period_to", "before period_from")
	}
	var asOf time.Time
	if ts := req.GetAsOf(); ts != nil {
		switch err := ts.CheckValid(); {
		case err != nil:
			v.add("as_of", "not a valid timestamp")
		case ts.AsTime().After(now):
			v.add("as_of", "in the future: a report counts what Koers knew, not what it will know")
		default:
			asOf = ts.AsTime()
		}
	}
	switch req.GetView() {
	case queryv1.ReportView_REPORT_VIEW_UNSPECIFIED, queryv1.ReportView_REPORT_VIEW_ANALYST:
	default:
		v.add("view", "unknown view %d", req.GetView())
	}
	return report.Query{
		Tenant: c.Tenant, Organisation: req.GetOrganisationId(), Department: req.GetDepartment(),
		From: from, To: to, AsOf: asOf, Now: now, K: k,
	}, v.err()
}
