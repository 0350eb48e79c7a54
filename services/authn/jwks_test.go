package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// issuerServer is an identity provider's JWKS endpoint whose keys and
// health the test changes.
type issuerServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	failing bool
	fetches int
}

func newIssuerServer(t *testing.T, body []byte) *issuerServer {
	s := &issuerServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fetches++
		if s.failing {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *issuerServer) serve(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.failing = body, false
}

func (s *issuerServer) fail() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = true
}

func (s *issuerServer) fetchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

func TestJWKSURLRotationPicksUpNewKeysAndDropsOldOnes(t *testing.T) {
	k1, k2, k3 := newECKey(t), newECKey(t), newECKey(t)
	idp := newIssuerServer(t, jwksJSON(t, jwk{kid: "k1", key: &k1.PublicKey}))
	clk := newClock()
	a := newAuthenticator(t, Config{JWKSURL: idp.URL + "/jwks.json", Issuer: testIssuer, Audience: testAudience,
		Now: clk.Now, MinRefreshInterval: time.Minute, RefreshInterval: time.Hour})
	token := func(k any, kid string) string { return sign(t, jwt.SigningMethodES256, k, kid, coachClaims()) }
	if _, err := a.ParseToken(token(k1, "k1")); err != nil {
		t.Fatalf("token of the first key: %v", err)
	}
	if n := idp.fetchCount(); n != 1 {
		t.Fatalf("%d fetches after start and a known key, want 1", n)
	}

	// The issuer rotates: k2 replaces k1.
	idp.serve(jwksJSON(t, jwk{kid: "k2", key: &k2.PublicKey}))
	_, err := a.ParseToken(token(k2, "k2"))
	checkRefusal(t, err, "", "token is signed with an unknown key")
	if n := idp.fetchCount(); n != 1 {
		t.Fatalf("%d fetches within the minimum interval, want still 1", n)
	}
	clk.advance(time.Minute)
	if _, err := a.ParseToken(token(k2, "k2")); err != nil {
		t.Fatalf("token of the new key after the minimum interval: %v", err)
	}
	if n := idp.fetchCount(); n != 2 {
		t.Fatalf("%d fetches, want 2: one for the unknown key", n)
	}
	_, err = a.ParseToken(token(k1, "k1"))
	checkRefusal(t, err, "", "token is signed with an unknown key")

	// Made-up kids do not make it fetch again and again.
	for i := 0; i < 5; i++ {
		a.ParseToken(token(k3, "made-up"))
	}
	if n := idp.fetchCount(); n != 2 {
		t.Errorf("%d fetches after tokens with made-up kids, want 2", n)
	}
}

func TestJWKSFetchFailureKeepsTheLastGoodKeys(t *testing.T) {
	k1 := newECKey(t)
	idp := newIssuerServer(t, jwksJSON(t, jwk{kid: "k1", key: &k1.PublicKey}))
	clk := newClock()
	var logged strings.Builder
	a := newAuthenticator(t, Config{JWKSURL: idp.URL, Issuer: testIssuer, Audience: testAudience, Now: clk.Now, RefreshInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logged}, nil))})
	good := sign(t, jwt.SigningMethodES256, k1, "k1", coachClaims())
	unknown := sign(t, jwt.SigningMethodES256, newECKey(t), "k9", coachClaims())

	for _, broken := range []func(){
		idp.fail,
		func() { idp.serve([]byte(`{"keys": [`)) },
		func() { idp.serve([]byte(`{"keys": []}`)) },
	} {
		broken()
		clk.advance(DefaultMinRefreshInterval)
		before := idp.fetchCount()
		_, err := a.ParseToken(unknown)
		checkRefusal(t, err, "", "unknown key")
		if idp.fetchCount() != before+1 {
			t.Fatalf("the unknown key did not make it fetch")
		}
		if _, err := a.ParseToken(good); err != nil {
			t.Errorf("after a failed fetch the last good key is refused: %v", err)
		}
	}
	if n := strings.Count(logged.String(), "keeping the last good keys"); n != 3 {
		t.Errorf("%d warnings about failed fetches, want 3:\n%s", n, logged.String())
	}
}

