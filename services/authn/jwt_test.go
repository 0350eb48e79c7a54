package authn

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/metadata"
)

func TestParseTokenAcceptsOnlyWellSignedTokensOfTheIssuerForKoers(t *testing.T) {
	es, other, rs := newECKey(t), newECKey(t), rsaKey(t, 0)
	a := newAuthenticator(t, Config{
		JWKSFile: writeJWKS(t, jwk{kid: "es-1", key: &es.PublicKey}, jwk{kid: "rs-1", key: &rs.PublicKey, alg: AlgRS256, use: "sig"}),
		Issuer:   testIssuer, Audience: testAudience,
	})
	pubDER, err := x509.MarshalPKIXPublicKey(&es.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	es256 := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodES256, es, "es-1", c) }
	valid := es256(coachClaims())
	parts := strings.Split(valid, ".")
	otherTenant := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + testIssuer + `","aud":"koers","sub":"coach-anna","exp":9999999999,"tenant":"evil","roles":["coach"],"coach_id":"coach-anna"}`))
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"es-1"}`))
	coach := Principal{Subject: "coach-anna", Tenant: "acme", Roles: []Role{RoleCoach}, CoachID: "coach-anna", Via: ViaJWT}

	tests := []struct {
		name  string
		token string
		want  Principal
		err   string // part of the message; empty when the token is good
	}{
		{name: "ES256 coach", token: valid, want: coach},
		{name: "RS256 system with two roles", token: sign(t, jwt.SigningMethodRS256, rs, "rs-1", with(coachClaims(), jwt.MapClaims{
			"sub": "crm-sync", "roles": []string{"integration", "admin"}, "coach_id": nil})),
			want: Principal{Subject: "crm-sync", Tenant: "acme", Roles: []Role{RoleIntegration, RoleAdmin}, Via: ViaJWT}},
		{name: "employer", token: es256(with(coachClaims(), jwt.MapClaims{"sub": "hr-1", "roles": []string{"employer"}, "coach_id": nil, "organisation_id": "acme-bv"})),
			want: Principal{Subject: "hr-1", Tenant: "acme", Roles: []Role{RoleEmployer}, OrganisationID: "acme-bv", Via: ViaJWT}},
		{name: "agency", token: es256(with(coachClaims(), jwt.MapClaims{"sub": "agent-7", "roles": []string{"agency"}, "coach_id": nil, "agency_id": "werkfit"})),
			want: Principal{Subject: "agent-7", Tenant: "acme", Roles: []Role{RoleAgency}, AgencyID: "werkfit", Via: ViaJWT}},
		{name: "audience among several", token: es256(with(coachClaims(), jwt.MapClaims{"aud": []string{"other", "koers"}})), want: coach},
		{name: "expired within the leeway", token: es256(with(coachClaims(), jwt.MapClaims{"exp": testNow.Add(-10 * time.Second).Unix()})), want: coach},

		{name: "expired", token: es256(with(coachClaims(), jwt.MapClaims{"exp": testNow.Add(-time.Hour).Unix()})), err: "token expired at 2026-03-02T09:00:00Z"},
		{name: "not yet valid", token: es256(with(coachClaims(), jwt.MapClaims{"nbf": testNow.Add(time.Hour).Unix()})), err: "token is not valid before 2026-03-02T11:00:00Z"},
		{name: "issued in the future", token: es256(with(coachClaims(), jwt.MapClaims{"iat": testNow.Add(time.Hour).Unix()})), err: "claim iat lies in the future"},
		{name: "no expiry", token: es256(with(coachClaims(), jwt.MapClaims{"exp": nil})), err: "token claim exp is missing"},
		{name: "wrong audience", token: es256(with(coachClaims(), jwt.MapClaims{"aud": "billing"})), err: `token is not for audience "koers"`},
		{name: "no audience", token: es256(with(coachClaims(), jwt.MapClaims{"aud": nil})), err: "token claim aud is missing"},
		{name: "wrong issuer", token: es256(with(coachClaims(), jwt.MapClaims{"iss": "https://evil.example"})), err: `token issuer is not "` + testIssuer + `"`},
		{name: "no issuer", token: es256(with(coachClaims(), jwt.MapClaims{"iss": nil})), err: "token claim iss is missing"},

		{name: "unknown kid", token: sign(t, jwt.SigningMethodES256, other, "es-2", coachClaims()), err: "token is signed with an unknown key"},
		{name: "no kid", token: sign(t, jwt.SigningMethodES256, es, "", coachClaims()), err: "token names no key (kid)"},
		{name: "forged: another key under a known kid", token: sign(t, jwt.SigningMethodES256, other, "es-1", coachClaims()), err: "token signature invalid"},
		{name: "forged: claims changed after signing", token: parts[0] + "." + otherTenant + "." + parts[2], err: "token signature invalid"},
		{name: "forged RS256", token: sign(t, jwt.SigningMethodRS256, rsaKey(t, 1), "rs-1", coachClaims()), err: "token signature invalid"},
		{name: "alg none", token: noneHeader + "." + parts[1] + ".", err: "token algorithm none is not accepted"},
		{name: "alg confusion: HS256 with the public key as secret", token: sign(t, jwt.SigningMethodHS256, pubPEM, "es-1", coachClaims()), err: "token algorithm HS256 is not accepted"},
		{name: "RS256 under an EC key", token: sign(t, jwt.SigningMethodRS256, rs, "es-1", coachClaims()), err: "token algorithm RS256 does not fit its key, which verifies ES256"},
		{name: "ES384", token: sign(t, jwt.SigningMethodES384, newP384(t), "es-1", coachClaims()), err: "token algorithm ES384 is not accepted"},
		{name: "HS256 without the development secret", token: sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("s", 32)), "", coachClaims()), err: "token algorithm HS256 is not accepted"},
		{name: "critical header extension", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, coachClaims())
			tok.Header["kid"], tok.Header["crit"] = "es-1", []string{"exp"}
			s, err := tok.SignedString(es)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), err: "token header marks extensions critical (crit); none are supported"},
		{name: "unregistered alg", token: base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XY99","kid":"es-1"}`)) + "." + parts[1] + "." + parts[2], err: "token names no algorithm this server accepts"},

		{name: "empty", token: "", err: "token is empty"},
		{name: "garbage", token: "not-a-token", err: "token is malformed"},
		{name: "three garbage parts", token: "a.b.c", err: "token is malformed"},
		{name: "truncated in the claims", token: valid[:len(parts[0])+10], err: "token is malformed"},
		{name: "truncated signature", token: parts[0] + "." + parts[1] + "." + parts[2][:64], err: "token signature invalid"},
		{name: "four parts", token: valid + ".x", err: "token is malformed"},
		{name: "too long", token: strings.Repeat("a", MaxTokenLength+1), err: "token is longer than 16384 bytes"},
		{name: "roles as a string", token: es256(with(coachClaims(), jwt.MapClaims{"roles": "coach"})), err: "token is malformed"},

		{name: "tenant under another case", token: es256(with(coachClaims(), jwt.MapClaims{"tenant": nil, "Tenant": "acme"})), err: "token claim tenant is missing"},
		{name: "roles under another case are ignored", token: es256(with(coachClaims(), jwt.MapClaims{"ROLES": []string{"admin"}})), want: coach},
		{name: "bad tenant", token: es256(with(coachClaims(), jwt.MapClaims{"tenant": "ACME"})), err: "token claim tenant must be 1 to 63 lower-case letters"},
		{name: "no tenant", token: es256(with(coachClaims(), jwt.MapClaims{"tenant": nil})), err: "token claim tenant is missing"},
		{name: "no subject", token: es256(with(coachClaims(), jwt.MapClaims{"sub": nil})), err: "token claim sub is missing"},
		{name: "subject with a space", token: es256(with(coachClaims(), jwt.MapClaims{"sub": "Anna de Vries"})), err: "token claim sub must be"},
		{name: "unknown role", token: es256(with(coachClaims(), jwt.MapClaims{"roles": []string{"coach", "boss"}})), err: "token claim roles holds an unknown role; known roles are integration, coach, admin, employer, analyst, agency"},
		{name: "no roles", token: es256(with(coachClaims(), jwt.MapClaims{"roles": []string{}})), err: "token claim roles must list at least one role"},
		{name: "role twice", token: es256(with(coachClaims(), jwt.MapClaims{"roles": []string{"coach", "coach"}})), err: "token claim roles lists role coach twice"},
		{name: "coach without coach_id", token: es256(with(coachClaims(), jwt.MapClaims{"coach_id": nil})), err: "token claim coach_id is missing; role coach requires it"},
		{name: "coach_id with a space", token: es256(with(coachClaims(), jwt.MapClaims{"coach_id": "coach anna"})), err: "token claim coach_id must be"},
		{name: "employer without organisation_id", token: es256(with(coachClaims(), jwt.MapClaims{"roles": []string{"employer"}, "coach_id": nil})), err: "token claim organisation_id is missing; role employer requires it"},
		{name: "agency with a bad agency_id", token: es256(with(coachClaims(), jwt.MapClaims{"roles": []string{"agency"}, "coach_id": nil, "agency_id": "Werk Fit"})), err: "token claim agency_id must be 1 to 63 lower-case letters"},
		{name: "coach_id without the coach role", token: es256(with(coachClaims(), jwt.MapClaims{"roles": []string{"admin"}})), err: "token claim coach_id is given without role coach"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.ParseToken(tc.token)
			if tc.err != "" {
				checkRefusal(t, err, tc.token, tc.err)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSignatureFailuresSayOnlySignatureInvalid(t *testing.T) {
	es, other := newECKey(t), newECKey(t)
	a := newAuthenticator(t, Config{JWKSFile: writeJWKS(t, jwk{kid: "es-1", key: &es.PublicKey}), Issuer: testIssuer, Audience: testAudience})
	valid := sign(t, jwt.SigningMethodES256, es, "es-1", coachClaims())
	sig := []byte(valid[strings.LastIndex(valid, ".")+1:])
	if sig[3] == 'A' { // another base64url character: another signature
		sig[3] = 'B'
	} else {
		sig[3] = 'A'
	}
	for name, token := range map[string]string{
		"another key": sign(t, jwt.SigningMethodES256, other, "es-1", coachClaims()),
		"a bit off":   valid[:strings.LastIndex(valid, ".")+1] + string(sig),
		"too short":   valid[:strings.LastIndex(valid, ".")+1] + "AAAA",
	} {
		_, err := a.ParseToken(token)
		if got := statusMessage(err); got != "token signature invalid" {
			t.Errorf("%s: message %q, want exactly %q", name, got, "token signature invalid")
		}
	}
}

func TestHS256OnlyWithTheDevelopmentSecretAndThenOnlyHS256(t *testing.T) {
	secret := []byte("development-secret-of-32-bytes!!")
	a := newAuthenticator(t, Config{HS256Secret: secret, Issuer: testIssuer, Audience: testAudience})
	good := sign(t, jwt.SigningMethodHS256, secret, "", coachClaims())
	if p, err := a.ParseToken(good); err != nil || p.Subject != "coach-anna" {
		t.Fatalf("HS256 token with the secret: %+v, %v", p, err)
	}
	wrongSecret := sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-thirty-2-bytes"), "", coachClaims())
	_, err := a.ParseToken(wrongSecret)
	checkRefusal(t, err, wrongSecret, "token signature invalid")
	es := sign(t, jwt.SigningMethodES256, newECKey(t), "es-1", coachClaims())
	_, err = a.ParseToken(es)
	checkRefusal(t, err, es, "token algorithm ES256 is not accepted: this server takes only HS256 tokens")
	hs512 := sign(t, jwt.SigningMethodHS512, secret, "", coachClaims())
	_, err = a.ParseToken(hs512)
	checkRefusal(t, err, hs512, "token algorithm HS512 is not accepted")
	expired := sign(t, jwt.SigningMethodHS256, secret, "", with(coachClaims(), jwt.MapClaims{"exp": testNow.Add(-time.Hour).Unix()}))
	_, err = a.ParseToken(expired)
	checkRefusal(t, err, expired, "token expired")
}

func TestNewRefusesConfigurationsThatCouldNotWork(t *testing.T) {
	jwks := writeJWKS(t, jwk{kid: "es-1", key: &newECKey(t).PublicKey})
	secret := []byte(strings.Repeat("s", 32))
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"no key source", Config{Issuer: testIssuer, Audience: testAudience}, "exactly one of a JWKS file, a JWKS URL and an HS256 secret (0 given)"},
		{"JWKS and secret", Config{JWKSFile: jwks, HS256Secret: secret, Issuer: testIssuer, Audience: testAudience}, "(2 given)"},
		{"short secret", Config{HS256Secret: []byte("short"), Issuer: testIssuer, Audience: testAudience}, "the HS256 secret is 5 bytes; want at least 32"},
		{"no issuer", Config{JWKSFile: jwks, Audience: testAudience}, "issuer is not configured"},
		{"no audience", Config{JWKSFile: jwks, Issuer: testIssuer}, "audience is not configured"},
		{"negative leeway", Config{JWKSFile: jwks, Issuer: testIssuer, Audience: testAudience, Leeway: -time.Second}, "must not be negative"},
		{"missing JWKS file", Config{JWKSFile: jwks + ".missing", Issuer: testIssuer, Audience: testAudience}, "no such file"},
		{"plain http off loopback", Config{JWKSURL: "http://id.example.org/jwks.json", Issuer: testIssuer, Audience: testAudience}, "must use https (http only on loopback)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(context.Background(), tc.cfg)
			if err == nil {
				a.Close()
				t.Fatal("New accepted the configuration")
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %q, want it to contain %q", err, tc.err)
			}
		})
	}
}

