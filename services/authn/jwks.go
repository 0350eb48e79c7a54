package authn

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// MaxJWKSSize is the largest JWKS document read, in bytes.
const MaxJWKSSize = 1 << 20

// verifyKey is a public key from a JWKS and the one algorithm it verifies.
type verifyKey struct {
	alg string
	key crypto.PublicKey
}

// keySet maps key IDs to keys.
type keySet map[string]verifyKey

// jwks keeps the keys of a JWKS file or URL, fetching them again
// periodically and, at most once per minInterval, when a token names a key
// it does not know. A failed fetch keeps the last good keys.
type jwks struct {
	source      string // the file or URL, for messages
	load        func(ctx context.Context) ([]byte, error)
	now         func() time.Time
	minInterval time.Duration
	log         *slog.Logger

	keys atomic.Pointer[keySet]

	mu        sync.Mutex // one fetch at a time; guards lastFetch and lastData
	lastFetch time.Time
	lastData  []byte
}

// newJWKS returns the key source cfg names, with its keys fetched once:
// a source that cannot give keys at start is a configuration error.
func newJWKS(ctx context.Context, cfg Config) (*jwks, error) {
	j := &jwks{now: cfg.Now, minInterval: cfg.MinRefreshInterval, log: cfg.Logger}
	switch {
	case cfg.JWKSFile != "":
		j.source = cfg.JWKSFile
		j.load = func(context.Context) ([]byte, error) { return readFileLimited(cfg.JWKSFile) }
	default:
		if err := checkJWKSURL(cfg.JWKSURL); err != nil {
			return nil, err
		}
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		j.source = cfg.JWKSURL
		j.load = func(ctx context.Context) ([]byte, error) { return get(ctx, client, cfg.JWKSURL) }
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.fetch(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

// lookup returns the key kid names, fetching the keys again first when kid
// is unknown and the last fetch is at least minInterval old.
func (j *jwks) lookup(ctx context.Context, kid string) (verifyKey, bool) {
	if k, ok := (*j.keys.Load())[kid]; ok {
		return k, true
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	// Another call may have fetched while this one waited.
	if k, ok := (*j.keys.Load())[kid]; ok {
		return k, true
	}
	if j.now().Sub(j.lastFetch) < j.minInterval {
		return verifyKey{}, false
	}
	if err := j.fetch(ctx); err != nil {
		j.log.Warn("fetching the JWKS for an unknown key failed; keeping the last good keys", "jwks", j.source, "err", err)
	}
	k, ok := (*j.keys.Load())[kid]
	return k, ok
}

// run fetches the keys every interval until ctx ends.
func (j *jwks) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			j.mu.Lock()
			if err := j.fetch(ctx); err != nil && ctx.Err() == nil {
				j.log.Warn("refreshing the JWKS failed; keeping the last good keys", "jwks", j.source, "err", err)
			}
			j.mu.Unlock()
		}
	}
}

// fetch loads and parses the keys and, if they are usable, makes them the
// current ones. The caller holds mu.
func (j *jwks) fetch(ctx context.Context) error {
	j.lastFetch = j.now()
	data, err := j.load(ctx)
	if err != nil {
		return fmt.Errorf("authn: JWKS %s: %w", j.source, err)
	}
	if j.keys.Load() != nil && bytes.Equal(data, j.lastData) {
		return nil
	}
	keys, skipped, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("authn: JWKS %s: %w", j.source, err)
	}
	for _, why := range skipped {
		j.log.Warn("JWKS key not used", "jwks", j.source, "reason", why)
	}
	j.keys.Store(&keys)
	j.lastData = data
	return nil
}

// parseJWKS reads a JWK Set (RFC 7517). It keeps the signing keys Koers can
// verify with — EC P-256 for ES256, RSA of at least MinRSABits for RS256,
// each with a key ID — and says why it skipped the others. A set with no
// usable key is an error.
func parseJWKS(data []byte) (keySet, []string, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	keys := keySet{}
	var skipped []string
	for i, raw := range doc.Keys {
		kid, k, err := parseJWK(raw)
		if _, dup := keys[kid]; err == nil && dup {
			err = fmt.Errorf("key ID %q is used by an earlier key", kid)
		}
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		keys[kid] = k
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("no usable key (want EC P-256 or RSA signing keys with a kid): %s", strings.Join(skipped, "; "))
	}
	return keys, skipped, nil
}

// parseJWK reads one key of a set.
func parseJWK(raw json.RawMessage) (string, verifyKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return "", verifyKey{}, fmt.Errorf("unreadable: %w", err)
	}
	switch {
	case jwk.KeyID == "":
		return "", verifyKey{}, errors.New("no key ID (kid)")
	case jwk.Use != "" && jwk.Use != "sig":
		return "", verifyKey{}, fmt.Errorf("key %q is for use %q, not sig", jwk.KeyID, jwk.Use)
	case !jwk.IsPublic():
		return "", verifyKey{}, fmt.Errorf("key %q holds private key material: a JWKS must publish public keys only", jwk.KeyID)
	}
	var k verifyKey
	switch pub := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", verifyKey{}, fmt.Errorf("key %q is on curve %s; only P-256 (ES256) is accepted", jwk.KeyID, pub.Curve.Params().Name)
		}
		k = verifyKey{alg: AlgES256, key: pub}
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < MinRSABits {
			return "", verifyKey{}, fmt.Errorf("key %q is RSA of %d bits; want at least %d", jwk.KeyID, bits, MinRSABits)
		}
		k = verifyKey{alg: AlgRS256, key: pub}
	default:
		return "", verifyKey{}, fmt.Errorf("key %q is a %T; only EC P-256 and RSA keys are accepted", jwk.KeyID, jwk.Key)
	}
	if jwk.Algorithm != "" && jwk.Algorithm != k.alg {
		return "", verifyKey{}, fmt.Errorf("key %q is for algorithm %q; its type verifies only %s", jwk.KeyID, jwk.Algorithm, k.alg)
	}
	return jwk.KeyID, k, nil
}

// checkJWKSURL accepts https URLs, and http ones only on loopback, since
// keys fetched in the clear could be anyone's.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("authn: JWKS URL: %w", err)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("authn: JWKS URL %q has no host", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	default:
		return fmt.Errorf("authn: JWKS URL %q must use https (http only on loopback)", raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// get fetches url's body, at most MaxJWKSSize bytes.
func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	return readLimited(resp.Body)
}

func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f)
}

func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxJWKSSize)
	}
	return data, nil
}
