package audit

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	"github.com/koers-io/koers/services/authn"
)

// MaxMethodLength is the longest gRPC method name a record holds.
const MaxMethodLength = 256

// Entry is one act to record: who (Principal), what (Action and the fields
// that say which data), and whether personal data left. Record adds the
// instant. Fields that do not apply to the action stay empty; none may hold
// a client's personal data.
type Entry struct {
	// ID is the record's event ID. Zero means a fresh random ID; set it,
	// and reuse it, to retry a Record whose outcome is unknown (see the
	// package doc).
	ID uuid.UUID
	// Principal is who acted, as authentication established it. Its
	// tenant names the trail; its subject must be valid (authn.ValidActor),
	// and it needs at least one role. Its CorrelationID is recorded.
	Principal authn.Principal
	// Action is what was done; required.
	Action auditv1.AuditAction
	// Method is the full gRPC method name ("/koers.case.v1.CaseService/GetCase");
	// empty when the act did not come through gRPC.
	Method string
	// CaseID is the case whose data was read or delivered (a UUID; any
	// case is read as lower case). Required for READ_CASE and
	// FEED_DELIVER.
	CaseID string
	// OrganisationID and Department say which employer and department an
	// exported report covers; a department needs its organisation.
	OrganisationID, Department string
	// PeriodFrom and PeriodTo are an exported report's period; zero means
	// unbounded (unset).
	PeriodFrom, PeriodTo casework.Date
	// ReportAsOf is an exported report's instant of knowledge, when the
	// request set one.
	ReportAsOf time.Time
	// Position is, for FEED_DELIVER (required), the delivered event's
	// global position; for FEED_SUBSCRIBE, the position the subscription
	// resumed after.
	Position eventstore.Position
	// EventID is, for FEED_DELIVER (required), the delivered event's ID.
	EventID string
	// PersonalData says whether the answer carried a client's personal
	// data.
	PersonalData bool
}

// proto validates e and returns its record, occurred at now.
func (e Entry) proto(now time.Time) (*auditv1.AuditRecord, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	principal := e.principal(bad)
	switch _, known := auditv1.AuditAction_name[int32(e.Action)]; {
	case e.Action == auditv1.AuditAction_AUDIT_ACTION_UNSPECIFIED:
		bad("action is unspecified")
	case !known:
		bad("action %d is unknown", e.Action)
	}
	if e.Method != "" && !validMethod(e.Method) {
		bad("method %q is not a gRPC method name of at most %d bytes", e.Method, MaxMethodLength)
	}
	caseID := ""
	switch id, ok := CanonicalCaseID(e.CaseID); {
	case e.CaseID == "" && needsCase(e.Action):
		bad("case ID is required for %s", e.Action)
	case e.CaseID != "" && !ok:
		bad("case ID %q is not a UUID", e.CaseID)
	default:
		caseID = id
	}
	if !validToken(e.OrganisationID) {
		bad("organisation ID %q is not 1 to %d lower-case letters, digits and hyphens", e.OrganisationID, casework.MaxTokenIDLength)
	}
	switch d := e.Department; {
	case d == "":
	case e.OrganisationID == "":
		bad("a department needs its organisation ID")
	case !utf8.ValidString(d) || utf8.RuneCountInString(d) > casework.MaxDepartmentLength || strings.ContainsFunc(d, unicode.IsControl):
		bad("department is not valid UTF-8 of at most %d characters without control characters", casework.MaxDepartmentLength)
	}
	if d := e.PeriodFrom; !d.IsZero() && !d.IsValid() {
		bad("period start %s is not a real day", d)
	}
	if d := e.PeriodTo; !d.IsZero() && !d.IsValid() {
		bad("period end %s is not a real day", d)
	}
	if !e.PeriodFrom.IsZero() && !e.PeriodTo.IsZero() && e.PeriodFrom.After(e.PeriodTo) {
		bad("period ends (%s) before it starts (%s)", e.PeriodTo, e.PeriodFrom)
	}
	eventID := ""
	if e.EventID != "" {
		if id, err := uuid.Parse(e.EventID); err != nil || id == uuid.Nil || len(e.EventID) != 36 {
			bad("event ID %q is not a UUID", e.EventID)
		} else {
			eventID = id.String()
		}
	}
	if e.Action == auditv1.AuditAction_AUDIT_ACTION_FEED_DELIVER && (e.EventID == "" || e.Position == 0) {
		bad("event ID and position are required for %s", e.Action)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}

	rec := &auditv1.AuditRecord{
		Principal:             principal,
		Action:                e.Action,
		Method:                e.Method,
		CaseId:                caseID,
		OrganisationId:        e.OrganisationID,
		Department:            e.Department,
		Position:              uint64(e.Position),
		EventId:               eventID,
		PersonalDataDisclosed: e.PersonalData,
		CorrelationId:         e.Principal.CorrelationID,
		OccurredAt:            timestamppb.New(now),
	}
	if !e.PeriodFrom.IsZero() {
		rec.PeriodFrom = e.PeriodFrom.Proto()
	}
	if !e.PeriodTo.IsZero() {
		rec.PeriodTo = e.PeriodTo.Proto()
	}
	if !e.ReportAsOf.IsZero() {
		rec.ReportAsOf = timestamppb.New(e.ReportAsOf)
	}
	return rec, nil
}

