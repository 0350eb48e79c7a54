// Package auditsvc is the AuditService: the gRPC API through which a
// centre's administrators query the audit trail of their tenant.
//
// The one RPC, ListAuditRecords, takes the caller from authn (a call
// without an authenticated principal is refused with UNAUTHENTICATED),
// validates the request without touching the store, lists the caller's own
// tenant's trail through the audit.Recorder, and then records the query
// itself (LIST_AUDIT) before answering: when that record cannot be
// written, nothing is answered. Who may call is the policy's business
// (services/authz: administrators only); the service only keeps every
// answer inside the caller's tenant.
package auditsvc

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/audit"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/internal/badrequest"
)

// Options tune a Service. The zero value of each field means its default.
type Options struct {
	// Logger receives the errors callers are not told the details of;
	// default slog.Default().
	Logger *slog.Logger
}

// Service implements auditv1.AuditServiceServer on an audit.Recorder. It is
// safe for concurrent use.
type Service struct {
	auditv1.UnimplementedAuditServiceServer

	rec *audit.Recorder
	log *slog.Logger
}

// New returns the AuditService over the trail rec keeps.
func New(rec *audit.Recorder, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{rec: rec, log: opts.Logger}
}

// Register registers the service on a gRPC server. The server must run
// the interceptors of services/authz, which authenticate every call, check
// the policy and tell the service who calls.
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	auditv1.RegisterAuditServiceServer(srv, s)
}

// ListAuditRecords returns a page of the caller's tenant's audit records,
// newest first, and records the query.
func (s *Service) ListAuditRecords(ctx context.Context, req *auditv1.ListAuditRecordsRequest) (*auditv1.ListAuditRecordsResponse, error) {
	p, ok := authn.PrincipalFromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "the call was not authenticated")
	}
	f, err := filterOf(req)
	if err != nil {
		return nil, err
	}
	page, err := s.rec.List(ctx, p.Tenant, f, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.status(err)
	}
	err = s.rec.Record(ctx, audit.Entry{
		Principal: p,
		Action:    auditv1.AuditAction_AUDIT_ACTION_LIST_AUDIT,
		Method:    auditv1.AuditService_ListAuditRecords_FullMethodName,
		CaseID:    f.CaseID,
	})
	if err != nil {
		return nil, s.status(err)
	}
	return &auditv1.ListAuditRecordsResponse{Entries: page.Entries, NextPageToken: page.NextPageToken}, nil
}

// status turns an error of the trail into the gRPC status the caller gets.
// Request errors were turned into statuses by the validation before the
// trail was read; what is left is mostly the store's side.
func (s *Service) status(err error) error {
	switch {
	case errors.Is(err, audit.ErrInvalidPageToken):
		return badrequest.Error(badrequest.Violation{Field: "page_token", Description: err.Error()})
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, audit.ErrInvalidFilter), errors.Is(err, audit.ErrInvalidEntry), errors.Is(err, audit.ErrCorruptRecord):
		// The request was validated and the principal authenticated, so
		// these are Koers' faults, not the caller's.
		s.log.Error("audit trail query failed", "err", err)
		return status.Error(codes.Internal, "internal error; the server log has the details")
	case errors.Is(err, audit.ErrNotRecorded):
		s.log.Error("audit trail query not recorded", "err", err)
		return status.Error(codes.Unavailable, "the query could not be recorded in the audit trail, so it is not answered; try again")
	}
	s.log.Error("audit trail query failed", "err", err)
	return status.Error(codes.Unavailable, "the audit trail cannot be read now; try again")
}
