// Package node assembles one Koers process: the event store, the keyring of
// the clients' data keys, the NATS bus (embedded or external), the relay
// between them and the gRPC server with its services. The `koers serve`
// command and the end-to-end tests start it the same way.
//
// Start order is store → keyring → bus → relay → gRPC; Stop runs it
// backwards so that
// nothing is accepted that cannot be stored and nothing stored is left
// unrelayed in a state the next start cannot resume from.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/kurrentdb"
	"github.com/koers-io/koers/eventstore/relay"
	"github.com/koers-io/koers/eventstore/sqlite"
	"github.com/koers-io/koers/keyring"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report"
	"github.com/koers-io/koers/services/auditsvc"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/casesvc"
	"github.com/koers-io/koers/services/feedsvc"
	"github.com/koers-io/koers/services/querysvc"
)

// Config is what a node needs to start. The zero value of each optional
// field means the embedded default.
type Config struct {
	// DataDir holds everything the node keeps on disk: the event store, the
	// clients' data keys (keys/), the erasure journal (erasures/), the
	// embedded NATS server's JetStream files and the lock that keeps a
	// second process out.
	DataDir string
	// MasterKeyFile is the file holding the master key that wraps the
	// clients' data keys: 32 bytes, base64. Empty means master.key in
	// DataDir, created on first start — fine for a trial, but in
	// production the key comes from a secret store, kept apart from the
	// data it protects, and a named file must exist.
	MasterKeyFile string
	// GRPCAddr is the host:port the gRPC server listens on; port 0 picks
	// a free port (see Node.GRPCAddr).
	GRPCAddr string
	// Store chooses the event store: StoreSQLite (the default, a file in
	// DataDir) or StoreKurrentDB (a KurrentDB node or cluster at
	// KurrentDBURL).
	Store string
	// KurrentDBURL is the esdb:// connection string of KurrentDB, TLS
	// options included, when Store is StoreKurrentDB.
	KurrentDBURL string
	// NATSURL connects to an external NATS server or cluster. Empty runs
	// an embedded nats-server in the process.
	NATSURL string
	// NATSListen is the host:port on which the embedded NATS server
	// accepts outside clients (agencies, projectors). Port 0 picks a free
	// port. Ignored with NATSURL.
	NATSListen string
	// AgencyUsers are the NATS users of re-integration agencies that read
	// their feed over NATS (see bus.AgencyUser and LoadAgencyUsers). On the
	// embedded server they become its users, which makes it require logins
	// (Koers' own with the password in InternalNATSPasswordFile); with
	// NATSURL the cluster's configuration holds them. Either way the node
	// creates each agency's consumer on the agency stream.
	AgencyUsers []bus.AgencyUser
	// PostgresDSN keeps the read models in PostgreSQL; empty keeps them in
	// readmodel.db in DataDir.
	PostgresDSN string
	// ExternalProjector leaves the projections to a `koers projector`
	// process: this node only answers queries from the read models.
	ExternalProjector bool
	// NoRelay leaves relaying the store onto NATS to a `koers relay`
	// process. Without it every API process relays too, which is safe
	// (publishes are conditional) but duplicate work.
	NoRelay bool
	// MetricsAddr is the host:port serving Prometheus metrics on /metrics;
	// empty serves none.
	MetricsAddr string
	// EventStreamReplicas is the replica count of the JetStream event
	// stream: 1 on a single server, 3 on a cluster.
	EventStreamReplicas int
	// Location is the practice's calendar, in which days (a session's day,
	// a deadline, "today" on a dashboard) are judged. Every part of the node
	// gets this one; nil means Calendar().
	Location *time.Location
	// Auth is how callers of the gRPC API authenticate; the zero value
	// trusts the local development issuer in DataDir.
	Auth Auth
	// ShutdownTimeout bounds how long Stop lets in-flight calls finish.
	ShutdownTimeout time.Duration
	// Logger receives the node's structured logs.
	Logger *slog.Logger
}

// Node is a running Koers process.
type Node struct {
	cfg      Config
	log      *slog.Logger
	lock     *dirLock
	store    eventstore.Store
	keys     *keyring.Keyring
	cases    *casesvc.Service
	audit    *audit.Recorder
	feed     *feedsvc.Service
	embedded *bus.Embedded
	nc       *nats.Conn
	js       jetstream.JetStream
	readDB   *projections.DB
	engine   *projections.Engine
	metrics  *http.Server
	grpc     *grpc.Server
	auth     *authn.Authenticator
	health   *health.Server
	listener net.Listener

	stopRelay context.CancelFunc
	workers   sync.WaitGroup
	stopOnce  sync.Once
	stopErr   error
}

