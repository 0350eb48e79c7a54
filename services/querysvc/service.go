// Package querysvc is the QueryService: the gRPC API that answers from the
// read models — a coach's dashboard and lists of cases from the dashboard
// projection, the organisational report from the report projection.
//
// Every RPC runs the same way: the caller's tenant comes from authn (the
// koers-tenant metadata until authentication lands); the request is
// validated without touching the database; when it names a min_position,
// the service waits for the read model to reach it, at most MaxWait (or
// half the time left before the call's deadline), and past that answers
// anyway with freshness.stale set — a user interface keeps working while
// a projector catches up, and says so; then all queries of the answer run
// in one read transaction, so that they see one snapshot.
//
// The service never unseals anything and the read models hold no personal
// data, so no answer can carry a client's name or notes.
package querysvc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/authz"
	"github.com/koers-io/koers/services/internal/badrequest"
)

// Defaults of Options.
const (
	// DefaultMaxWait bounds how long a query waits for its min_position.
	DefaultMaxWait = 2 * time.Second
	// DefaultLocation names the practice's calendar.
	DefaultLocation = "Europe/Amsterdam"
	// MinK is the smallest suppression threshold the analyst view
	// accepts: with k = 1 nothing would be suppressed.
	MinK = 2
)

// ReadModel is one projection's read model as the service reads it. The
// projection engine's *projections.Reader is one.
type ReadModel interface {
	// ReadTx runs fn in a read-only transaction: one snapshot.
	ReadTx(ctx context.Context, fn func(tx projections.Tx) error) error
	// Position returns the global position the read model has applied.
	Position(ctx context.Context) (eventstore.Position, error)
	// WaitForPosition waits until the read model has applied pos, or ctx
	// is done.
	WaitForPosition(ctx context.Context, pos eventstore.Position) error
}

// Options tune a Service. The zero value of each field means its default.
type Options struct {
	// Location is the practice's calendar: days (today, overdue, a
	// report's as-of day) are judged in it. It must be the one the
	// projections and CaseService use. Default DefaultLocation, or UTC
	// where that zone is not known.
	Location *time.Location
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// K is the analyst view's suppression threshold: counts made of fewer
	// than K cases are hidden. Default report.DefaultK (5); at least MinK.
	K int
	// MaxWait bounds how long a query waits for its min_position; default
	// DefaultMaxWait.
	MaxWait time.Duration
	// Audit records every answer about cases (dashboards, lists) and
	// every report export before it leaves; when it cannot, the query
	// fails and discloses nothing. Nil records nothing: for tests and
	// tools, never a server.
	Audit Auditor
	// Logger receives the errors callers are not told the details of;
	// default slog.Default().
	Logger *slog.Logger
}

// Auditor keeps the audit trail; *audit.Recorder is the one Koers runs.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Service implements queryv1.QueryServiceServer on the dashboard and report
// read models. It is safe for concurrent use.
type Service struct {
	queryv1.UnimplementedQueryServiceServer

	dashboard ReadModel
	report    ReadModel
	opts      Options
}

