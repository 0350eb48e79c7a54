package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/relay"
	"github.com/koers-io/koers/projections"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// clusterAdvance is how far the relay must get, in positions, after each
// loss of a node before the test goes on: proof that relaying continued on
// the nodes left, not only after the node came back.
const clusterAdvance = 300

// TestRelayAndProjectionSurviveTheLossOfNATSNodes runs the bus as it runs
// at scale, a three-node NATS cluster with the event stream replicated
// three times, and shows relaying and projecting carry on through the loss
// of a node, even of the stream's leader, with nothing lost and nothing
// doubled. Events are appended to a SQLite store all along, relayed onto an
// R3 stream on three in-process servers and projected by the projection
// engine through its durable consumer, while first a follower of the stream
// is shut down (and started again, as two nodes down would leave no
// quorum) and then the stream's leader.
func TestRelayAndProjectionSurviveTheLossOfNATSNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster and fails nodes over; skipped with -short")
	}
	began := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	cluster := startNATSCluster(t)
	admin := cluster.jetStream(t, "admin")
	stream := ensureReplicatedStream(t, admin)

	store := newStore(t)
	rl := start(t, store, cluster.jetStream(t, "relay"), relay.Options{
		AckTimeout:     3 * time.Second,
		RequestTimeout: 2 * time.Second,
		MaxBackoff:     500 * time.Millisecond,
		Logger:         bustest.Logger(t, slog.LevelWarn),
	})
	proj := startPositionLog(t, cluster.jetStream(t, "projector"))
	app := startAppender(t, store)

	phase("cluster up, stream created")
	waitFor(t, "the relay to carry the first events", func() bool { return rl.Position() >= clusterAdvance })

	// A follower of the stream goes; two of three replicas keep the quorum.
	leader := streamLeader(t, stream)
	follower := cluster.other(leader)
	t.Logf("stopping %s, a follower of the stream (leader %s), at store position %d", follower, leader, store.Head())
	cluster.stop(t, follower)
	mark := store.Head()
	waitFor(t, "the relay to go on with a follower down", func() bool { return rl.Position() >= mark+clusterAdvance })
	phase("relayed on with the follower down")
	cluster.restart(t, follower)
	waitFor(t, "the restarted follower to catch up", func() bool { return streamCurrent(stream, 3) })
	phase("follower restarted and current")

	// Now the leader goes; the other two elect a new one.
	leader = streamLeader(t, stream)
	t.Logf("stopping %s, the stream's leader, at store position %d", leader, store.Head())
	cluster.stop(t, leader)
	mark = store.Head()
	waitFor(t, "the relay to go on after the leader's loss", func() bool { return rl.Position() >= mark+clusterAdvance })
	phase("relayed on after the leader's loss")
	if newLeader := streamLeader(t, stream); newLeader == leader {
		t.Fatalf("the stopped server %s still leads the stream", leader)
	}

	appended := app.stop(t)
	head := store.Head()
	if head != eventstore.Position(appended) {
		t.Fatalf("store head %d after %d events appended", head, appended)
	}
	waitFor(t, "the relay to reach the store's head", func() bool { return rl.Position() == head })
	t.Logf("%d events appended and relayed; relay runs: %d", head, rl.Stats().Runs)

	// The stream holds every event exactly once, in store order, with
	// positions chained through Koers-Previous-Position.
	checkReplicatedStream(t, stream, store, head)
	phase("stream checked")
	// The projection converged to the head and applied each event once.
	proj.checkConverged(t, store, head)
	phase("projection checked")
}

// natsCluster is three nats-servers in this process, routed to each other
// on loopback ports, with JetStream in temporary folders.
type natsCluster struct {
	mu      sync.Mutex
	opts    []*server.Options
	servers []*server.Server // nil while stopped
}

