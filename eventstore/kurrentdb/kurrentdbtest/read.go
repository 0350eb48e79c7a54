package kurrentdbtest

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// defaultReadBatchSize is the server's search window when a filter names
// none (Enumerator.DefaultReadBatchSize).
const defaultReadBatchSize = 32

// Read serves Streams.Read: reads of a stream, reads of $all, and
// subscriptions to $all.
func (h *streams) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	opts := req.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the read has no options")
	}
	if opts.GetUuidOption() == nil {
		return status.Error(codes.InvalidArgument, "the read has no UUID option")
	}
	asString := opts.GetUuidOption().GetString_() != nil
	backwards := opts.GetReadDirection() == api.ReadReq_Options_Backwards
	_, subscribe := opts.GetCountOption().(*api.ReadReq_Options_Subscription)
	f, err := newFilter(opts.GetFilter())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}

	switch so := opts.GetStreamOption().(type) {
	case *api.ReadReq_Options_Stream:
		if subscribe {
			return status.Error(codes.Unimplemented, "kurrentdbtest: stream subscriptions are not served by this test double")
		}
		if f != nil {
			return status.Error(codes.InvalidArgument, "a stream read takes no filter")
		}
		return h.readStream(srv, so.Stream, backwards, opts.GetCount(), asString)
	case *api.ReadReq_Options_All:
		if subscribe {
			if backwards {
				return status.Error(codes.InvalidArgument, "a subscription reads forwards")
			}
			return h.subscribeAll(srv, so.All, f, asString)
		}
		return h.readAll(srv, so.All, f, backwards, opts.GetCount(), asString)
	default:
		return status.Error(codes.InvalidArgument, "the read names neither a stream nor $all")
	}
}

func (h *streams) readStream(srv api.Streams_ReadServer, so *api.ReadReq_Options_StreamOptions, backwards bool, count uint64, asString bool) error {
	ident := so.GetStreamIdentifier()
	recs := h.srv.log.stream(string(ident.GetStreamName()))
	if len(recs) == 0 {
		return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{
			StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: ident},
		}})
	}
	last := uint64(len(recs) - 1)
	var page []*record
	switch r := so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		if backwards {
			from := min(r.Revision, last)
			page = reverse(recs[from-min(from, count-1) : from+1])
		} else if r.Revision <= last {
			page = recs[r.Revision : r.Revision+min(count, last-r.Revision+1)]
		}
	case *api.ReadReq_Options_StreamOptions_End:
		if backwards {
			page = reverse(recs[last-min(last, count-1):])
		}
	default: // the start
		if backwards {
			page = recs[:min(1, count)]
		} else {
			page = recs[:min(count, last+1)]
		}
	}
	if count == 0 {
		page = nil
	}
	for _, rec := range page {
		if err := srv.Send(eventResp(rec, asString)); err != nil {
			return err
		}
	}
	return nil
}

func (h *streams) readAll(srv api.Streams_ReadServer, ao *api.ReadReq_Options_AllOptions, f *filter, backwards bool, count uint64, asString bool) error {
	recs, _ := h.srv.log.all()
	var i int
	switch p := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		i = atOrAfter(recs, p.Position.GetCommitPosition(), p.Position.GetPreparePosition())
	case *api.ReadReq_Options_AllOptions_End:
		i = len(recs)
	default: // the start
		i = 0
	}
	step := 1
	if backwards {
		i, step = i-1, -1 // backwards reads what lies before the position
	}
	for sent := uint64(0); sent < count && i >= 0 && i < len(recs); i += step {
		if !f.allows(recs[i]) {
			continue
		}
		if err := srv.Send(eventResp(recs[i], asString)); err != nil {
			return err
		}
		sent++
	}
	return nil
}

// subscription is an open subscription to $all.
type subscription struct {
	cancel context.CancelCauseFunc
}

