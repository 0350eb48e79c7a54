package casesvc_test

// Benchmarks of the command path, each beside the store adapter's own
// append of the same events measured in the same run, so the ratio is read
// off one run:
//
//	go test ./services/casesvc -run '^$' -bench . -benchtime 3000x -count 3
//
// BenchmarkCommands runs, for 1 and 32 concurrent clients each on cases of
// their own, these phases, each on a fresh store of its own:
//
//   - store: the SQLite adapter appending the events the commands would
//     write, with the expected revision (the baseline);
//   - grpc: the commands through gRPC over loopback TCP, each client on a
//     connection of its own, as 32 integrations or coaches' screens are;
//   - grpc1conn (32 clients only): the same with every client multiplexed
//     on one shared connection;
//   - direct: the commands called on the service in the process, past the
//     policy as the interceptor would, which tells the service's own cost
//     from gRPC's.
//
// Each client opens a case and records 19 sessions with notes on it, then
// moves to a new case, so cases stay at a realistic 20 events. The phases
// take turns in five rounds, so that the shared machine's drift (its load
// changes by the second) falls on each alike. For each phase it reports
// the rate (cmds/s: one command is one append), the p50 and p99 latency,
// the process CPU time per command (the benchmark's clients included, for
// gRPC their marshalling and HTTP/2) and the share of the machine's CPU
// left idle meanwhile (near zero: the phase was starved of CPU); and the
// ratio of each to the store's rate. All with the service's case cache on
// and off.
//
// Every phase runs under the profiler label phase=<name>, inherited by the
// goroutines it starts (servers, connections, the store's writer), so a CPU
// profile splits by phase:
//
//	go test ./services/casesvc -run '^$' -bench 'Commands/clients=32/^cache$' \
//		-benchtime 5000x -cpuprofile /tmp/cpu.out
//	go tool pprof -top -cum -tagfocus 'phase=^grpc$' /tmp/cpu.out
//
// KOERS_BENCH_GRPC adds server options under trial to the gRPC server, as
// words: workers (grpc.NumStreamWorkers(32)), shared
// (grpc.SharedWriteBuffer), smallbufs (4 KiB read and write buffers),
// window (1 MiB initial windows).
//
// BenchmarkLoad measures loading a case of 20 events as a command without
// the cache does: ReadStream, decode, Replay.

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
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

const (
	commandsPerCase = 20
	// rounds is how many turns each phase takes.
	rounds = 5
)

// rig is a service on a fresh store, served over loopback gRPC.
type rig struct {
	store *sqlite.Store
	svc   *casesvc.Service
	addr  string
}

// newRig starts a service with opts on a fresh store and keyring, behind a
// gRPC server that authenticates and authorizes as a node's does.
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
	srv := grpc.NewServer(append(trialServerOptions(b), grpc.MaxRecvMsgSize(casesvc.MaxRequestBytes),
		grpc.ChainUnaryInterceptor(authz.UnaryInterceptor(auth)), grpc.ChainStreamInterceptor(authz.StreamInterceptor(auth)))...)
	svc.Register(srv)
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	return &rig{store: store, svc: svc, addr: lis.Addr().String()}
}

// trialServerOptions are the server options KOERS_BENCH_GRPC names.
func trialServerOptions(b *testing.B) []grpc.ServerOption {
	var opts []grpc.ServerOption
	for _, word := range strings.Fields(os.Getenv("KOERS_BENCH_GRPC")) {
		switch word {
		case "workers":
			opts = append(opts, grpc.NumStreamWorkers(32))
		case "shared":
			opts = append(opts, grpc.SharedWriteBuffer(true))
		case "smallbufs":
			opts = append(opts, grpc.ReadBufferSize(4<<10), grpc.WriteBufferSize(4<<10))
		case "window":
			opts = append(opts, grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20))
		default:
			b.Fatalf("KOERS_BENCH_GRPC: unknown option %q", word)
		}
	}
	return opts
}

// dial connects a new client to the rig's server: a connection of its own.
func (r *rig) dial(b *testing.B) casev1.CaseServiceClient {
	b.Helper()
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return casev1.NewCaseServiceClient(conn)
}

// A phase is one way of running the commands, measured over rounds that
// take turns with the other phases'.
type phase struct {
	name    string
	clients int
	// op does client's i-th operation.
	op func(client, i int) error
	// done counts each client's operations so far.
	done []int

	n         int
	elapsed   time.Duration
	cpu       time.Duration
	idleTicks uint64
	allTicks  uint64
	latencies []time.Duration
}