// principal checks e's principal and returns it as recorded.
func (e Entry) principal(bad func(string, ...any)) *auditv1.AuditPrincipal {
	p := e.Principal
	if !authn.ValidTenant(p.Tenant) {
		bad("tenant %q is not 1 to %d lower-case letters, digits and hyphens", p.Tenant, authn.MaxTenantLength)
	}
	if !authn.ValidActor(p.Subject) {
		bad("subject is not 1 to %d printable characters without spaces", authn.MaxActorLength)
	}
	if len(p.Roles) == 0 {
		bad("principal has no role")
	}
	roles := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		if !r.Valid() {
			bad("role %q is unknown", r)
		}
		roles[i] = string(r)
	}
	method := auditv1.AuthenticationMethod_AUTHENTICATION_METHOD_UNSPECIFIED
	switch p.Via {
	case "":
	case authn.ViaJWT:
		method = auditv1.AuthenticationMethod_AUTHENTICATION_METHOD_JWT
	case authn.ViaMTLS:
		method = auditv1.AuthenticationMethod_AUTHENTICATION_METHOD_MTLS
	default:
		bad("authentication method %q is unknown", p.Via)
	}
	if p.CoachID != "" && !authn.ValidActor(p.CoachID) {
		bad("coach ID is not 1 to %d printable characters without spaces", authn.MaxActorLength)
	}
	if !validToken(p.OrganisationID) || !validToken(p.AgencyID) {
		bad("principal's organisation or agency ID is not 1 to %d lower-case letters, digits and hyphens", casework.MaxTokenIDLength)
	}
	if p.CorrelationID != "" && !authn.ValidCorrelationID(p.CorrelationID) {
		bad("correlation ID is not 1 to %d characters from A-Z, a-z, 0-9 and . _ : -", authn.MaxCorrelationIDLength)
	}
	return &auditv1.AuditPrincipal{
		Subject:        p.Subject,
		TenantId:       p.Tenant,
		Roles:          roles,
		Authentication: method,
		CoachId:        p.CoachID,
		OrganisationId: p.OrganisationID,
		AgencyId:       p.AgencyID,
	}
}

// needsCase reports whether action always concerns one case.
func needsCase(action auditv1.AuditAction) bool {
	return action == auditv1.AuditAction_AUDIT_ACTION_READ_CASE || action == auditv1.AuditAction_AUDIT_ACTION_FEED_DELIVER
}

// CanonicalCaseID reads a case ID: a UUID in its 36-character form, any
// case, not the nil UUID. It returns the canonical lower-case form, the one
// records hold, and false when s is not a case ID.
func CanonicalCaseID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return "", false
	}
	return id.String(), true
}

// validMethod reports whether m looks like a full gRPC method name: a
// slash, then printable ASCII without spaces.
func validMethod(m string) bool {
	if len(m) < 2 || len(m) > MaxMethodLength || m[0] != '/' {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// validToken reports whether id is empty or an organisation or agency ID:
// 1 to casework.MaxTokenIDLength lower-case letters, digits and hyphens.
func validToken(id string) bool {
	if len(id) > casework.MaxTokenIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
