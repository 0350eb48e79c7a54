package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/koers-io/koers/node"
	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	"github.com/koers-io/koers/services/authn"
)

// feedCmd follows a re-integration agency's feed through
// FeedService.Subscribe, printing each event as it arrives, until Ctrl-C.
type feedCmd struct {
	endpoint
	Tenant      string `help:"Tenant (mobility centre) whose cases the agency follows, when minting a local agency token: lower-case letters, digits and hyphens."`
	Agency      string `help:"Agency whose feed to follow, when minting a local agency token (its subject is agency-<ID>): lower-case letters, digits and hyphens."`
	ResumeToken string `name:"resume-token" help:"Start after this event: the resume token of the last event you processed (koers feed prints it on stderr when it ends). Empty: from the oldest event the feed still keeps."`
	CaseID      string `name:"case-id" help:"Follow only this case (UUID); empty follows every case of the feed."`
	JSON        bool   `name:"json" help:"Print each event as one line of JSON (protobuf's JSON mapping of SubscribeResponse) instead of text."`

	// stderr receives the last resume token when the command ends;
	// os.Stderr when nil. Not a flag: tests set it.
	stderr io.Writer
}

// Run subscribes and prints events until ctx ends (Ctrl-C), which is a
// clean end, or the stream does. Either way the last resume token goes to
// stderr so that the next run can go on after it.
func (c *feedCmd) Run(ctx context.Context, out io.Writer) error {
	token, err := c.token()
	if err != nil {
		return err
	}
	// connect bounds its context by a timeout; a feed runs until stopped,
	// so only the connection is used, with a context of the feed's own.
	e := c.endpoint
	e.Token = token
	conn, _, done, err := e.connect(ctx, "", "", localTokenLifetime)
	if err != nil {
		return err
	}
	defer done()
	streamCtx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token))
	defer cancel()
	stream, err := feedv1.NewFeedServiceClient(conn).Subscribe(streamCtx, &feedv1.SubscribeRequest{ResumeToken: c.ResumeToken, CaseId: c.CaseID})
	if err != nil {
		return c.end(ctx, c.ResumeToken, err)
	}
	last := c.ResumeToken
	for {
		resp, err := stream.Recv()
		if err != nil {
			return c.end(ctx, last, err)
		}
		if err := c.print(out, resp); err != nil {
			return c.end(ctx, last, fmt.Errorf("print event: %w", err))
		}
		last = resp.GetResumeToken()
	}
}

// end finishes the command: it says on stderr where to resume, and turns
// Ctrl-C and the end of the stream into success.
func (c *feedCmd) end(ctx context.Context, last string, err error) error {
	stderr := c.stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	if last != "" {
		fmt.Fprintf(stderr, "last resume token: %s (koers feed --resume-token %s goes on after it)\n", last, last)
	} else {
		fmt.Fprintln(stderr, "no event received; koers feed without --resume-token starts from the oldest event kept")
	}
	if errors.Is(err, io.EOF) || ctx.Err() != nil {
		return nil
	}
	return describe(err)
}

// print writes one event: as JSON, or as its resume token, case, type and
// when the event store recorded it.
func (c *feedCmd) print(out io.Writer, resp *feedv1.SubscribeResponse) error {
	if c.JSON {
		b, err := protojson.Marshal(resp) // one line: protojson adds no newlines unless asked
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	ev := resp.GetEvent()
	name := ev.GetType()[strings.LastIndex(ev.GetType(), ".")+1:]
	_, err := fmt.Fprintf(out, "%-10s  %s  %-36s  %s\n", resp.GetResumeToken(), resp.GetCaseId(), name, formatInstant(ev.GetRecordedAt()))
	return err
}

// token returns the bearer token to subscribe with: --token, or one
// minted by the local development issuer for --agency of --tenant.
func (c *feedCmd) token() (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	if c.Tenant == "" || c.Agency == "" {
		return "", errors.New("no --token (KOERS_TOKEN) given: give an agency's token, or --tenant and --agency to mint a local development token")
	}
	if !authn.ValidTenant(c.Tenant) {
		return "", fmt.Errorf("--tenant %q must be 1 to %d lower-case letters, digits and hyphens", c.Tenant, authn.MaxTenantLength)
	}
	if !authn.ValidPartyID(c.Agency) {
		return "", fmt.Errorf("--agency %q must be 1 to %d lower-case letters, digits and hyphens", c.Agency, authn.MaxPartyIDLength)
	}
	p := authn.Principal{Tenant: c.Tenant, Roles: []authn.Role{authn.RoleAgency}, AgencyID: c.Agency}
	p.Subject = defaultSubject(p)
	return mintLocal(c.Data, p, localTokenLifetime)
}

// mintLocal mints a token for p with the development issuer of the data
// folder of a local koers serve. The server checks a token when a call
// starts, so a feed outlives the token it began with.
func mintLocal(data string, p authn.Principal, lifetime time.Duration) (string, error) {
	issuer, err := authn.OpenLocalIssuer(node.LocalIssuerDir(data), false)
	if err != nil {
		return "", fmt.Errorf("no --token given, and no local development issuer to mint one (is %s the data folder of a koers serve on this machine?): %w", data, err)
	}
	return issuer.Mint(p, lifetime)
}
