package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	"github.com/koers-io/koers/services/authn"
)

// caseConn are the flags of every `koers case` command: where Koers is, who
// acts for which tenant, and how to print the answer.
type caseConn struct {
	Addr      string        `help:"host:port of the Koers gRPC API." default:"127.0.0.1:7400"`
	Tenant    string        `help:"Tenant (mobility centre or practice) to act for: lower-case letters, digits and hyphens." required:""`
	Actor     string        `help:"Who acts: your coach or system ID as the practice knows it, never a client's name." required:""`
	RequestID string        `name:"request-id" help:"ID of this command (1 to 64 of A-Z a-z 0-9 . _ : -). Default: a new random one. Give the ID of an earlier command only to retry that same command: Koers then answers as before and records nothing twice."`
	Timeout   time.Duration `help:"How long to wait for Koers' answer." default:"10s"`
	JSON      bool          `name:"json" help:"Print the answer as JSON (protobuf's JSON mapping) instead of text."`
}

// dial connects to Koers and returns a client, a context carrying who acts,
// and a function that releases both.
func (c *caseConn) dial(ctx context.Context) (casev1.CaseServiceClient, context.Context, func(), error) {
	conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", c.Addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	ctx = metadata.AppendToOutgoingContext(ctx, authn.MetadataTenant, c.Tenant, authn.MetadataActor, c.Actor)
	return casev1.NewCaseServiceClient(conn), ctx, func() { cancel(); conn.Close() }, nil
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
