package authn

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The seed corpus of FuzzParseToken lives in testdata/fuzz/FuzzParseToken;
// its tokens verify with the public keys in fuzzJWKSFile and fuzzSecret,
// checked at testNow. The private keys that signed them were thrown away;
// to make new seeds (new keys, the same cases), run
//
//	go test ./services/authn -run TestWriteFuzzSeeds -write-fuzz-seeds
var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "make new keys and write the seed corpus of FuzzParseToken")

const (
	fuzzJWKSFile = "testdata/fuzz-jwks.json"
	fuzzSeedDir  = "testdata/fuzz/FuzzParseToken"
	// fuzzSecret is the HS256 secret of the fuzz tests: not a secret.
	fuzzSecret = "fuzz-test-hs256-secret-not-a-secret"
)

// fuzzAuthenticators are the two configurations the fuzzer attacks: keys
// from a JWKS, and the development HS256 secret.
func fuzzAuthenticators(t testing.TB) map[string]*Authenticator {
	base := Config{Issuer: testIssuer, Audience: testAudience, Now: func() time.Time { return testNow }}
	withJWKS, withSecret := base, base
	withJWKS.JWKSFile = fuzzJWKSFile
	withSecret.HS256Secret = []byte(fuzzSecret)
	return map[string]*Authenticator{"jwks": newAuthenticator(t, withJWKS), "hs256": newAuthenticator(t, withSecret)}
}

func FuzzParseToken(f *testing.F) {
	auths := fuzzAuthenticators(f)
	f.Fuzz(func(t *testing.T, raw string) {
		for name, a := range auths {
			p, err := a.ParseToken(raw)
			if err == nil {
				if verr := validatePrincipal(p); verr != nil || p.Via != ViaJWT {
					t.Fatalf("%s accepted a token for an invalid principal %+v: %v", name, p, verr)
				}
				continue
			}
			st, ok := status.FromError(err)
			if !ok || st.Code() != codes.Unauthenticated {
				t.Fatalf("%s: error %v is not an Unauthenticated status", name, err)
			}
			if len(raw) >= 24 && strings.Contains(st.Message(), raw) {
				t.Fatalf("%s: message %q echoes the token", name, st.Message())
			}
		}
	})
}

func TestFuzzSeedsAreWhatTheirNamesSay(t *testing.T) {
	auths := fuzzAuthenticators(t)
	entries, err := os.ReadDir(fuzzSeedDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 10 {
		t.Fatalf("%d seeds, want the committed corpus", len(entries))
	}
	for _, e := range entries {
		raw := readSeed(t, filepath.Join(fuzzSeedDir, e.Name()))
		// valid-hs256-* seeds pass the HS256 authenticator, other
		// valid-* seeds the JWKS one; everything else neither.
		wantValid := map[string]bool{
			"jwks":  strings.HasPrefix(e.Name(), "valid-") && !strings.HasPrefix(e.Name(), "valid-hs256-"),
			"hs256": strings.HasPrefix(e.Name(), "valid-hs256-"),
		}
		for name, a := range auths {
			_, err := a.ParseToken(raw)
			if (err == nil) != wantValid[name] {
				t.Errorf("seed %s with %s: error %v, want valid %v", e.Name(), name, err, wantValid[name])
			}
		}
	}
}

// readSeed reads a one-string corpus file of go test -fuzz.
func readSeed(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") {
		t.Fatalf("%s is not a corpus file with one string", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("writes the seed corpus only with -write-fuzz-seeds")
	}
	es, rs, other := newECKey(t), rsaKey(t, 0), newECKey(t)
	if err := os.MkdirAll(fuzzSeedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fuzzJWKSFile, jwksJSON(t, jwk{kid: "fuzz-es", key: &es.PublicKey, alg: AlgES256, use: "sig"},
		jwk{kid: "fuzz-rs", key: &rs.PublicKey, alg: AlgRS256, use: "sig"}), 0o644); err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&es.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	es256 := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodES256, es, "fuzz-es", c) }
	valid := es256(coachClaims())
	parts := strings.Split(valid, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	seeds := map[string]string{
		"valid-es256-coach": valid,
		"valid-rs256-integration": sign(t, jwt.SigningMethodRS256, rs, "fuzz-rs", with(coachClaims(), jwt.MapClaims{
			"sub": "crm-sync", "roles": []string{"integration", "admin"}, "coach_id": nil})),
		"valid-es256-employer": es256(with(coachClaims(), jwt.MapClaims{"sub": "hr-1", "roles": []string{"employer"}, "coach_id": nil, "organisation_id": "acme-bv"})),
		"valid-es256-agency":   es256(with(coachClaims(), jwt.MapClaims{"sub": "agent-7", "roles": []string{"agency"}, "coach_id": nil, "agency_id": "werkfit"})),
		"valid-hs256-admin": sign(t, jwt.SigningMethodHS256, []byte(fuzzSecret), "", with(coachClaims(), jwt.MapClaims{
			"sub": "admin-1", "roles": []string{"admin"}, "coach_id": nil})),
		"expired":             es256(with(coachClaims(), jwt.MapClaims{"exp": testNow.Add(-time.Hour).Unix()})),
		"wrong-audience":      es256(with(coachClaims(), jwt.MapClaims{"aud": []string{"billing"}})),
		"unknown-role":        es256(with(coachClaims(), jwt.MapClaims{"roles": []string{"boss"}})),
		"forged-es256":        sign(t, jwt.SigningMethodES256, other, "fuzz-es", coachClaims()),
		"alg-none":            b64([]byte(`{"alg":"none","kid":"fuzz-es"}`)) + "." + parts[1] + ".",
		"alg-confusion-hs256": sign(t, jwt.SigningMethodHS256, pubPEM, "fuzz-es", coachClaims()),
		"truncated-signature": parts[0] + "." + parts[1] + "." + parts[2][:40],
		"truncated-claims":    valid[:len(parts[0])+30],
		"numbers-as-strings":  es256(with(coachClaims(), jwt.MapClaims{"exp": "tomorrow", "roles": 7})),
		"header-not-json":     b64([]byte(`{"alg":`)) + "." + parts[1] + "." + parts[2],
		"garbage":             "bm90IGEgdG9rZW4=.\x00\xff.../",
		"dots":                "..",
		"empty":               "",
	}
	for name, seed := range seeds {
		if err := os.WriteFile(filepath.Join(fuzzSeedDir, name), fmt.Appendf(nil, "go test fuzz v1\nstring(%q)\n", seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
