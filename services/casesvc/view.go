package casesvc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/keyring"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/authz"
)

// GetCase implements casev1.CaseServiceServer: the case's state and its
// history, read from the store (not the cache), with personal parts opened
// where the client's key allows.
func (s *Service) GetCase(ctx context.Context, req *casev1.GetCaseRequest) (*casev1.GetCaseResponse, error) {
	resp, err := s.getCase(ctx, req)
	return resp, s.status(err)
}

func (s *Service) getCase(ctx context.Context, req *casev1.GetCaseRequest) (*casev1.GetCaseResponse, error) {
	principal, ok := authn.PrincipalFromContext(ctx)
	if !ok {
		return nil, errNoCaller
	}
	caseID, ok := parseCaseID(req.GetCaseId())
	if !ok {
		description := "must be a UUID in its 36-character form"
		if req.GetCaseId() == "" {
			description = "required"
		}
		return nil, invalid([]casework.FieldViolation{{Field: "case_id", Description: description}})
	}
	stream := streamOf(caseID)
	recorded, err := s.store.ReadStream(ctx, stream, eventstore.ReadOptions{})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, casework.ErrCaseNotOpened
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	h, err := s.history(recorded)
	if err != nil {
		return nil, err
	}
	if h.tenant != principal.Tenant {
		return nil, casework.ErrCaseNotOpened
	}
	if err := authz.Case(ctx, caseFacts(h.tenant, caseID, h.state)); err != nil {
		if err == authz.ErrNoSuchCase {
			return nil, casework.ErrCaseNotOpened
		}
		return nil, err
	}
	if h.state.IsErased() {
		if err := s.ensureErased(h.state.ClientKeyID); err != nil {
			return nil, err
		}
	}
	o := opener{s: s, erased: h.state.IsErased()}
	resp := &casev1.GetCaseResponse{History: make([]*casev1.HistoryEntry, len(h.events))}
	var parts personalParts
	for i, e := range h.events {
		resp.History[i] = o.entry(e, &parts)
	}
	last := recorded[len(recorded)-1]
	resp.Case = s.caseView(caseID, last, h.state, parts)
	if s.opts.Audit != nil {
		err := s.opts.Audit.Record(ctx, audit.Entry{
			Principal: principal, Action: auditv1.AuditAction_AUDIT_ACTION_READ_CASE,
			Method: casev1.CaseService_GetCase_FullMethodName, CaseID: caseID, PersonalData: !h.state.IsErased(),
		})
		if err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// decoded is one event of a history, decoded.
type decoded struct {
	recorded eventstore.RecordedEvent
	body     proto.Message // nil for a type this Koers does not know
	meta     *eventv1.Metadata
}

type history struct {
	tenant string
	state  casework.State
	events []decoded
}

func (s *Service) history(recorded []eventstore.RecordedEvent) (history, error) {
	var h history
	h.events = make([]decoded, len(recorded))
	for i, ev := range recorded {
		body, meta, err := decode(ev)
		if err != nil {
			return history{}, err
		}
		if i == 0 {
			h.tenant = meta.GetTenantId()
		}
		if body != nil {
			h.state = casework.Evolve(h.state, body)
		}
		h.events[i] = decoded{recorded: ev, body: body, meta: meta}
	}
	return h, nil
}

// personalParts are the personal parts the case's state shows: the latest
// of each.
type personalParts struct {
	client, answers, goals *casev1.PersonalData
}

// opener opens the sealed parts of one case's events.
type opener struct {
	s *Service
	// erased is true when the case records ClientDataErased: nothing is
	// opened, whatever the keyring still holds.
	erased bool
}

// historyFields maps each event type to its field of HistoryEntry's
// "event" oneof.
var historyFields = func() map[protoreflect.FullName]protoreflect.FieldDescriptor {
	oneof := (&casev1.HistoryEntry{}).ProtoReflect().Descriptor().Oneofs().ByName("event")
	m := make(map[protoreflect.FullName]protoreflect.FieldDescriptor, oneof.Fields().Len())
	for i := 0; i < oneof.Fields().Len(); i++ {
		fd := oneof.Fields().Get(i)
		m[fd.Message().FullName()] = fd
	}
	return m
}()

// plaintexts names the plaintext message inside each sealed field of an
// event, by "<event type>.<field>".
var plaintexts = map[string]func() proto.Message{
	"koers.case.v1.CaseOpened.client":                     func() proto.Message { return new(casev1.ClientDetails) },
	"koers.case.v1.IntakeCompleted.answers":               func() proto.Message { return new(casev1.IntakeAnswers) },
	"koers.case.v1.QuestionReclassified.explanation":      func() proto.Message { return new(casev1.Note) },
	"koers.case.v1.CaseReferred.details":                  func() proto.Message { return new(casev1.Note) },
	"koers.case.v1.SessionRecorded.notes":                 func() proto.Message { return new(casev1.Note) },
	"koers.case.v1.DevelopmentPlanAgreed.goals":           func() proto.Message { return new(casev1.DevelopmentGoals) },
	"koers.case.v1.DevelopmentPlanRevised.goals":          func() proto.Message { return new(casev1.DevelopmentGoals) },
	"koers.case.v1.ReintegrationCheckpointRecorded.notes": func() proto.Message { return new(casev1.Note) },
	"koers.case.v1.CaseClosed.summary":                    func() proto.Message { return new(casev1.Note) },
}

const sealedName = protoreflect.FullName("koers.event.v1.Sealed")

// entry makes the history entry of e, and notes its personal part in parts
// when the case's state shows it.
func (o opener) entry(e decoded, parts *personalParts) *casev1.HistoryEntry {
	ev := e.recorded
	out := &casev1.HistoryEntry{
		EventId:       ev.ID.String(),
		Revision:      ev.Revision,
		Position:      uint64(ev.Position),
		EventType:     ev.Type,
		RecordedAt:    timestamppb.New(ev.RecordedAt),
		OccurredAt:    e.meta.GetOccurredAt(),
		Actor:         e.meta.GetActor(),
		RequestId:     e.meta.GetRequestId(),
		CorrelationId: e.meta.GetCorrelationId(),
	}
	if e.body == nil {
		return out
	}
	body := e.body.ProtoReflect()
	out.PersonalData = o.takeSealed(body)
	if fd, ok := historyFields[body.Descriptor().FullName()]; ok {
		out.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(body))
	}
	if pd := out.PersonalData; pd != nil {
		switch e.body.(type) {
		case *casev1.CaseOpened:
			parts.client = pd
		case *casev1.IntakeCompleted:
			parts.answers = pd
		case *casev1.DevelopmentPlanAgreed, *casev1.DevelopmentPlanRevised:
			parts.goals = pd
		}
	}
	return out
}

// takeSealed clears the sealed field of an event body and returns it
// opened; nil when the body has none set.
func (o opener) takeSealed(body protoreflect.Message) *casev1.PersonalData {
	fields := body.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Message() == nil || fd.Message().FullName() != sealedName || !body.Has(fd) {
			continue
		}
		sealed := body.Get(fd).Message().Interface().(*eventv1.Sealed)
		body.Clear(fd)
		return o.open(body.Descriptor().FullName(), fd.Name(), sealed)
	}
	return nil
}

