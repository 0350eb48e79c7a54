package main

import (
	"context"
	"log/slog"

	"github.com/koers-io/koers/node"
)

type serveCmd struct {
	Data       string `help:"Folder for everything Koers keeps on disk." default:"./koers-data" type:"path"`
	Store      string `help:"Event store: sqlite (embedded, in the data folder) or kurrentdb (a KurrentDB node or cluster)." enum:"sqlite,kurrentdb" default:"sqlite"`
	Kurrent    string `name:"kurrentdb-url" help:"KurrentDB connection string (esdb://host:2113?tls=true&tlsCAFile=ca.pem ...) for --store kurrentdb. Prefer the environment variable: it keeps a password out of the process list."`
	GRPCAddr   string `name:"grpc-addr" help:"host:port for the gRPC API. Plaintext, so keep it on loopback until TLS is configured." default:"127.0.0.1:7400"`
	NATSURL    string `name:"nats-url" help:"URL of an external NATS server or cluster; empty runs an embedded one in the data folder."`
	NATSListen string `name:"nats-listen" help:"host:port on which the embedded NATS server accepts outside clients." default:"127.0.0.1:7422"`
	Replicas   int    `name:"event-stream-replicas" help:"Replicas of the JetStream event stream: 1 on one server, 3 on a cluster." default:"1"`
	Postgres   string `name:"postgres-dsn" help:"PostgreSQL database for the read models (dashboards, reports); empty keeps them in readmodel.db in the data folder."`
	Projector  bool   `name:"external-projector" help:"Leave the projections to koers projector processes; this one only answers queries from the read models."`
	Metrics    string `name:"metrics-addr" help:"host:port serving Prometheus metrics on /metrics; empty serves none." default:"127.0.0.1:7490"`
	MasterKey  string `name:"master-key-file" help:"File with the master key (32 bytes, base64) that wraps the clients' data keys. Empty: master.key in the data folder, created on first start; in production give a file from your secret store, kept apart from the data." type:"path"`
}

func (s *serveCmd) Run(ctx context.Context, log *slog.Logger) error {
	return node.Run(ctx, node.Config{
		DataDir:             s.Data,
		Store:               s.Store,
		KurrentDBURL:        s.Kurrent,
		GRPCAddr:            s.GRPCAddr,
		NATSURL:             s.NATSURL,
		NATSListen:          s.NATSListen,
		EventStreamReplicas: s.Replicas,
		MasterKeyFile:       s.MasterKey,
		PostgresDSN:         s.Postgres,
		ExternalProjector:   s.Projector,
		MetricsAddr:         s.Metrics,
		Logger:              log,
	})
}
