package main

import (
	"context"
	"log/slog"

	"github.com/koers-io/koers/node"
)

type relayCmd struct {
	Store    string `help:"Event store to relay from. Only kurrentdb: the embedded SQLite store belongs to its koers serve process, which runs its own relay." enum:"kurrentdb" default:"kurrentdb"`
	Kurrent  string `name:"kurrentdb-url" help:"KurrentDB connection string (esdb://...). Prefer the environment variable: it keeps a password out of the process list." required:""`
	NATSURL  string `name:"nats-url" help:"URL of the NATS server or cluster that holds the event stream." required:""`
	Replicas int    `name:"event-stream-replicas" help:"Replicas of the JetStream event stream, when the relay creates it: 3 on a cluster." default:"3"`
}

func (r *relayCmd) Run(ctx context.Context, log *slog.Logger) error {
	return node.RunRelay(ctx, node.Config{
		Store:               r.Store,
		KurrentDBURL:        r.Kurrent,
		NATSURL:             r.NATSURL,
		EventStreamReplicas: r.Replicas,
		Logger:              log,
	})
}
