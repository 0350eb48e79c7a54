package casesvc

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// loaded is a case as a command needs it: its state, the revision and
// position of its last event, its tenant, and the commands that made it,
// for recognising a retry. A loaded value is never changed once built, so
// the cache can hand the same one to many calls; extending it makes a new
// one.
type loaded struct {
	// events counts the case's events; 0 for a case never opened, when
	// the other fields are zero too.
	events   uint64
	revision uint64
	position eventstore.Position
	// tenant owns the case: the tenant of its first event's metadata.
	tenant string
	state  casework.State
	// requests lists the commands applied, oldest first. Whoever extends
	// it appends past its length or works on a copy, so sharing it is
	// safe.
	requests []request
}

// request is one command applied to a case: the events of one append.
type request struct {
	id string
	// firstEvent is the ID of its first event, which says which command
	// it was (see eventID).
	firstEvent uuid.UUID
	// revision and position are those of its last event: its result.
	revision uint64
	position eventstore.Position
}

// exists reports whether the case has any events.
func (l *loaded) exists() bool { return l.events > 0 }

// expected is the revision an append after l expects.
func (l *loaded) expected() eventstore.ExpectedRevision {
	if !l.exists() {
		return eventstore.NoStream
	}
	return eventstore.Exact(l.revision)
}

// request returns the command with request ID id, if one was applied.
func (l *loaded) request(id string) (request, bool) {
	for i := len(l.requests) - 1; i >= 0; i-- {
		if l.requests[i].id == id {
			return l.requests[i], true
		}
	}
	return request{}, false
}

// extended returns l with events folded in; events follow l's last one.
func (l *loaded) extended(events []eventstore.RecordedEvent) (*loaded, error) {
	next := *l
	// noteRequest may extend the last request in place: work on a copy.
	next.requests = slices.Clone(l.requests)
	for _, ev := range events {
		body, meta, err := decode(ev)
		if err != nil {
			return nil, err
		}
		if next.events == 0 {
			next.tenant = meta.GetTenantId()
		}
		next.events++
		next.revision, next.position = ev.Revision, ev.Position
		if body != nil {
			next.state = casework.Evolve(next.state, body)
		}
		next.noteRequest(meta.GetRequestId(), ev)
	}
	return &next, nil
}

// appended returns l after tenant's append of events that landed at
// result.
func (l *loaded) appended(tenant string, events []proto.Message, requestID string, first uuid.UUID, result eventstore.AppendResult) *loaded {
	next := *l
	if next.events == 0 {
		next.tenant = tenant
	}
	next.requests = append(slices.Clip(l.requests), request{
		id: requestID, firstEvent: first, revision: result.Revision, position: result.Position,
	})
	for _, e := range events {
		next.state = casework.Evolve(next.state, e)
	}
	next.events += uint64(len(events))
	next.revision, next.position = result.Revision, result.Position
	return &next
}

// noteRequest records that ev belongs to the command with request ID id.
// A command's events are stored together, so an event of the same request
// as the one before extends that command.
func (l *loaded) noteRequest(id string, ev eventstore.RecordedEvent) {
	if id == "" {
		return
	}
	if n := len(l.requests); n > 0 && l.requests[n-1].id == id && l.requests[n-1].revision+1 == ev.Revision {
		l.requests[n-1].revision, l.requests[n-1].position = ev.Revision, ev.Position
		return
	}
	l.requests = append(l.requests, request{id: id, firstEvent: ev.ID, revision: ev.Revision, position: ev.Position})
}

// decode reads an event's body and metadata. A body of a type this Koers
// does not know (written by a newer one) is nil: the state ignores it.
func decode(ev eventstore.RecordedEvent) (proto.Message, *eventv1.Metadata, error) {
	meta := new(eventv1.Metadata)
	if err := proto.Unmarshal(ev.Metadata, meta); err != nil {
		return nil, nil, fmt.Errorf("event %s of %s: metadata: %w", ev.ID, ev.Stream, err)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(ev.Type))
	if errors.Is(err, protoregistry.NotFound) {
		return nil, meta, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("event %s of %s: type %q: %w", ev.ID, ev.Stream, ev.Type, err)
	}
	body := mt.New().Interface()
	if err := proto.Unmarshal(ev.Data, body); err != nil {
		return nil, nil, fmt.Errorf("event %s of %s: %s body: %w", ev.ID, ev.Stream, ev.Type, err)
	}
	return body, meta, nil
}

// load returns the case of stream. With fresh, or without a cached copy,
// it asks the store for the events after the copy's revision (all of them
// without one). Without fresh a cached copy is returned as it is: a command
// may decide on it because its append expects the copy's revision, so a
// copy that fell behind (another process appended) shows as a conflict.
func (s *Service) load(ctx context.Context, stream string, fresh bool) (c *loaded, cached bool, err error) {
	base, cached := s.cache.get(stream)
	if cached && !fresh {
		return base, true, nil
	}
	if !cached {
		base = &loaded{}
	}
	from := uint64(0)
	if base.exists() {
		from = base.revision + 1
	}
	events, err := s.store.ReadStream(ctx, stream, eventstore.ReadOptions{From: from})
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound) && !base.exists():
		return base, false, nil
	case errors.Is(err, eventstore.ErrStreamNotFound):
		// Streams are never deleted; a store swapped under a running
		// service would get here. Believe the store.
		s.cache.remove(stream)
		return &loaded{}, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("load %s: %w", stream, err)
	case len(events) == 0:
		return base, false, nil
	}
	next, err := base.extended(events)
	if err != nil {
		return nil, false, fmt.Errorf("load %s: %w", stream, err)
	}
	s.cache.put(stream, next)
	return next, false, nil
}

// caseCache keeps the most recently used cases, so that a command on a
// case reads only the events added since. Its entries are immutable; a
// newer one replaces an older one, never the other way round.
type caseCache struct {
	capacity int

	mu      sync.Mutex
	entries map[string]*list.Element
	order   list.List // of *cacheEntry, most recently used first
}

type cacheEntry struct {
	stream string
	value  *loaded
}

// newCaseCache returns a cache of at most capacity cases; 0 or less keeps
// none.
func newCaseCache(capacity int) *caseCache {
	return &caseCache{capacity: capacity, entries: make(map[string]*list.Element)}
}

func (c *caseCache) get(stream string) (*loaded, bool) {
	if c.capacity <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[stream]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).value, true
}

func (c *caseCache) put(stream string, value *loaded) {
	if c.capacity <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[stream]; ok {
		entry := e.Value.(*cacheEntry)
		if value.events > entry.value.events {
			entry.value = value
		}
		c.order.MoveToFront(e)
		return
	}
	if c.order.Len() >= c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).stream)
	}
	c.entries[stream] = c.order.PushFront(&cacheEntry{stream: stream, value: value})
}

func (c *caseCache) remove(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[stream]; ok {
		c.order.Remove(e)
		delete(c.entries, stream)
	}
}
