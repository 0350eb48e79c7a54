// Package keyring keeps one data key per client and seals that client's
// personal data with it (crypto-shredding).
//
// Personal data — names, contact details, free-text notes — enters events
// only as koers.event.v1.Sealed: AES-256-GCM under the client's data key.
// The data keys live outside the event store, each in its own file, wrapped
// (AES-256-GCM) by a master key from configuration. Erasing a client deletes
// its key file and leaves a tombstone, so every copy of the sealed data — in
// the event store, on NATS, in backups of either — becomes unreadable at
// once, while the rest of each event stays valid.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// MasterKeySize is the size in bytes of the master key and of every data key.
const MasterKeySize = 32

var (
	// ErrErased is returned when sealing for, or opening data of, a client
	// whose key was erased.
	ErrErased = errors.New("keyring: the client's data was erased")
	// ErrNoKey is returned when opening data whose key never existed here.
	ErrNoKey = errors.New("keyring: no data key for this client")
	// ErrInvalidKeyID is returned for a key ID that cannot name a file.
	ErrInvalidKeyID = errors.New("keyring: invalid key ID")
)

const (
	keySuffix       = ".key"
	tombstoneSuffix = ".erased"
	fileVersion     = 1
)

// Keyring holds the data keys of the clients of one data folder. It is safe
// for concurrent use.
type Keyring struct {
	dir    string
	master cipher.AEAD

	mu   sync.Mutex // guards keys and the files of dir
	keys map[string]cipher.AEAD
}

// Open returns the keyring kept in dir, creating the folder if needed.
// masterKey wraps every data key; it must be MasterKeySize bytes.
func Open(dir string, masterKey []byte) (*Keyring, error) {
	if len(masterKey) != MasterKeySize {
		return nil, fmt.Errorf("keyring: master key is %d bytes, want %d", len(masterKey), MasterKeySize)
	}
	master, err := newAEAD(masterKey)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return &Keyring{dir: dir, master: master, keys: make(map[string]cipher.AEAD)}, nil
}

// Seal encrypts msg with the data key of keyID, creating the key on first
// use. It fails with ErrErased once the key was erased.
func (k *Keyring) Seal(keyID string, msg proto.Message) (*eventv1.Sealed, error) {
	plain, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("keyring: marshal %T: %w", msg, err)
	}
	aead, err := k.key(keyID, true)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return &eventv1.Sealed{
		KeyId:      keyID,
		Nonce:      nonce,
		Ciphertext: aead.Seal(nil, nonce, plain, []byte(keyID)),
	}, nil
}

// Unseal decrypts s into msg. It fails with ErrErased when the client's key
// was erased, and with ErrNoKey when it never existed here.
func (k *Keyring) Unseal(s *eventv1.Sealed, msg proto.Message) error {
	aead, err := k.key(s.GetKeyId(), false)
	if err != nil {
		return err
	}
	plain, err := aead.Open(nil, s.GetNonce(), s.GetCiphertext(), []byte(s.GetKeyId()))
	if err != nil {
		return fmt.Errorf("keyring: open sealed data of %q: %w", s.GetKeyId(), err)
	}
	if err := proto.Unmarshal(plain, msg); err != nil {
		return fmt.Errorf("keyring: unmarshal %T: %w", msg, err)
	}
	return nil
}

// Erase deletes the data key of keyID for good and leaves a tombstone, so
// that the key is never created again. Erasing an erased or unknown key is
// not an error.
func (k *Keyring) Erase(keyID string) error {
	if err := validateKeyID(keyID); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, keyID)
	if err := writeFileSync(k.path(keyID, tombstoneSuffix), nil); err != nil {
		return fmt.Errorf("keyring: tombstone for %q: %w", keyID, err)
	}
	if err := os.Remove(k.path(keyID, keySuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyring: erase %q: %w", keyID, err)
	}
	return syncDir(filepath.Dir(k.path(keyID, keySuffix)))
}

