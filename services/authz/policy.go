// Package authz is Koers' authorization policy: the one place that says which
// role may call which RPC, and on which cases, reports and feeds. It denies
// by default: a method not in the table, or a role the table does not name
// for it, is refused.
//
// The policy works in two steps. The interceptors (UnaryInterceptor,
// StreamInterceptor) authenticate every call except health checks, look the
// method up in the table and refuse a principal none of whose roles reaches
// it, with PermissionDenied, before any handler runs. What a role reaches
// for an allowed method — the whole tenant, the coach's own cases, the
// agency's assigned cases, the employer's own organisation — needs facts
// only the handler has (the case it loaded, the coach a query names), so
// handlers ask this package again with those facts: Case for a case,
// Dashboard and Cases for a coach's read models, Report for an
// organisational report. Those answers, too, come from the table.
//
// Tenancy is part of every answer: a principal acts in its own tenant only,
// and a case of another tenant does not exist for it (NotFound, so that
// case IDs of other tenants cannot be probed).
package authz

import (
	"maps"
	"slices"
	"strings"

	"github.com/koers-io/koers/services/authn"
)

// Reach is how far a role reaches with a method.
type Reach uint8

// The reaches, from none to the whole tenant.
const (
	// Denied: the role may not call the method.
	Denied Reach = iota
	// Tenant: anything in the principal's tenant.
	Tenant
	// OwnCases: a coach's own cases (the case's coach is the principal's
	// coach ID) and the cases referred to them (a referral to a colleague
	// names the principal's coach ID). For OpenCase: a case opened with
	// the principal as its coach.
	OwnCases
	// AgencyCases: the cases assigned to the principal's agency while the
	// client's consent for that agency holds and covers re-integration.
	AgencyCases
	// OwnCaseload: a coach's own dashboard and case list.
	OwnCaseload
	// OwnOrganisation: aggregate reports about the principal's own
	// organisation (employer), small cells suppressed.
	OwnOrganisation
	// Aggregate: aggregate reports about any organisation of the tenant,
	// small cells suppressed; never personal data.
	Aggregate
	// OwnFeed: the agency's own feed.
	OwnFeed
)

// String names the reach as the docs do.
func (r Reach) String() string {
	switch r {
	case Tenant:
		return "tenant"
	case OwnCases:
		return "own cases"
	case AgencyCases:
		return "assigned cases"
	case OwnCaseload:
		return "own caseload"
	case OwnOrganisation:
		return "own organisation"
	case Aggregate:
		return "aggregate"
	case OwnFeed:
		return "own feed"
	default:
		return "denied"
	}
}

// Rule says how far each role reaches with one method; a role it does not
// name is Denied.
type Rule map[authn.Role]Reach

// The services' full names and the methods the table names without a
// generated constant at hand.
const (
	caseService  = "/koers.case.v1.CaseService/"
	queryService = "/koers.query.v1.QueryService/"
	// FeedSubscribe is FeedService.Subscribe.
	FeedSubscribe = "/koers.feed.v1.FeedService/Subscribe"
	// ListAuditRecords is AuditService.ListAuditRecords.
	ListAuditRecords = "/koers.audit.v1.AuditService/ListAuditRecords"
	// ReflectionV1 and ReflectionV1Alpha are gRPC server reflection, which
	// tools such as grpcurl use to learn the API.
	ReflectionV1      = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
	ReflectionV1Alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
)

// HealthPrefix starts the methods of the gRPC health service, the only
// ones that need no authentication: load balancers and orchestrators call
// them without credentials, and they disclose nothing.
const HealthPrefix = "/grpc.health.v1.Health/"

