package node_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/koers-io/koers/node"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
)

// BenchmarkFreshness measures command-to-dashboard freshness on a whole
// node (store, relay, NATS, projections, gRPC): commands are sent at a
// steady 500 per second, on 500 cases, and after one in ten the coach's
// dashboard is asked for with the command's position as min_position. Freshness is the time
// from the command's answer to that dashboard's answer. The baseline, in
// the same run, is the same dashboard query without min_position.
func BenchmarkFreshness(b *testing.B) {
	const (
		rate   = 500 // commands per second
		cases  = 500
		sample = 10 // one command in sample is followed by the two queries
	)
	ctx := context.Background()
	dir := b.TempDir()
	n, err := node.Start(ctx, node.Config{
		DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop(context.Background())
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	callCtx := adminCtx(b, ctx, dir, "bench", "coach-bench")
	cmds := casev1.NewCaseServiceClient(conn)
	queries := queryv1.NewQueryServiceClient(conn)

	ids := make([]string, cases)
	for i := range ids {
		ids[i] = uuid.NewString()
		if _, err := cmds.OpenCase(callCtx, &casev1.OpenCaseRequest{
			CaseId: ids[i], RequestId: "open", ClientId: fmt.Sprintf("client-%d", i),
			Client:      &casev1.ClientDetails{GivenName: "Bench", FamilyName: "Mark"},
			InitiatedBy: casev1.Initiator_INITIATOR_CLIENT, OpenedOn: &casev1.Date{Year: 2026, Month: 1, Day: 5},
			CoachId: "coach-bench",
		}); err != nil {
			b.Fatal(err)
		}
	}

	var (
		mu        sync.Mutex
		fresh     []time.Duration
		baseline  []time.Duration
		stale     int
		wg        sync.WaitGroup
		firstErr  error
		recordErr = func(err error) {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	)
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		wg.Go(func() {
			res, err := cmds.RecordSession(callCtx, &casev1.RecordSessionRequest{
				CaseId: ids[i%cases], RequestId: fmt.Sprintf("s-%d", i),
				HeldOn: &casev1.Date{Year: 2026, Month: 2, Day: 3}, Kind: casev1.SessionKind_SESSION_KIND_COACHING,
				DurationMinutes: 60,
			})
			if err != nil {
				recordErr(err)
				return
			}
			if i%sample != 0 {
				return
			}
			acked := time.Now()
			dash, err := queries.GetCoachDashboard(callCtx, &queryv1.GetCoachDashboardRequest{MinPosition: res.GetResult().GetPosition()})
			if err != nil {
				recordErr(err)
				return
			}
			took := time.Since(acked)
			t0 := time.Now()
			if _, err := queries.GetCoachDashboard(callCtx, &queryv1.GetCoachDashboardRequest{}); err != nil {
				recordErr(err)
				return
			}
			plain := time.Since(t0)
			mu.Lock()
			fresh = append(fresh, took)
			baseline = append(baseline, plain)
			if dash.GetFreshness().GetStale() {
				stale++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(fresh)
	slices.Sort(baseline)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(fresh, 0.5), "fresh_p50_ms")
	b.ReportMetric(pct(fresh, 0.99), "fresh_p99_ms")
	b.ReportMetric(pct(baseline, 0.5), "query_p50_ms")
	b.ReportMetric(pct(baseline, 0.99), "query_p99_ms")
	b.ReportMetric(float64(stale), "stale")
	b.ReportMetric(0, "ns/op")
}
