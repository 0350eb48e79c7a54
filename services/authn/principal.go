package authn

import (
	"context"
	"slices"
)

// Role is what a principal may do in its tenant. The policy that says
// which RPC each role may call, on which cases, is services/authz.
type Role string

// The roles. A principal holds one or more.
const (
	// RoleIntegration is a mobility centre's own system: it sends
	// commands for any case of its tenant.
	RoleIntegration Role = "integration"
	// RoleCoach is a coach (loopbaancoach): their own cases and the cases
	// referred to them. Principal.CoachID names the coach.
	RoleCoach Role = "coach"
	// RoleAdmin is a centre administrator: everything in the tenant,
	// including the audit trail.
	RoleAdmin Role = "admin"
	// RoleEmployer is an employer's HR: aggregate reports about its own
	// organisation (Principal.OrganisationID) only.
	RoleEmployer Role = "employer"
	// RoleAnalyst reads aggregate reports, never personal data.
	RoleAnalyst Role = "analyst"
	// RoleAgency is a re-integration agency (re-integratiebureau): the
	// feed of its assigned, consented cases and recording re-integration
	// checkpoints on them. Principal.AgencyID names the agency.
	RoleAgency Role = "agency"
)

// Roles lists every role, in the order the docs show them.
var Roles = []Role{RoleIntegration, RoleCoach, RoleAdmin, RoleEmployer, RoleAnalyst, RoleAgency}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// The ways a principal can have authenticated.
const (
	// ViaJWT: a bearer token whose signature, issuer, audience and expiry
	// were checked.
	ViaJWT = "jwt"
	// ViaMTLS: a client certificate that chains to the configured client
	// CA.
	ViaMTLS = "mtls"
)

// Principal is who makes a call, as authentication established it.
// Services take it from the context with FromContext; they never read
// tokens, certificates or metadata themselves.
type Principal struct {
	// Subject identifies who acts (the token's sub, the certificate's
	// common name); it becomes the actor of the events the call writes.
	// 1 to MaxActorLength printable characters without spaces; never a
	// client's name.
	Subject string
	// Tenant is the mobility centre the principal belongs to: every read
	// and write of the call stays inside it.
	Tenant string
	// Roles are what the principal may do; at least one.
	Roles []Role
	// CoachID names the coach for RoleCoach; empty otherwise.
	CoachID string
	// OrganisationID names the employer for RoleEmployer; empty otherwise.
	OrganisationID string
	// AgencyID names the re-integration agency for RoleAgency; empty
	// otherwise.
	AgencyID string
	// Via says how the principal authenticated: ViaJWT or ViaMTLS.
	Via string
	// CorrelationID ties the call to a larger piece of work; empty when the
	// caller sent none.
	CorrelationID string
}

// Has reports whether p holds role r.
func (p Principal) Has(r Role) bool { return slices.Contains(p.Roles, r) }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal authentication established
// for the call, and false when the call came past no authentication.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
