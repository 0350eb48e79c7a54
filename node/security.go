package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/authz"
)

// Auth is how the node authenticates its callers. The zero value trusts
// the local development issuer: an ES256 key Koers creates in <data>/auth,
// with which `koers token` mints tokens for every role. Production gives
// the identity provider's keys instead (JWKSFile or JWKSURL, with Issuer
// and Audience).
type Auth struct {
	// JWKSFile is a JWK Set file with the keys that sign bearer tokens.
	JWKSFile string
	// JWKSURL is where the identity provider publishes its JWK Set.
	JWKSURL string
	// Issuer and Audience are the iss and aud every token must carry;
	// required with JWKSFile, JWKSURL or DevHS256Secret.
	Issuer   string
	Audience string
	// DevHS256Secret makes Koers accept HS256 tokens signed with it, and
	// nothing else: for development only (whoever verifies can mint).
	DevHS256Secret []byte
	// TLSCertFile and TLSKeyFile serve the gRPC API over TLS.
	TLSCertFile string
	TLSKeyFile  string
	// TLSClientCAFile enables mutual TLS for system-to-system clients: a
	// client certificate chaining to it authenticates as an integration of
	// the tenant in its Organization (O), its common name the subject.
	TLSClientCAFile string
	// AllowPlaintext lets the gRPC API listen without TLS on an address
	// other than loopback (behind a proxy that terminates TLS).
	AllowPlaintext bool
}

// LocalIssuerDir is the folder of the local development issuer's keys.
func LocalIssuerDir(dataDir string) string { return filepath.Join(dataDir, authn.LocalIssuerDir) }

// authenticator builds the node's authenticator from its configuration.
func (n *Node) authenticator(ctx context.Context) (*authn.Authenticator, error) {
	a := n.cfg.Auth
	var cfg authn.Config
	switch {
	case a.JWKSFile == "" && a.JWKSURL == "" && a.DevHS256Secret == nil:
		issuer, err := authn.OpenLocalIssuer(LocalIssuerDir(n.cfg.DataDir), true)
		if err != nil {
			return nil, fmt.Errorf("node: local token issuer: %w", err)
		}
		cfg = issuer.Config()
		n.log.Warn("trusting tokens of the local development issuer only; in production configure the identity provider's JWKS",
			"keys", LocalIssuerDir(n.cfg.DataDir))
	default:
		cfg = authn.Config{
			JWKSFile: a.JWKSFile, JWKSURL: a.JWKSURL, HS256Secret: a.DevHS256Secret,
			Issuer: a.Issuer, Audience: a.Audience,
		}
		if a.DevHS256Secret != nil {
			n.log.Warn("accepting HS256 tokens signed with a shared secret: development only")
		}
	}
	cfg.Logger = n.log.With("part", "authn")
	auth, err := authn.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("node: authentication: %w", err)
	}
	return auth, nil
}

// grpcSecurity returns the server options that make every call but health
// checks authenticate and pass the policy, over TLS unless the listener is
// on loopback or plaintext was allowed.
func (n *Node) grpcSecurity(auth authz.Authenticator) ([]grpc.ServerOption, error) {
	a := n.cfg.Auth
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(authz.UnaryInterceptor(auth)),
		grpc.ChainStreamInterceptor(authz.StreamInterceptor(auth)),
	}
	switch {
	case a.TLSCertFile != "" || a.TLSKeyFile != "":
		if a.TLSCertFile == "" || a.TLSKeyFile == "" {
			return nil, errors.New("node: TLS needs both a certificate and a key file")
		}
		tlsCfg, err := authn.ServerTLS(a.TLSCertFile, a.TLSKeyFile, a.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("node: gRPC TLS: %w", err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	case a.TLSClientCAFile != "":
		return nil, errors.New("node: mutual TLS (a client CA) needs TLS: give a certificate and a key file too")
	case !a.AllowPlaintext && !loopback(n.cfg.GRPCAddr):
		return nil, fmt.Errorf("node: refusing to serve gRPC in plaintext on %s, which is not a loopback address: "+
			"give a TLS certificate and key, or allow plaintext explicitly behind a proxy that terminates TLS", n.cfg.GRPCAddr)
	}
	return opts, nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReadSecretFile reads a secret (a development HS256 secret) from a file,
// refusing one that others may read.
func ReadSecretFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v); chmod 600 it", path, info.Mode().Perm())
	}
	return os.ReadFile(path)
}

// auditFeedSubscribe records that an agency opened its feed, and after
// which event: the store position of the message its resume token names.
func (n *Node) auditFeedSubscribe(ctx context.Context, p authn.Principal, req *feedv1.SubscribeRequest) error {
	e := audit.Entry{Principal: p, Action: auditv1.AuditAction_AUDIT_ACTION_FEED_SUBSCRIBE,
		Method: authz.FeedSubscribe, CaseID: req.GetCaseId()}
	if token := req.GetResumeToken(); token != "" {
		pos, err := n.feedPosition(ctx, token)
		if err != nil {
			n.log.Error("the position of a feed's resume token could not be read, so the feed was not opened", "err", err)
			return status.Error(codes.Unavailable, "the feed could not be opened; try again")
		}
		e.Position = pos
	}
	return n.recordOrRefuse(ctx, e)
}

// feedPosition is the store position of the agency feed message whose
// sequence is token (FeedService validated its form).
func (n *Node) feedPosition(ctx context.Context, token string) (eventstore.Position, error) {
	seq, err := strconv.ParseUint(token, 10, 64)
	if err != nil {
		return 0, err
	}
	stream, err := n.js.Stream(ctx, bus.AgencyStreamName)
	if err != nil {
		return 0, err
	}
	msg, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil // FeedService answers OUT_OF_RANGE for it
	}
	if err != nil {
		return 0, err
	}
	return bus.PositionOf(msg.Header)
}

// auditFeedDelivery records each event delivered to an agency before it
// leaves: the feed is an export of case data.
func (n *Node) auditFeedDelivery(ctx context.Context, p authn.Principal, resp *feedv1.SubscribeResponse) error {
	e := audit.Entry{Principal: p, Action: auditv1.AuditAction_AUDIT_ACTION_FEED_DELIVER,
		Method: authz.FeedSubscribe, CaseID: resp.GetCaseId(),
		Position: eventstore.Position(resp.GetEvent().GetPosition()), EventID: resp.GetEvent().GetId()}
	return n.recordOrRefuse(ctx, e)
}

// recordOrRefuse records e; when it cannot, the caller gets Unavailable
// and nothing leaves.
func (n *Node) recordOrRefuse(ctx context.Context, e audit.Entry) error {
	if err := n.audit.Record(ctx, e); err != nil {
		n.log.Error("an export could not be recorded in the audit trail, so nothing was disclosed", "err", err)
		return status.Error(codes.Unavailable, "the export could not be recorded in the audit trail, so nothing was disclosed; try again")
	}
	return nil
}
