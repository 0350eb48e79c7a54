package authn

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLocalIssuerMintsTokensItsConfigAccepts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	li, err := OpenLocalIssuer(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, LocalKeyFile): 0o600} {
		if info, err := os.Stat(path); err != nil {
			t.Error(err)
		} else if info.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, info.Mode().Perm(), want)
		}
	}
	cfg := li.Config()
	if diff := cmp.Diff(Config{JWKSFile: filepath.Join(dir, LocalJWKSFile), Issuer: "koers-local", Audience: "koers"}, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	cfg.Now = time.Now
	a := newAuthenticator(t, cfg)

	for _, p := range []Principal{
		{Subject: "coach-anna", Tenant: "demo", Roles: []Role{RoleCoach}, CoachID: "coach-anna"},
		{Subject: "hr-acme", Tenant: "demo", Roles: []Role{RoleEmployer}, OrganisationID: "acme-bv"},
		{Subject: "agency-werkfit", Tenant: "demo", Roles: []Role{RoleAgency}, AgencyID: "werkfit"},
		{Subject: "admin", Tenant: "demo", Roles: []Role{RoleAdmin, RoleAnalyst}},
		{Subject: "crm", Tenant: "demo", Roles: []Role{RoleIntegration}},
	} {
		token, err := li.Mint(p, time.Hour)
		if err != nil {
			t.Fatalf("mint %+v: %v", p, err)
		}
		got, err := a.ParseToken(token)
		if err != nil {
			t.Fatalf("token for %+v refused: %v", p, err)
		}
		p.Via = ViaJWT
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("principal (-minted +parsed):\n%s", diff)
		}
	}

	// Opened again, even without create, it is the same issuer.
	token, err := li.Mint(Principal{Subject: "crm", Tenant: "demo", Roles: []Role{RoleIntegration}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	again, err := OpenLocalIssuer(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if again.KeyID() != li.KeyID() {
		t.Errorf("reopened with key %s, first %s", again.KeyID(), li.KeyID())
	}
	b := newAuthenticator(t, Config{JWKSFile: again.Config().JWKSFile, Issuer: LocalIssuerName, Audience: LocalAudience, Now: time.Now})
	if _, err := b.ParseToken(token); err != nil {
		t.Errorf("token of the first opening refused after reopening: %v", err)
	}
}

func TestLocalIssuerMintRefusesWhatAnAuthenticatorWouldRefuse(t *testing.T) {
	li, err := OpenLocalIssuer(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p   Principal
		ttl time.Duration
		err string
	}{
		{Principal{Subject: "x", Tenant: "Demo", Roles: []Role{RoleAdmin}}, time.Hour, "claim tenant must be"},
		{Principal{Subject: "x", Tenant: "demo", Roles: []Role{RoleCoach}}, time.Hour, "claim coach_id is missing; role coach requires it"},
		{Principal{Subject: "x", Tenant: "demo", Roles: []Role{"boss"}}, time.Hour, "unknown role"},
		{Principal{Subject: "x", Tenant: "demo", Roles: []Role{RoleAdmin}}, 0, "lifetime 0s must be positive"},
	} {
		if _, err := li.Mint(tc.p, tc.ttl); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("mint %+v for %s: %v, want %q", tc.p, tc.ttl, err, tc.err)
		}
	}
}

func TestOpenLocalIssuerWithoutCreateNeedsBothFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenLocalIssuer(dir, false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty folder without create: %v, want fs.ErrNotExist", err)
	}
	li, err := OpenLocalIssuer(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	// A JWKS that lost the key (hand-edited, or another key's) is refused
	// without create and rewritten with it.
	jwksPath := filepath.Join(dir, LocalJWKSFile)
	if err := os.WriteFile(jwksPath, jwksJSON(t, jwk{kid: "other", key: &newECKey(t).PublicKey}), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocalIssuer(dir, false); err == nil || !strings.Contains(err.Error(), "does not hold the public key of signing-key.pem") {
		t.Errorf("stale JWKS without create: %v", err)
	}
	if _, err := OpenLocalIssuer(dir, true); err != nil {
		t.Fatal(err)
	}
	keys, _, err := parseJWKS(mustRead(t, jwksPath))
	if err != nil || keys[li.KeyID()].alg != AlgES256 {
		t.Errorf("rewritten JWKS holds %v (%v), want the issuer's key", keys, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("folder holds %d entries, want the key and the JWKS only (no temporaries)", len(entries))
	}
}

func TestOpenLocalIssuerRefusesAKeyItCannotUse(t *testing.T) {
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, LocalKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocalIssuer(dir, true); err == nil || !strings.Contains(err.Error(), "want an ECDSA P-256 key") {
		t.Errorf("RSA key: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, LocalKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocalIssuer(dir, true); err == nil || !strings.Contains(err.Error(), "holds no PEM PRIVATE KEY block") {
		t.Errorf("garbage key: %v", err)
	}
}

func TestOpenLocalIssuerConcurrentlyAgreesOnOneKey(t *testing.T) {
	// Each opening works on the files alone, as separate processes do.
	dir := filepath.Join(t.TempDir(), "auth")
	const n = 8
	var wg sync.WaitGroup
	issuers := make([]*LocalIssuer, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			issuers[i], errs[i] = OpenLocalIssuer(dir, true)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("opening %d: %v", i, errs[i])
		}
		if issuers[i].KeyID() != issuers[0].KeyID() {
			t.Errorf("opening %d has key %s, opening 0 %s", i, issuers[i].KeyID(), issuers[0].KeyID())
		}
	}
	a := newAuthenticator(t, Config{JWKSFile: filepath.Join(dir, LocalJWKSFile), Issuer: LocalIssuerName, Audience: LocalAudience, Now: time.Now})
	for i, li := range issuers {
		token, err := li.Mint(Principal{Subject: "crm", Tenant: "demo", Roles: []Role{RoleIntegration}}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.ParseToken(token); err != nil {
			t.Errorf("token of opening %d refused: %v", i, err)
		}
	}
}

func TestMintRefusesKeysAndClaimsItCannotSign(t *testing.T) {
	p := Principal{Subject: "crm", Tenant: "demo", Roles: []Role{RoleIntegration}}
	good := Claims{Principal: p, Issuer: testIssuer, Audience: testAudience, Expiry: testNow.Add(time.Hour)}
	es := newECKey(t)
	for _, tc := range []struct {
		name string
		key  any
		kid  string
		c    Claims
		err  string
	}{
		{"P-384", newP384(t), "k", good, "ES256 needs P-256"},
		{"short secret", []byte("short"), "", good, "HS256 secret of 5 bytes; want at least 32"},
		{"public key", &es.PublicKey, "k", good, "cannot sign with a *ecdsa.PublicKey"},
		{"no kid", es, "", good, "ES256 tokens need a key ID (kid)"},
		{"no issuer", es, "k", Claims{Principal: p, Audience: testAudience, Expiry: testNow}, "issuer is empty"},
		{"no audience", es, "k", Claims{Principal: p, Issuer: testIssuer, Expiry: testNow}, "audience is empty"},
		{"no expiry", es, "k", Claims{Principal: p, Issuer: testIssuer, Audience: testAudience}, "expiry is missing"},
	} {
		if _, err := Mint(tc.key, tc.kid, tc.c); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
	// What Mint makes, New's Authenticator takes: RS256 and HS256 too.
	rs := rsaKey(t, 0)
	for name, tc := range map[string]struct {
		key any
		cfg Config
	}{
		"RS256": {rs, Config{JWKSFile: writeJWKS(t, jwk{kid: "k", key: &rs.PublicKey})}},
		"HS256": {[]byte(strings.Repeat("s", 32)), Config{HS256Secret: []byte(strings.Repeat("s", 32))}},
	} {
		tc.cfg.Issuer, tc.cfg.Audience = testIssuer, testAudience
		token, err := Mint(tc.key, "k", good)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := newAuthenticator(t, tc.cfg).ParseToken(token); err != nil {
			t.Errorf("%s token refused: %v", name, err)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
