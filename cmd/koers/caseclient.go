package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/node"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	"github.com/koers-io/koers/services/authn"
)

// caseConn are the flags of every `koers case` command: where Koers is, who
// acts for which tenant, and how to print the answer.
type caseConn struct {
	endpoint
	Tenant    string        `help:"Tenant (mobility centre or practice) to act for, when minting a local token: lower-case letters, digits and hyphens."`
	Actor     string        `help:"Who acts, when minting a local token: your coach or system ID as the practice knows it, never a client's name."`
	Timeout   time.Duration `help:"How long to wait for Koers' answer." default:"10s"`
	RequestID string        `name:"request-id" help:"ID of this command (1 to 64 of A-Z a-z 0-9 . _ : -). Default: a new random one. Give the ID of an earlier command only to retry that same command: Koers then answers as before and records nothing twice."`
	JSON      bool          `name:"json" help:"Print the answer as JSON (protobuf's JSON mapping) instead of text."`
}

// endpoint are the flags of every command that calls Koers' gRPC API: where
// it is, how to reach it, and the token to call with.
type endpoint struct {
	Addr  string `help:"host:port of the Koers gRPC API." default:"127.0.0.1:7400"`
	Token string `help:"Bearer token to call with (from your identity provider, or koers token). Empty: mint a short-lived token for the command (see --tenant) with the development issuer of the local data folder (--data), which works on the machine of a koers serve on its defaults."`
	Data  string `help:"Data folder of the local koers serve whose development issuer mints the token when --token is empty." default:"./koers-data" type:"path"`
	TLS   bool   `name:"tls" help:"Connect over TLS, verifying Koers' certificate against the system's CAs (or --tls-ca)."`
	TLSCA string `name:"tls-ca" help:"PEM CA that signed Koers' certificate; implies --tls." type:"path"`
}

// localTokenLifetime is how long a token minted for one command lives.
const localTokenLifetime = 15 * time.Minute

// token returns the bearer token to call with: --token, or one minted by
// the local development issuer.
func (c *endpoint) token(tenant, actor string, lifetime time.Duration) (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	if tenant == "" || actor == "" {
		return "", errors.New("no --token (KOERS_TOKEN) given: give one, or --tenant and --actor to mint a local development token")
	}
	issuer, err := authn.OpenLocalIssuer(node.LocalIssuerDir(c.Data), false)
	if err != nil {
		return "", fmt.Errorf("no --token given, and no local development issuer to mint one (is %s the data folder of a koers serve on this machine?): %w", c.Data, err)
	}
	return issuer.Mint(authn.Principal{Subject: actor, Tenant: tenant, Roles: []authn.Role{authn.RoleAdmin}}, lifetime)
}

// connect opens a connection to Koers and returns a context carrying the
// bearer token (--token, or one minted locally for tenant and actor),
// bounded by the timeout.
func (c *endpoint) connect(ctx context.Context, tenant, actor string, timeout time.Duration) (*grpc.ClientConn, context.Context, func(), error) {
	token, err := c.token(tenant, actor, max(timeout, localTokenLifetime))
	if err != nil {
		return nil, nil, nil, err
	}
	creds := insecure.NewCredentials()
	if c.TLS || c.TLSCA != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCA != "" {
			pem, err := os.ReadFile(c.TLSCA)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("--tls-ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, nil, nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", c.TLSCA)
			}
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", c.Addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	return conn, ctx, func() { cancel(); conn.Close() }, nil
}

// dial connects to Koers and returns a client, a context carrying who
// calls, and a function that releases both.
func (c *caseConn) dial(ctx context.Context) (casev1.CaseServiceClient, context.Context, func(), error) {
	conn, ctx, done, err := c.connect(ctx, c.Tenant, c.Actor, c.Timeout)
	if err != nil {
		return nil, nil, nil, err
	}
	return casev1.NewCaseServiceClient(conn), ctx, done, nil
}

func (c *caseConn) requestID() string {
	if c.RequestID != "" {
		return c.RequestID
	}
	return uuid.NewString()
}

// resulting is every command's response.
type resulting interface {
	proto.Message
	GetResult() *casev1.CommandResult
}

// command sends one command and prints what became of it: what happened,
// the case, its revision and the position to wait for on the read side.
func command[R resulting](ctx context.Context, c *caseConn, out io.Writer, what string,
	send func(ctx context.Context, client casev1.CaseServiceClient, requestID string) (R, error)) error {
	client, ctx, done, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	requestID := c.requestID()
	resp, err := send(ctx, client, requestID)
	if err != nil {
		return describe(err)
	}
	if c.JSON {
		return printJSON(out, resp)
	}
	r := resp.GetResult()
	_, err = fmt.Fprintf(out, "%s: case %s, revision %d, position %d (request %s)\n", what, r.GetCaseId(), r.GetRevision(), r.GetPosition(), requestID)
	return err
}

func printJSON(out io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// describe turns a gRPC error into a message for a person at a terminal:
// what was wrong with which field, or which rule of the case refused it.
func describe(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	var b strings.Builder
	switch st.Code() {
	case codes.InvalidArgument:
		b.WriteString("the request is not valid")
	case codes.Unavailable:
		return fmt.Errorf("Koers is not reachable (is `koers serve` running, and --addr right?): %s", st.Message())
	default:
		b.WriteString(st.Message())
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fmt.Fprintf(&b, "\n  %s: %s", v.GetField(), v.GetDescription())
			}
		case *errdetails.ErrorInfo:
			fmt.Fprintf(&b, " [%s]", d.GetReason())
		}
	}
	return errors.New(b.String())
}
