package casesvc_test

// Benchmarks of the command path, each beside the store adapter's own
// append of the same events measured in the same run, so the ratio is read
// off one run:
//
//	go test ./services/casesvc -run '^$' -bench . -benchtime 2000x -count 3
//
// BenchmarkCommands runs, for 1 and 32 concurrent clients each on cases of
// their own, first the SQLite adapter appending the events the commands
// would write (baseline), then the commands themselves through a real gRPC
// connection to the service on an identical fresh store. Each client opens
// a case and records 19 sessions with notes on it, then moves to a new
// case, so cases stay at a realistic 20 events. It reports both rates
// (cmds/s: one command is one append), their ratio (grpc/store), the p50
// and p99 latency of each, and the process CPU time per command; and, to
// tell gRPC's share from the service's, the rate and CPU of the same
// commands called on the service directly. All with the service's case
// cache on and off.
//
// BenchmarkLoad measures loading a case of 20 events as a command without
// the cache does: ReadStream, decode, Replay.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/sqlite"
	"github.com/koers-io/koers/keyring"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/authz"
	"github.com/koers-io/koers/services/casesvc"
)

const commandsPerCase = 20

// rig is a service on a fresh store, served over loopback gRPC.
type rig struct {
	store  *sqlite.Store
	svc    *casesvc.Service
	client casev1.CaseServiceClient
}

func newRig(b *testing.B, opts casesvc.Options) *rig {
	b.Helper()
	dir := b.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := sqlite.Open(filepath.Join(dir, "events.db"), sqlite.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	master := make([]byte, keyring.MasterKeySize)
	rand.Read(master)
	keys, err := keyring.Open(filepath.Join(dir, "keys"), master)
	if err != nil {
		b.Fatal(err)
	}
	opts.Logger = quiet
	svc, err := casesvc.New(store, keys, opts)
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	auth, err := authn.New(context.Background(), issuer.Config())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(auth.Close)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(casesvc.MaxRequestBytes),
		grpc.ChainUnaryInterceptor(authz.UnaryInterceptor(auth)), grpc.ChainStreamInterceptor(authz.StreamInterceptor(auth)))
	svc.Register(srv)
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return &rig{store: store, svc: svc, client: casev1.NewCaseServiceClient(conn)}
}

// run does n operations spread over clients goroutines; op gets the
// client's number and its own count of operations so far. It returns the
// elapsed time and every operation's latency.
func run(b *testing.B, n, clients int, op func(client, i int) error) (time.Duration, []time.Duration) {
	b.Helper()
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	cpu0 := cpuTime()
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := 0; next.Add(1) <= int64(n); i++ {
				t0 := time.Now()
				if err := op(c, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	lastCPU = (cpuTime() - cpu0) / time.Duration(n)
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	return elapsed, all
}

// lastCPU is the process CPU time per operation of the last run: the
// benchmark's client side included, which both runs share alike.
var lastCPU time.Duration

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(float64(len(sorted)-1)*p)].Microseconds())
}

// sampleEvents are the events the commands write, as the service writes
// them: a CaseOpened and a SessionRecorded with sealed notes, with the
// service's metadata.
func sampleEvents(b *testing.B) (opened, session eventstore.EventData) {
	sealed := func(n int) *eventv1.Sealed {
		return &eventv1.Sealed{KeyId: uuid.NewString(), Nonce: make([]byte, 12), Ciphertext: make([]byte, n+16)}
	}
	meta, _ := proto.Marshal(&eventv1.Metadata{TenantId: "bench", CaseId: uuid.NewString(), OccurredAt: timestamppb.Now(),
		RecordedAt: timestamppb.Now(), Actor: "coach-bench", RequestId: "c00-000000", CorrelationId: "c00-000000",
		CausationId: "c00-000000", SchemaVersion: 1})
	o, _ := proto.Marshal(&casev1.CaseOpened{ClientId: "client-00", Client: sealed(30), InitiatedBy: casev1.Initiator_INITIATOR_CLIENT,
		OpenedOn: &casev1.Date{Year: 2025, Month: 1, Day: 6}})
	s, _ := proto.Marshal(&casev1.SessionRecorded{HeldOn: &casev1.Date{Year: 2025, Month: 2, Day: 3},
		Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60, Notes: sealed(len(benchNotes) + 2)})
	return eventstore.EventData{Type: "koers.case.v1.CaseOpened", Data: o, Metadata: meta},
		eventstore.EventData{Type: "koers.case.v1.SessionRecorded", Data: s, Metadata: meta}
}