// Erased reports whether keyID was erased.
func (k *Keyring) Erased(keyID string) (bool, error) {
	if err := validateKeyID(keyID); err != nil {
		return false, err
	}
	_, err := os.Stat(k.path(keyID, tombstoneSuffix))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("keyring: %w", err)
	}
}

// key returns the data key of keyID. The tombstone is checked first, on
// every call, so that an erasure by another process sharing the folder (two
// API replicas on one volume) takes effect at once, cache or not.
func (k *Keyring) key(keyID string, create bool) (cipher.AEAD, error) {
	if err := validateKeyID(keyID); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if erased, err := k.Erased(keyID); err != nil {
		return nil, err
	} else if erased {
		delete(k.keys, keyID)
		// A key another process created while this one was erasing it
		// must not outlive the tombstone.
		if err := os.Remove(k.path(keyID, keySuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("keyring: erase %q: %w", keyID, err)
		}
		return nil, ErrErased
	}
	if aead, ok := k.keys[keyID]; ok {
		return aead, nil
	}
	wrapped, err := os.ReadFile(k.path(keyID, keySuffix))
	switch {
	case err == nil:
		return k.unwrap(keyID, wrapped)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("keyring: read key %q: %w", keyID, err)
	}
	if !create {
		return nil, fmt.Errorf("%w (%s)", ErrNoKey, keyID)
	}
	return k.create(keyID)
}

func (k *Keyring) create(keyID string) (cipher.AEAD, error) {
	dataKey := make([]byte, MasterKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, fmt.Errorf("keyring: new data key: %w", err)
	}
	nonce := make([]byte, k.master.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	file := append([]byte{fileVersion}, nonce...)
	file = k.master.Seal(file, nonce, dataKey, []byte(keyID))
	path := k.path(keyID, keySuffix)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	switch err := writeFileExclusive(path, file); {
	case errors.Is(err, fs.ErrExist):
		// Another process sharing the folder created the key first: its
		// key is the client's, and this one was never used.
		wrapped, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("keyring: read key %q: %w", keyID, err)
		}
		return k.unwrap(keyID, wrapped)
	case err != nil:
		return nil, fmt.Errorf("keyring: store key %q: %w", keyID, err)
	}
	return k.remember(keyID, dataKey)
}

func (k *Keyring) unwrap(keyID string, file []byte) (cipher.AEAD, error) {
	n := k.master.NonceSize()
	if len(file) < 1+n || file[0] != fileVersion {
		return nil, fmt.Errorf("keyring: key file of %q is malformed", keyID)
	}
	dataKey, err := k.master.Open(nil, file[1:1+n], file[1+n:], []byte(keyID))
	if err != nil {
		return nil, fmt.Errorf("keyring: unwrap key %q (wrong master key?): %w", keyID, err)
	}
	return k.remember(keyID, dataKey)
}

func (k *Keyring) remember(keyID string, dataKey []byte) (cipher.AEAD, error) {
	aead, err := newAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	k.keys[keyID] = aead
	return aead, nil
}

// path spreads key files over subfolders named after the key ID's first
// characters, so that no folder grows to millions of entries.
func (k *Keyring) path(keyID, suffix string) string {
	shard := keyID
	if len(shard) > 2 {
		shard = shard[:2]
	}
	return filepath.Join(k.dir, shard, keyID+suffix)
}

// validateKeyID accepts the characters of UUIDs and tenant-qualified IDs and
// nothing that could climb out of the keyring's folder.
func validateKeyID(keyID string) error {
	if keyID == "" || len(keyID) > 128 || strings.HasPrefix(keyID, ".") {
		return fmt.Errorf("%w: %q", ErrInvalidKeyID, keyID)
	}
	for _, c := range keyID {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: %q has %q", ErrInvalidKeyID, keyID, c)
		}
	}
	return nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return aead, nil
}

// writeFileSync writes a file through a temporary name and fsyncs the file
// and its folder, so that after a crash the file is either whole or absent.
func writeFileSync(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeFileExclusive is writeFileSync for a file that must not be
// replaced: the first writer wins, and later ones get an error wrapping
// fs.ErrExist. The file appears whole (linked from a synced temporary) or
// not at all.
func writeFileExclusive(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
