package casesvc_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/koers-io/koers/node"
	"github.com/koers-io/koers/services/authn"
)

// issuer signs the tests' tokens; every test node trusts it.
var issuer *authn.LocalIssuer

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "koers-casesvc-issuer-")
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

// trustIssuer is the node's authentication: tokens of the tests' issuer.
func trustIssuer() node.Auth {
	c := issuer.Config()
	return node.Auth{JWKSFile: c.JWKSFile, Issuer: c.Issuer, Audience: c.Audience}
}

// as returns a context whose calls act for tenant as actor, a centre
// administrator (who may call every RPC of CaseService on any case of the
// tenant).
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