// newPhase sets up a phase: setup runs under the phase's profiler label
// and returns the phase's operation.
func newPhase(name string, clients int, setup func() func(client, i int) error) *phase {
	p := &phase{name: name, clients: clients, done: make([]int, clients)}
	p.labelled(func() { p.op = setup() })
	return p
}

// labelled runs f with the profiler label phase=<name>, which every
// goroutine f starts inherits.
func (p *phase) labelled(f func()) {
	pprof.Do(context.Background(), pprof.Labels("phase", p.name), func(context.Context) { f() })
}

// round does n operations spread over the phase's clients.
func (p *phase) round(b *testing.B, n int) {
	b.Helper()
	p.labelled(func() {
		var mu sync.Mutex
		var failed error
		left := n
		take := func() bool {
			mu.Lock()
			defer mu.Unlock()
			left--
			return left >= 0 && failed == nil
		}
		lat := make([][]time.Duration, p.clients)
		var wg sync.WaitGroup
		cpu0 := cpuTime()
		idle0, all0 := machineCPU()
		start := time.Now()
		for c := range p.clients {
			wg.Go(func() {
				for take() {
					t0 := time.Now()
					if err := p.op(c, p.done[c]); err != nil {
						mu.Lock()
						failed = cmp.Or(failed, err)
						mu.Unlock()
						return
					}
					lat[c] = append(lat[c], time.Since(t0))
					p.done[c]++
				}
			})
		}
		wg.Wait()
		p.elapsed += time.Since(start)
		p.cpu += cpuTime() - cpu0
		idle1, all1 := machineCPU()
		p.idleTicks += idle1 - idle0
		p.allTicks += all1 - all0
		if failed != nil {
			b.Fatalf("%s: %v", p.name, failed)
		}
		for _, l := range lat {
			p.n += len(l)
			p.latencies = append(p.latencies, l...)
		}
	})
}

func (p *phase) rate() float64 { return float64(p.n) / p.elapsed.Seconds() }

func (p *phase) percentile(q float64) float64 {
	if len(p.latencies) == 0 {
		return 0
	}
	slices.Sort(p.latencies)
	return float64(p.latencies[int(float64(len(p.latencies)-1)*q)].Microseconds())
}