// Start brings a node up and returns once every part is serving. On error
// it stops whatever it had already started.
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	cfg = withDefaults(cfg)
	n := &Node{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			n.Stop(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data folder: %w", err)
	}
	if n.lock, err = lockDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if n.store, err = OpenStore(ctx, cfg); err != nil {
		return nil, err
	}
	if err := n.openServices(ctx); err != nil {
		return nil, err
	}
	if err := n.startBus(ctx); err != nil {
		return nil, err
	}
	js, err := eventStream(ctx, n.nc, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := bus.EnsureAgencyStream(ctx, js, cfg.EventStreamReplicas); err != nil {
		return nil, fmt.Errorf("node: agency feed stream: %w", err)
	}
	if err := ensureAgencyConsumers(ctx, js, cfg.AgencyUsers); err != nil {
		return nil, err
	}
	n.js = js
	if !cfg.NoRelay {
		n.startRelay(js)
	}
	if err := n.startReadModels(ctx, js); err != nil {
		return nil, err
	}
	if err := n.startMetrics(); err != nil {
		return nil, err
	}
	if err := n.startGRPC(ctx); err != nil {
		return nil, err
	}
	n.log.Info("koers is serving",
		"grpc", n.listener.Addr().String(), "nats", redactURLs(n.NATSURL()), "data", cfg.DataDir)
	return n, nil
}

func withDefaults(cfg Config) Config {
	if cfg.DataDir == "" {
		cfg.DataDir = "koers-data"
	}
	if cfg.Store == "" {
		cfg.Store = StoreSQLite
	}
	if cfg.Location == nil {
		cfg.Location = Calendar()
	}
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:7400"
	}
	if cfg.NATSListen == "" {
		cfg.NATSListen = "127.0.0.1:7422"
	}
	if cfg.EventStreamReplicas == 0 {
		cfg.EventStreamReplicas = 1
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// openServices opens the keyring and the gRPC services on the store, and
// finishes erasures a stop interrupted before anything else can happen.
func (n *Node) openServices(ctx context.Context) error {
	keyFile, create := n.cfg.MasterKeyFile, false
	if keyFile == "" {
		keyFile, create = filepath.Join(n.cfg.DataDir, "master.key"), true
	}
	master, created, err := keyring.LoadMasterKey(keyFile, create)
	if err != nil {
		return fmt.Errorf("node: master key: %w", err)
	}
	if created {
		n.log.Warn("created a new master key in the data folder; in production supply one from a secret store", "file", keyFile)
	}
	if n.keys, err = keyring.Open(filepath.Join(n.cfg.DataDir, "keys"), master); err != nil {
		return fmt.Errorf("node: keyring: %w", err)
	}
	n.audit = audit.New(n.store, audit.Options{})
	n.cases, err = casesvc.New(n.store, n.keys, casesvc.Options{
		Audit:      n.audit,
		JournalDir: filepath.Join(n.cfg.DataDir, "erasures"),
		Location:   n.cfg.Location,
		Logger:     n.log.With("part", "cases"),
	})
	if err != nil {
		return fmt.Errorf("node: case service: %w", err)
	}
	if err := n.cases.Recover(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

func (n *Node) startBus(ctx context.Context) error {
	if n.cfg.NATSURL != "" {
		nc, err := nats.Connect(n.cfg.NATSURL, nats.Name("koers"), nats.MaxReconnects(-1), n.natsErrors())
		if err != nil {
			return fmt.Errorf("node: connect to NATS at %s: %w", n.cfg.NATSURL, err)
		}
		n.nc = nc
		return nil
	}
	host, port, err := splitHostPort(n.cfg.NATSListen)
	if err != nil {
		return fmt.Errorf("node: NATS listen address: %w", err)
	}
	ecfg := bus.EmbeddedConfig{
		StoreDir:    filepath.Join(n.cfg.DataDir, "nats"),
		Host:        host,
		Port:        port,
		Logger:      n.log.With("part", "nats"),
		AgencyUsers: n.cfg.AgencyUsers,
	}
	if len(n.cfg.AgencyUsers) > 0 {
		if ecfg.InternalPassword, err = internalNATSPassword(n.cfg.DataDir); err != nil {
			return fmt.Errorf("node: internal NATS password: %w", err)
		}
	}
	n.embedded, err = bus.StartEmbedded(ecfg)
	if err != nil {
		return fmt.Errorf("node: embedded NATS: %w", err)
	}
	if n.nc, err = n.embedded.Connect(nats.Name("koers"), n.natsErrors()); err != nil {
		return fmt.Errorf("node: connect to embedded NATS: %w", err)
	}
	return nil
}

// natsErrors sends the connection's asynchronous errors to the node's log
// rather than to standard error, where nats.go writes them by default.
func (n *Node) natsErrors() nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		subject := ""
		if sub != nil {
			subject = sub.Subject
		}
		n.log.Warn("NATS connection error", "subject", subject, "err", err)
	})
}

func (n *Node) startRelay(js jetstream.JetStream) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopRelay = cancel
	// The audit trail stays in the store: it is not for the bus.
	r := relay.New(n.store, js, relay.Options{Skip: audit.IsAuditStream, Logger: n.log.With("part", "relay")})
	n.workers.Go(func() {
		if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("relay stopped", "err", err)
		}
	})
}

