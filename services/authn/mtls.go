package authn

import (
	"context"
	"crypto/x509"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// peerPrincipal is the principal of the client certificate that the TLS
// handshake of ctx's connection verified, and false when there is none:
// no TLS, no certificate, or a certificate that was not verified.
func peerPrincipal(ctx context.Context) (Principal, bool, error) {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return Principal{}, false, nil
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Principal{}, false, nil
	}
	// VerifiedChains is filled only when the server checked the chain
	// against its client CAs; a certificate merely presented counts for
	// nothing.
	chains := info.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return Principal{}, false, nil
	}
	p, err := CertificatePrincipal(chains[0][0])
	return p, true, err
}

// CertificatePrincipal is the principal a verified client certificate
// stands for: a mobility centre's system, with Subject the certificate's
// common name (CN), Tenant its first organisation (O), Roles
// [RoleIntegration] and Via ViaMTLS. A CN that is not a valid actor or an
// O that is not a valid tenant is refused with an Unauthenticated status.
// The caller must have verified cert's chain; Authenticate does this by
// taking only the verified chains of the TLS handshake.
func CertificatePrincipal(cert *x509.Certificate) (Principal, error) {
	cn := cert.Subject.CommonName
	if !ValidActor(cn) {
		return Principal{}, unauthenticated("client certificate common name (CN) must be 1 to %d printable characters without spaces", MaxActorLength)
	}
	orgs := cert.Subject.Organization
	if len(orgs) == 0 {
		return Principal{}, unauthenticated("client certificate has no organisation (O) naming its tenant")
	}
	if !ValidTenant(orgs[0]) {
		return Principal{}, unauthenticated("client certificate organisation (O) must be a tenant: 1 to %d lower-case letters, digits and hyphens", MaxTenantLength)
	}
	return Principal{Subject: cn, Tenant: orgs[0], Roles: []Role{RoleIntegration}, Via: ViaMTLS}, nil
}
