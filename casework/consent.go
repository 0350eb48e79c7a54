package casework

import (
	"slices"

	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// The client's consent to reports about the case, per recipient.

// GrantReportingConsent lets a recipient see the listed parts of the case.
// A grant to a recipient that has consent already replaces its scopes.
type GrantReportingConsent struct {
	Recipient Recipient
	Scopes    []casev1.ReportingScope
}

// Validate checks the recipient and that the scopes are known, at least one,
// without repeats.
func (c GrantReportingConsent) Validate() []FieldViolation {
	var v violations
	v.recipient("recipient", c.Recipient)
	enumList(&v, "scopes", c.Scopes, true)
	return v
}

func (v *violations) recipient(field string, r Recipient) {
	v.enum(field+".kind", r.Kind)
	v.tokenID(field+".id", r.ID, true)
}

func (c GrantReportingConsent) decide(s State) ([]proto.Message, error) {
	if had, ok := s.Consent(c.Recipient); ok && sameScopes(had.Scopes, c.Scopes) {
		return nil, refuse(ErrConsentAlreadyGranted, "%s %q", c.Recipient.Kind, c.Recipient.ID)
	}
	return decided(&casev1.ReportingConsentGranted{
		Recipient: c.Recipient.proto(),
		Scopes:    slices.Clone(c.Scopes),
	})
}

func sameScopes(a, b []casev1.ReportingScope) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// RevokeReportingConsent ends a recipient's consent. The client may always
// revoke, so when the recipient is the assigned agency the agency is
// unassigned in the same decision rather than the revocation refused.
type RevokeReportingConsent struct {
	Recipient Recipient
}

// Validate checks the recipient.
func (c RevokeReportingConsent) Validate() []FieldViolation {
	var v violations
	v.recipient("recipient", c.Recipient)
	return v
}

func (c RevokeReportingConsent) decide(s State) ([]proto.Message, error) {
	if _, ok := s.Consent(c.Recipient); !ok {
		return nil, refuse(ErrConsentNotGranted, "%s %q", c.Recipient.Kind, c.Recipient.ID)
	}
	events := []proto.Message{&casev1.ReportingConsentRevoked{Recipient: c.Recipient.proto()}}
	if c.Recipient == agencyRecipient(s.Reintegration.AgencyID) {
		events = append(events, &casev1.ReintegrationAgencyUnassigned{
			AgencyId: c.Recipient.ID,
			Reason:   casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CONSENT_REVOKED,
		})
	}
	return events, nil
}

// agencyRecipient is the recipient an agency's consent is granted to.
func agencyRecipient(agencyID string) Recipient {
	return Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, ID: agencyID}
}

func (r Recipient) proto() *casev1.Recipient {
	return &casev1.Recipient{Kind: r.Kind, Id: r.ID}
}

func recipientFromProto(p *casev1.Recipient) Recipient {
	return Recipient{Kind: p.GetKind(), ID: p.GetId()}
}
