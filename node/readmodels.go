package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/agencyfeed"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report"
	"github.com/koers-io/koers/services/casesvc"
)

// ReadModels are the projections Koers runs, judging days in the practice's
// calendar loc: the coach dashboard, the organisational report, and the
// agency router, which publishes the agencies' feeds through js (the
// agency stream must exist: bus.EnsureAgencyStream). `koers serve`,
// `koers projector` and the projections commands all take them from here.
func ReadModels(loc *time.Location, js jetstream.JetStream, log *slog.Logger) ([]projections.Projection, error) {
	router, err := agencyfeed.New(agencyfeed.Options{JetStream: js, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("node: agency router: %w", err)
	}
	return []projections.Projection{
		dashboard.New(dashboard.Options{Location: loc}),
		report.New(report.Options{Location: loc}),
		router,
	}, nil
}

// Calendar is the practice's calendar Koers uses unless told otherwise:
// Europe/Amsterdam (casesvc.DefaultLocation), or UTC where the zone
// database lacks it. The binary embeds time/tzdata, so it has it.
func Calendar() *time.Location {
	loc, err := time.LoadLocation(casesvc.DefaultLocation)
	if err != nil {
		return time.UTC
	}
	return loc
}

// OpenReadModels opens the read-model database cfg chooses: PostgreSQL at
// cfg.PostgresDSN, or readmodel.db in the data folder.
func OpenReadModels(ctx context.Context, cfg Config) (*projections.DB, error) {
	opts := projections.Options{PostgresDSN: cfg.PostgresDSN}
	if cfg.PostgresDSN == "" {
		opts.Path = filepath.Join(cfg.DataDir, "readmodel.db")
	}
	db, err := projections.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("node: read models: %w", err)
	}
	return db, nil
}

// startReadModels opens the read models and, unless an external projector
// runs them, starts the projection engine in this process.
func (n *Node) startReadModels(ctx context.Context, js jetstream.JetStream) error {
	var err error
	if n.readDB, err = OpenReadModels(ctx, n.cfg); err != nil {
		return err
	}
	if n.cfg.ExternalProjector {
		return nil
	}
	log := n.log.With("part", "projections")
	models, err := ReadModels(n.cfg.Location, js, log)
	if err != nil {
		return err
	}
	n.engine, err = projections.Start(ctx, projections.Config{
		DB:          n.readDB,
		JetStream:   js,
		Projections: models,
		Logger:      log,
	})
	if err != nil {
		return fmt.Errorf("node: projections: %w", err)
	}
	return nil
}

// startMetrics serves the engine's Prometheus metrics on /metrics when a
// metrics address is configured.
func (n *Node) startMetrics() error {
	if n.cfg.MetricsAddr == "" || n.engine == nil {
		return nil
	}
	srv, err := serveMetrics(n.cfg.MetricsAddr, n.engine.Metrics(), &n.workers, n.log)
	n.metrics = srv
	return err
}

// serveMetrics serves reg on /metrics at addr, in a goroutine owned by
// workers, until the returned server is closed.
func serveMetrics(addr string, reg *prometheus.Registry, workers *sync.WaitGroup, log *slog.Logger) (*http.Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	workers.Go(func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	})
	log.Info("serving metrics", "addr", lis.Addr().String())
	return srv, nil
}

// RunProjector runs only the projections, against the NATS server at
// cfg.NATSURL and the read models at cfg.PostgresDSN, until ctx is done. It
// is `koers projector`, for scale-out. Several projectors may run on one
// database: per projection one holds the lease (a PostgreSQL advisory lock)
// and applies, the others stand by and take over when it goes.
func RunProjector(ctx context.Context, cfg Config) error {
	cfg = withDefaults(cfg)
	if cfg.NATSURL == "" || cfg.PostgresDSN == "" {
		return errors.New("node: a separate projector needs a NATS URL and a PostgreSQL DSN")
	}
	db, err := OpenReadModels(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log := cfg.Logger.With("part", "projections")
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("koers-projector"), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS connection error", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("node: connect to NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("node: jetstream: %w", err)
	}
	if _, err := bus.EnsureAgencyStream(ctx, js, cfg.EventStreamReplicas); err != nil {
		return fmt.Errorf("node: agency feed stream: %w", err)
	}
	models, err := ReadModels(cfg.Location, js, log)
	if err != nil {
		return err
	}
	engine, err := projections.Start(ctx, projections.Config{DB: db, JetStream: js, Projections: models, Logger: log})
	if err != nil {
		return fmt.Errorf("node: projections: %w", err)
	}
	defer engine.Stop()
	var workers sync.WaitGroup
	if cfg.MetricsAddr != "" {
		srv, err := serveMetrics(cfg.MetricsAddr, engine.Metrics(), &workers, log)
		if err != nil {
			return err
		}
		defer func() { srv.Close(); workers.Wait() }()
	}
	log.Info("projector running", "nats", redactURLs(cfg.NATSURL))
	<-ctx.Done()
	log.Info("projector stopping")
	return nil
}
