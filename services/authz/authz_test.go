package authz_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/authz"
)

func as(t *testing.T, role authn.Role, id, method string) (context.Context, error) {
	t.Helper()
	p := authn.Principal{Subject: "someone", Tenant: "acme", Roles: []authn.Role{role}}
	switch role {
	case authn.RoleCoach:
		p.CoachID = id
	case authn.RoleEmployer:
		p.OrganisationID = id
	case authn.RoleAgency:
		p.AgencyID = id
	}
	return authz.Grant(context.Background(), p, method)
}

func granted(t *testing.T, role authn.Role, id, method string) context.Context {
	t.Helper()
	ctx, err := as(t, role, id, method)
	if err != nil {
		t.Fatalf("%s may not call %s: %v", role, method, err)
	}
	return ctx
}

// Spot checks that pin the table's content independently of the table.
func TestThePolicyDeniesWhatNoRoleShouldReach(t *testing.T) {
	for _, tc := range []struct {
		role   authn.Role
		method string
	}{
		{authn.RoleAnalyst, casev1.CaseService_GetCase_FullMethodName},
		{authn.RoleEmployer, casev1.CaseService_GetCase_FullMethodName},
		{authn.RoleAgency, casev1.CaseService_GetCase_FullMethodName},
		{authn.RoleIntegration, casev1.CaseService_GetCase_FullMethodName},
		{authn.RoleCoach, casev1.CaseService_EraseClientData_FullMethodName},
		{authn.RoleCoach, casev1.CaseService_AssignAgency_FullMethodName},
		{authn.RoleAgency, casev1.CaseService_RecordSession_FullMethodName},
		{authn.RoleAnalyst, queryv1.QueryService_ListCases_FullMethodName},
		{authn.RoleEmployer, queryv1.QueryService_GetCoachDashboard_FullMethodName},
		{authn.RoleCoach, authz.ListAuditRecords},
		{authn.RoleAdmin, authz.FeedSubscribe},
		{authn.RoleAdmin, "/koers.case.v1.CaseService/NotAMethod"},
	} {
		if _, err := as(t, tc.role, "x", tc.method); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s calling %s: %v, want PermissionDenied", tc.role, tc.method, err)
		}
	}
}

func TestCaseReachesOwnReferredAndAssignedCasesOnly(t *testing.T) {
	rec := casev1.CaseService_RecordCheckpoint_FullMethodName
	reint := []casev1.ReportingScope{casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION}
	anna := authz.CaseFacts{Tenant: "acme", CaseID: "c1", CoachID: "anna", ReferredTo: []string{"bert"},
		AgencyID: "reintegra", AgencyScopes: reint}
	for _, tc := range []struct {
		name  string
		role  authn.Role
		id    string
		facts authz.CaseFacts
		want  codes.Code
	}{
		{"the case's coach", authn.RoleCoach, "anna", anna, codes.OK},
		{"the colleague it was referred to", authn.RoleCoach, "bert", anna, codes.OK},
		{"another coach", authn.RoleCoach, "carla", anna, codes.PermissionDenied},
		{"a coach on a case without coach", authn.RoleCoach, "anna", authz.CaseFacts{Tenant: "acme"}, codes.PermissionDenied},
		{"the assigned agency", authn.RoleAgency, "reintegra", anna, codes.OK},
		{"another agency", authn.RoleAgency, "other", anna, codes.PermissionDenied},
		{"the assigned agency without re-integration consent", authn.RoleAgency, "reintegra",
			authz.CaseFacts{Tenant: "acme", AgencyID: "reintegra",
				AgencyScopes: []casev1.ReportingScope{casev1.ReportingScope_REPORTING_SCOPE_PROGRESS}}, codes.PermissionDenied},
		{"an admin", authn.RoleAdmin, "", anna, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := authz.Case(granted(t, tc.role, tc.id, rec), tc.facts)
			if status.Code(err) != tc.want {
				t.Errorf("Case = %v, want %v", err, tc.want)
			}
		})
	}
	other := anna
	other.Tenant = "elsewhere"
	if err := authz.Case(granted(t, authn.RoleAdmin, "", rec), other); !errors.Is(err, authz.ErrNoSuchCase) {
		t.Errorf("a case of another tenant: %v, want ErrNoSuchCase", err)
	}
	if err := authz.Case(context.Background(), anna); status.Code(err) != codes.PermissionDenied {
		t.Errorf("without a grant: %v, want PermissionDenied", err)
	}
}

func TestCaseloadAndReportNarrowToTheCallersOwn(t *testing.T) {
	dash := queryv1.QueryService_GetCoachDashboard_FullMethodName
	if got, err := authz.Caseload(granted(t, authn.RoleCoach, "anna", dash), ""); err != nil || got != "anna" {
		t.Errorf("a coach's own caseload = %q, %v; want anna", got, err)
	}
	if _, err := authz.Caseload(granted(t, authn.RoleCoach, "anna", dash), "bert"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a coach asking for another's caseload: %v, want PermissionDenied", err)
	}
	if got, err := authz.Caseload(granted(t, authn.RoleAdmin, "", dash), "bert"); err != nil || got != "bert" {
		t.Errorf("an admin asking for bert's caseload = %q, %v", got, err)
	}
	rep := queryv1.QueryService_GetOrganisationReport_FullMethodName
	if got, err := authz.Report(granted(t, authn.RoleEmployer, "acme-bv", rep), ""); err != nil || got != "acme-bv" {
		t.Errorf("an employer's report = %q, %v; want its own organisation", got, err)
	}
	if _, err := authz.Report(granted(t, authn.RoleEmployer, "acme-bv", rep), "other-bv"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("an employer asking about another organisation: %v, want PermissionDenied", err)
	}
	if got, err := authz.Report(granted(t, authn.RoleAnalyst, "", rep), ""); err != nil || got != "" {
		t.Errorf("an analyst's whole-tenant report = %q, %v", got, err)
	}
	tenant, agency, err := authz.Feed(granted(t, authn.RoleAgency, "reintegra", authz.FeedSubscribe))
	if err != nil || tenant != "acme" || agency != "reintegra" {
		t.Errorf("Feed = %q, %q, %v", tenant, agency, err)
	}
}

// TestSecurityDocShowsThePolicy keeps SECURITY.md's table the policy's.
func TestSecurityDocShowsThePolicy(t *testing.T) {
	doc, err := os.ReadFile("../../SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), authz.Markdown()) {
		t.Errorf("SECURITY.md does not hold the policy table; put this in it:\n%s", authz.Markdown())
	}
}
