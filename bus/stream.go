package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// DefaultStreamName is the JetStream stream that holds the events.
	DefaultStreamName = "KOERS_EVENTS"
	// DefaultDuplicateWindow is how long JetStream remembers message IDs
	// to drop republished copies. The relay never relies on it for
	// correctness (it publishes conditionally on the stream's last
	// sequence); it catches a publisher that does not.
	DefaultDuplicateWindow = 2 * time.Minute
)

// StreamConfig configures the JetStream stream that holds the events. The
// zero value is the embedded default.
type StreamConfig struct {
	// Name is the stream's name; empty means DefaultStreamName.
	Name string
	// Replicas is how many servers keep a copy: 0 means 1, the only choice
	// for a single server; 3 in a cluster.
	Replicas int
	// Duplicates is the de-duplication window; 0 means
	// DefaultDuplicateWindow.
	Duplicates time.Duration
	// MaxAge and MaxBytes bound what the stream keeps; zero keeps
	// everything, which is the default, because a consumer that finds the
	// events it still needs discarded can only rebuild from the store. When
	// set, the oldest messages are discarded first. Keep MaxAge well above
	// the longest quiet spell: the relay resumes from the stream's last
	// message, and a stream whose messages all expired sends it back to
	// republishing from the store's start.
	MaxAge   time.Duration
	MaxBytes int64
}

// JetStreamConfig returns the stream configuration EnsureEventStream
// applies for c: subjects AllEvents, file storage, limits retention, no
// limits unless c sets them, message deletes denied (a hole in the copy
// would stop the relay from telling where it stands; purging the whole
// stream, which makes the relay republish from the store, stays allowed).
func (c StreamConfig) JetStreamConfig() jetstream.StreamConfig {
	name := c.Name
	if name == "" {
		name = DefaultStreamName
	}
	replicas := c.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	dup := c.Duplicates
	if dup <= 0 {
		dup = DefaultDuplicateWindow
	}
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	if c.MaxAge > 0 && dup > c.MaxAge {
		// JetStream refuses a window longer than the age limit.
		dup = c.MaxAge
	}
	return jetstream.StreamConfig{
		Name:        name,
		Description: "Koers events, relayed from the event store in store order",
		Subjects:    []string{AllEvents},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxBytes:    maxBytes,
		MaxAge:      c.MaxAge,
		Replicas:    replicas,
		Duplicates:  dup,
		DenyDelete:  true,
	}
}

// EnsureEventStream creates the event stream, or updates it to cfg when it
// exists, and returns it.
func EnsureEventStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	sc := cfg.JetStreamConfig()
	s, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("bus: ensuring stream %s: %w", sc.Name, err)
	}
	return s, nil
}
