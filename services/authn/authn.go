// Package authn says who calls a Koers gRPC service: it authenticates the
// call and gives the services a Principal (subject, tenant, roles, and the
// coach, organisation or agency the principal speaks for).
//
// # Bearer tokens
//
// A call carries "authorization: Bearer <JWT>" in its gRPC metadata. The
// Authenticator accepts ES256 and RS256 tokens signed by a key of the
// configured JWK Set (a file, or a URL it refreshes), and HS256 only when
// a development secret is configured, and then nothing else. Every token
// needs the configured issuer (iss) and audience (aud), an expiry (exp),
// and is checked against nbf and iat, with a small leeway for clock skew.
// Beside sub, a Koers token carries the claims "tenant", "roles" (a list of
// Role, none twice), and "coach_id", "organisation_id" or "agency_id" for
// the coach, employer and agency roles (see Claims): each required with its
// role and refused without it. Claim names are matched exactly (case
// matters), and a token with a "crit" header is refused. New fails when the
// key set cannot be loaded at start. Every failure is Unauthenticated; the
// message says what was wrong without echoing the token.
//
// # Mutual TLS
//
// When the gRPC listener verifies client certificates (ServerTLS with a
// client CA), a call that carries no bearer token but presented a verified
// certificate authenticates as an integration (a centre's own system) of
// the tenant in the certificate's first Organization (O), with its common
// name (CN) as subject (Via "mtls", roles [integration]). Whoever controls
// the client CA can therefore vouch for any tenant: use a CA for nothing
// else. A bearer token, when present, always decides.
//
// # The local development issuer
//
// Koers on its embedded defaults trusts a LocalIssuer: an ES256 key it
// creates in <data>/auth, with which `koers token` mints tokens for every
// role. Production configures the identity provider's JWK Set instead.
//
// Services never read tokens, certificates or metadata themselves: they
// take the Principal with PrincipalFromContext, which the interceptors of
// services/authz put there after authentication and the policy check.
package authn

import (
	"unicode"
	"unicode/utf8"
)

// MetadataCorrelationID is the optional gRPC metadata key that ties a call
// to a larger piece of work; it has the form of a request ID and becomes
// the correlation ID of the events the call writes.
const MetadataCorrelationID = "koers-correlation-id"

// Limits of the principal's identifiers.
const (
	// MaxTenantLength is the longest tenant ID: it is a NATS subject token.
	MaxTenantLength = 63
	// MaxActorLength is the longest subject (the actor of events).
	MaxActorLength = 128
	// MaxCorrelationIDLength is the longest correlation ID.
	MaxCorrelationIDLength = 64
)

// ValidTenant reports whether t is a well-formed tenant ID.
func ValidTenant(t string) bool {
	if t == "" || len(t) > MaxTenantLength {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidActor reports whether a is a well-formed actor.
func ValidActor(a string) bool {
	if a == "" || !utf8.ValidString(a) || utf8.RuneCountInString(a) > MaxActorLength {
		return false
	}
	for _, r := range a {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// ValidCorrelationID reports whether id is a well-formed correlation ID:
// 1 to MaxCorrelationIDLength characters from A-Z, a-z, 0-9 and . _ : -,
// the form of a request ID.
func ValidCorrelationID(id string) bool {
	if id == "" || len(id) > MaxCorrelationIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
