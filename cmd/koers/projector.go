package main

import (
	"context"
	"log/slog"

	"github.com/koers-io/koers/node"
)

// projectorCmd runs the projections as a process of their own, for
// scale-out: against an external NATS and PostgreSQL. Several may run for
// the same database; per projection one holds the lease (a PostgreSQL
// advisory lock) and applies, the others stand by and take over when it
// goes.
type projectorCmd struct {
	NATSURL     string `name:"nats-url" required:"" help:"NATS server or cluster with the event stream."`
	PostgresDSN string `name:"postgres-dsn" required:"" help:"PostgreSQL database holding the read models."`
	MetricsAddr string `name:"metrics-addr" help:"host:port to serve Prometheus metrics on at /metrics; empty serves none."`
}

func (c *projectorCmd) Run(ctx context.Context, log *slog.Logger) error {
	return node.RunProjector(ctx, node.Config{
		NATSURL:     c.NATSURL,
		PostgresDSN: c.PostgresDSN,
		MetricsAddr: c.MetricsAddr,
		Logger:      log,
	})
}
