package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/audit"
	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore/relay"
)

// publishAsyncTimeout bounds how long the relay waits for the ack of one
// asynchronous publish; a publish lost in a reconnect would otherwise stay
// pending for ever and stall the relay's window.
const publishAsyncTimeout = 30 * time.Second

// eventStream opens JetStream on nc and makes sure the event stream exists
// with the configured replicas.
func eventStream(ctx context.Context, nc *nats.Conn, cfg Config) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishAsyncTimeout))
	if err != nil {
		return nil, fmt.Errorf("node: jetstream: %w", err)
	}
	if _, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{Replicas: cfg.EventStreamReplicas}); err != nil {
		return nil, fmt.Errorf("node: event stream: %w", err)
	}
	return js, nil
}

// RunRelay runs only the relay, from the event store cfg chooses onto the
// event stream on the NATS server at cfg.NATSURL, until ctx is done. It is
// `koers relay`: the part of a scaled-out deployment that carries a
// KurrentDB store onto a NATS cluster. The embedded SQLite store is not
// offered here; it belongs to the serve process that holds its data folder.
func RunRelay(ctx context.Context, cfg Config) error {
	cfg = withDefaults(cfg)
	if cfg.Store != StoreKurrentDB {
		return fmt.Errorf("node: a separate relay runs only on the %s store; %s serve relays its own", StoreKurrentDB, cfg.Store)
	}
	if cfg.NATSURL == "" {
		return errors.New("node: the relay needs a NATS URL")
	}
	store, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	log := cfg.Logger.With("part", "relay")
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("koers-relay"), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS connection error", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("node: connect to NATS: %w", err)
	}
	defer nc.Close()
	js, err := eventStream(ctx, nc, cfg)
	if err != nil {
		return err
	}
	log.Info("relaying", "store", cfg.Store, "nats", redactURLs(cfg.NATSURL))
	err = relay.New(store, js, relay.Options{Skip: audit.IsAuditStream, Logger: log}).Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
