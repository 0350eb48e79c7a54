package auditsvc

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/audit"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	"github.com/koers-io/koers/services/authn"
)

// maxPageTokenLength is longer than any page token the trail makes.
const maxPageTokenLength = 1024

// violation is one field of a request that is wrong.
type violation struct {
	field, description string
}

// violations collects what is wrong with a request.
type violations []violation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, violation{field, fmt.Sprintf(format, args...)})
}

// err returns INVALID_ARGUMENT with a google.rpc.BadRequest, or nil.
func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return invalid(v...)
}

func invalid(vs ...violation) error {
	br := &errdetails.BadRequest{}
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.field, Description: v.description})
		parts = append(parts, v.field+": "+v.description)
	}
	st := status.New(codes.InvalidArgument, "invalid request: "+strings.Join(parts, "; "))
	with, err := st.WithDetails(protoadapt.MessageV1Of(br))
	if err != nil {
		return st.Err()
	}
	return with.Err()
}

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
