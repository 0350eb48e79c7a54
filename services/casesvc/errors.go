package casesvc

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/keyring"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo the service sends.
const ErrorDomain = "koers.io"

// ReasonConflict is the ErrorInfo reason of ABORTED: other commands kept
// changing the case while this one was decided.
const ReasonConflict = "CONCURRENCY_CONFLICT"

// ErrClientKeyErased is the rule that no personal data can be recorded for
// a client whose data key was erased, which happens when the client's data
// was erased through another of their cases. It is reported like the
// domain's rules.
var ErrClientKeyErased = &casework.Error{
	Reason:  "CLIENT_KEY_ERASED",
	Kind:    casework.KindFailedPrecondition,
	Message: "the client's data was erased; no personal data can be recorded for this client any more",
}

var (
	// errConflict: the case kept moving under the command.
	errConflict = errors.New("the case kept changing while the command was decided; send the same request again")
	// errNoCaller: the call came past no authentication.
	errNoCaller = errors.New("the call was not authenticated")
)

// invalid reports violations of a request's fields the way the domain
// reports its commands' own.
func invalid(v []casework.FieldViolation) error {
	return &casework.ValidationError{Violations: v}
}

// status turns an error of a command or query into the gRPC status the
// caller gets. It is the only place that does: every RPC returns what it
// gives.
func (s *Service) status(err error) error {
	var (
		bad  *casework.ValidationError
		rule *casework.Error
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &bad):
		return badRequest(bad.Violations)
	case errors.Is(err, keyring.ErrErased):
		return ruleStatus(ErrClientKeyErased, ErrClientKeyErased.Message)
	case errors.As(err, &rule):
		return ruleStatus(rule, err.Error())
	case errors.Is(err, errConflict):
		return withDetails(status.New(codes.Aborted, err.Error()),
			&errdetails.ErrorInfo{Reason: ReasonConflict, Domain: ErrorDomain})
	case errors.Is(err, errNoCaller):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, audit.ErrNotRecorded):
		s.log.Error("a read could not be recorded in the audit trail, so nothing was disclosed", "err", err)
		return status.Error(codes.Unavailable, "the read could not be recorded in the audit trail, so nothing was disclosed; try again")
	case status.Code(err) == codes.PermissionDenied:
		return err // the policy's refusal, already phrased for the caller
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, eventstore.ErrClosed):
		return status.Error(codes.Unavailable, "Koers is shutting down; try again")
	}
	// The details (paths, store errors) are for the operator, not the
	// caller.
	s.log.Error("command failed", "err", err)
	return status.Error(codes.Internal, "internal error; the server log has the details")
}

func badRequest(violations []casework.FieldViolation) error {
	br := &errdetails.BadRequest{}
	parts := make([]string, 0, len(violations))
	for _, v := range violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: v.Field, Description: v.Description,
		})
		parts = append(parts, v.Field+": "+v.Description)
	}
	return withDetails(status.New(codes.InvalidArgument, "invalid request: "+strings.Join(parts, "; ")), br)
}

func ruleStatus(rule *casework.Error, message string) error {
	code := codes.FailedPrecondition
	switch rule.Kind {
	case casework.KindAlreadyExists:
		code = codes.AlreadyExists
	case casework.KindNotFound:
		code = codes.NotFound
	}
	return withDetails(status.New(code, message), &errdetails.ErrorInfo{Reason: rule.Reason, Domain: ErrorDomain})
}

func withDetails(st *status.Status, details ...protoadapt.MessageV1) error {
	with, err := st.WithDetails(details...)
	if err != nil {
		// Only a detail that cannot be marshalled fails; ours always can.
		return st.Err()
	}
	return with.Err()
}
