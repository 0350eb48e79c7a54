// Package feedsvc is the FeedService: the gRPC server stream through which a
// re-integration agency follows the events of the cases assigned to it.
//
// The agency router fills the JetStream stream KOERS_AGENCY_FEED (see
// bus/agency.go) with each agency's events, personal parts removed, on the
// subjects koers.agency.<tenant>.<agency>.<case-id>. This package only
// reads it: each Subscribe opens its own JetStream ordered consumer,
// filtered to the calling agency's subjects (or one case's subject) and
// starting right after the resume token, which is the stream sequence of
// the last message the agency received. The ordered consumer recreates
// itself from the last sequence it handed over when NATS reconnects or the
// server restarts, so the client sees no gap and no repeat.
//
// Subscriptions share nothing: each has its own consumer and its own
// goroutine pulling at most a few messages ahead, so a client that reads
// slowly is held back by gRPC flow control alone and holds up no one else.
//
// The subjects come from the authenticated principal only, never from the
// request, and every message is checked again (its subject, its tenant)
// before it is sent.
package feedsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	"github.com/koers-io/koers/services/authn"
)

const (
	// pullMaxMessages is how many messages a subscription's consumer pulls
	// ahead of what its client has taken: enough to keep a fast client
	// busy, little enough that a stalled one holds little memory.
	pullMaxMessages = 16
	// maxResetAttempts bounds how often an ordered consumer tries to
	// recreate itself after NATS came back before the subscription ends
	// with UNAVAILABLE (about two minutes with the library's back-off). While
	// NATS is away it does not try at all; it waits.
	maxResetAttempts = 15
	// cleanupTimeout bounds the deletion of a finished subscription's
	// consumer; JetStream removes a consumer left behind after its
	// inactivity threshold anyway.
	cleanupTimeout = 5 * time.Second
)

// DefaultStartTimeout is the default of Options.StartTimeout.
const DefaultStartTimeout = 5 * time.Second

// Options tune a Service. The zero value of each field means its default.
type Options struct {
	// Logger receives subscriptions' starts and ends and the errors
	// callers are not told the details of; default slog.Default().
	Logger *slog.Logger
	// OnSubscribe, when set, runs for every valid request of an agency
	// before its subscription opens; an error refuses the call. A gRPC
	// status error goes to the client as it is; any other error is logged
	// and the client gets INTERNAL. The audit trail hooks in here.
	OnSubscribe func(ctx context.Context, p authn.Principal, req *feedv1.SubscribeRequest) error
	// OnDeliver, when set, runs for every response before it is sent; an
	// error ends the stream before that response, reported as for
	// OnSubscribe. It runs on the subscription's own goroutine, so a slow
	// hook slows that subscription only.
	OnDeliver func(ctx context.Context, p authn.Principal, resp *feedv1.SubscribeResponse) error
	// StartTimeout bounds how long a subscription waits for the message
	// bus to open it before it fails with UNAVAILABLE; default
	// DefaultStartTimeout. Once open, a subscription waits out outages.
	StartTimeout time.Duration
}

// Service implements feedv1.FeedServiceServer on the agency feed stream.
// It is safe for concurrent use.
type Service struct {
	feedv1.UnimplementedFeedServiceServer

	js        jetstream.JetStream
	opts      Options
	log       *slog.Logger
	closing   chan struct{}
	closeOnce sync.Once
}

// New returns the FeedService reading the agency feed stream
// (bus.AgencyStreamName) through js. The stream need not exist yet:
// subscriptions fail with UNAVAILABLE until it does. js should sit on a
// connection that reconnects without limit (nats.MaxReconnects(-1)), or
// subscriptions end when it gives up.
func New(js jetstream.JetStream, opts Options) (*Service, error) {
	if js == nil {
		return nil, errors.New("feedsvc: a JetStream context is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	return &Service{
		js:      js,
		opts:    opts,
		log:     opts.Logger.With("component", "feedsvc"),
		closing: make(chan struct{}),
	}, nil
}

// Register registers the service on a gRPC server. The server must
// authenticate calls and put the principal in the context
// (authn.WithPrincipal) before the handler runs.
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	feedv1.RegisterFeedServiceServer(srv, s)
}

// Close ends every subscription with UNAVAILABLE, and refuses new ones
// the same way: clients subscribe again, elsewhere or later, with their
// last token. A subscription waiting for events ends at once; one
// blocked on a client that does not read ends when the gRPC server cuts
// the call off. Call it before the server's GracefulStop, which would
// otherwise wait for the open-ended streams. Safe to call more than once.
func (s *Service) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
}

// errClosing is the status of subscriptions ended by Close.
var errClosing = status.Error(codes.Unavailable, "the server is shutting down; subscribe again with the last resume_token")

// Subscribe streams the calling agency's feed from the request's resume
// token until the client goes away, the server stops, or the feed cannot
// be read.
func (s *Service) Subscribe(req *feedv1.SubscribeRequest, stream grpc.ServerStreamingServer[feedv1.SubscribeResponse]) error {
	ctx := stream.Context()
	p, err := agencyOf(ctx)
	if err != nil {
		return err
	}
	f, err := parseRequest(p, req)
	if err != nil {
		return err
	}
	select {
	case <-s.closing:
		return errClosing
	default:
	}
	if s.opts.OnSubscribe != nil {
		if err := s.opts.OnSubscribe(ctx, p, req); err != nil {
			return s.hookError("OnSubscribe", err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in, err := s.open(ctx, f)
	if err != nil {
		return err
	}
	log := s.log.With("tenant", f.tenant, "agency", f.agency, "case", f.caseID)
	log.Info("feed subscription started", "after", f.after)
	sent, err := s.pump(ctx, p, f, in, stream)
	log.Info("feed subscription ended", "sent", sent, "code", status.Code(err))
	return err
}

// pump sends what the reader hands over until something ends the call,
// and returns how many responses it sent.
func (s *Service) pump(ctx context.Context, p authn.Principal, f feed, in <-chan delivery, stream grpc.ServerStreamingServer[feedv1.SubscribeResponse]) (int, error) {
	sent := 0
	for {
		var d delivery
		select {
		case <-ctx.Done():
			return sent, status.FromContextError(ctx.Err()).Err()
		case <-s.closing:
			return sent, errClosing
		case d = <-in:
		}
		if d.err != nil {
			return sent, s.readError(ctx, f, d.err)
		}
		resp, err := response(f, d.msg)
		if err != nil {
			// Only a fault of the router puts such a message in the
			// feed. Skipping it keeps the agency's feed moving; ending
			// the stream would stop it for good at this message.
			s.log.Error("feed message skipped", "tenant", f.tenant, "agency", f.agency, "subject", d.msg.Subject(), "err", err)
			continue
		}
		if s.opts.OnDeliver != nil {
			if err := s.opts.OnDeliver(ctx, p, resp); err != nil {
				return sent, s.hookError("OnDeliver", err)
			}
		}
		if err := stream.Send(resp); err != nil {
			return sent, err
		}
		sent++
	}
}

// readError turns an error of the reader into the status the client gets.
func (s *Service) readError(ctx context.Context, f feed, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	s.log.Warn("feed subscription interrupted", "tenant", f.tenant, "agency", f.agency, "err", err)
	return status.Error(codes.Unavailable, "the feed was interrupted; subscribe again with the last resume_token")
}

// hookError turns an error of a hook into the status the client gets.
func (s *Service) hookError(hook string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	s.log.Error(fmt.Sprintf("feed %s hook failed", hook), "err", err)
	return status.Error(codes.Internal, "internal error; the server log has the details")
}
