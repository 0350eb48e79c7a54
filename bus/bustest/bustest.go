// Package bustest starts real embedded NATS servers for tests: JetStream in
// a temporary directory, on a free loopback port, shut down when the test
// ends.
package bustest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
)

// StartServer starts an embedded NATS server with JetStream file storage in
// a temporary directory, listening on a free loopback port. The server is
// shut down when the test ends. Its warnings and errors go to the test log.
func StartServer(t testing.TB) *bus.Embedded {
	t.Helper()
	return start(t, bus.EmbeddedConfig{
		StoreDir: t.TempDir(),
		Host:     "127.0.0.1",
		Port:     bus.RandomPort,
	})
}

// Restart shuts srv down, waiting until it has stopped, and starts a new
// server on the same port and store directory, which is shut down when the
// test ends. Clients connected by URL reconnect to it; in-process
// connections to srv do not.
func Restart(t testing.TB, srv *bus.Embedded) *bus.Embedded {
	t.Helper()
	srv.Shutdown()
	return start(t, srv.Config())
}

func start(t testing.TB, cfg bus.EmbeddedConfig) *bus.Embedded {
	t.Helper()
	cfg.Logger = Logger(t, slog.LevelWarn)
	var (
		srv *bus.Embedded
		err error
	)
	// A restart may find the port still held for a moment by the server
	// that just stopped; retry briefly rather than fail the test on it.
	for range 50 {
		srv, err = bus.StartEmbedded(cfg)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("starting embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Connect connects to srv over loopback TCP, so that the connection
// survives a Restart by reconnecting, and closes it when the test ends.
func Connect(t testing.TB, srv *bus.Embedded, opts ...nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.Name(t.Name()),
	}
	nc, err := nats.Connect(srv.ClientURL(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("connecting to %s: %v", srv.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream connects to srv as Connect does and returns a JetStream
// context on that connection.
func JetStream(t testing.TB, srv *bus.Embedded, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(Connect(t, srv, opts...))
	if err != nil {
		t.Fatalf("JetStream context: %v", err)
	}
	return js
}

// Logger returns a logger that writes records at level and above to the
// test log, and drops them once the test has ended (servers and relays may
// still log while they stop).
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
