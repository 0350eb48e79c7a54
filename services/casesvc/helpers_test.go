package casesvc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/node"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// testNode is a real node in a data folder of the test, with a client
// connected to its gRPC API over loopback TCP.
type testNode struct {
	t      testing.TB
	dir    string
	node   *node.Node
	conn   *grpc.ClientConn
	client casev1.CaseServiceClient
}

// startNode starts a node on dir as `koers serve` would: SQLite store,
// embedded NATS on a free port, relay, gRPC on a free port. It stops when
// the test ends.
func startNode(t testing.TB, dir string) *testNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		DataDir:    dir,
		GRPCAddr:   "127.0.0.1:0",
		NATSListen: "127.0.0.1:0",
		Auth:       trustIssuer(),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		n.Stop(context.Background())
		t.Fatalf("dialing %s: %v", n.GRPCAddr(), err)
	}
	tn := &testNode{t: t, dir: dir, node: n, conn: conn, client: casev1.NewCaseServiceClient(conn)}
	t.Cleanup(tn.stop)
	return tn
}

// stop stops the node; calling it twice is harmless.
func (tn *testNode) stop() {
	tn.conn.Close()
	if err := tn.node.Stop(context.Background()); err != nil {
		tn.t.Errorf("stopping node: %v", err)
	}
}

// restart stops the node and starts a new one on the same data folder.
func (tn *testNode) restart() *testNode {
	tn.t.Helper()
	tn.stop()
	return startNode(tn.t, tn.dir)
}

// head is the store's last position.
func (tn *testNode) head() eventstore.Position {
	return tn.node.Store().(interface{ Head() eventstore.Position }).Head()
}

// events reads a case's stream; nil when it has none.
func (tn *testNode) events(caseID string) []eventstore.RecordedEvent {
	tn.t.Helper()
	evs, err := tn.node.Store().ReadStream(context.Background(), "case-"+caseID, eventstore.ReadOptions{})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		tn.t.Fatalf("reading case %s: %v", caseID, err)
	}
	return evs
}

// relayed waits until the JetStream event stream holds every event of the
// case (want, as the store has them) and checks that it holds each once,
// in order, with the store's IDs, positions and types.
func (tn *testNode) relayed(tenant, caseID string, want []eventstore.RecordedEvent) {
	tn.t.Helper()
	nc, err := nats.Connect(tn.node.NATSURL())
	if err != nil {
		tn.t.Fatalf("connecting to NATS: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tn.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type seen struct {
		ID       string
		Type     string
		Revision uint64
		Position uint64
	}
	var wantSeen []seen
	for _, ev := range want {
		wantSeen = append(wantSeen, seen{ev.ID.String(), ev.Type, ev.Revision, uint64(ev.Position)})
	}
	filter := bus.StreamFilter(tenant, "case-"+caseID)
	cons, err := js.OrderedConsumer(ctx, bus.DefaultStreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		tn.t.Fatalf("consumer on %s: %v", filter, err)
	}
	var got []seen
	for len(got) < len(want) && ctx.Err() == nil {
		batch, err := cons.Fetch(len(want)-len(got), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			tn.t.Fatalf("fetching from %s: %v", filter, err)
		}
		for msg := range batch.Messages() {
			ev, err := bus.Decode(msg.Data(), msg.Headers())
			if err != nil {
				tn.t.Fatalf("decoding message: %v", err)
			}
			got = append(got, seen{ev.GetId(), ev.GetType(), ev.GetRevision(), ev.GetPosition()})
		}
	}
	if extra, err := cons.FetchNoWait(1); err == nil {
		for msg := range extra.Messages() {
			ev, _ := bus.Decode(msg.Data(), msg.Headers())
			got = append(got, seen{ev.GetId(), ev.GetType(), ev.GetRevision(), ev.GetPosition()})
		}
	}
	if diff := cmp.Diff(wantSeen, got); diff != "" {
		tn.t.Errorf("JetStream messages of case %s differ from the store (-store +jetstream):\n%s", caseID, diff)
	}
}

// statusOf returns the gRPC status of err, with the field violations and
// the ErrorInfo reason it carries.
func statusOf(err error) (code codes.Code, fields []string, reason string) {
	st := status.Convert(err)
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		}
	}
	return st.Code(), fields, reason
}

// day is a koers.case.v1.Date.
func day(y, m, d int32) *casev1.Date { return &casev1.Date{Year: y, Month: m, Day: d} }
