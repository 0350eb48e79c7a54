package feedsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/bus"
	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
)

// delivery is one step of a reader: a message, or the error that ended it.
type delivery struct {
	msg jetstream.Msg
	err error
}

// open checks the resume position against the stream and starts the
// subscription's reader. The reader runs until ctx is done or reading
// fails, then removes its consumer; the returned channel carries its
// messages in stream order, and its error last.
func (s *Service) open(ctx context.Context, f feed) (<-chan delivery, error) {
	start, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	st, err := s.js.Stream(start, bus.AgencyStreamName)
	if err != nil {
		return nil, s.openError(ctx, f, err)
	}
	if err := checkPosition(f.after, st.CachedInfo().State); err != nil {
		return nil, err
	}
	cons, err := st.OrderedConsumer(start, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.filter()},
		// Always by sequence: after+1 is 1 for an empty token, and the
		// server starts at the first message it still keeps.
		DeliverPolicy:    jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:      f.after + 1,
		MaxResetAttempts: maxResetAttempts,
		Metadata:         map[string]string{"koers-tenant": f.tenant, "koers-agency": f.agency},
	})
	if err != nil {
		return nil, s.openError(ctx, f, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(pullMaxMessages))
	if err != nil {
		s.deleteConsumer(cons)
		return nil, s.openError(ctx, f, err)
	}
	out := make(chan delivery)
	go s.read(ctx, cons, iter, out)
	return out, nil
}

// read hands the iterator's messages to out one at a time until ctx is
// done or the iterator fails. It alone calls Next and Stop: the ordered
// consumer's recovery runs inside Next, and stopping it from elsewhere
// while it recovers is not safe. While NATS is away Next may outlast ctx;
// the reader ends, and cleans up, once it returns.
func (s *Service) read(ctx context.Context, cons jetstream.Consumer, iter jetstream.MessagesContext, out chan<- delivery) {
	defer s.deleteConsumer(cons)
	defer iter.Stop()
	for {
		msg, err := iter.Next(jetstream.NextContext(ctx))
		select {
		case out <- delivery{msg: msg, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// deleteConsumer removes a subscription's current consumer from the
// server rather than leave it until its inactivity threshold.
func (s *Service) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := s.js.DeleteConsumer(ctx, bus.AgencyStreamName, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.Debug("feed consumer left for the server to expire", "consumer", info.Name, "err", err)
	}
}

// openError turns a failure to open a subscription into the status the
// client gets.
func (s *Service) openError(ctx context.Context, f feed, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	s.log.Warn("feed subscription could not start", "tenant", f.tenant, "agency", f.agency, "err", err)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return status.Error(codes.Unavailable, "the agency feed is not set up yet; try again later")
	}
	return status.Error(codes.Unavailable, "the message bus cannot be reached; try again later")
}

// checkPosition refuses a resume position the stream cannot continue from
// without a gap: one past its last message, or one whose successors it no
// longer keeps. A stream that never held a message has FirstSeq 0.
func checkPosition(after uint64, state jetstream.StreamState) error {
	switch {
	case after > state.LastSeq:
		return status.Errorf(codes.OutOfRange,
			"resume_token %s lies beyond the end of the feed (%s); it was not issued here", token(after), token(state.LastSeq))
	case after > 0 && after+1 < state.FirstSeq:
		return status.Errorf(codes.OutOfRange,
			"the feed no longer keeps the events right after resume_token %s (it starts at %s); subscribe without a token to start from the oldest event kept",
			token(after), token(state.FirstSeq))
	}
	return nil
}

// response turns a feed message into the response the agency gets,
// checking again that it belongs to the agency's feed and is well formed.
func response(f feed, msg jetstream.Msg) (*feedv1.SubscribeResponse, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("reading the message's metadata: %w", err)
	}
	seq := md.Sequence.Stream
	caseID, ok := strings.CutPrefix(msg.Subject(), f.prefix())
	if !ok {
		return nil, fmt.Errorf("message %d is on a subject outside the agency's feed", seq)
	}
	if canonical, ok := parseCaseID(caseID); !ok || canonical != caseID {
		return nil, fmt.Errorf("message %d: the subject's case token %q is not a canonical case ID", seq, caseID)
	}
	ev, err := bus.Decode(msg.Data(), msg.Headers())
	if err != nil {
		return nil, fmt.Errorf("message %d: %w", seq, err)
	}
	meta := ev.GetMetadata()
	if meta.GetTenantId() != f.tenant {
		return nil, fmt.Errorf("message %d: event %s belongs to tenant %q, not the subject's", seq, ev.GetId(), meta.GetTenantId())
	}
	if c := meta.GetCaseId(); c != "" && c != caseID {
		return nil, fmt.Errorf("message %d: event %s belongs to case %s, not the subject's %s", seq, ev.GetId(), c, caseID)
	}
	return &feedv1.SubscribeResponse{Event: ev, ResumeToken: token(seq), CaseId: caseID}, nil
}