func (o opener) open(event protoreflect.FullName, field protoreflect.Name, sealed *eventv1.Sealed) *casev1.PersonalData {
	pd := &casev1.PersonalData{Field: string(field), Status: casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_ERASED}
	if o.erased {
		return pd
	}
	newPlain, ok := plaintexts[string(event)+"."+string(field)]
	if !ok {
		pd.Status = casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_UNAVAILABLE
		return pd
	}
	plain := newPlain()
	err := o.s.keys.Unseal(sealed, plain)
	switch {
	case errors.Is(err, keyring.ErrErased):
		return pd
	case err != nil:
		if !errors.Is(err, keyring.ErrNoKey) {
			o.s.log.Error("cannot open personal data", "event", event, "field", field, "err", err)
		}
		pd.Status = casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_UNAVAILABLE
		return pd
	}
	pd.Status = casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_AVAILABLE
	switch p := plain.(type) {
	case *casev1.ClientDetails:
		pd.Plaintext = &casev1.PersonalData_ClientDetails{ClientDetails: p}
	case *casev1.IntakeAnswers:
		pd.Plaintext = &casev1.PersonalData_IntakeAnswers{IntakeAnswers: p}
	case *casev1.Note:
		pd.Plaintext = &casev1.PersonalData_Note{Note: p}
	case *casev1.DevelopmentGoals:
		pd.Plaintext = &casev1.PersonalData_DevelopmentGoals{DevelopmentGoals: p}
	}
	return pd
}

// clonePD copies a personal part so that it can appear twice in a
// response.
func clonePD(pd *casev1.PersonalData) *casev1.PersonalData {
	if pd == nil {
		return nil
	}
	return proto.CloneOf(pd)
}