var (
	// command is the rule of most case commands: the centre's systems and
	// admins anywhere in the tenant, coaches on their own cases.
	command = Rule{authn.RoleIntegration: Tenant, authn.RoleAdmin: Tenant, authn.RoleCoach: OwnCases}
	// staffing is the rule of commands that decide who works on a case or
	// that no single coach should take alone.
	staffing = Rule{authn.RoleIntegration: Tenant, authn.RoleAdmin: Tenant}
	// everyone may use server reflection once authenticated: it shows the
	// API's shape, which is public in the proto files anyway.
	everyone = Rule{
		authn.RoleIntegration: Tenant, authn.RoleCoach: Tenant, authn.RoleAdmin: Tenant,
		authn.RoleEmployer: Tenant, authn.RoleAnalyst: Tenant, authn.RoleAgency: Tenant,
	}
)

// table is the policy. Keep docs/SECURITY.md's table in step: a test
// compares them.
var table = map[string]Rule{
	caseService + "OpenCase":                        command,
	caseService + "CompleteIntake":                  command,
	caseService + "ReclassifyQuestion":              command,
	caseService + "AssignCoach":                     staffing,
	caseService + "ReferCase":                       command,
	caseService + "GrantReportingConsent":           command,
	caseService + "RevokeReportingConsent":          command,
	caseService + "RecordSession":                   command,
	caseService + "AgreeDevelopmentPlan":            command,
	caseService + "ReviseDevelopmentPlan":           command,
	caseService + "StartOutplacement":               command,
	caseService + "EnterOutplacementPhase":          command,
	caseService + "RecordPlacement":                 command,
	caseService + "EndOutplacementWithoutPlacement": command,
	caseService + "StartReintegration":              command,
	caseService + "AssignAgency":                    staffing,
	caseService + "UnassignAgency":                  staffing,
	caseService + "RecordCheckpoint": {
		authn.RoleIntegration: Tenant, authn.RoleAdmin: Tenant, authn.RoleCoach: OwnCases,
		authn.RoleAgency: AgencyCases,
	},
	caseService + "StartSecondTrack": command,
	caseService + "CloseCase":        command,
	caseService + "ReopenCase":       command,
	caseService + "EraseClientData":  staffing,
	caseService + "GetCase":          {authn.RoleAdmin: Tenant, authn.RoleCoach: OwnCases},

	queryService + "GetCoachDashboard": {authn.RoleAdmin: Tenant, authn.RoleCoach: OwnCaseload},
	queryService + "ListCases":         {authn.RoleAdmin: Tenant, authn.RoleCoach: OwnCaseload},
	queryService + "GetOrganisationReport": {
		authn.RoleAdmin: Aggregate, authn.RoleAnalyst: Aggregate, authn.RoleEmployer: OwnOrganisation,
	},

	FeedSubscribe:    {authn.RoleAgency: OwnFeed},
	ListAuditRecords: {authn.RoleAdmin: Tenant},

	ReflectionV1:      everyone,
	ReflectionV1Alpha: everyone,
}

// Table returns a copy of the policy: per full method name, how far each
// role reaches.
func Table() map[string]Rule {
	out := make(map[string]Rule, len(table))
	for m, r := range table {
		out[m] = maps.Clone(r)
	}
	return out
}

// Methods returns the methods of the table, sorted.
func Methods() []string {
	return slices.Sorted(maps.Keys(table))
}

// reaches returns the reaches the principal's roles have with method, one
// per role that is not Denied.
func reaches(p authn.Principal, method string) []Reach {
	rule := table[method]
	var out []Reach
	for _, role := range p.Roles {
		if r := rule[role]; r != Denied {
			out = append(out, r)
		}
	}
	return out
}

// Markdown renders the policy as the Markdown table SECURITY.md shows: a
// row per method (reflection folded into one), a column per role, each
// cell the role's reach or "—" when denied.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| method |")
	for _, role := range authn.Roles {
		b.WriteString(" " + string(role) + " |")
	}
	b.WriteString("\n|---|")
	for range authn.Roles {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, m := range Methods() {
		if m == ReflectionV1Alpha {
			continue
		}
		name := strings.TrimPrefix(m, "/")
		if m == ReflectionV1 {
			name = "server reflection (v1, v1alpha)"
		}
		b.WriteString("| " + name + " |")
		for _, role := range authn.Roles {
			cell := "—"
			if r := table[m][role]; r != Denied {
				cell = r.String()
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
