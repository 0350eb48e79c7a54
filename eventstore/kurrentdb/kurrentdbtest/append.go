package kurrentdbtest

import (
	"errors"
	"fmt"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Append serves Streams.Append: the options message, then the proposed
// messages, answered once the client closes its side.
func (h *streams) Append(srv api.Streams_AppendServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the first message of an append must be its options")
	}
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	if stream == "" {
		return status.Error(codes.InvalidArgument, "the append names no stream")
	}
	var exp expectation
	switch r := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Any:
		exp = expectation{kind: expectAny}
	case *api.AppendReq_Options_NoStream:
		exp = expectation{kind: expectNoStream}
	case *api.AppendReq_Options_StreamExists:
		exp = expectation{kind: expectExists}
	case *api.AppendReq_Options_Revision:
		exp = expectation{kind: expectRevision, revision: r.Revision}
	default:
		return status.Error(codes.InvalidArgument, "the append has no expected stream revision")
	}

	var events []proposed
	for {
		msg, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "only proposed messages may follow an append's options")
		}
		e, err := toProposed(pm)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		events = append(events, e)
	}

	if h.srv.failing(stream) {
		return status.Error(codes.Unavailable, "kurrentdbtest: append failed on purpose")
	}
	out := h.srv.log.append(stream, exp, events)
	return srv.SendAndClose(appendResponse(exp, out))
}

func toProposed(pm *api.AppendReq_ProposedMessage) (proposed, error) {
	id, err := fromUUID(pm.GetId())
	if err != nil {
		return proposed{}, err
	}
	typ, ok := pm.GetMetadata()["type"]
	if !ok {
		return proposed{}, errors.New("required metadata property type is missing")
	}
	ct, ok := pm.GetMetadata()["content-type"]
	if !ok {
		return proposed{}, errors.New("required metadata property content-type is missing")
	}
	return proposed{id: id, eventType: typ, contentType: ct, data: pm.GetData(), metadata: pm.GetCustomMetadata()}, nil
}

// appendResponse builds the answer the server gives: success with the
// stream's revision and the last event's position, or WrongExpectedVersion
// with both the current and the 20.6.0 fields filled.
func appendResponse(exp expectation, out outcome) *api.AppendResp {
	empty := &shared.Empty{}
	if out.ok {
		s := &api.AppendResp_Success{}
		if out.current < 0 {
			s.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: empty}
		} else {
			s.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(out.current)}
		}
		if out.written {
			s.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
				CommitPosition: out.position, PreparePosition: out.position,
			}}
		} else {
			s.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: empty}
		}
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: s}}
	}

	w := &api.AppendResp_WrongExpectedVersion{}
	switch exp.kind {
	case expectAny:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: empty}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: empty}
	case expectExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: empty}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: empty}
	case expectNoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: empty}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: ^uint64(0)}
	case expectRevision:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: exp.revision}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: exp.revision}
	}
	if out.current < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: empty}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: empty}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(out.current)}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(out.current)}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

// fromUUID reads an event ID in either of the protocol's forms.
func fromUUID(u *shared.UUID) (uuid.UUID, error) {
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		var id uuid.UUID
		msb, lsb := uint64(v.Structured.GetMostSignificantBits()), uint64(v.Structured.GetLeastSignificantBits())
		for i := range 8 {
			id[i] = byte(msb >> (56 - 8*i))
			id[8+i] = byte(lsb >> (56 - 8*i))
		}
		return id, nil
	case *shared.UUID_String_:
		id, err := uuid.Parse(v.String_)
		if err != nil {
			return uuid.Nil, fmt.Errorf("event ID %q: %w", v.String_, err)
		}
		return id, nil
	default:
		return uuid.Nil, errors.New("the proposed message has no event ID")
	}
}

// toUUID writes an event ID in the form the read asked for.
func toUUID(id uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	var msb, lsb uint64
	for i := range 8 {
		msb = msb<<8 | uint64(id[i])
		lsb = lsb<<8 | uint64(id[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits: int64(msb), LeastSignificantBits: int64(lsb),
	}}}
}