// startNATSCluster starts the three servers and waits until JetStream has a
// meta leader. Every server lists the routes to all three (a route to
// itself it drops), on cluster ports chosen before any starts, so that a
// server stopped and restarted is routed to both others again.
func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	clusterPorts := freePorts(t, 3)
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	// Temporary folders are removed by a cleanup registered with the
	// first: it must run after the servers' shutdown, so before it is
	// registered.
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	c := &natsCluster{}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, srv := range c.servers {
			if srv != nil {
				srv.Shutdown()
				srv.WaitForShutdown()
			}
		}
	})
	for i := range 3 {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			MaxPayload: bus.DefaultMaxPayload,
			JetStream:  true,
			StoreDir:   dirs[i],
			Cluster: server.ClusterOpts{
				Name: "koers-test",
				Host: "127.0.0.1",
				Port: clusterPorts[i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
			NoSigs: true,
		}
		srv := startServer(t, opts)
		// A restart must come back on the same client port: clients know
		// the server by it.
		opts.Port = srv.Addr().(*net.TCPAddr).Port
		c.mu.Lock()
		c.opts = append(c.opts, opts)
		c.servers = append(c.servers, srv)
		c.mu.Unlock()
	}
	waitFor(t, "a JetStream meta leader", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, srv := range c.servers {
			if srv.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return c
}

// freePorts returns n loopback ports that were free a moment ago. The
// cluster ports must be known before the first server starts, because
// JetStream in a cluster refuses to start without its routes.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startServer starts one server and waits until it accepts clients. A
// restart may find its ports held for a moment by the server that just
// stopped; it retries then.
func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	var why string
	for range 50 {
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("configuring nats-server %s: %v", opts.ServerName, err)
		}
		log := &serverLog{l: bustest.Logger(t, slog.LevelError).With("server", opts.ServerName)}
		srv.SetLoggerV2(log, false, false, false)
		srv.Start()
		deadline := time.Now().Add(10 * time.Second)
		for log.lastFatal() == "" && time.Now().Before(deadline) {
			if srv.ReadyForConnections(50 * time.Millisecond) {
				return srv
			}
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		why = log.lastFatal()
		if why == "" {
			why = "not ready for connections within 10s"
		}
		if !strings.Contains(why, "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("starting nats-server %s: %s", opts.ServerName, why)
	return nil
}

// urls lists the client URLs of all three servers, running or not.
func (c *natsCluster) urls() string {
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// jetStream connects to the cluster as a deployed process does, with the
// URLs of all three servers and reconnecting for ever, and returns a
// JetStream context on the connection.
func (c *natsCluster) jetStream(t *testing.T, name string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(c.urls(),
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		// Disconnections are the point of the test; keep them out of the
		// default handler's output.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	)
	if err != nil {
		t.Fatalf("connecting %s to the cluster: %v", name, err)
	}
	t.Cleanup(nc.Close)
	// As node.eventStream does: a publish lost in a failover must not sit
	// among the pending ones for ever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (c *natsCluster) index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	panic("no server " + name)
}

// other returns the name of a server other than name.
func (c *natsCluster) other(name string) string {
	return c.opts[(c.index(name)+1)%len(c.opts)].ServerName
}

// stop shuts server name down and waits until it has closed its files.
func (c *natsCluster) stop(t *testing.T, name string) {
	t.Helper()
	c.mu.Lock()
	srv := c.servers[c.index(name)]
	c.servers[c.index(name)] = nil
	c.mu.Unlock()
	if srv == nil {
		t.Fatalf("server %s is not running", name)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// restart starts server name again on its ports and store.
func (c *natsCluster) restart(t *testing.T, name string) {
	t.Helper()
	i := c.index(name)
	srv := startServer(t, c.opts[i].Clone())
	c.mu.Lock()
	c.servers[i] = srv
	c.mu.Unlock()
}

// checkReplicatedStream checks what checkStreamMirrorsStore checks, reading
// the stream message by message instead of through a consumer, each read
// with a short deadline and retried: a cluster that has just lost a node
// drops a request now and then (one sent during an election gets no answer
// at all), and a new consumer may be placed where it cannot serve yet.
func checkReplicatedStream(t *testing.T, s jetstream.Stream, store eventstore.Store, head eventstore.Position) {
	t.Helper()
	n := uint64(head)
	var state jetstream.StreamState
	waitFor(t, "the stream's state", func() bool {
		info, err := streamInfo(s)
		if err != nil {
			return false
		}
		state = info.State
		return true
	})
	if state.Msgs != n || state.FirstSeq != 1 || state.LastSeq != n {
		t.Fatalf("stream holds %d messages at sequences %d..%d, want %d at 1..%d", state.Msgs, state.FirstSeq, state.LastSeq, n, n)
	}
	want := storeEvents(t, store, int(n))
	var previous eventstore.Position
	for seq := uint64(1); seq <= n; seq++ {
		var msg *jetstream.RawStreamMsg
		waitFor(t, fmt.Sprintf("stream message %d", seq), func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			m, err := s.GetMsg(ctx, seq)
			msg = m
			return err == nil
		})
		se := want[seq-1]
		ev, err := bus.Decode(msg.Data, msg.Header)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if ev.GetPreviousPosition() != uint64(previous) {
			t.Fatalf("message %d: previous position %d, want %d (a gap or a repeat)", seq, ev.GetPreviousPosition(), previous)
		}
		if ev.GetPosition() != uint64(se.Position) || ev.GetId() != se.ID.String() || ev.GetStream() != se.Stream ||
			ev.GetRevision() != se.Revision || ev.GetType() != se.Type || string(ev.GetData()) != string(se.Data) {
			t.Fatalf("message %d is %s %s@%d at position %d; want store event %d: %s %s@%d",
				seq, ev.GetId(), ev.GetStream(), ev.GetRevision(), ev.GetPosition(), se.Position, se.ID, se.Stream, se.Revision)
		}
		if wantMsg, _ := bus.Message(se, previous); msg.Subject != wantMsg.Subject {
			t.Fatalf("message %d on subject %q, want %q", seq, msg.Subject, wantMsg.Subject)
		}
		previous = se.Position
	}
}

// ensureReplicatedStream creates the event stream with three replicas,
// retrying while the cluster still assembles its peers.
func ensureReplicatedStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	var (
		s    jetstream.Stream
		last error
	)
	waitFor(t, "the event stream with 3 replicas", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, last = bus.EnsureEventStream(ctx, js, bus.StreamConfig{Replicas: 3})
		return last == nil
	})
	if got := s.CachedInfo().Config.Replicas; got != 3 {
		t.Fatalf("the stream has %d replicas, want 3", got)
	}
	waitFor(t, "all replicas of the stream to be current", func() bool { return streamCurrent(s, 3) })
	return s
}

// streamInfo reads the stream's info with a timeout per try, so that a
// request lost in a failover does not hang.
func streamInfo(s jetstream.Stream) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.Info(ctx)
}

// streamLeader returns the name of the server leading the stream, waiting
// for an election if there is none.
func streamLeader(t *testing.T, s jetstream.Stream) string {
	t.Helper()
	var leader string
	waitFor(t, "a stream leader", func() bool {
		info, err := streamInfo(s)
		if err != nil || info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != ""
	})
	return leader
}

// streamCurrent reports whether the stream has a leader and n-1 current,
// online followers.
func streamCurrent(s jetstream.Stream, n int) bool {
	info, err := streamInfo(s)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != n-1 {
		return false
	}
	for _, p := range info.Cluster.Replicas {
		if !p.Current || p.Offline {
			return false
		}
	}
	return true
}

// appender appends events to the store until stopped, paced so that the
// node losses happen while events keep coming.
type appender struct {
	cancel   context.CancelFunc
	done     chan struct{} // closed when run has returned, err set
	err      error
	appended atomic.Int64
}

func startAppender(t *testing.T, store eventstore.Store) *appender {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &appender{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = a.run(ctx, store)
	}()
	t.Cleanup(func() {
		cancel()
		<-a.done
	})
	return a
}

// run appends batches of one to three events over seven cases, one batch
// every 2 ms, until ctx is done.
func (a *appender) run(ctx context.Context, store eventstore.Store) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	next := map[int]uint64{}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		k, size := i%7, 1+i%3
		expected := eventstore.NoStream
		if next[k] > 0 {
			expected = eventstore.Exact(next[k] - 1)
		}
		events := make([]eventstore.EventData, size)
		for j := range events {
			events[j] = sessionEvent(k, next[k]+uint64(j))
		}
		if _, err := store.Append(context.Background(), clusterStream(k), expected, events...); err != nil {
			return fmt.Errorf("appending to case %d at revision %d: %w", k, next[k], err)
		}
		next[k] += uint64(size)
		a.appended.Add(int64(size))
	}
}

// stop ends the appends and returns how many events were appended.
func (a *appender) stop(t *testing.T) int64 {
	t.Helper()
	a.cancel()
	<-a.done
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a.appended.Load()
}

// clusterStream is the name of test case k.
func clusterStream(k int) string {
	return "case-" + uuid.NewSHA1(idSpace, fmt.Appendf(nil, "cluster case %d", k)).String()
}

// sessionEvent is the event at revision rev of test case k: a session
// recorded, with a body the projection engine decodes.
func sessionEvent(k int, rev uint64) eventstore.EventData {
	meta, err := proto.Marshal(&eventv1.Metadata{
		TenantId:      "acme",
		CaseId:        strings.TrimPrefix(clusterStream(k), "case-"),
		Actor:         "coach-1",
		SchemaVersion: 1,
	})
	if err != nil {
		panic(err)
	}
	body, err := proto.Marshal(&casev1.SessionRecorded{
		HeldOn:          &casev1.Date{Year: 2026, Month: 3, Day: int32(1 + rev%28)},
		DurationMinutes: uint32(30 + rev%60),
	})
	if err != nil {
		panic(err)
	}
	return eventstore.EventData{
		ID:       uuid.NewSHA1(idSpace, fmt.Appendf(nil, "cluster event %d/%d", k, rev)),
		Type:     string((&casev1.SessionRecorded{}).ProtoReflect().Descriptor().FullName()),
		Data:     body,
		Metadata: meta,
	}
}

// positionLog is the test projection: one row per event applied, keyed by
// position, so that an event applied twice fails its insert (and would be
// parked) and one never applied leaves a hole.
type positionLog struct{}

func (positionLog) Name() string { return "position_log" }
func (positionLog) Version() int { return 1 }

func (positionLog) Tables() []projections.Table {
	return []projections.Table{{
		Name: "events",
		Create: `CREATE TABLE {events} (
			position BIGINT PRIMARY KEY,
			event_id TEXT NOT NULL,
			stream TEXT NOT NULL,
			revision BIGINT NOT NULL
		)`,
	}}
}

func (positionLog) Apply(ctx context.Context, tx projections.Tx, ev projections.Event) error {
	if _, ok := ev.Body.(*casev1.SessionRecorded); !ok {
		return projections.ErrUnknownEvent
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO {events} (position, event_id, stream, revision) VALUES (?, ?, ?, ?)`,
		int64(ev.Position), ev.ID, ev.Stream, int64(ev.Revision))
	return err
}

// projection is the projection engine running positionLog into a SQLite
// read model, consuming the cluster.
type projection struct {
	db     *projections.DB
	engine *projections.Engine
}

func startPositionLog(t *testing.T, js jetstream.JetStream) *projection {
	t.Helper()
	ctx := context.Background()
	db, err := projections.Open(ctx, projections.Options{Path: filepath.Join(t.TempDir(), "readmodel.db")})
	if err != nil {
		t.Fatalf("opening the read model: %v", err)
	}
	e, err := projections.Start(ctx, projections.Config{
		DB:          db,
		JetStream:   js,
		Projections: []projections.Projection{positionLog{}},
		Logger:      bustest.Logger(t, slog.LevelWarn),
	})
	if err != nil {
		db.Close()
		t.Fatalf("starting the projection engine: %v", err)
	}
	// Cleanups run last first: the engine stops before its database closes.
	t.Cleanup(func() { db.Close() })
	t.Cleanup(e.Stop)
	return &projection{db: db, engine: e}
}

// checkConverged waits until the projection has applied up to head, then
// checks that it holds each of the store's events once, in store order,
// and parked or skipped none.
func (p *projection) checkConverged(t *testing.T, store eventstore.Store, head eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.db.WaitForPosition(ctx, positionLog{}.Name(), head); err != nil {
		t.Fatalf("the projection did not converge: %v", err)
	}

	rows, err := p.db.Reader(positionLog{}.Name()).QueryContext(ctx, `SELECT position, event_id FROM {events} ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := storeEvents(t, store, int(head))
	i := 0
	for rows.Next() {
		var (
			pos int64
			id  string
		)
		if err := rows.Scan(&pos, &id); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) {
			t.Fatalf("the projection holds more than the store's %d events: position %d", len(want), pos)
		}
		if eventstore.Position(pos) != want[i].Position || id != want[i].ID.String() {
			t.Fatalf("projection row %d is position %d, event %s; want position %d, event %s (a hole or a repeat)",
				i+1, pos, id, want[i].Position, want[i].ID)
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Fatalf("the projection holds %d events, the store %d", i, len(want))
	}

	statuses, err := projections.ReadStatus(ctx, p.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) != 1 || statuses[0].Live == nil {
		t.Fatalf("projection status: %+v, want one live projection", statuses)
	}
	live := statuses[0].Live
	if live.Position != head || live.Applied != uint64(head) || live.Unknown != 0 || live.DeadLetters != 0 {
		t.Errorf("projection at position %d, applied %d, unknown %d, parked %d; want position %d, all %d applied, none unknown or parked",
			live.Position, live.Applied, live.Unknown, live.DeadLetters, head, head)
	}
	t.Logf("the projection applied %d events; gaps it noticed and went back for: %v", live.Applied, p.gaps(t))
}

// gaps reads the engine's koers_projection_gaps_total, for the log.
func (p *projection) gaps(t *testing.T) float64 {
	families, err := p.engine.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range families {
		if f.GetName() != "koers_projection_gaps_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// serverLog passes a nats-server's errors to the test log; the rest of
// what a failing-over cluster says is expected and left out.
type serverLog struct {
	l *slog.Logger

	mu    sync.Mutex
	fatal string
}

func (s *serverLog) Noticef(string, ...any) {}
func (s *serverLog) Warnf(string, ...any)   {}
func (s *serverLog) Debugf(string, ...any)  {}
func (s *serverLog) Tracef(string, ...any)  {}
func (s *serverLog) Errorf(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if strings.Contains(line, "connect to route") {
		return // a stopped peer, retried until it is back
	}
	s.l.Error(line)
}

// Fatalf records the line instead of exiting the test binary, as the
// server's own logger would.
func (s *serverLog) Fatalf(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	s.l.Error(line, "fatal", true)
	s.mu.Lock()
	s.fatal = line
	s.mu.Unlock()
}

func (s *serverLog) lastFatal() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}