// report adds the phase's figures as metrics, and its rate's ratio to
// base's unless it is base.
func (p *phase) report(b *testing.B, base *phase) {
	b.ReportMetric(p.rate(), p.name+"_cmds/s")
	b.ReportMetric(p.percentile(0.5), p.name+"_p50_µs")
	b.ReportMetric(p.percentile(0.99), p.name+"_p99_µs")
	b.ReportMetric(float64(p.cpu.Microseconds())/float64(p.n), p.name+"_cpu_µs/cmd")
	if p.allTicks > 0 {
		b.ReportMetric(100*float64(p.idleTicks)/float64(p.allTicks), p.name+"_idle_%")
	}
	if p != base {
		b.ReportMetric(p.rate()/base.rate(), "ratio_"+p.name)
	}
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU returns the machine's idle (with I/O wait) and total CPU time
// so far, in clock ticks, from /proc/stat; zeros where there is none.
func machineCPU() (idle, total uint64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return idle, total
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

// A transport is how the benchmark's clients reach the service.
type transport int

const (
	// connPerClient gives each client a grpc.ClientConn, so a TCP
	// connection, of its own.
	connPerClient transport = iota
	// sharedConn sends every client's calls over one grpc.ClientConn,
	// multiplexed on one HTTP/2 connection.
	sharedConn
	// direct calls the service's methods in the process.
	direct
)

func BenchmarkCommands(b *testing.B) {
	for _, clients := range []int{1, 32} {
		for _, cache := range []struct {
			name string
			size int
		}{{"cache", 0}, {"nocache", -1}} {
			b.Run(fmt.Sprintf("clients=%d/%s", clients, cache.name), func(b *testing.B) {
				opts := casesvc.Options{CacheSize: cache.size}
				store := newPhase("store", clients, func() func(int, int) error { return storeAppends(b) })
				phases := []*phase{store,
					newPhase("grpc", clients, func() func(int, int) error { return commands(b, clients, opts, connPerClient) })}
				if clients > 1 {
					phases = append(phases,
						newPhase("grpc1conn", clients, func() func(int, int) error { return commands(b, clients, opts, sharedConn) }))
				}
				phases = append(phases,
					newPhase("direct", clients, func() func(int, int) error { return commands(b, clients, opts, direct) }))
				for r := range rounds {
					for _, p := range phases {
						p.round(b, b.N*(r+1)/rounds-b.N*r/rounds)
					}
				}
				for _, p := range phases {
					p.report(b, store)
				}
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// storeAppends returns the store phase's operation: per client, a
// CaseOpened appended to a new stream and then 19 sessions to it with the
// expected revision, as the service would.
func storeAppends(b *testing.B) func(client, i int) error {
	b.Helper()
	r := newRig(b, casesvc.Options{})
	opened, session := sampleEvents(b)
	ctx := context.Background()
	return func(c, i int) error {
		stream := fmt.Sprintf("case-%d-%d", c, i/commandsPerCase)
		ev, expected := session, eventstore.Exact(uint64(i%commandsPerCase-1))
		if i%commandsPerCase == 0 {
			ev, expected = opened, eventstore.NoStream
		}
		ev.ID = uuid.New()
		_, err := r.store.Append(ctx, stream, expected, ev)
		return err
	}
}

// commander is what a benchmark client calls: a gRPC client or the
// service itself.
type commander interface {
	OpenCase(context.Context, *casev1.OpenCaseRequest, ...grpc.CallOption) (*casev1.OpenCaseResponse, error)
	RecordSession(context.Context, *casev1.RecordSessionRequest, ...grpc.CallOption) (*casev1.RecordSessionResponse, error)
}

// commands returns a command phase's operation on a fresh service: per
// client, OpenCase and then 19 RecordSession commands with notes, over t.
// Each client is a coach of its own with a token of its own.
func commands(b *testing.B, clients int, opts casesvc.Options, t transport) func(client, i int) error {
	b.Helper()
	r := newRig(b, opts)
	callers := make([]commander, clients)
	ctxs := make([]context.Context, clients)
	var shared casev1.CaseServiceClient
	for c := range clients {
		coach := fmt.Sprintf("coach-%02d", c)
		switch t {
		case connPerClient:
			callers[c], ctxs[c] = r.dial(b), as("bench", coach)
		case sharedConn:
			if shared == nil {
				shared = r.dial(b)
			}
			callers[c], ctxs[c] = shared, as("bench", coach)
		case direct:
			callers[c], ctxs[c] = directClient{svc: r.svc, principal: authn.Principal{
				Subject: coach, Tenant: "bench", Roles: []authn.Role{authn.RoleAdmin}, Via: authn.ViaJWT}}, context.Background()
		}
	}
	cases := make([]string, clients)
	return func(c, i int) error {
		rid := fmt.Sprintf("c%02d-%06d", c, i)
		if i%commandsPerCase == 0 {
			cases[c] = uuid.NewString()
			_, err := callers[c].OpenCase(ctxs[c], &casev1.OpenCaseRequest{CaseId: cases[c], RequestId: rid,
				ClientId: fmt.Sprintf("client-%02d", c), Client: &casev1.ClientDetails{GivenName: "Bench", FamilyName: "Mark"},
				InitiatedBy: casev1.Initiator_INITIATOR_CLIENT, OpenedOn: day(2025, 1, 6)})
			return err
		}
		_, err := callers[c].RecordSession(ctxs[c], &casev1.RecordSessionRequest{CaseId: cases[c], RequestId: rid, HeldOn: day(2025, 2, 3),
			Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60, Notes: benchNotes})
		return err
	}
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
	client := r.dial(b)
	ctx := as("bench", "coach-bench")
	caseID := uuid.NewString()
	if _, err := client.OpenCase(ctx, &casev1.OpenCaseRequest{CaseId: caseID, RequestId: "open", ClientId: "client",
		Client: &casev1.ClientDetails{GivenName: "Bench"}, InitiatedBy: casev1.Initiator_INITIATOR_CLIENT, OpenedOn: day(2025, 1, 6)}); err != nil {
		b.Fatal(err)
	}
	for i := range commandsPerCase - 1 {
		if _, err := client.RecordSession(ctx, &casev1.RecordSessionRequest{CaseId: caseID, RequestId: fmt.Sprint("s", i),
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
