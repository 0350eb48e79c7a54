package authn

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Verifying an ES256 or RS256 signature costs tens of microseconds of CPU,
// as much as the rest of a command; a client sends the same token with
// every call for its lifetime. The Authenticator therefore remembers the
// principals of tokens it verified, keyed by the token's SHA-256, for at
// most TokenCacheTTL and never past the token's expiry (without the
// leeway). A key the issuer withdraws from its JWK Set stops being trusted
// at the next refresh of the set (Config.RefreshInterval); the cache adds
// at most TokenCacheTTL to that for tokens it already verified.
const (
	// TokenCacheTTL is the longest a verified token is taken on trust.
	TokenCacheTTL = time.Minute
	// TokenCacheSize bounds the tokens remembered; when full, the cache
	// starts over.
	TokenCacheSize = 10000
)

type cachedToken struct {
	principal Principal
	until     time.Time
}

// tokenCache remembers verified tokens; the zero value is ready.
type tokenCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedToken
}

// get returns the principal of a token verified before, while its entry
// holds at now.
func (c *tokenCache) get(raw string, now time.Time) (Principal, bool) {
	key := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.until) {
		return Principal{}, false
	}
	return e.principal, true
}

// put remembers a verified token's principal until min(now+TokenCacheTTL,
// expires).
func (c *tokenCache) put(raw string, p Principal, now, expires time.Time) {
	until := now.Add(TokenCacheTTL)
	if expires.Before(until) {
		until = expires
	}
	key := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= TokenCacheSize {
		c.entries = make(map[[sha256.Size]byte]cachedToken)
	}
	c.entries[key] = cachedToken{principal: p, until: until}
}
