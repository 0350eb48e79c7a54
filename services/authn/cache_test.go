package authn

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestVerifiedTokensAreTrustedNoLongerThanTheirExpiryOrTheCacheTTL checks
// the cache of verified tokens: an entry lasts TokenCacheTTL at most, and
// an expired token is refused even when it was verified a moment before.
func TestVerifiedTokensAreTrustedNoLongerThanTheirExpiryOrTheCacheTTL(t *testing.T) {
	now := time.Now()
	issuer, err := OpenLocalIssuer(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	cfg := issuer.Config()
	cfg.Now = func() time.Time { return now }
	cfg.MinRefreshInterval = time.Nanosecond
	a, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p := Principal{Subject: "coach-anna", Tenant: "acme", Roles: []Role{RoleCoach}, CoachID: "coach-anna"}
	token, err := issuer.Sign(Claims{Principal: p, Issuer: LocalIssuerName, Audience: LocalAudience,
		Expiry: now.Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ParseToken(token); err != nil {
		t.Fatalf("a fresh token: %v", err)
	}

	if _, ok := a.cache.get(token, now); !ok {
		t.Error("a verified token is not remembered")
	}
	if _, ok := a.cache.get(token, now.Add(TokenCacheTTL)); ok {
		t.Error("a verified token is remembered past TokenCacheTTL")
	}
	other, err := OpenLocalIssuer(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}

	// An expired token is refused although it was just verified.
	a2, err := New(t.Context(), other.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	start := time.Now()
	short, err := other.Sign(Claims{Principal: p, Issuer: LocalIssuerName, Audience: LocalAudience, Expiry: start.Add(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	clock := start
	a2.cfg.Now = func() time.Time { return clock }
	if _, err := a2.ParseToken(short); err != nil {
		t.Fatalf("a fresh short-lived token: %v", err)
	}
	clock = start.Add(5*time.Second + DefaultLeeway + time.Second)
	if _, err := a2.ParseToken(short); status.Code(err) != codes.Unauthenticated {
		t.Errorf("an expired token that was verified before: %v, want Unauthenticated", err)
	}
}
