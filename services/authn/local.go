package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The local issuer's names.
const (
	// LocalIssuerDir is the folder of a Koers data folder that holds the
	// local issuer's keys.
	LocalIssuerDir = "auth"
	// LocalIssuerName is the iss of the local issuer's tokens.
	LocalIssuerName = "koers-local"
	// LocalAudience is the aud of the local issuer's tokens.
	LocalAudience = "koers"
	// LocalKeyFile is the local issuer's private key in its folder: PKCS #8
	// PEM, readable by its owner only.
	LocalKeyFile = "signing-key.pem"
	// LocalJWKSFile is the JWK Set with the local issuer's public key in
	// its folder, derived from LocalKeyFile.
	LocalJWKSFile = "jwks.json"
)

// LocalIssuer mints development tokens, so that Koers on its embedded
// defaults needs no identity provider: an ES256 key of its own, kept in a
// folder (LocalKeyFile) beside the JWK Set that verifies its tokens
// (LocalJWKSFile, key ID the key's RFC 7638 thumbprint). Its tokens carry
// iss LocalIssuerName and aud LocalAudience. Anyone who can read the
// folder can mint tokens for any tenant and role, so production configures
// a real issuer instead.
type LocalIssuer struct {
	dir string
	key *ecdsa.PrivateKey
	kid string
}

// OpenLocalIssuer opens the local issuer kept in dir. With create it makes
// the folder and a new key when there is none, and writes the JWK Set when
// it is missing or does not hold the key; two processes creating at once
// end up with the same key, the first one written. Without create, both
// files must be there already.
func OpenLocalIssuer(dir string, create bool) (*LocalIssuer, error) {
	key, err := localKey(dir, create)
	if err != nil {
		return nil, err
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("authn: local issuer in %s: %w", dir, err)
	}
	li := &LocalIssuer{dir: dir, key: key, kid: kid}
	if err := li.ensureJWKS(create); err != nil {
		return nil, err
	}
	return li, nil
}

// Dir is the folder the issuer's files are in.
func (li *LocalIssuer) Dir() string { return li.dir }

// KeyID is the kid of the issuer's key.
func (li *LocalIssuer) KeyID() string { return li.kid }

// Config is what an Authenticator needs to accept the issuer's tokens.
func (li *LocalIssuer) Config() Config {
	return Config{JWKSFile: filepath.Join(li.dir, LocalJWKSFile), Issuer: LocalIssuerName, Audience: LocalAudience}
}

// Mint returns a token for p, valid from now for ttl.
func (li *LocalIssuer) Mint(p Principal, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("authn: mint: lifetime %s must be positive", ttl)
	}
	now := time.Now()
	return li.Sign(Claims{Principal: p, Issuer: LocalIssuerName, Audience: LocalAudience, IssuedAt: now, Expiry: now.Add(ttl)})
}

// Sign signs any claims with the issuer's key, for tests that need
// tokens of another issuer, audience or time.
func (li *LocalIssuer) Sign(c Claims) (string, error) {
	return Mint(li.key, li.kid, c)
}

// localKey reads the key in dir, creating it first if allowed.
func localKey(dir string, create bool) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, LocalKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		return parseLocalKey(path, data)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("authn: local issuer key: %w", err)
	case !create:
		return nil, fmt.Errorf("authn: no local issuer in %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("authn: local issuer: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("authn: new local issuer key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("authn: new local issuer key: %w", err)
	}
	data = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	switch err := writeFileExclusive(path, data); {
	case errors.Is(err, fs.ErrExist):
		// Another process sharing the folder wrote its key first: that
		// one is the issuer's, and this one was never used.
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("authn: local issuer key: %w", err)
		}
		return parseLocalKey(path, data)
	case err != nil:
		return nil, fmt.Errorf("authn: store local issuer key: %w", err)
	}
	return key, nil
}

func parseLocalKey(path string, data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("authn: %s holds no PEM PRIVATE KEY block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("authn: %s: %w", path, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("authn: %s holds a %T; want an ECDSA P-256 key", path, parsed)
	}
	return key, nil
}

// keyID is the RFC 7638 thumbprint of pub, base64url-encoded.
func keyID(pub *ecdsa.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// ensureJWKS checks that the JWK Set holds the issuer's public key and,
// with create, writes it when it does not. The file is derived from the
// key, so two processes writing it at once write the same bytes.
func (li *LocalIssuer) ensureJWKS(create bool) error {
	path := filepath.Join(li.dir, LocalJWKSFile)
	want, err := li.jwks()
	if err != nil {
		return err
	}
	have, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("authn: local issuer JWKS: %w", err)
	}
	if err == nil && li.holdsKey(have) {
		return nil
	}
	if !create {
		return fmt.Errorf("authn: %s does not hold the public key of %s", path, LocalKeyFile)
	}
	if err := writeFileAtomic(path, want, 0o644); err != nil {
		return fmt.Errorf("authn: write local issuer JWKS: %w", err)
	}
	return nil
}

func (li *LocalIssuer) jwks() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &li.key.PublicKey, KeyID: li.kid, Algorithm: AlgES256, Use: "sig"}}}
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("authn: local issuer JWKS: %w", err)
	}
	return append(data, '\n'), nil
}

// holdsKey reports whether the JWK Set data verifies the issuer's tokens.
func (li *LocalIssuer) holdsKey(data []byte) bool {
	keys, _, err := parseJWKS(data)
	if err != nil {
		return false
	}
	k, ok := keys[li.kid]
	pub, isEC := k.key.(*ecdsa.PublicKey)
	return ok && isEC && pub.Equal(&li.key.PublicKey)
}

// writeFileExclusive writes a file that must not be replaced: the first
// writer wins, and later ones get an error wrapping fs.ErrExist. The file
// appears whole (linked from a synced temporary, mode 0600) or not at all.
func writeFileExclusive(path string, data []byte) error {
	tmp, err := writeTemp(path, data, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeFileAtomic replaces a file with data: readers see the old file or
// the new one, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new synced temporary file beside path and
// returns its name.
func writeTemp(path string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
