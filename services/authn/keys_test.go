package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Helpers shared by the tests of this package: keys, key sets, tokens
// signed with any algorithm and any claims, and a clock tests move.

const (
	testIssuer   = "https://id.example.org"
	testAudience = "koers"
)

// testNow is the time the tests' tokens are checked at.
var testNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newP384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	rsaOnce sync.Once
	rsaKeys [2]*rsa.PrivateKey
)

// rsaKey returns one of two RSA keys made once per test binary: RSA key
// generation is slow.
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

// jwk is one key of a test JWKS.
type jwk struct {
	kid string
	key crypto.PublicKey
	alg string // empty leaves alg out
	use string // empty leaves use out
}

func jwksJSON(t testing.TB, keys ...jwk) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key, KeyID: k.kid, Algorithm: k.alg, Use: k.use})
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeJWKS(t testing.TB, keys ...jwk) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(t, keys...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sign signs claims as they are, with any method and key, for tokens
// Mint would refuse to make.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// coachClaims are valid claims of a coach, to change one thing in.
func coachClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":      testIssuer,
		"aud":      testAudience,
		"sub":      "coach-anna",
		"iat":      testNow.Add(-time.Minute).Unix(),
		"exp":      testNow.Add(time.Hour).Unix(),
		"tenant":   "acme",
		"roles":    []string{"coach"},
		"coach_id": "coach-anna",
	}
}

// with returns a copy of c with changes; a nil value deletes the claim.
func with(c jwt.MapClaims, changes jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// clock is a time tests set.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: testNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newAuthenticator(t testing.TB, cfg Config) *Authenticator {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// checkRefusal fails t unless err is Unauthenticated with a message that
// contains want and not the token.
func checkRefusal(t testing.TB, err error, token, want string) {
	t.Helper()
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != codes.Unauthenticated {
		t.Fatalf("error %v, want Unauthenticated containing %q", err, want)
	}
	if !strings.Contains(st.Message(), want) {
		t.Errorf("message %q, want it to contain %q", st.Message(), want)
	}
	if token != "" && strings.Contains(st.Message(), token) {
		t.Errorf("message %q echoes the token", st.Message())
	}
}

// statusMessage is the message of a gRPC status error; "" for nil.
func statusMessage(err error) string {
	if err == nil {
		return ""
	}
	return status.Convert(err).Message()
}