func TestJWKSURLIsRefreshedPeriodically(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	idp := newIssuerServer(t, jwksJSON(t, jwk{kid: "k1", key: &k1.PublicKey}))
	// The clock stands still, so only the periodic refresh can fetch.
	a := newAuthenticator(t, Config{JWKSURL: idp.URL, Issuer: testIssuer, Audience: testAudience,
		RefreshInterval: 10 * time.Millisecond, MinRefreshInterval: time.Hour})
	idp.serve(jwksJSON(t, jwk{kid: "k1", key: &k1.PublicKey}, jwk{kid: "k2", key: &k2.PublicKey}))
	token := sign(t, jwt.SigningMethodES256, k2, "k2", coachClaims())
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := a.ParseToken(token)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new key was not picked up: %v (%d fetches)", err, idp.fetchCount())
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.Close()
	after := idp.fetchCount()
	time.Sleep(30 * time.Millisecond)
	if n := idp.fetchCount(); n != after {
		t.Errorf("%d fetches after Close, want none", n-after)
	}
}

func TestJWKSFileIsReadAgainForAnUnknownKey(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	path := writeJWKS(t, jwk{kid: "k1", key: &k1.PublicKey})
	clk := newClock()
	a := newAuthenticator(t, Config{JWKSFile: path, Issuer: testIssuer, Audience: testAudience, Now: clk.Now})
	if err := os.WriteFile(path, jwksJSON(t, jwk{kid: "k2", key: &k2.PublicKey}), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.advance(DefaultMinRefreshInterval)
	if _, err := a.ParseToken(sign(t, jwt.SigningMethodES256, k2, "k2", coachClaims())); err != nil {
		t.Errorf("token of the key added to the file: %v", err)
	}
}

func TestNewFailsWhenTheJWKSURLGivesNoKeys(t *testing.T) {
	idp := newIssuerServer(t, nil)
	idp.fail()
	_, err := New(context.Background(), Config{JWKSURL: idp.URL, Issuer: testIssuer, Audience: testAudience})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("New with the issuer down: %v, want the HTTP status named", err)
	}
}

func TestParseJWKSKeepsOnlyKeysThatVerifyOneAlgorithm(t *testing.T) {
	es, rs := newECKey(t), rsaKey(t, 0)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	edPublic, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	private := jwksJSON(t, jwk{kid: "private", key: es})
	var privateKey struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(private, &privateKey); err != nil {
		t.Fatal(err)
	}
	set := jwksJSON(t,
		jwk{kid: "es", key: &es.PublicKey, alg: AlgES256, use: "sig"},
		jwk{kid: "rs", key: &rs.PublicKey},
		jwk{kid: "", key: &es.PublicKey},
		jwk{kid: "p384", key: &newP384(t).PublicKey},
		jwk{kid: "small", key: &small.PublicKey},
		jwk{kid: "enc", key: &rs.PublicKey, use: "enc"},
		jwk{kid: "es-as-rs", key: &es.PublicKey, alg: AlgRS256},
		jwk{kid: "secret", key: []byte(strings.Repeat("k", 32))},
		jwk{kid: "ed", key: edPublic},
		jwk{kid: "es", key: &rs.PublicKey},
	)
	// Splice in the private key and a key of a type nobody knows.
	set = []byte(strings.Replace(string(set), `"keys":[`, `"keys":[`+string(privateKey.Keys[0])+`,{"kty":"AKP","kid":"future"},`, 1))

	keys, skipped, err := parseJWKS(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys["es"].alg != AlgES256 || keys["rs"].alg != AlgRS256 {
		t.Errorf("kept %v, want es for ES256 and rs for RS256", keys)
	}
	for _, want := range []string{
		`key "private" holds private key material`,
		"key 1: unreadable",
		"no key ID (kid)",
		`key "p384" is on curve P-384`,
		`key "small" is RSA of 1024 bits`,
		`key "enc" is for use "enc"`,
		`key "es-as-rs" is for algorithm "RS256"`,
		`key "secret" holds private key material`,
		`key "ed" is a ed25519.PublicKey; only EC P-256 and RSA keys are accepted`,
		`key ID "es" is used by an earlier key`,
	} {
		if !strings.Contains(strings.Join(skipped, "\n"), want) {
			t.Errorf("no skipped key says %q; skipped:\n%s", want, strings.Join(skipped, "\n"))
		}
	}

	_, _, err = parseJWKS(jwksJSON(t, jwk{kid: "p384", key: &newP384(t).PublicKey}))
	if err == nil || !strings.Contains(err.Error(), "no usable key") || !strings.Contains(err.Error(), "P-384") {
		t.Errorf("a set without usable keys: %v, want no usable key and why", err)
	}
	if _, _, err := parseJWKS([]byte("<html>")); err == nil || !strings.Contains(err.Error(), "not a JWK Set") {
		t.Errorf("HTML for a JWKS: %v", err)
	}
}

// syncWriter lets the refresh goroutine and the test write one log.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
