package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// The signature algorithms Koers knows.
const (
	// AlgES256 is ECDSA on P-256 with SHA-256: the local issuer's, and the
	// one to prefer.
	AlgES256 = "ES256"
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256, for identity providers
	// that sign with RSA.
	AlgRS256 = "RS256"
	// AlgHS256 is HMAC with SHA-256 under a shared secret: development
	// only (Config.HS256Secret).
	AlgHS256 = "HS256"
)

// Key sizes Koers accepts.
const (
	// MinRSABits is the smallest RSA modulus accepted for signing or
	// verifying.
	MinRSABits = 2048
	// MinHS256SecretLength is the shortest HS256 secret, in bytes: the
	// size of the hash, as RFC 7518 asks.
	MinHS256SecretLength = 32
)

// Mint signs c as a JWT with key and returns the compact token. The key
// chooses the algorithm: an *ecdsa.PrivateKey on P-256 signs ES256, an
// *rsa.PrivateKey of at least MinRSABits signs RS256, and a []byte secret
// of at least MinHS256SecretLength bytes signs HS256. kid goes into the
// header so that verifiers find the key in their JWKS; it is required for
// ES256 and RS256. Mint refuses claims an Authenticator would refuse for
// their content (see Claims), but not for their time or audience, so that
// tests can make expired or misdirected tokens.
func Mint(key crypto.PrivateKey, kid string, c Claims) (string, error) {
	method, err := signingMethod(key)
	if err != nil {
		return "", fmt.Errorf("authn: mint: %w", err)
	}
	if method != jwt.SigningMethodHS256 && kid == "" {
		return "", fmt.Errorf("authn: mint: %s tokens need a key ID (kid)", method.Alg())
	}
	tc, err := c.jsonClaims()
	if err != nil {
		return "", fmt.Errorf("authn: mint: %w", err)
	}
	token := jwt.NewWithClaims(method, tc)
	if kid != "" {
		token.Header["kid"] = kid
	}
	signed, err := token.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("authn: mint: sign: %w", err)
	}
	return signed, nil
}

// signingMethod is the algorithm key signs with.
func signingMethod(key crypto.PrivateKey) (jwt.SigningMethod, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256, nil
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits; want at least %d", bits, MinRSABits)
		}
		return jwt.SigningMethodRS256, nil
	case []byte:
		if len(k) < MinHS256SecretLength {
			return nil, fmt.Errorf("HS256 secret of %d bytes; want at least %d", len(k), MinHS256SecretLength)
		}
		return jwt.SigningMethodHS256, nil
	default:
		return nil, fmt.Errorf("cannot sign with a %T; want *ecdsa.PrivateKey, *rsa.PrivateKey or []byte", key)
	}
}