func (n *Node) startGRPC(ctx context.Context) error {
	auth, err := n.authenticator(ctx)
	if err != nil {
		return err
	}
	n.auth = auth
	security, err := n.grpcSecurity(auth)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", n.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("node: gRPC listener: %w", err)
	}
	n.listener = lis
	n.grpc = grpc.NewServer(append(security, grpc.MaxRecvMsgSize(casesvc.MaxRequestBytes))...)
	n.cases.Register(n.grpc)
	queries, err := querysvc.New(n.readDB.Reader(dashboard.Name), n.readDB.Reader(report.Name), querysvc.Options{
		Audit:    n.audit,
		Location: n.cfg.Location,
		Logger:   n.log.With("part", "queries"),
	})
	if err != nil {
		return fmt.Errorf("node: query service: %w", err)
	}
	queries.Register(n.grpc)
	auditsvc.New(n.audit, auditsvc.Options{Logger: n.log.With("part", "audit")}).Register(n.grpc)
	if n.feed, err = feedsvc.New(n.js, feedsvc.Options{
		OnSubscribe: n.auditFeedSubscribe,
		OnDeliver:   n.auditFeedDelivery,
		Logger:      n.log.With("part", "feed"),
	}); err != nil {
		return fmt.Errorf("node: feed service: %w", err)
	}
	n.feed.Register(n.grpc)
	n.health = health.NewServer()
	healthpb.RegisterHealthServer(n.grpc, n.health)
	reflection.Register(n.grpc)
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.workers.Go(func() {
		if err := n.grpc.Serve(lis); err != nil {
			n.log.Error("gRPC server stopped", "err", err)
		}
	})
	return nil
}

// Store is the node's event store, for tools and tests that read it.
func (n *Node) Store() eventstore.Store { return n.store }

// GRPCAddr is the address the gRPC server listens on.
func (n *Node) GRPCAddr() string { return n.listener.Addr().String() }

// NATSURL is the URL outside clients use to reach the node's NATS server.
func (n *Node) NATSURL() string {
	if n.embedded != nil {
		return n.embedded.ClientURL()
	}
	return n.cfg.NATSURL
}

// Stop shuts the node down: it stops accepting calls, lets in-flight ones
// finish within the shutdown timeout, stops the relay, and closes the store
// and the bus. It is safe to call more than once.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() { n.stopErr = n.stop(ctx) })
	return n.stopErr
}

func (n *Node) stop(ctx context.Context) error {
	var errs []error
	if n.feed != nil {
		n.feed.Close() // feeds never end by themselves: end them, or draining waits for them
	}
	if n.grpc != nil {
		n.health.Shutdown() // health checks answer NOT_SERVING while draining
		stopped := make(chan struct{})
		go func() { n.grpc.GracefulStop(); close(stopped) }()
		timer := time.NewTimer(n.cfg.ShutdownTimeout)
		select {
		case <-stopped:
		case <-timer.C:
			n.log.Warn("in-flight calls did not finish in time; cutting them off", "timeout", n.cfg.ShutdownTimeout)
			n.grpc.Stop()
		case <-ctx.Done():
			n.grpc.Stop()
		}
		timer.Stop()
	}
	if n.auth != nil {
		n.auth.Close()
	}
	if n.metrics != nil {
		n.metrics.Close()
	}
	if n.engine != nil {
		n.engine.Stop()
	}
	if n.stopRelay != nil {
		n.stopRelay()
	}
	n.workers.Wait()
	if n.readDB != nil {
		if err := n.readDB.Close(); err != nil {
			errs = append(errs, fmt.Errorf("node: close read models: %w", err))
		}
	}
	if n.nc != nil {
		if err := n.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("node: drain NATS connection: %w", err))
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("node: close event store: %w", err))
		}
	}
	if n.embedded != nil {
		n.embedded.Shutdown()
	}
	if n.lock != nil {
		errs = append(errs, n.lock.release())
	}
	return errors.Join(errs...)
}

// Run starts a node, serves until ctx is done, then stops it.
func Run(ctx context.Context, cfg Config) error {
	n, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	n.log.Info("shutting down")
	err = n.Stop(context.Background())
	if err == nil {
		n.log.Info("stopped cleanly")
	}
	return err
}

// The event stores a node can run on.
const (
	StoreSQLite    = "sqlite"
	StoreKurrentDB = "kurrentdb"
)

// OpenStore opens the event store cfg chooses: the embedded SQLite file in
// the data folder, or KurrentDB at cfg.KurrentDBURL.
func OpenStore(ctx context.Context, cfg Config) (eventstore.Store, error) {
	switch cfg.Store {
	case StoreSQLite, "":
		s, err := sqlite.Open(filepath.Join(cfg.DataDir, "events.db"), sqlite.Options{Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("node: event store: %w", err)
		}
		return s, nil
	case StoreKurrentDB:
		if cfg.KurrentDBURL == "" {
			return nil, errors.New("node: the kurrentdb store needs a KurrentDB URL (esdb://...)")
		}
		s, err := kurrentdb.Open(ctx, cfg.KurrentDBURL, kurrentdb.Options{Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("node: event store: %w", err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("node: unknown event store %q (want %s or %s)", cfg.Store, StoreSQLite, StoreKurrentDB)
	}
}
