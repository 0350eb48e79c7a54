package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// LoadMasterKey reads a master key: MasterKeySize bytes, base64-encoded
// (standard alphabet), from the file at path. When the file does not exist
// and create is true, it makes a new random key there (mode 0600) and
// reports created; production deployments supply the file from their secret
// store instead and leave create false.
func LoadMasterKey(path string, create bool) (key []byte, created bool, err error) {
	text, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key = make([]byte, MasterKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, false, fmt.Errorf("keyring: new master key: %w", err)
		}
		encoded := base64.StdEncoding.EncodeToString(key) + "\n"
		if err := writeFileSync(path, []byte(encoded)); err != nil {
			return nil, false, fmt.Errorf("keyring: write master key %s: %w", path, err)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("keyring: read master key: %w", err)
	}
	key, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, false, fmt.Errorf("keyring: master key %s is not base64: %w", path, err)
	}
	if len(key) != MasterKeySize {
		return nil, false, fmt.Errorf("keyring: master key %s is %d bytes, want %d", path, len(key), MasterKeySize)
	}
	return key, false, nil
}
