package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/node"
	"github.com/koers-io/koers/services/authn"
)

// runKoersStreams runs the koers command in a child process with args and the
// extra environment, and returns its stdout and stderr.
func runKoersStreams(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "KOERS_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// localAuthenticator accepts the tokens of dir's local issuer.
func localAuthenticator(t *testing.T, dir string) *authn.Authenticator {
	t.Helper()
	issuer, err := authn.OpenLocalIssuer(node.LocalIssuerDir(dir), false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := issuer.Config()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := authn.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func TestTokenMintsATokenForEachRoleThatTheDataFolderAccepts(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		env  []string
		args []string
		want authn.Principal
	}{
		{name: "coach named after the coach ID", args: []string{"--role", "coach", "--coach-id", "coach-anna"},
			want: authn.Principal{Subject: "coach-anna", Tenant: "demo", Roles: []authn.Role{authn.RoleCoach}, CoachID: "coach-anna"}},
		{name: "several roles, repeated and comma-separated", args: []string{"--role", "admin,analyst", "--role", "integration", "--tenant", "acme"},
			want: authn.Principal{Subject: "admin", Tenant: "acme", Roles: []authn.Role{authn.RoleAdmin, authn.RoleAnalyst, authn.RoleIntegration}}},
		{name: "employer", args: []string{"--role", "employer", "--organisation-id", "acme-bv"},
			want: authn.Principal{Subject: "employer-acme-bv", Tenant: "demo", Roles: []authn.Role{authn.RoleEmployer}, OrganisationID: "acme-bv"}},
		{name: "agency with a subject", args: []string{"--role", "agency", "--agency-id", "werkfit", "--subject", "agent-7"},
			want: authn.Principal{Subject: "agent-7", Tenant: "demo", Roles: []authn.Role{authn.RoleAgency}, AgencyID: "werkfit"}},
		{name: "from the environment", env: []string{"KOERS_ROLE=coach,admin", "KOERS_COACH_ID=coach-bram", "KOERS_TENANT=north"},
			want: authn.Principal{Subject: "coach-bram", Tenant: "north", Roles: []authn.Role{authn.RoleCoach, authn.RoleAdmin}, CoachID: "coach-bram"}},
	}
	var tokens []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runKoersStreams(t, tc.env, append([]string{"token", "--data", dir}, tc.args...)...)
			if err != nil {
				t.Fatalf("koers token: %v\n%s", err, stderr)
			}
			token, rest, _ := strings.Cut(stdout, "\n")
			if rest != "" || strings.Count(token, ".") != 2 {
				t.Fatalf("stdout is %q, want the token alone on one line", stdout)
			}
			if !strings.Contains(stderr, "minted a development token") {
				t.Errorf("stderr does not say what was minted:\n%s", stderr)
			}
			got, err := localAuthenticator(t, dir).ParseToken(token)
			if err != nil {
				t.Fatalf("the data folder's issuer refuses the token: %v", err)
			}
			tc.want.Via = authn.ViaJWT
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
			tokens = append(tokens, token)
		})
	}
	// Every run signed with the one key created by the first.
	a := localAuthenticator(t, dir)
	for i, token := range tokens {
		if _, err := a.ParseToken(token); err != nil {
			t.Errorf("token %d refused at the end: %v", i, err)
		}
	}
}

func TestTokenLivesForTTL(t *testing.T) {
	stdout, stderr, err := runKoersStreams(t, nil, "token", "--data", t.TempDir(), "--role", "analyst", "--ttl", "30m")
	if err != nil {
		t.Fatalf("koers token: %v\n%s", err, stderr)
	}
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(strings.TrimSpace(stdout), &claims); err != nil {
		t.Fatal(err)
	}
	if claims.ExpiresAt == nil || claims.IssuedAt == nil {
		t.Fatalf("token without exp or iat: %+v", claims)
	}
	if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life != 30*time.Minute {
		t.Errorf("token lives %s, want 30m", life)
	}
}

func TestTokenRefusesBadInputAndCreatesNothing(t *testing.T) {
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"no role", []string{}, "missing flags: --role"},
		{"unknown role", []string{"--role", "coach,boss", "--coach-id", "anna"}, `--role "boss" is not one of integration, coach, admin, employer, analyst, agency`},
		{"role twice", []string{"--role", "admin", "--role", "admin"}, "--role admin is given twice"},
		{"coach without coach ID", []string{"--role", "coach"}, "--role coach needs --coach-id"},
		{"coach ID without the coach role", []string{"--role", "admin", "--coach-id", "anna"}, "--coach-id is only for --role coach"},
		{"employer without organisation", []string{"--role", "employer"}, "--role employer needs --organisation-id"},
		{"bad organisation ID", []string{"--role", "employer", "--organisation-id", "Acme BV"}, `--organisation-id "Acme BV" must be 1 to 63 lower-case letters, digits and hyphens`},
		{"agency ID without the agency role", []string{"--role", "analyst", "--agency-id", "werkfit"}, "--agency-id is only for --role agency"},
		{"bad tenant", []string{"--role", "admin", "--tenant", "Demo Centre"}, `--tenant "Demo Centre" must be 1 to 63 lower-case letters, digits and hyphens`},
		{"subject with a space", []string{"--role", "admin", "--subject", "Anna de Vries"}, `--subject "Anna de Vries" must be 1 to 128 printable characters without spaces`},
		{"zero lifetime", []string{"--role", "admin", "--ttl", "0s"}, "--ttl 0s must be positive"},
		{"negative lifetime", []string{"--role", "admin", "--ttl=-1h"}, "--ttl -1h0m0s must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			stdout, stderr, err := runKoersStreams(t, nil, append([]string{"token", "--data", dir}, tc.args...)...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("koers token exited with %v, want a failure", err)
			}
			// Errors of the command line's parser print the usage on
			// stdout, as for every koers command; the command's own print
			// nothing there.
			if parserError := strings.Contains(stderr, "koers: error:"); strings.Contains(stdout, "eyJ") || !parserError && stdout != "" {
				t.Errorf("stdout %q, want no token and, unless the parser refused, nothing", stdout)
			}
			if !strings.Contains(stderr, tc.err) {
				t.Errorf("stderr does not say %q:\n%s", tc.err, stderr)
			}
			if _, err := os.Stat(node.LocalIssuerDir(dir)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("bad input created the issuer folder (%v)", err)
			}
		})
	}
}
