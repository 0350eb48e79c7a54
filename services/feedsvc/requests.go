package feedsvc

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/bus"
	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/internal/badrequest"
)

// maxTokenLength is the length of the largest resume token: the decimal
// form of the largest uint64.
const maxTokenLength = 20

// feed is what one subscription reads: one agency's subjects, from a
// stream sequence on.
type feed struct {
	tenant, agency string
	// caseID is the one case followed, canonical; empty for all.
	caseID string
	// after is the stream sequence delivery starts after; 0 from the first.
	after uint64
}

// filter is the subject filter of the subscription's consumer.
func (f feed) filter() string {
	if f.caseID != "" {
		return bus.AgencySubject(f.tenant, f.agency, f.caseID)
	}
	return bus.AgencyFilter(f.tenant, f.agency)
}

// prefix is what every subject of the agency's feed starts with; the case
// token follows it.
func (f feed) prefix() string {
	return strings.TrimSuffix(bus.AgencyFilter(f.tenant, f.agency), "*")
}

// agencyOf returns the principal the call runs for, refusing anyone but
// an agency. The interceptors refuse them before the handler runs; this
// is the second lock on the door, because the feed picks its subjects
// from the principal alone.
func agencyOf(ctx context.Context) (authn.Principal, error) {
	p, ok := authn.PrincipalFromContext(ctx)
	if !ok {
		return p, status.Error(codes.Unauthenticated, "the call carries no authenticated principal")
	}
	if !p.Has(authn.RoleAgency) || p.AgencyID == "" || p.Tenant == "" {
		return p, status.Error(codes.PermissionDenied, "only a re-integration agency has a feed")
	}
	return p, nil
}

// parseRequest validates req for principal p without touching the bus.
func parseRequest(p authn.Principal, req *feedv1.SubscribeRequest) (feed, error) {
	f := feed{tenant: p.Tenant, agency: p.AgencyID}
	var v violations
	after, err := parseToken(req.GetResumeToken())
	if err != nil {
		v.add("resume_token", err.Error())
	}
	f.after = after
	if id := req.GetCaseId(); id != "" {
		canonical, ok := parseCaseID(id)
		if !ok {
			v.add("case_id", "must be a UUID in its 36-character form, not the nil UUID")
		}
		f.caseID = canonical
	}
	return f, v.err()
}

// parseToken reads a resume token: empty for the start of the feed, or the
// decimal stream sequence of an event, exactly as token writes it.
func parseToken(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > maxTokenLength {
		return 0, fmt.Errorf("longer than any resume token (%d characters)", maxTokenLength)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a resume token: must be one that a SubscribeResponse carried")
		}
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 || s[0] == '0' {
		return 0, fmt.Errorf("not a resume token: must be one that a SubscribeResponse carried")
	}
	return seq, nil
}

// token returns the resume token of the feed message with stream sequence
// seq.
func token(seq uint64) string { return strconv.FormatUint(seq, 10) }

// parseCaseID reads a case ID: a UUID in its 36-character form, any case,
// not the nil UUID. It returns the canonical lower-case form, the one
// subjects carry.
func parseCaseID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return "", false
	}
	return id.String(), true
}

// violations collects what is wrong with a request.
type violations struct{ badrequest.List }

func (v *violations) add(field, description string) { v.Add(field, "%s", description) }

func (v violations) err() error { return v.Err() }
