package auditsvc

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/eventstore/sqlite"
	auditv1 "github.com/koers-io/koers/proto/koers/audit/v1"
)

// FuzzListAuditRecordsRequest feeds arbitrary requests to the validation
// and the trail's page token parser: neither may panic, and whatever the
// validation accepts, List takes without calling it an invalid filter.
func FuzzListAuditRecordsRequest(f *testing.F) {
	f.Add("3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b", "coach-1", int32(1), int64(1700000000), int32(0), int64(1800000000), int32(5), uint32(10), "")
	f.Add("", "", int32(0), int64(0), int32(-1), int64(0), int32(0), uint32(0), "djEuMTAuYWJj")
	f.Add("3F2B7C1E-8A4D-4E6F-9B1A-2C3D4E5F6A7B", "a b", int32(99), int64(-1<<40), int32(2e9), int64(1<<40), int32(0), uint32(1<<31), "garbage")
	store, err := sqlite.Open(filepath.Join(f.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	rec := audit.New(store, audit.Options{})
	f.Fuzz(func(t *testing.T, caseID, subject string, action int32, fromS int64, fromN int32, untilS int64, untilN int32, size uint32, token string) {
		req := &auditv1.ListAuditRecordsRequest{
			CaseId: caseID, Subject: subject, Action: auditv1.AuditAction(action),
			OccurredFrom:  &timestamppb.Timestamp{Seconds: fromS, Nanos: fromN},
			OccurredUntil: &timestamppb.Timestamp{Seconds: untilS, Nanos: untilN},
			PageSize:      size, PageToken: token,
		}
		filter, err := filterOf(req)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("validation error %v is not INVALID_ARGUMENT", err)
			}
			return
		}
		_, err = rec.List(context.Background(), "acme", filter, int(size), token)
		if errors.Is(err, audit.ErrInvalidFilter) {
			t.Fatalf("the validation accepted %v, List refused it: %v", req, err)
		}
		if err != nil && !errors.Is(err, audit.ErrInvalidPageToken) {
			t.Fatalf("List: %v", err)
		}
	})
}
