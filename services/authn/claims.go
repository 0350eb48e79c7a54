package authn

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The custom claims a Koers token carries beside the registered ones (sub,
// iss, aud, exp, nbf, iat).
const (
	// ClaimTenant is the tenant (a string, in the form ValidTenant accepts).
	ClaimTenant = "tenant"
	// ClaimRoles lists the principal's roles (an array of Role strings, at
	// least one).
	ClaimRoles = "roles"
	// ClaimCoachID names the coach; required with RoleCoach, refused
	// without it.
	ClaimCoachID = "coach_id"
	// ClaimOrganisationID names the employer; required with RoleEmployer,
	// refused without it.
	ClaimOrganisationID = "organisation_id"
	// ClaimAgencyID names the re-integration agency; required with
	// RoleAgency, refused without it.
	ClaimAgencyID = "agency_id"
)

// MaxPartyIDLength is the longest organisation or agency ID: like a tenant,
// it is a NATS subject token.
const MaxPartyIDLength = 63

// Claims are what a token says: who the principal is, which issuer says
// so, for which audience, and from when until when. Mint signs them; an
// Authenticator checks them.
type Claims struct {
	// Principal is who the token speaks for. Its Subject, Tenant, Roles,
	// CoachID, OrganisationID and AgencyID become claims; Via and
	// CorrelationID are not claims and are ignored.
	Principal Principal
	// Issuer is the iss claim: who signed the token.
	Issuer string
	// Audience is the aud claim: the service the token is for.
	Audience string
	// IssuedAt is the iat claim; zero leaves it out.
	IssuedAt time.Time
	// NotBefore is the nbf claim; zero leaves it out.
	NotBefore time.Time
	// Expiry is the exp claim; required. It may lie in the past, to make
	// expired tokens for tests.
	Expiry time.Time
}

// tokenClaims is the JSON form of a Koers token's claims.
type tokenClaims struct {
	jwt.RegisteredClaims
	Tenant         string   `json:"tenant,omitempty"`
	Roles          []string `json:"roles,omitempty"`
	CoachID        string   `json:"coach_id,omitempty"`
	OrganisationID string   `json:"organisation_id,omitempty"`
	AgencyID       string   `json:"agency_id,omitempty"`
}

// UnmarshalJSON reads the claims by their exact names. encoding/json
// would also fill Tenant from "Tenant" or Roles from "ROLES", so that an
// issuer letting users set claims of their own could be made to vouch for
// a tenant or role it never meant to.
func (tc *tokenClaims) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	for name, dst := range map[string]any{
		"iss": &tc.Issuer, "sub": &tc.Subject, "aud": &tc.Audience, "jti": &tc.ID,
		"exp": &tc.ExpiresAt, "nbf": &tc.NotBefore, "iat": &tc.IssuedAt,
		ClaimTenant: &tc.Tenant, ClaimRoles: &tc.Roles, ClaimCoachID: &tc.CoachID,
		ClaimOrganisationID: &tc.OrganisationID, ClaimAgencyID: &tc.AgencyID,
	} {
		if raw, ok := m[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return fmt.Errorf("claim %s: %w", name, err)
			}
		}
	}
	return nil
}

// jsonClaims turns c into the JSON form, checking the principal first so
// that no token says something an Authenticator would refuse.
func (c Claims) jsonClaims() (*tokenClaims, error) {
	if err := validatePrincipal(c.Principal); err != nil {
		return nil, err
	}
	switch {
	case c.Issuer == "":
		return nil, fmt.Errorf("claims: issuer is empty")
	case c.Audience == "":
		return nil, fmt.Errorf("claims: audience is empty")
	case c.Expiry.IsZero():
		return nil, fmt.Errorf("claims: expiry is missing")
	}
	tc := &tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Principal.Subject,
			Issuer:    c.Issuer,
			Audience:  jwt.ClaimStrings{c.Audience},
			ExpiresAt: jwt.NewNumericDate(c.Expiry),
		},
		Tenant:         c.Principal.Tenant,
		CoachID:        c.Principal.CoachID,
		OrganisationID: c.Principal.OrganisationID,
		AgencyID:       c.Principal.AgencyID,
	}
	if !c.IssuedAt.IsZero() {
		tc.IssuedAt = jwt.NewNumericDate(c.IssuedAt)
	}
	if !c.NotBefore.IsZero() {
		tc.NotBefore = jwt.NewNumericDate(c.NotBefore)
	}
	for _, r := range c.Principal.Roles {
		tc.Roles = append(tc.Roles, string(r))
	}
	return tc, nil
}

