// Package casesvc is the CaseService: the gRPC API through which mobility
// centres record a client's trajectory, and read a case back.
//
// Every command runs the same way (execute): validate the request — its
// own limits and the domain command's Validate — without touching the
// store; load the case's stream ("case-<uuid>") and fold it into a
// casework.State; refuse a case of another tenant as not found; recognise a
// retried request by its request ID in the history and answer with the
// original result; seal the request's personal parts with the client's
// data key; casework.Decide; append the events expecting the revision that
// was loaded. When another command got in between, the append fails and
// the command is loaded and decided again, at most Options.MaxAttempts
// times, then ABORTED. Errors become gRPC statuses in one place (status).
//
// Event IDs derive from tenant, case, request ID, a digest of the
// command's non-personal fields and the event's index, so the store itself
// also recognises a retry, and a request ID reused for another command is
// told apart from a retry.
//
// Personal data is sealed with keyring under one key per client (derived
// from tenant and client ID, recorded in CaseOpened). EraseClientData
// appends ClientDataErased and then erases the key; a crash between the two
// is healed by the erasure journal at the next start (Recover) and by every
// load of an erased case.
package casesvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/keyring"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
	"github.com/koers-io/koers/services/authn"
)

// Defaults of Options.
const (
	// DefaultMaxAttempts bounds the load-decide-append rounds of a command.
	DefaultMaxAttempts = 5
	// DefaultCacheSize is how many cases the service keeps in memory.
	DefaultCacheSize = 10_000
	// DefaultLocation names the practice's calendar.
	DefaultLocation = "Europe/Amsterdam"
	// MaxRequestBytes is the largest request the API accepts; the servers
	// that register the service set grpc.MaxRecvMsgSize to it. The largest
	// valid request, a development plan of full length, is about 60 KB.
	MaxRequestBytes = 256 << 10
	// SchemaVersion is the schema version of the events the service
	// writes.
	SchemaVersion = 1
)

// Options tune a Service. The zero value of each field means its default.
type Options struct {
	// MaxAttempts bounds how often a command is decided again after
	// another command changed the case; default DefaultMaxAttempts.
	MaxAttempts int
	// CacheSize is how many cases are kept in memory, so that a command
	// reads only the events since; default DefaultCacheSize, negative
	// keeps none.
	CacheSize int
	// Location is the practice's calendar: the day a command happened
	// starts at its midnight there, and deadlines are judged on its day.
	// Default DefaultLocation, or UTC where that zone is not known.
	Location *time.Location
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// JournalDir holds the erasure journal. Empty keeps none: a crash
	// between storing ClientDataErased and erasing the key then heals only
	// when the case is next loaded.
	JournalDir string
	// Audit records every read of a case's personal data (GetCase) before
	// the answer leaves; when it cannot, the read fails and discloses
	// nothing. Nil records nothing: for tests and tools, never a server.
	Audit Auditor
	// Logger receives the service's errors; default slog.Default().
	Logger *slog.Logger
}

// Auditor keeps the audit trail; *audit.Recorder is the one Koers runs.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

