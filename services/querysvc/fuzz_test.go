package querysvc_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/querysvc"
)

// FuzzRequests sends arbitrary bytes, decoded as the request of one
// QueryService RPC, through the RPC's handler: whatever the bytes say, the
// validators answer with a status and never panic. The context carries a
// principal but no grant of the policy, so a request that passes
// validation is refused there (PermissionDenied): what is fuzzed is the
// validation.
//
//	go test ./services/querysvc -run '^$' -fuzz FuzzRequests -fuzztime 60s
func FuzzRequests(f *testing.F) {
	db, err := projections.Open(context.Background(), projections.Options{Path: filepath.Join(f.TempDir(), "readmodel.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	svc, err := querysvc.New(db.Reader(dashboard.Name), db.Reader(report.Name), querysvc.Options{})
	if err != nil {
		f.Fatal(err)
	}
	ctx := authn.WithPrincipal(context.Background(), authn.Principal{
		Subject: "fuzz", Tenant: "fuzz", Roles: []authn.Role{authn.RoleAdmin}, Via: authn.ViaJWT,
	})
	methods := queryv1.QueryService_ServiceDesc.Methods
	seeds := []proto.Message{
		&queryv1.GetCoachDashboardRequest{CoachId: "coach-1", IdleDays: 14},
		&queryv1.GetCoachDashboardRequest{CoachId: "coach 1", IdleDays: 99999},
		&queryv1.ListCasesRequest{Stages: []casev1.Stage{99}, PageToken: "not-a-token", Department: "x"},
		&queryv1.ListCasesRequest{OrganisationId: "acme", Department: "Sales", PageSize: 10},
		&queryv1.GetOrganisationReportRequest{OrganisationId: "acme", PeriodFrom: &casev1.Date{Year: 2026, Month: 5, Day: 1},
			PeriodTo: &casev1.Date{Year: 2026, Month: 4, Day: 1}},
		&queryv1.GetOrganisationReportRequest{AsOf: &timestamppb.Timestamp{Seconds: -1 << 62}, View: 7},
	}
	for i, seed := range seeds {
		b, err := proto.Marshal(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m := methods[int(which)%len(methods)]
		_, err := m.Handler(svc, ctx, func(req any) error {
			return proto.Unmarshal(data, req.(proto.Message))
		}, nil)
		if err == nil {
			t.Fatalf("%s answered without a grant of the policy", m.MethodName)
		}
		st, ok := status.FromError(err)
		if !ok && !errors.Is(err, proto.Error) {
			t.Fatalf("%s: not a gRPC status: %v", m.MethodName, err)
		}
		if ok && st.Code() == codes.Internal {
			t.Fatalf("%s: internal error for bad input: %v", m.MethodName, err)
		}
	})
}