const benchNotes = "Gesprek over de arbeidsmarkt; volgende keer cv bespreken."

func BenchmarkCommands(b *testing.B) {
	for _, clients := range []int{1, 32} {
		for _, cache := range []struct {
			name string
			size int
		}{{"cache", 0}, {"nocache", -1}} {
			b.Run(fmt.Sprintf("clients=%d/%s", clients, cache.name), func(b *testing.B) {
				storeTime, storeLat := benchStore(b, clients)
				storeCPU := lastCPU
				grpcTime, grpcLat := benchGRPC(b, clients, cache.size, false)
				grpcCPU := lastCPU
				directTime, _ := benchGRPC(b, clients, cache.size, true)
				directCPU := lastCPU
				storeRate := float64(b.N) / storeTime.Seconds()
				grpcRate := float64(b.N) / grpcTime.Seconds()
				b.ReportMetric(storeRate, "store_cmds/s")
				b.ReportMetric(grpcRate, "grpc_cmds/s")
				b.ReportMetric(grpcRate/storeRate, "ratio")
				b.ReportMetric(percentile(storeLat, 0.5), "store_p50_µs")
				b.ReportMetric(percentile(storeLat, 0.99), "store_p99_µs")
				b.ReportMetric(percentile(grpcLat, 0.5), "grpc_p50_µs")
				b.ReportMetric(percentile(grpcLat, 0.99), "grpc_p99_µs")
				b.ReportMetric(float64(storeCPU.Microseconds()), "store_cpu_µs/cmd")
				b.ReportMetric(float64(grpcCPU.Microseconds()), "grpc_cpu_µs/cmd")
				b.ReportMetric(float64(b.N)/directTime.Seconds(), "direct_cmds/s")
				b.ReportMetric(float64(directCPU.Microseconds()), "direct_cpu_µs/cmd")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// benchStore appends, per client, a CaseOpened to a new stream and then 19
// sessions to it with the expected revision, as the service would.
func benchStore(b *testing.B, clients int) (time.Duration, []time.Duration) {
	b.Helper()
	r := newRig(b, casesvc.Options{})
	opened, session := sampleEvents(b)
	ctx := context.Background()
	return run(b, b.N, clients, func(c, i int) error {
		stream := fmt.Sprintf("case-%d-%d", c, i/commandsPerCase)
		ev, expected := session, eventstore.Exact(uint64(i%commandsPerCase-1))
		if i%commandsPerCase == 0 {
			ev, expected = opened, eventstore.NoStream
		}
		ev.ID = uuid.New()
		_, err := r.store.Append(ctx, stream, expected, ev)
		return err
	})
}

// benchGRPC sends, per client, OpenCase and then 19 RecordSession commands
// with notes. With direct it calls the service's methods in the process
// instead, which shows what gRPC itself costs.
func benchGRPC(b *testing.B, clients, cacheSize int, direct bool) (time.Duration, []time.Duration) {
	b.Helper()
	r := newRig(b, casesvc.Options{CacheSize: cacheSize})
	ctx := as("bench", "coach-bench")
	var client interface {
		OpenCase(context.Context, *casev1.OpenCaseRequest, ...grpc.CallOption) (*casev1.OpenCaseResponse, error)
		RecordSession(context.Context, *casev1.RecordSessionRequest, ...grpc.CallOption) (*casev1.RecordSessionResponse, error)
	} = r.client
	if direct {
		ctx = context.Background()
		client = directClient{svc: r.svc, principal: authn.Principal{
			Subject: "coach-bench", Tenant: "bench", Roles: []authn.Role{authn.RoleAdmin}, Via: authn.ViaJWT}}
	}
	cases := make([]string, clients)
	return run(b, b.N, clients, func(c, i int) error {
		rid := fmt.Sprintf("c%02d-%06d", c, i)
		if i%commandsPerCase == 0 {
			cases[c] = uuid.NewString()
			_, err := client.OpenCase(ctx, &casev1.OpenCaseRequest{CaseId: cases[c], RequestId: rid,
				ClientId: fmt.Sprintf("client-%02d", c), Client: &casev1.ClientDetails{GivenName: "Bench", FamilyName: "Mark"},
				InitiatedBy: casev1.Initiator_INITIATOR_CLIENT, OpenedOn: day(2025, 1, 6)})
			return err
		}
		_, err := client.RecordSession(ctx, &casev1.RecordSessionRequest{CaseId: cases[c], RequestId: rid, HeldOn: day(2025, 2, 3),
			Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60, Notes: benchNotes})
		return err
	})
}

// directClient calls the service's methods without gRPC, as principal,
// checking the policy as the interceptor would.
type directClient struct {
	svc       *casesvc.Service
	principal authn.Principal
}

func (d directClient) OpenCase(ctx context.Context, r *casev1.OpenCaseRequest, _ ...grpc.CallOption) (*casev1.OpenCaseResponse, error) {
	ctx, err := authz.Grant(ctx, d.principal, casev1.CaseService_OpenCase_FullMethodName)
	if err != nil {
		return nil, err
	}
	return d.svc.OpenCase(ctx, r)
}

func (d directClient) RecordSession(ctx context.Context, r *casev1.RecordSessionRequest, _ ...grpc.CallOption) (*casev1.RecordSessionResponse, error) {
	ctx, err := authz.Grant(ctx, d.principal, casev1.CaseService_RecordSession_FullMethodName)
	if err != nil {
		return nil, err
	}
	return d.svc.RecordSession(ctx, r)
}

// BenchmarkLoad loads a case of 20 events as a command does without the
// cache: read the stream, decode the events, fold them.
func BenchmarkLoad(b *testing.B) {
	r := newRig(b, casesvc.Options{})
	ctx := as("bench", "coach-bench")
	caseID := uuid.NewString()
	if _, err := r.client.OpenCase(ctx, &casev1.OpenCaseRequest{CaseId: caseID, RequestId: "open", ClientId: "client",
		Client: &casev1.ClientDetails{GivenName: "Bench"}, InitiatedBy: casev1.Initiator_INITIATOR_CLIENT, OpenedOn: day(2025, 1, 6)}); err != nil {
		b.Fatal(err)
	}
	for i := range commandsPerCase - 1 {
		if _, err := r.client.RecordSession(ctx, &casev1.RecordSessionRequest{CaseId: caseID, RequestId: fmt.Sprint("s", i),
			HeldOn: day(2025, 2, 3), Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60, Notes: benchNotes}); err != nil {
			b.Fatal(err)
		}
	}
	stream := "case-" + caseID
	b.ReportAllocs()
	for b.Loop() {
		events, err := r.store.ReadStream(context.Background(), stream, eventstore.ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		history := make([]proto.Message, len(events))
		for i, ev := range events {
			meta := new(eventv1.Metadata)
			if err := proto.Unmarshal(ev.Metadata, meta); err != nil {
				b.Fatal(err)
			}
			mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(ev.Type))
			if err != nil {
				b.Fatal(err)
			}
			history[i] = mt.New().Interface()
			if err := proto.Unmarshal(ev.Data, history[i]); err != nil {
				b.Fatal(err)
			}
		}
		if s := casework.Replay(history); s.Sessions.Count != commandsPerCase-1 {
			b.Fatalf("replayed %d sessions", s.Sessions.Count)
		}
	}
}