// principal is the principal a verified token's claims describe.
func (tc *tokenClaims) principal() (Principal, error) {
	p := Principal{
		Subject:        tc.Subject,
		Tenant:         tc.Tenant,
		CoachID:        tc.CoachID,
		OrganisationID: tc.OrganisationID,
		AgencyID:       tc.AgencyID,
		Via:            ViaJWT,
	}
	for _, r := range tc.Roles {
		p.Roles = append(p.Roles, Role(r))
	}
	if err := validatePrincipal(p); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// validatePrincipal checks what every principal must satisfy, however it
// authenticated: a well-formed subject and tenant, at least one known role,
// each role's party ID present and well-formed, and no party ID for a role
// the principal does not hold. The messages name claims, since tokens are
// where principals most often come from.
func validatePrincipal(p Principal) error {
	if p.Subject == "" {
		return fmt.Errorf("claim sub is missing")
	}
	if !ValidActor(p.Subject) {
		return fmt.Errorf("claim sub must be 1 to %d printable characters without spaces", MaxActorLength)
	}
	if p.Tenant == "" {
		return fmt.Errorf("claim %s is missing", ClaimTenant)
	}
	if !ValidTenant(p.Tenant) {
		return fmt.Errorf("claim %s must be 1 to %d lower-case letters, digits and hyphens", ClaimTenant, MaxTenantLength)
	}
	if err := validateRoles(p.Roles); err != nil {
		return err
	}
	return validatePartyIDs(p)
}

func validateRoles(roles []Role) error {
	if len(roles) == 0 {
		return fmt.Errorf("claim %s must list at least one role", ClaimRoles)
	}
	for i, r := range roles {
		if !r.Valid() {
			return fmt.Errorf("claim %s holds an unknown role; known roles are %s", ClaimRoles, roleList())
		}
		if slices.Contains(roles[:i], r) {
			return fmt.Errorf("claim %s lists role %s twice", ClaimRoles, r)
		}
	}
	return nil
}

// roleList is Roles as "integration, coach, …".
func roleList() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// validatePartyIDs checks the ID that goes with each role.
func validatePartyIDs(p Principal) error {
	for _, c := range []struct {
		role  Role
		claim string
		id    string
		valid func(string) bool
		form  string
	}{
		{RoleCoach, ClaimCoachID, p.CoachID, ValidActor, fmt.Sprintf("1 to %d printable characters without spaces", MaxActorLength)},
		{RoleEmployer, ClaimOrganisationID, p.OrganisationID, ValidPartyID, fmt.Sprintf("1 to %d lower-case letters, digits and hyphens", MaxPartyIDLength)},
		{RoleAgency, ClaimAgencyID, p.AgencyID, ValidPartyID, fmt.Sprintf("1 to %d lower-case letters, digits and hyphens", MaxPartyIDLength)},
	} {
		has := p.Has(c.role)
		switch {
		case has && c.id == "":
			return fmt.Errorf("claim %s is missing; role %s requires it", c.claim, c.role)
		case !has && c.id != "":
			return fmt.Errorf("claim %s is given without role %s", c.claim, c.role)
		case has && !c.valid(c.id):
			return fmt.Errorf("claim %s must be %s", c.claim, c.form)
		}
	}
	return nil
}

// ValidPartyID reports whether id is a well-formed organisation or agency
// ID: 1 to MaxPartyIDLength lower-case letters, digits and hyphens, like a
// tenant, since it too becomes a NATS subject token.
func ValidPartyID(id string) bool {
	if id == "" || len(id) > MaxPartyIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
