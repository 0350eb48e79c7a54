package casesvc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/eventstore/sqlite"
	"github.com/koers-io/koers/keyring"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	"github.com/koers-io/koers/services/authn"
)

// FuzzRequests sends arbitrary bytes, decoded as the request of one
// CaseService RPC, through the RPC's handler on a real store: whatever the
// bytes say, the validators answer with a status and never panic. The
// context carries a principal but no grant of the policy, so a request
// that passes validation is refused there (PermissionDenied) before it can
// write: what is fuzzed is the validation.
//
//	go test ./services/casesvc -run '^$' -fuzz FuzzRequests -fuzztime 60s
func FuzzRequests(f *testing.F) {
	dir := f.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	keys, err := keyring.Open(filepath.Join(dir, "keys"), make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	svc, err := New(store, keys, Options{
		JournalDir: filepath.Join(dir, "erasures"),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	ctx := authn.WithPrincipal(context.Background(), authn.Principal{
		Subject: "fuzz", Tenant: "fuzz", Roles: []authn.Role{authn.RoleAdmin}, Via: authn.ViaJWT,
	})
	methods := casev1.CaseService_ServiceDesc.Methods
	for i, seed := range fuzzSeeds() {
		b, err := proto.Marshal(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i%len(methods)), b)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m := methods[int(which)%len(methods)]
		_, err := m.Handler(svc, ctx, func(req any) error {
			return proto.Unmarshal(data, req.(proto.Message))
		}, nil)
		if err == nil {
			t.Fatalf("%s accepted a request without a grant of the policy", m.MethodName)
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

// fuzzSeeds are requests of the kinds the RPCs take, some valid, some not,
// in the order of the service's methods where it matters little.
func fuzzSeeds() []proto.Message {
	day := &casev1.Date{Year: 2026, Month: 3, Day: 2}
	caseID := "3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b"
	return []proto.Message{
		&casev1.OpenCaseRequest{RequestId: "r1", ClientId: "client-1",
			Client:      &casev1.ClientDetails{GivenName: "Jan", FamilyName: "de Vries"},
			InitiatedBy: casev1.Initiator_INITIATOR_CLIENT, OpenedOn: day},
		&casev1.CompleteIntakeRequest{CaseId: caseID, RequestId: "r2"},
		&casev1.ReclassifyQuestionRequest{CaseId: "not-a-uuid", RequestId: "r3"},
		&casev1.AssignCoachRequest{CaseId: caseID, RequestId: "r4", CoachId: "coach 1"},
		&casev1.RecordSessionRequest{CaseId: caseID, RequestId: "r5", HeldOn: day, DurationMinutes: 60, Notes: "\x00"},
		&casev1.RecordCheckpointRequest{CaseId: caseID, RequestId: "r6", HeldOn: &casev1.Date{Year: 2026, Month: 2, Day: 30}},
		&casev1.GetCaseRequest{CaseId: caseID},
		&casev1.EraseClientDataRequest{CaseId: caseID},
	}
}
