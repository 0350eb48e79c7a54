package querysvc_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/koers-io/koers/services/authn"
)

// issuer signs the tests' tokens; every test server trusts it.
var issuer *authn.LocalIssuer

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "koers-querysvc-issuer-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	issuer, err = authn.OpenLocalIssuer(dir, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// as returns a context calling as actor of tenant, a centre administrator
// (whose dashboard, without a coach_id, is the actor's own).
func as(tenant, actor string) context.Context {
	return asPrincipal(authn.Principal{Subject: actor, Tenant: tenant, Roles: []authn.Role{authn.RoleAdmin}})
}

// asPrincipal returns a context whose calls carry a token for p.
func asPrincipal(p authn.Principal) context.Context {
	token, err := issuer.Mint(p, time.Hour)
	if err != nil {
		panic(fmt.Sprintf("minting a token for %+v: %v", p, err))
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}
