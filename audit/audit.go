// Package audit is the audit trail: who read a case's personal data or
// exported data out of Koers, what, and when.
//
// A Recorder writes each such act as one event in the event store itself,
// so the trail is as durable as the cases, is in the same backups, and
// works on every store adapter. Each tenant has its own stream,
// "audit-<tenant>" (StreamName), appended with eventstore.Any: the trail
// only grows, and its records are numbered by their stream revision from
// 0, so a missing one shows. The relay keeps these streams off the NATS
// event stream (relay.Options.Skip = IsAuditStream): projections and
// agencies have no business with them.
//
// # Fail closed
//
// Callers record before the data leaves, and disclose nothing when Record
// fails: every error of Record wraps ErrNotRecorded, and ErrInvalidEntry as
// well when the entry itself is malformed (a caller's bug, not an outage).
// A record can therefore exist for an answer that was then lost on its way,
// never the other way round.
//
// # Record IDs and retries
//
// Each record gets a fresh random event ID unless Entry.ID sets one. A
// caller's repeated call is a new read and is recorded again. A caller
// that retries Record itself after an error whose outcome it cannot know
// (a timeout) should set Entry.ID once and reuse it: the store recognises
// the repeated append and writes the record once.
//
// # Reading
//
// List scans one tenant's stream backwards from its newest record (or a
// page token) and filters in memory. A call costs in proportion to the
// records it passes over, at most Options.MaxScan; a filter on the time of
// the record stops the scan once it is past the range (see MaxClockSkew).
// That is enough for an administrator's occasional query; an index (a
// projection of the trail) is the way to make filtered queries over long
// trails cheap.
//
// Records hold no client personal data: a case is named by its ID, a caller
// by its subject, a report by its organisation, department and period.
package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/eventstore"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// streamPrefix starts the name of every audit stream.
const streamPrefix = "audit-"

// EventType is the store event type of every audit record: the full name of
// the body's message.
const EventType = "koers.audit.v1.AuditRecord"

// SchemaVersion is the schema version of the records a Recorder writes.
const SchemaVersion = 1

// StreamName returns the name of tenant's audit stream.
func StreamName(tenant string) string { return streamPrefix + tenant }

// IsAuditStream reports whether stream is a tenant's audit stream. It is the
// relay's Skip option: no case stream starts with "audit-".
func IsAuditStream(stream string) bool { return strings.HasPrefix(stream, streamPrefix) }

var (
	// ErrNotRecorded is wrapped by every error of Record: the act was not
	// recorded, so the data must not be disclosed.
	ErrNotRecorded = errors.New("audit: not recorded")
	// ErrInvalidEntry is wrapped, besides ErrNotRecorded, by Record's
	// errors for an entry that breaks the rules of Entry: a bug of the
	// caller, not an outage. Nothing was written.
	ErrInvalidEntry = errors.New("audit: invalid entry")
)

// Defaults of Options.
const (
	// DefaultMaxScan bounds the records one List call passes over.
	DefaultMaxScan = 10_000
)

// Options tune a Recorder. The zero value of each field means its default.
type Options struct {
	// MaxScan bounds the records one List call passes over; past it, List
	// returns the page so far with a token to go on. Default
	// DefaultMaxScan.
	MaxScan int
}

func (o Options) withDefaults() Options {
	if o.MaxScan <= 0 {
		o.MaxScan = DefaultMaxScan
	}
	return o
}

// Recorder writes audit records to an event store and reads them back. It
// is safe for concurrent use.
type Recorder struct {
	store eventstore.Store
	opts  Options
}

// New returns a recorder that keeps the trail in store.
func New(store eventstore.Store, opts Options) *Recorder {
	return &Recorder{store: store, opts: opts.withDefaults()}
}

// Record appends e to the audit stream of its principal's tenant, one
// append per record. It returns once the store acknowledged the append, so
// the record is as durable as the store's appends. Every error wraps
// ErrNotRecorded; the caller must then not disclose the data.
func (r *Recorder) Record(ctx context.Context, e Entry) error {
	if err := r.record(ctx, e); err != nil {
		return fmt.Errorf("%w: %s by %q: %w", ErrNotRecorded, e.Action, e.Principal.Subject, err)
	}
	return nil
}

func (r *Recorder) record(ctx context.Context, e Entry) error {
	now := time.Now()
	rec, err := e.proto(now)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	id := e.ID
	if id == uuid.Nil {
		if id, err = uuid.NewRandom(); err != nil {
			return fmt.Errorf("making a record ID: %w", err)
		}
	}
	data, err := proto.Marshal(rec)
	if err != nil {
		return fmt.Errorf("marshal the record: %w", err)
	}
	meta, err := proto.Marshal(&eventv1.Metadata{
		TenantId:      rec.GetPrincipal().GetTenantId(),
		CaseId:        rec.GetCaseId(),
		OccurredAt:    timestamppb.New(now),
		RecordedAt:    timestamppb.New(now),
		Actor:         rec.GetPrincipal().GetSubject(),
		CorrelationId: rec.GetCorrelationId(),
		SchemaVersion: SchemaVersion,
	})
	if err != nil {
		return fmt.Errorf("marshal the metadata: %w", err)
	}
	stream := StreamName(rec.GetPrincipal().GetTenantId())
	ev := eventstore.EventData{ID: id, Type: EventType, Data: data, Metadata: meta}
	if _, err := r.store.Append(ctx, stream, eventstore.Any, ev); err != nil {
		return fmt.Errorf("append record %s to %s: %w", id, stream, err)
	}
	return nil
}

// recordOf decodes a stored audit record.
func recordOf(ev eventstore.RecordedEvent) (*auditv1.AuditEntry, error) {
	if ev.Type != EventType {
		return nil, fmt.Errorf("%w: revision %d of %s has type %q, not %s", ErrCorruptRecord, ev.Revision, ev.Stream, ev.Type, EventType)
	}
	var rec auditv1.AuditRecord
	if err := proto.Unmarshal(ev.Data, &rec); err != nil {
		return nil, fmt.Errorf("%w: revision %d of %s: %v", ErrCorruptRecord, ev.Revision, ev.Stream, err)
	}
	return &auditv1.AuditEntry{
		Id:         ev.ID.String(),
		Revision:   ev.Revision,
		RecordedAt: timestamppb.New(ev.RecordedAt),
		Record:     &rec,
	}, nil
}