func (o Options) withDefaults() Options {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Location == nil {
		loc, err := time.LoadLocation(DefaultLocation)
		if err != nil {
			loc = time.UTC
		}
		o.Location = loc
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Service implements casev1.CaseServiceServer on an event store and a
// keyring. It is safe for concurrent use.
type Service struct {
	casev1.UnimplementedCaseServiceServer

	store   eventstore.Store
	keys    *keyring.Keyring
	opts    Options
	log     *slog.Logger
	cache   *caseCache
	journal *journal
}

// New returns a service that keeps cases in store and the clients' data
// keys in keys.
func New(store eventstore.Store, keys *keyring.Keyring, opts Options) (*Service, error) {
	opts = opts.withDefaults()
	j, err := openJournal(opts.JournalDir)
	if err != nil {
		return nil, err
	}
	return &Service{
		store:   store,
		keys:    keys,
		opts:    opts,
		log:     opts.Logger,
		cache:   newCaseCache(opts.CacheSize),
		journal: j,
	}, nil
}

// Register registers the service with a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	casev1.RegisterCaseServiceServer(r, s)
}

// prepared is a command that passed validation.
type prepared struct {
	spec
	principal authn.Principal
	caseID    string
	stream    string
	requestID string
	digest    string
	// first is the ID of the command's first event, which says which
	// command it is (see eventID).
	first    uuid.UUID
	occurred casework.Date
}

// execute runs a command: validate, then load, decide and append until the
// append lands or the attempts run out.
func (s *Service) execute(ctx context.Context, sp spec) (*casev1.CommandResult, error) {
	result, err := s.executeCommand(ctx, sp)
	return result, s.status(err)
}

func (s *Service) executeCommand(ctx context.Context, sp spec) (*casev1.CommandResult, error) {
	principal, ok := authn.PrincipalFromContext(ctx)
	if !ok {
		return nil, errNoCaller
	}
	p, err := s.prepare(principal, sp)
	if err != nil {
		return nil, err
	}
	var cmd casework.Command // sealed with the client's key once known
	fresh := false           // read the store even for a cached case
	for attempt := 0; attempt < s.opts.MaxAttempts; {
		c, cached, err := s.loadFor(ctx, p, fresh)
		if err != nil {
			return nil, err
		}
		if err := s.authorize(ctx, p, c); err != nil {
			if cached && !errors.Is(err, casework.ErrCaseAlreadyOpened) && !errors.Is(err, casework.ErrCaseNotOpened) {
				// Refused on a cached copy: refuse only what the store's
				// latest state refuses (the case may just have been
				// referred to the caller).
				fresh = true
				continue
			}
			return nil, err
		}
		if r, ok := c.request(p.requestID); ok {
			if r.firstEvent != p.first {
				return nil, invalid([]casework.FieldViolation{{Field: "request_id",
					Description: "already used for a different command on this case; use a new request ID"}})
			}
			return p.result(r.revision, r.position), nil
		}
		if cmd == nil {
			if cmd, err = s.seal(p, c); err != nil {
				return nil, err
			}
		}
		result, err := s.decideAndAppend(ctx, p, c, cmd)
		var rule *casework.Error
		switch {
		case cached && errors.As(err, &rule):
			// Refused on a cached copy: refuse only what the store's
			// latest state refuses.
			fresh = true
			continue
		case errors.Is(err, errMoved):
			fresh = true
			if attempt++; attempt < s.opts.MaxAttempts {
				if err := backOff(ctx, attempt); err != nil {
					return nil, err
				}
			}
			continue
		}
		return result, err
	}
	return nil, errConflict
}

// backOff waits a random while, longer after each failed attempt, so that
// commands racing for one case spread out instead of colliding again.
func backOff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// prepare validates a command without looking at the case: the request
// ID, the case ID, the request's own limits and the domain command's
// Validate, with its personal parts sealed in shape only.
func (s *Service) prepare(principal authn.Principal, sp spec) (prepared, error) {
	f := &form{sealer: shapeSealer{}}
	p := prepared{spec: sp, principal: principal, requestID: sp.req.GetRequestId()}
	switch id := p.requestID; {
	case id == "":
		f.add("request_id", "required")
	case !validRequestID(id):
		f.add("request_id", "must be 1 to %d characters from A-Z, a-z, 0-9 and . _ : -", MaxRequestIDLength)
	}
	switch raw := sp.req.GetCaseId(); {
	case raw == "" && sp.opening:
		p.caseID = derivedCaseID(principal.Tenant, p.requestID)
	case raw == "":
		f.add("case_id", "required")
	default:
		var ok bool
		if p.caseID, ok = parseCaseID(raw); !ok {
			f.add("case_id", "must be a UUID in its 36-character form, for example 3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b")
		}
	}
	cmd, occurred := sp.build(f)
	violations := append(f.v, cmd.Validate()...)
	if len(violations) > 0 {
		return prepared{}, invalid(violations)
	}
	p.stream = streamOf(p.caseID)
	p.digest = digestOf(sp.method, sp.req.(proto.Message))
	p.first = eventID(principal.Tenant, p.caseID, p.requestID, p.digest, 0)
	p.occurred = occurred
	return p, nil
}

func (p prepared) result(revision uint64, position eventstore.Position) *casev1.CommandResult {
	return &casev1.CommandResult{CaseId: p.caseID, Revision: revision, Position: uint64(position)}
}

// loadFor loads the command's case as its caller may see it: a case of
// another tenant does not exist for it. An erased case has its key erased
// first, healing an erasure that stopped between event and key.
func (s *Service) loadFor(ctx context.Context, p prepared, fresh bool) (*loaded, bool, error) {
	c, cached, err := s.load(ctx, p.stream, fresh)
	if err != nil {
		return nil, false, err
	}
	if c.exists() && c.tenant != p.principal.Tenant {
		if p.opening {
			return nil, false, casework.ErrCaseAlreadyOpened
		}
		return nil, false, casework.ErrCaseNotOpened
	}
	if c.state.IsErased() {
		if err := s.ensureErased(c.state.ClientKeyID); err != nil {
			return nil, false, err
		}
	}
	return c, cached, nil
}

// seal builds the domain command with its personal parts sealed under the
// client's key: for a new case the key of its client ID, otherwise the key
// its CaseOpened names.
func (s *Service) seal(p prepared, c *loaded) (casework.Command, error) {
	keyID := c.state.ClientKeyID
	if p.opening {
		keyID = clientKeyID(p.principal.Tenant, p.clientID)
	}
	if !c.exists() && !p.opening {
		// Nothing to seal for: Decide says the case was never opened.
		keyID = ""
	}
	k := &keySealer{keys: s.keys, keyID: keyID}
	f := &form{sealer: k}
	if keyID == "" {
		f.sealer = shapeSealer{}
	}
	cmd, _ := p.build(f)
	if k.err != nil {
		return nil, k.err
	}
	return cmd, nil
}

// errMoved: the case moved between load and append; load again.
var errMoved = errors.New("the case moved on")

// decideAndAppend decides cmd on the loaded case and appends the events
// expecting the case unchanged since. It fails with errMoved when it was
// not.
func (s *Service) decideAndAppend(ctx context.Context, p prepared, c *loaded, cmd casework.Command) (*casev1.CommandResult, error) {
	events, err := casework.Decide(c.state, cmd)
	if err != nil {
		return nil, err
	}
	data, err := s.eventData(p, events)
	if err != nil {
		return nil, err
	}
	erasing := erases(events)
	if erasing {
		if err := s.journal.begin(p.stream); err != nil {
			return nil, err
		}
	}
	res, err := s.store.Append(ctx, p.stream, c.expected(), data...)
	var wrong *eventstore.WrongRevisionError
	switch {
	case errors.As(err, &wrong), errors.Is(err, eventstore.ErrDuplicateEventID):
		// Another command got in, or this one's first attempt landed
		// after all (the next load finds it by its request ID).
		return nil, errMoved
	case err != nil:
		return nil, fmt.Errorf("append to %s: %w", p.stream, err)
	}
	if c.events+uint64(len(events)) == res.Revision+1 {
		s.cache.put(p.stream, c.appended(p.principal.Tenant, events, p.requestID, p.first, res))
	} else {
		// The store recognised an earlier append of this command that
		// did not follow the loaded revision: what it holds is not what
		// this decision assumed.
		s.cache.remove(p.stream)
	}
	if erasing {
		if err := s.erase(p.stream, c.state.ClientKeyID); err != nil {
			return nil, err
		}
	}
	return p.result(res.Revision, res.Position), nil
}

// eventData wraps the decided events for the store: IDs derived from the
// command, type the full protobuf name, and the envelope as metadata.
func (s *Service) eventData(p prepared, events []proto.Message) ([]eventstore.EventData, error) {
	now := s.opts.Now()
	occurred := now
	if !p.occurred.IsZero() {
		occurred = time.Date(p.occurred.Year, p.occurred.Month, p.occurred.Day, 0, 0, 0, 0, s.opts.Location)
	}
	correlation := p.principal.CorrelationID
	if correlation == "" {
		correlation = p.requestID
	}
	meta, err := proto.Marshal(&eventv1.Metadata{
		TenantId:      p.principal.Tenant,
		CaseId:        p.caseID,
		OccurredAt:    timestamppb.New(occurred),
		RecordedAt:    timestamppb.New(now),
		Actor:         p.principal.Subject,
		RequestId:     p.requestID,
		CorrelationId: correlation,
		CausationId:   p.requestID,
		SchemaVersion: SchemaVersion,
	})
	if err != nil {
		return nil, fmt.Errorf("marshal metadata: %w", err)
	}
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		id := p.first
		if i > 0 {
			id = eventID(p.principal.Tenant, p.caseID, p.requestID, p.digest, i)
		}
		body, err := proto.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("marshal %T: %w", e, err)
		}
		if body == nil {
			body = []byte{} // an event with every field at its zero value
		}
		out[i] = eventstore.EventData{
			ID:       id,
			Type:     string(e.ProtoReflect().Descriptor().FullName()),
			Data:     body,
			Metadata: meta,
		}
	}
	return out, nil
}
