package auditsvc

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/audit"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/internal/badrequest"
)

// maxPageTokenLength is longer than any page token the trail makes.
const maxPageTokenLength = 1024

// violations collects what is wrong with a request.
type violations struct{ badrequest.List }

func (v *violations) add(field, format string, args ...any) { v.Add(field, format, args...) }

func (v violations) err() error { return v.Err() }

// filterOf validates a request's filters and page token length, and returns
// the filter with the case ID in canonical form.
func filterOf(req *auditv1.ListAuditRecordsRequest) (audit.Filter, error) {
	var v violations
	var f audit.Filter
	if id := req.GetCaseId(); id != "" {
		var ok bool
		if f.CaseID, ok = audit.CanonicalCaseID(id); !ok {
			v.add("case_id", "must be a UUID in its 36-character form, for example 3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b")
		}
	}
	if f.Subject = req.GetSubject(); f.Subject != "" && !authn.ValidActor(f.Subject) {
		v.add("subject", "must be 1 to %d printable characters without spaces", authn.MaxActorLength)
	}
	f.Action = req.GetAction()
	if _, ok := auditv1.AuditAction_name[int32(f.Action)]; !ok {
		v.add("action", "unknown action %d", f.Action)
	}
	if ts := req.GetOccurredFrom(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("occurred_from", "not a valid timestamp")
		} else {
			f.From = ts.AsTime()
		}
	}
	if ts := req.GetOccurredUntil(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("occurred_until", "not a valid timestamp")
		} else {
			f.Until = ts.AsTime()
		}
	}
	if validRange(req.GetOccurredFrom(), req.GetOccurredUntil()) && !f.Until.After(f.From) {
		v.add("occurred_until", "must be after occurred_from")
	}
	if len(req.GetPageToken()) > maxPageTokenLength {
		v.add("page_token", "longer than any token Koers makes")
	}
	return f, v.err()
}

// validRange reports whether both ends of a range are set and valid.
func validRange(from, until *timestamppb.Timestamp) bool {
	return from != nil && until != nil && from.CheckValid() == nil && until.CheckValid() == nil
}