func (h *streams) subscribeAll(srv api.Streams_ReadServer, ao *api.ReadReq_Options_AllOptions, f *filter, asString bool) error {
	ctx, cancel := context.WithCancelCause(srv.Context())
	defer cancel(nil)
	defer h.srv.register(&subscription{cancel: cancel})()

	recs, changed := h.srv.log.all()
	var next int
	switch p := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		next = after(recs, p.Position.GetCommitPosition(), p.Position.GetPreparePosition())
	case *api.ReadReq_Options_AllOptions_End:
		next = len(recs)
	default: // the start
		next = 0
	}

	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{
		Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()},
	}}); err != nil {
		return err
	}
	h.srv.started.Add(1)

	considered, caughtUp := uint64(0), false
	for {
		for ; next < len(recs); next++ {
			if ctx.Err() != nil {
				return ended(ctx)
			}
			rec := recs[next]
			if f.allows(rec) {
				if err := srv.Send(eventResp(rec, asString)); err != nil {
					return err
				}
			}
			if f == nil {
				continue
			}
			if considered++; considered >= f.checkpointInterval {
				considered = 0
				if err := srv.Send(checkpointResp(rec.position)); err != nil {
					return err
				}
			}
		}
		if !caughtUp {
			caughtUp = true
			// The server issues a checkpoint when catch-up reaches the end
			// of the log, so that one comes within every interval.
			if f != nil && next > 0 {
				if err := srv.Send(checkpointResp(recs[next-1].position)); err != nil {
					return err
				}
			}
			if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
		select {
		case <-changed:
			recs, changed = h.srv.log.all()
		case <-ctx.Done():
			return ended(ctx)
		}
	}
}

// ended is the status a subscription ends with once its context is done:
// Unavailable when DropSubscriptions ended it.
func ended(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errDropped) {
		return status.Error(codes.Unavailable, errDropped.Error())
	}
	return status.FromContextError(ctx.Err()).Err()
}

// filter is a $all read's or subscription's server-side filter. A nil
// filter allows everything.
type filter struct {
	onType             bool // match the event type rather than the stream name
	prefixes           []string
	re                 *regexp.Regexp
	checkpointInterval uint64
}

func newFilter(fo *api.ReadReq_Options_FilterOptions) (*filter, error) {
	if fo == nil {
		return nil, nil
	}
	f := &filter{}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	switch e := fo.GetFilter().(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = e.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr, f.onType = e.EventType, true
	default:
		return nil, errors.New("the filter matches neither stream names nor event types")
	}
	if expr.GetRegex() != "" {
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, err
		}
		f.re = re
	} else {
		f.prefixes = expr.GetPrefix()
	}
	window := uint64(defaultReadBatchSize)
	if m, ok := fo.GetWindow().(*api.ReadReq_Options_FilterOptions_Max); ok {
		window = uint64(m.Max)
	}
	if fo.GetCheckpointIntervalMultiplier() == 0 || window == 0 {
		return nil, errors.New("the checkpoint interval multiplier and the search window must not be 0")
	}
	f.checkpointInterval = uint64(fo.GetCheckpointIntervalMultiplier()) * window
	return f, nil
}

func (f *filter) allows(rec *record) bool {
	if f == nil {
		return true
	}
	s := rec.stream
	if f.onType {
		s = rec.eventType
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func eventResp(rec *record, asString bool) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               toUUID(rec.id, asString),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(rec.stream)},
			StreamRevision:   rec.revision,
			PreparePosition:  rec.position,
			CommitPosition:   rec.position,
			Metadata: map[string]string{
				"type":         rec.eventType,
				"created":      strconv.FormatInt(rec.created, 10),
				"content-type": rec.contentType,
			},
			CustomMetadata: rec.metadata,
			Data:           rec.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: rec.position},
	}}}
}

func checkpointResp(position uint64) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
		CommitPosition: position, PreparePosition: position,
	}}}
}

func reverse(recs []*record) []*record {
	out := make([]*record, len(recs))
	for i, r := range recs {
		out[len(recs)-1-i] = r
	}
	return out
}
