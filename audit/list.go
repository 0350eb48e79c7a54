package audit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/koers-io/koers/eventstore"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	"github.com/koers-io/koers/services/authn"
)

// Page sizes of List.
const (
	// DefaultPageSize is the page size when none is asked.
	DefaultPageSize = 100
	// MaxPageSize is the largest page; larger requests get this many.
	MaxPageSize = 1000
)

// MaxClockSkew is how far a record's occurred-at instant (the Koers
// server's clock) may lie after the store's commit time of the record (the
// store's clock). List relies on it to stop scanning: records are
// committed in revision order, and each took its instant before its
// commit, so once the scan passes a record committed more than MaxClockSkew
// before Filter.From, no earlier record can have occurred in the range.
const MaxClockSkew = 5 * time.Minute

// readChunk is how many records List reads from the store at a time.
const readChunk = 256

var (
	// ErrInvalidFilter is returned by List for a filter, tenant or page
	// size that breaks the rules of Filter.
	ErrInvalidFilter = errors.New("audit: invalid filter")
	// ErrInvalidPageToken is returned by List for a page token it did not
	// make, or made for another tenant or other filters.
	ErrInvalidPageToken = errors.New("audit: invalid page token")
	// ErrCorruptRecord is returned by List when an event of the trail is
	// not an audit record that decodes: the trail cannot be listed
	// completely.
	ErrCorruptRecord = errors.New("audit: corrupt record")
)

// Filter selects records. Empty fields do not filter; the set ones must all
// hold.
type Filter struct {
	// CaseID selects the records about one case (a UUID, any case).
	CaseID string
	// Subject selects the records of one principal's subject.
	Subject string
	// Action selects one action; unspecified means any.
	Action auditv1.AuditAction
	// From selects records that occurred at or after it.
	From time.Time
	// Until selects records that occurred before it; it must be after
	// From.
	Until time.Time
}

// Page is one page of records.
type Page struct {
	// Entries are the page's records, newest first (by revision).
	Entries []*auditv1.AuditEntry
	// NextPageToken continues the listing; empty once the trail was
	// scanned to its first record (or past Filter.From). A page may be
	// short, even empty, while it is set: the scan stopped at
	// Options.MaxScan.
	NextPageToken string
}

// List returns a page of the records of tenant's trail that f selects,
// newest first. pageSize 0 means DefaultPageSize; above MaxPageSize it is
// MaxPageSize. pageToken is empty for the first page, or a NextPageToken
// of an earlier call with the same tenant and filter.
//
// List reads the stream backwards from the token's revision, at most
// Options.MaxScan records per call; see the package doc for the cost.
func (r *Recorder) List(ctx context.Context, tenant string, f Filter, pageSize int, pageToken string) (Page, error) {
	f, err := f.normalized(tenant, pageSize)
	if err != nil {
		return Page{}, err
	}
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxPageSize)
	digest := f.digest(tenant)
	from := eventstore.StreamEnd
	if pageToken != "" {
		if from, err = decodeToken(pageToken, digest); err != nil {
			return Page{}, err
		}
	}
	page, next, more, err := r.scan(ctx, StreamName(tenant), f, pageSize, from)
	if err != nil {
		return Page{}, fmt.Errorf("audit: list the trail of %s: %w", tenant, err)
	}
	if more {
		page.NextPageToken = encodeToken(next, digest)
	}
	return page, nil
}

// scan reads the stream backwards from revision from and collects the
// records f selects until the page is full, the scan budget is spent, or
// the stream (or the time range) ends. more says whether revisions from
// next down remain to be scanned.
func (r *Recorder) scan(ctx context.Context, stream string, f Filter, pageSize int, from uint64) (page Page, next uint64, more bool, err error) {
	stopBefore := time.Time{}
	if !f.From.IsZero() {
		stopBefore = f.From.Add(-MaxClockSkew)
	}
	for scanned := 0; scanned < r.opts.MaxScan; {
		events, err := r.store.ReadStream(ctx, stream, eventstore.ReadOptions{
			Backwards: true, From: from, Limit: min(readChunk, r.opts.MaxScan-scanned),
		})
		switch {
		case errors.Is(err, eventstore.ErrStreamNotFound):
			return page, 0, false, nil // nothing recorded yet
		case err != nil:
			return page, 0, false, err
		case len(events) == 0:
			return page, 0, false, nil
		}
		for _, ev := range events {
			scanned++
			entry, err := recordOf(ev)
			if err != nil {
				return page, 0, false, err
			}
			if f.matches(entry.GetRecord()) {
				page.Entries = append(page.Entries, entry)
			}
			if ev.Revision == 0 || !stopBefore.IsZero() && ev.RecordedAt.Before(stopBefore) {
				return page, 0, false, nil
			}
			if len(page.Entries) == pageSize {
				return page, ev.Revision - 1, true, nil
			}
		}
		from = events[len(events)-1].Revision - 1
	}
	return page, from, true, nil
}