func TestAuthenticateReadsOneBearerTokenAndTheCorrelationID(t *testing.T) {
	es := newECKey(t)
	a := newAuthenticator(t, Config{JWKSFile: writeJWKS(t, jwk{kid: "es-1", key: &es.PublicKey}), Issuer: testIssuer, Audience: testAudience})
	token := sign(t, jwt.SigningMethodES256, es, "es-1", coachClaims())
	coach := Principal{Subject: "coach-anna", Tenant: "acme", Roles: []Role{RoleCoach}, CoachID: "coach-anna", Via: ViaJWT}
	withID := coach
	withID.CorrelationID = "job:42"

	tests := []struct {
		name string
		md   metadata.MD
		want Principal
		err  string
	}{
		{name: "bearer token", md: metadata.Pairs("authorization", "Bearer "+token), want: coach},
		{name: "scheme in lower case", md: metadata.Pairs("authorization", "bearer "+token), want: coach},
		{name: "with a correlation ID", md: metadata.Pairs("authorization", "Bearer "+token, MetadataCorrelationID, "job:42"), want: withID},
		{name: "no metadata", md: nil, err: `metadata authorization is missing: send "authorization: Bearer <token>" or a client certificate`},
		{name: "legacy tenant and actor only", md: metadata.Pairs("koers-tenant", "acme", "koers-actor", "coach-anna"), err: "metadata authorization is missing"},
		{name: "two tokens", md: metadata.Pairs("authorization", "Bearer "+token, "authorization", "Bearer "+token), err: "metadata authorization is given 2 times"},
		{name: "basic authentication", md: metadata.Pairs("authorization", "Basic "+token), err: `metadata authorization must be "Bearer <token>"`},
		{name: "token without scheme", md: metadata.Pairs("authorization", token), err: `metadata authorization must be "Bearer <token>"`},
		{name: "empty bearer", md: metadata.Pairs("authorization", "Bearer "), err: "metadata authorization holds an empty bearer token"},
		{name: "bad token", md: metadata.Pairs("authorization", "Bearer "+token[:len(token)-22]), err: "token signature invalid"},
		{name: "bad correlation ID", md: metadata.Pairs("authorization", "Bearer "+token, MetadataCorrelationID, "job 42"), err: "metadata koers-correlation-id must be 1 to 64 characters"},
		{name: "two correlation IDs", md: metadata.Pairs("authorization", "Bearer "+token, MetadataCorrelationID, "a", MetadataCorrelationID, "b"), err: "metadata koers-correlation-id is given 2 times"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.md != nil {
				ctx = metadata.NewIncomingContext(ctx, tc.md)
			}
			got, err := a.Authenticate(ctx)
			if tc.err != "" {
				checkRefusal(t, err, token, tc.err)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}
