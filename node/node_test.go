package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/kurrentdb"
	"github.com/koers-io/koers/eventstore/kurrentdb/kurrentdbtest"
	"github.com/koers-io/koers/node"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	queryv1 "github.com/koers-io/koers/proto/koers/query/v1"
)

func TestNodeRunsOnKurrentDB(t *testing.T) {
	kdb := kurrentdbtest.Start(t) // test double: no KurrentDB server can run here
	dir := t.TempDir()
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{
		DataDir:      dir,
		Store:        node.StoreKurrentDB,
		KurrentDBURL: kdb.URL(),
		GRPCAddr:     "127.0.0.1:0",
		NATSListen:   "127.0.0.1:0",
		Logger:       bustest.Logger(t, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })

	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	callCtx := adminCtx(t, ctx, dir, "acme", "coach-1")
	caseID := uuid.NewString()
	resp, err := casev1.NewCaseServiceClient(conn).OpenCase(callCtx, &casev1.OpenCaseRequest{
		CaseId:      caseID,
		RequestId:   "open-1",
		ClientId:    "client-1",
		Client:      &casev1.ClientDetails{GivenName: "Test", FamilyName: "Client"},
		InitiatedBy: casev1.Initiator_INITIATOR_CLIENT,
		OpenedOn:    &casev1.Date{Year: 2026, Month: 1, Day: 5},
	})
	if err != nil {
		t.Fatalf("OpenCase on the KurrentDB store: %v", err)
	}
	events, err := n.Store().ReadStream(ctx, "case-"+caseID, eventstore.ReadOptions{})
	if err != nil || len(events) == 0 {
		t.Fatalf("case stream in KurrentDB: %d events, %v", len(events), err)
	}
	if got, want := uint64(events[len(events)-1].Position), resp.GetResult().GetPosition(); got != want {
		t.Fatalf("response position %d, store position %d", want, got)
	}

	// The node's relay carries the events onto its embedded NATS.
	nc, err := nats.Connect(n.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream := waitForStream(t, js)
	deadline := time.Now().Add(30 * time.Second)
	for {
		msg, err := stream.GetLastMsgForSubject(ctx, bus.StreamFilter("acme", "case-"+caseID))
		if err == nil {
			if got, _ := bus.PositionOf(msg.Header); uint64(got) == resp.GetResult().GetPosition() {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the case's last event never reached JetStream: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunRelayCarriesKurrentDBOntoNATS(t *testing.T) {
	kdb := kurrentdbtest.Start(t) // test double: no KurrentDB server can run here
	srv := bustest.StartServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- node.RunRelay(ctx, node.Config{
			Store:               node.StoreKurrentDB,
			KurrentDBURL:        kdb.URL(),
			NATSURL:             srv.ClientURL(),
			EventStreamReplicas: 1,
			Logger:              bustest.Logger(t, 0),
		})
	}()

	store, err := kurrentdb.Open(ctx, kdb.URL(), kurrentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var want []eventstore.Position
	for i := range 10 {
		res, err := store.Append(ctx, "case-"+uuid.NewString(), eventstore.NoStream, eventstore.EventData{
			ID: uuid.New(), Type: "koers.test.v1.Event", Data: []byte{byte(i)},
		})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res.Position)
	}

	js := bustest.JetStream(t, srv)
	stream := waitForStream(t, js)
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == uint64(len(want)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event stream holds %d messages, want %d", info.State.Msgs, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, pos := range want {
		msg, err := stream.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		got, err := bus.PositionOf(msg.Header)
		if err != nil || got != pos {
			t.Fatalf("message %d: position %d (%v), want %d", i+1, got, err, pos)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunRelay after cancel: %v", err)
	}
}

func TestRunRelayRefusesTheEmbeddedStore(t *testing.T) {
	err := node.RunRelay(context.Background(), node.Config{Store: node.StoreSQLite, NATSURL: "nats://127.0.0.1:1"})
	if err == nil {
		t.Fatal("RunRelay on the SQLite store: no error")
	}
}

func TestStartRefusesAnUnknownStore(t *testing.T) {
	_, err := node.Start(context.Background(), node.Config{DataDir: t.TempDir(), Store: "postgres", GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0"})
	if err == nil {
		t.Fatal("Start with an unknown store: no error")
	}
}

func TestStartRefusesADataFolderInUse(t *testing.T) {
	dir := t.TempDir()
	cfg := node.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", Logger: bustest.Logger(t, 0)}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Start(context.Background(), cfg); !errors.Is(err, node.ErrDataDirInUse) {
		t.Fatalf("second Start on %s: %v, want ErrDataDirInUse", dir, err)
	}
	if err := n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	again.Stop(context.Background())
}

func waitForStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := js.Stream(context.Background(), bus.DefaultStreamName)
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("event stream never appeared: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestACommandIsOnTheCoachDashboardWhenTheQueryWaitsForItsPosition(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := node.Start(ctx, node.Config{
		DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", Logger: bustest.Logger(t, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	callCtx := adminCtx(t, ctx, dir, "acme", "coach-1")
	caseID := uuid.NewString()
	opened, err := casev1.NewCaseServiceClient(conn).OpenCase(callCtx, &casev1.OpenCaseRequest{
		CaseId:      caseID,
		RequestId:   "open-1",
		ClientId:    "client-1",
		Client:      &casev1.ClientDetails{GivenName: "Test", FamilyName: "Client"},
		InitiatedBy: casev1.Initiator_INITIATOR_CLIENT,
		OpenedOn:    &casev1.Date{Year: 2026, Month: 1, Day: 5},
		CoachId:     "coach-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := queryv1.NewQueryServiceClient(conn).GetCoachDashboard(callCtx, &queryv1.GetCoachDashboardRequest{
		MinPosition: opened.GetResult().GetPosition(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetFreshness().GetStale() || resp.GetFreshness().GetPosition() < opened.GetResult().GetPosition() {
		t.Fatalf("freshness %v, want position ≥ %d and not stale", resp.GetFreshness(), opened.GetResult().GetPosition())
	}
	var found bool
	for _, c := range resp.GetDashboard().GetCases() {
		found = found || c.GetCaseId() == caseID
	}
	if !found {
		t.Fatalf("the case just opened is not on the coach's dashboard: %v", resp.GetDashboard().GetCases())
	}
}
