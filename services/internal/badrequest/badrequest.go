// Package badrequest builds the INVALID_ARGUMENT answers Koers' services
// give for malformed requests: a status whose message lists every bad field
// and whose details carry a google.rpc.BadRequest naming each one, so that
// a program can point at the field and a person can read the message.
package badrequest

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Violation is one field of a request that is wrong.
type Violation struct {
	// Field is the field's path in the request, for example "page_token"
	// or "stages[2]".
	Field string
	// Description says what is wrong with it.
	Description string
}

// List collects what is wrong with a request; the zero value is empty.
type List []Violation

// Add records that field is wrong, described by format and args as
// fmt.Sprintf does.
func (l *List) Add(field, format string, args ...any) {
	*l = append(*l, Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err returns INVALID_ARGUMENT with the violations, or nil when there are
// none.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return Error(l...)
}

// Error returns INVALID_ARGUMENT for vs: the message lists them, the
// details hold a google.rpc.BadRequest with a field violation each.
func Error(vs ...Violation) error {
	br := &errdetails.BadRequest{}
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		br.FieldViolations = append(br.FieldViolations,
			&errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		parts = append(parts, v.Field+": "+v.Description)
	}
	st := status.New(codes.InvalidArgument, "invalid request: "+strings.Join(parts, "; "))
	with, err := st.WithDetails(protoadapt.MessageV1Of(br))
	if err != nil {
		return st.Err()
	}
	return with.Err()
}
