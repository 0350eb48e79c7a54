package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
)

// agencyUserFile is one agency user as an agency users file lists it.
type agencyUserFile struct {
	Tenant   string `json:"tenant"`
	Agency   string `json:"agency"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoadAgencyUsers reads an agency users file: a JSON array of objects with
// "tenant", "agency", "username" and "password" (preferably a bcrypt hash,
// as `nats server passwd` or `htpasswd -bnBC 11 "" PASSWORD` makes). The
// file holds credentials, so it must not be readable by others. Unknown
// fields are refused, so that a misspelt one is not silently ignored; the
// server checks each user when it starts.
func LoadAgencyUsers(path string) ([]bus.AgencyUser, error) {
	secret, err := ReadSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("agency users: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(secret))
	dec.DisallowUnknownFields()
	var entries []agencyUserFile
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("agency users %s: %w", path, err)
	}
	users := make([]bus.AgencyUser, len(entries))
	for i, e := range entries {
		users[i] = bus.AgencyUser{Tenant: e.Tenant, Agency: e.Agency, Username: e.Username, Password: e.Password}
	}
	return users, nil
}

// InternalNATSPasswordFile is the file in the data folder with the password
// Koers' own processes log in to the embedded NATS server with, once
// agency users make the server require logins. `koers projections`
// commands read it to reach the embedded server.
func InternalNATSPasswordFile(dataDir string) string {
	return filepath.Join(dataDir, "nats-internal.password")
}

// internalNATSPassword reads the internal password of the data folder,
// creating a random one (mode 0600) on first use.
func internalNATSPassword(dataDir string) (string, error) {
	path := InternalNATSPasswordFile(dataDir)
	b, err := os.ReadFile(path)
	if err == nil {
		return string(bytes.TrimSpace(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	password := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		return "", err
	}
	return password, nil
}

// ensureAgencyConsumers creates the durable consumer of every configured
// agency on the agency stream: agencies read through it and cannot create
// consumers themselves.
func ensureAgencyConsumers(ctx context.Context, js jetstream.JetStream, users []bus.AgencyUser) error {
	done := map[[2]string]bool{}
	for _, u := range users {
		key := [2]string{u.Tenant, u.Agency}
		if done[key] {
			continue
		}
		done[key] = true
		if _, err := bus.EnsureAgencyConsumer(ctx, js, u.Tenant, u.Agency); err != nil {
			return fmt.Errorf("node: consumer of agency %s of tenant %s: %w", u.Agency, u.Tenant, err)
		}
	}
	return nil
}