// matches reports whether rec is one f selects.
func (f Filter) matches(rec *auditv1.AuditRecord) bool {
	switch {
	case f.CaseID != "" && rec.GetCaseId() != f.CaseID,
		f.Subject != "" && rec.GetPrincipal().GetSubject() != f.Subject,
		f.Action != auditv1.AuditAction_AUDIT_ACTION_UNSPECIFIED && rec.GetAction() != f.Action:
		return false
	}
	at := rec.GetOccurredAt().AsTime()
	return (f.From.IsZero() || !at.Before(f.From)) && (f.Until.IsZero() || at.Before(f.Until))
}

// normalized checks f, tenant and pageSize, and returns f with its case ID
// in canonical form.
func (f Filter) normalized(tenant string, pageSize int) (Filter, error) {
	var problems []string
	if !authn.ValidTenant(tenant) {
		problems = append(problems, fmt.Sprintf("tenant %q is malformed", tenant))
	}
	if f.CaseID != "" {
		id, ok := CanonicalCaseID(f.CaseID)
		if !ok {
			problems = append(problems, fmt.Sprintf("case ID %q is not a UUID", f.CaseID))
		}
		f.CaseID = id
	}
	if f.Subject != "" && !authn.ValidActor(f.Subject) {
		problems = append(problems, "subject is not 1 to 128 printable characters without spaces")
	}
	if _, ok := auditv1.AuditAction_name[int32(f.Action)]; !ok {
		problems = append(problems, fmt.Sprintf("action %d is unknown", f.Action))
	}
	if !f.From.IsZero() && !f.Until.IsZero() && !f.Until.After(f.From) {
		problems = append(problems, "the time range ends before it starts")
	}
	if pageSize < 0 {
		problems = append(problems, fmt.Sprintf("page size %d is negative", pageSize))
	}
	if len(problems) > 0 {
		return Filter{}, fmt.Errorf("%w: %s", ErrInvalidFilter, strings.Join(problems, "; "))
	}
	return f, nil
}

// digest fingerprints the tenant and the filter, so that a page token is
// refused with other filters rather than silently skipping records.
func (f Filter) digest(tenant string) uint64 {
	key := fmt.Sprintf("%q|%q|%q|%d|%d|%d", tenant, f.CaseID, f.Subject, f.Action, unixNano(f.From), unixNano(f.Until))
	sum := sha256.Sum256([]byte(key))
	return binary.BigEndian.Uint64(sum[:8])
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// encodeToken makes the opaque page token "v1.<revision>.<digest>" in
// unpadded base64url: the scan goes on at that revision, downwards.
func encodeToken(revision, digest uint64) string {
	raw := "v1." + strconv.FormatUint(revision, 10) + "." + strconv.FormatUint(digest, 16)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeToken(token string, digest uint64) (uint64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, fmt.Errorf("%w: not base64url", ErrInvalidPageToken)
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return 0, fmt.Errorf("%w: malformed", ErrInvalidPageToken)
	}
	revision, err1 := strconv.ParseUint(parts[1], 10, 64)
	d, err2 := strconv.ParseUint(parts[2], 16, 64)
	if err1 != nil || err2 != nil || revision == eventstore.StreamEnd {
		return 0, fmt.Errorf("%w: malformed", ErrInvalidPageToken)
	}
	if d != digest {
		return 0, fmt.Errorf("%w: made for other filters", ErrInvalidPageToken)
	}
	return revision, nil
}
