package authz

import (
	"context"
	"errors"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	"github.com/koers-io/koers/services/authn"
)

// Authenticator establishes who makes a call; *authn.Authenticator is the
// one Koers runs. Its errors are gRPC statuses (Unauthenticated).
type Authenticator interface {
	Authenticate(ctx context.Context) (authn.Principal, error)
}

// grant is what the interceptor allowed a call: who, which method, and how
// far each of the principal's roles reaches with it.
type grant struct {
	principal authn.Principal
	method    string
	reaches   []Reach
}

type grantKey struct{}

// UnaryInterceptor authenticates and authorizes every unary call except
// health checks, and hands the handler the principal (authn.PrincipalFromContext)
// and its grant.
func UnaryInterceptor(a Authenticator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := authorize(ctx, a, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor does for streaming calls what UnaryInterceptor does for
// unary ones.
func StreamInterceptor(a Authenticator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := authorize(ss.Context(), a, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

// stream is a server stream with the grant in its context.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

func authorize(ctx context.Context, a Authenticator, method string) (context.Context, error) {
	if strings.HasPrefix(method, HealthPrefix) {
		return ctx, nil
	}
	p, err := a.Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return Grant(ctx, p, method)
}

// Grant checks the policy for p calling method, as the interceptors do once
// they have authenticated a call, and returns ctx carrying p
// (authn.PrincipalFromContext) and what the policy granted. It is for
// in-process callers that established the principal otherwise; a refusal
// is a PermissionDenied status.
func Grant(ctx context.Context, p authn.Principal, method string) (context.Context, error) {
	if _, known := table[method]; !known {
		return nil, status.Errorf(codes.PermissionDenied, "%s is not open to any role", method)
	}
	rs := reaches(p, method)
	if len(rs) == 0 {
		return nil, status.Errorf(codes.PermissionDenied, "role %s may not call %s", roleList(p.Roles), method)
	}
	ctx = authn.WithPrincipal(ctx, p)
	return context.WithValue(ctx, grantKey{}, grant{principal: p, method: method, reaches: rs}), nil
}

func roleList(roles []authn.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func grantOf(ctx context.Context) (grant, error) {
	g, ok := ctx.Value(grantKey{}).(grant)
	if !ok {
		// A handler reached without the interceptor: refuse rather than
		// guess.
		return grant{}, status.Error(codes.PermissionDenied, "the call was not authorized")
	}
	return g, nil
}

// ErrNoSuchCase is Case's answer for a case of another tenant: for the
// caller it does not exist, and the handler answers as it does for a case
// that was never opened.
var ErrNoSuchCase = errors.New("authz: no such case in the caller's tenant")

// CaseFacts is what the policy needs to know about a case to decide
// whether the caller may act on it or read it.
type CaseFacts struct {
	// Tenant owns the case.
	Tenant string
	// CaseID names the case in refusals.
	CaseID string
	// CoachID is the case's coach; for OpenCase, the coach the request
	// names.
	CoachID string
	// ReferredTo lists the colleagues (coach IDs) the case was referred to.
	ReferredTo []string
	// AgencyID is the assigned re-integration agency; empty when none.
	AgencyID string
	// AgencyScopes are the reporting scopes the client granted AgencyID;
	// empty when consent does not hold.
	AgencyScopes []casev1.ReportingScope
}

// Case decides whether the call may act on (or read) the case f describes.
// It returns nil, ErrNoSuchCase for a case of another tenant, or a
// PermissionDenied status.
func Case(ctx context.Context, f CaseFacts) error {
	g, err := grantOf(ctx)
	if err != nil {
		return err
	}
	p := g.principal
	if f.Tenant != p.Tenant {
		return ErrNoSuchCase
	}
	for _, r := range g.reaches {
		switch r {
		case Tenant:
			return nil
		case OwnCases:
			if p.CoachID != "" && (f.CoachID == p.CoachID || slices.Contains(f.ReferredTo, p.CoachID)) {
				return nil
			}
		case AgencyCases:
			if p.AgencyID != "" && f.AgencyID == p.AgencyID &&
				slices.Contains(f.AgencyScopes, casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION) {
				return nil
			}
		}
	}
	return status.Errorf(codes.PermissionDenied, "case %s is not among the cases role %s reaches with %s",
		f.CaseID, roleList(p.Roles), g.method)
}

// Caseload decides whose caseload (dashboard, case list) the call may
// read, given the coach ID the request names (empty when none). It returns
// the coach ID to read: a coach reads their own, whatever the request
// left empty; a tenant-wide reader reads what the request names, empty
// meaning all coaches where the query allows that. Naming another coach
// than oneself without tenant reach is PermissionDenied.
func Caseload(ctx context.Context, coachID string) (string, error) {
	g, err := grantOf(ctx)
	if err != nil {
		return "", err
	}
	if slices.Contains(g.reaches, Tenant) {
		return coachID, nil
	}
	p := g.principal
	if slices.Contains(g.reaches, OwnCaseload) && p.CoachID != "" && (coachID == "" || coachID == p.CoachID) {
		return p.CoachID, nil
	}
	return "", status.Errorf(codes.PermissionDenied, "role %s may read only its own caseload (coach %q), not coach %q",
		roleList(p.Roles), p.CoachID, coachID)
}

// Report decides which organisation's report the call may read, given the
// organisation the request names (empty for the whole tenant). It returns
// the organisation to report on: an employer always gets its own; an
// analyst or admin what the request names. Reports are always aggregate
// with small cells suppressed, whoever reads them.
func Report(ctx context.Context, organisation string) (string, error) {
	g, err := grantOf(ctx)
	if err != nil {
		return "", err
	}
	if slices.Contains(g.reaches, Aggregate) {
		return organisation, nil
	}
	p := g.principal
	if slices.Contains(g.reaches, OwnOrganisation) && p.OrganisationID != "" &&
		(organisation == "" || organisation == p.OrganisationID) {
		return p.OrganisationID, nil
	}
	return "", status.Errorf(codes.PermissionDenied, "role %s may read reports about organisation %q only, not %q",
		roleList(p.Roles), p.OrganisationID, organisation)
}

// Feed returns the tenant and agency whose feed the call may read: the
// principal's own.
func Feed(ctx context.Context) (tenant, agency string, err error) {
	g, err := grantOf(ctx)
	if err != nil {
		return "", "", err
	}
	p := g.principal
	if !slices.Contains(g.reaches, OwnFeed) || p.AgencyID == "" {
		return "", "", status.Errorf(codes.PermissionDenied, "role %s has no agency feed", roleList(p.Roles))
	}
	return p.Tenant, p.AgencyID, nil
}