// New returns the QueryService over the dashboard projection's read model
// (dashboard.Name) and the report projection's (report.Name).
func New(dash, rep ReadModel, opts Options) (*Service, error) {
	if dash == nil || rep == nil {
		return nil, errors.New("querysvc: both read models are required")
	}
	if opts.Location == nil {
		loc, err := time.LoadLocation(DefaultLocation)
		if err != nil {
			loc = time.UTC
		}
		opts.Location = loc
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.K == 0 {
		opts.K = report.DefaultK
	}
	if opts.K < MinK {
		return nil, fmt.Errorf("querysvc: k %d would suppress too little; the analyst view needs at least %d", opts.K, MinK)
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultMaxWait
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{dashboard: dash, report: rep, opts: opts}, nil
}

// Register registers the service on a gRPC server. The server must run
// the interceptors of services/authz, which authenticate every call, check
// the policy and tell the service who calls.
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	queryv1.RegisterQueryServiceServer(srv, s)
}

// GetCoachDashboard returns a coach's dashboard.
func (s *Service) GetCoachDashboard(ctx context.Context, req *queryv1.GetCoachDashboardRequest) (*queryv1.GetCoachDashboardResponse, error) {
	caller, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	q, err := dashboardQuery(caller, req, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if q.Coach, err = authz.Caseload(ctx, req.GetCoachId()); err != nil {
		return nil, err
	}
	if q.Coach == "" {
		q.Coach = cmp.Or(caller.CoachID, caller.Subject)
	}
	fresh, err := s.freshen(ctx, s.dashboard, req.GetMinPosition())
	if err != nil {
		return nil, s.status(err)
	}
	var d dashboard.Dashboard
	err = s.dashboard.ReadTx(ctx, func(tx projections.Tx) error {
		d, err = dashboard.Get(ctx, tx, s.opts.Location, q)
		return err
	})
	if err != nil {
		return nil, s.status(err)
	}
	if err := s.record(ctx, caller, audit.Entry{Action: auditv1.AuditAction_AUDIT_ACTION_READ_CASE_LIST,
		Method: queryv1.QueryService_GetCoachDashboard_FullMethodName}); err != nil {
		return nil, err
	}
	return &queryv1.GetCoachDashboardResponse{Dashboard: dashboardProto(d), Freshness: fresh}, nil
}

// ListCases returns a page of the tenant's cases.
func (s *Service) ListCases(ctx context.Context, req *queryv1.ListCasesRequest) (*queryv1.ListCasesResponse, error) {
	caller, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	f, err := listFilter(caller, req, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if f.Coach, err = authz.Caseload(ctx, req.GetCoachId()); err != nil {
		return nil, err
	}
	fresh, err := s.freshen(ctx, s.dashboard, req.GetMinPosition())
	if err != nil {
		return nil, s.status(err)
	}
	var list dashboard.List
	err = s.dashboard.ReadTx(ctx, func(tx projections.Tx) error {
		list, err = dashboard.ListCases(ctx, tx, s.opts.Location, f, int(req.GetPageSize()), req.GetPageToken())
		return err
	})
	if err != nil {
		return nil, s.status(err)
	}
	if err := s.record(ctx, caller, audit.Entry{Action: auditv1.AuditAction_AUDIT_ACTION_READ_CASE_LIST,
		Method: queryv1.QueryService_ListCases_FullMethodName}); err != nil {
		return nil, err
	}
	return listProto(list, fresh), nil
}

// GetOrganisationReport returns the analyst's report.
func (s *Service) GetOrganisationReport(ctx context.Context, req *queryv1.GetOrganisationReportRequest) (*queryv1.GetOrganisationReportResponse, error) {
	caller, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	q, err := reportQuery(caller, req, s.opts.Now(), s.opts.K)
	if err != nil {
		return nil, err
	}
	if q.Organisation, err = authz.Report(ctx, req.GetOrganisationId()); err != nil {
		return nil, err
	}
	fresh, err := s.freshen(ctx, s.report, req.GetMinPosition())
	if err != nil {
		return nil, s.status(err)
	}
	var r report.Report
	err = s.report.ReadTx(ctx, func(tx projections.Tx) error {
		r, err = report.Get(ctx, tx, s.opts.Location, q)
		return err
	})
	if err != nil {
		return nil, s.status(err)
	}
	if err := s.record(ctx, caller, audit.Entry{Action: auditv1.AuditAction_AUDIT_ACTION_EXPORT_REPORT,
		Method:         queryv1.QueryService_GetOrganisationReport_FullMethodName,
		OrganisationID: q.Organisation, Department: q.Department,
		PeriodFrom: q.From, PeriodTo: q.To, ReportAsOf: q.AsOf}); err != nil {
		return nil, err
	}
	return &queryv1.GetOrganisationReportResponse{Report: reportProto(r), Freshness: fresh}, nil
}

func (s *Service) caller(ctx context.Context) (authn.Principal, error) {
	c, ok := authn.PrincipalFromContext(ctx)
	if !ok {
		return c, status.Error(codes.Unauthenticated, "the call was not authenticated")
	}
	return c, nil
}

// record writes e, made by p, to the audit trail; a failure is the
// query's, so that nothing leaves unrecorded.
func (s *Service) record(ctx context.Context, p authn.Principal, e audit.Entry) error {
	if s.opts.Audit == nil {
		return nil
	}
	e.Principal = p
	if err := s.opts.Audit.Record(ctx, e); err != nil {
		s.opts.Logger.Error("an answer could not be recorded in the audit trail, so nothing was disclosed", "err", err)
		return status.Error(codes.Unavailable, "the answer could not be recorded in the audit trail, so nothing was disclosed; try again")
	}
	return nil
}

// freshen waits for the read model to reach minPos, within the bound, and
// says how fresh an answer read right after is. The position is read
// before the answer's snapshot, so the answer is at least that fresh.
func (s *Service) freshen(ctx context.Context, rm ReadModel, minPos uint64) (*queryv1.Freshness, error) {
	if minPos > 0 {
		bound := s.opts.MaxWait
		if deadline, ok := ctx.Deadline(); ok {
			bound = max(0, min(bound, time.Until(deadline)/2))
		}
		wait, cancel := context.WithTimeout(ctx, bound)
		err := rm.WaitForPosition(wait, eventstore.Position(minPos))
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			return nil, err
		}
	}
	pos, err := rm.Position(ctx)
	if err != nil {
		return nil, err
	}
	return &queryv1.Freshness{Position: uint64(pos), Stale: uint64(pos) < minPos}, nil
}

// status turns an error of a query into the gRPC status the caller gets.
// Request errors were turned into statuses by the validation before any
// query ran; what is left here is the database's side.
func (s *Service) status(err error) error {
	var st interface{ GRPCStatus() *status.Status }
	switch {
	case errors.As(err, &st):
		return err
	case errors.Is(err, dashboard.ErrInvalidPageToken):
		return badrequest.Error(badrequest.Violation{Field: "page_token", Description: err.Error()})
	case errors.Is(err, dashboard.ErrInvalidQuery), errors.Is(err, report.ErrInvalidQuery):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	s.opts.Logger.Error("query failed", "err", err)
	return status.Error(codes.Internal, "internal error; the server log has the details")
}
