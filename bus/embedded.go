package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const (
	// DefaultHost is where the embedded server listens unless told
	// otherwise: loopback, so that nothing outside the machine reaches it
	// by accident.
	DefaultHost = "127.0.0.1"
	// DefaultMaxPayload is the embedded server's largest message. One event
	// may carry up to eventstore.MaxAppendBytes of data and metadata, which
	// NATS's 1 MiB default would refuse and so stall the relay.
	DefaultMaxPayload = 8 << 20
	// DefaultReadyTimeout bounds how long StartEmbedded waits for the server.
	DefaultReadyTimeout = 10 * time.Second

	// NoListener as EmbeddedConfig.Port starts the server without a
	// network listener: only in-process connections reach it.
	NoListener = -1
	// RandomPort as EmbeddedConfig.Port lets the system choose a free port.
	RandomPort = 0
)

// EmbeddedConfig configures the NATS server that runs inside the Koers
// process.
type EmbeddedConfig struct {
	// StoreDir is the directory JetStream keeps its files in (file
	// storage); the serve command passes <data>/nats. Required.
	StoreDir string
	// Host is the address to listen on; empty means DefaultHost.
	Host string
	// Port is the client port: RandomPort (0) lets the system choose a
	// free one (read it back with ClientURL or Port), NoListener (-1)
	// opens none, so only Connect reaches the server; any other value is
	// that port.
	Port int
	// ServerName names the server in its logs; empty lets the server use
	// its generated ID.
	ServerName string
	// MaxPayload is the largest message the server accepts; 0 means
	// DefaultMaxPayload.
	MaxPayload int32
	// SyncInterval is how often JetStream fsyncs its files; 0 keeps
	// JetStream's default of two minutes. SyncAlways fsyncs every message.
	//
	// The default is right for the event bus: the event store is the source
	// of truth and fsyncs every commit, and the bus is a copy derived from
	// it. If an OS crash loses the bus's unsynced suffix, the relay resumes
	// from the last message the stream still holds and republishes the rest
	// from the store, and consumers, who checkpoint by store position, see
	// the same events again rather than different ones. Paying an fsync per
	// message would cut JetStream's publish rate to the disk's fsync rate
	// for no gain in what is kept.
	SyncInterval time.Duration
	SyncAlways   bool
	// Logger receives the server's log lines; nil means slog.Default().
	// Debug lines are emitted when it is enabled for slog.LevelDebug, and
	// protocol traces when it is enabled for LevelTrace.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections;
	// 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration

	// AgencyUsers are the NATS users of re-integration agencies that read
	// their feed over NATS; each may read only its own, through the
	// consumer Koers creates for it with EnsureAgencyConsumer (see
	// AgencyUser).
	//
	// When AgencyUsers or InternalPassword is set, every client must log
	// in: Koers' own as InternalUser with InternalPassword (Connect does),
	// agencies as their users. Otherwise the server takes any client, which
	// suits a server only Koers reaches (loopback, or no listener).
	AgencyUsers []AgencyUser
	// InternalPassword is InternalUser's password, in plaintext: Koers
	// logs in with it. Empty while AgencyUsers is set means a random one
	// for this start, which Config reports; set it when other Koers
	// processes connect to this server by URL.
	InternalPassword string
}

// authRequired reports whether clients must log in.
func (c EmbeddedConfig) authRequired() bool {
	return len(c.AgencyUsers) > 0 || c.InternalPassword != ""
}

// LevelTrace is the slog level of the NATS server's protocol traces, below
// slog.LevelDebug because they log every message.
const LevelTrace = slog.LevelDebug - 4

// Embedded is a NATS server with JetStream running in this process.
type Embedded struct {
	srv      *server.Server
	cfg      EmbeddedConfig
	shutdown sync.Once
}

// StartEmbedded starts a NATS server with JetStream in this process and
// waits, at most cfg.ReadyTimeout, until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("bus: StartEmbedded: StoreDir is required")
	}
	if cfg.Port < NoListener || cfg.Port > 65535 {
		return nil, fmt.Errorf("bus: StartEmbedded: port %d is out of range", cfg.Port)
	}
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	// A copy, so that the caller's slice and the one Config returns
	// cannot change the running server's.
	cfg.AgencyUsers = slices.Clone(cfg.AgencyUsers)
	var auth authConfig
	if cfg.authRequired() {
		if isBcrypt(cfg.InternalPassword) {
			return nil, errors.New("bus: StartEmbedded: InternalPassword must be the plaintext, not a bcrypt hash: Koers logs in with it")
		}
		if cfg.InternalPassword == "" {
			pw, err := randomPassword()
			if err != nil {
				return nil, err
			}
			cfg.InternalPassword = pw
		}
		var err error
		if auth, err = agencyAuth(cfg); err != nil {
			return nil, fmt.Errorf("bus: StartEmbedded: %w", err)
		}
	}

	opts := &server.Options{
		ServerName:   cfg.ServerName,
		Host:         cfg.Host,
		Port:         cfg.Port,
		MaxPayload:   cfg.MaxPayload,
		JetStream:    true,
		StoreDir:     cfg.StoreDir,
		SyncInterval: cfg.SyncInterval,
		SyncAlways:   cfg.SyncAlways,
		// The process that embeds the server owns the signals.
		NoSigs:   true,
		Users:    auth.users,
		Accounts: auth.accounts,
	}
	switch cfg.Port {
	case RandomPort:
		// The server reads 0 as its default port, 4222, and -1 as random.
		opts.Port = server.RANDOM_PORT
	case NoListener:
		opts.Port = server.RANDOM_PORT
		opts.DontListen = true
	}

	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: StartEmbedded: %w", err)
	}
	log := &serverLog{l: cfg.Logger.With("component", "nats-server")}
	ctx := context.Background()
	srv.SetLoggerV2(log, log.l.Enabled(ctx, slog.LevelDebug), log.l.Enabled(ctx, LevelTrace), false)
	srv.Start()
	ready := waitReady(srv, log, cfg.ReadyTimeout)
	var jsErr error
	if ready && len(auth.accounts) > 0 {
		jsErr = enableGlobalJetStream(srv)
	}
	if !ready || jsErr != nil || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		why := "not ready for connections within " + cfg.ReadyTimeout.String()
		if f := log.fatal(); f != "" {
			why = f
		} else if jsErr != nil {
			why = jsErr.Error()
		} else if !srv.JetStreamEnabled() {
			why = "JetStream is not enabled"
		}
		return nil, fmt.Errorf("bus: StartEmbedded on %s:%d in %s: %s", cfg.Host, cfg.Port, cfg.StoreDir, why)
	}
	if cfg.Port == RandomPort {
		if addr, ok := srv.Addr().(*net.TCPAddr); ok {
			cfg.Port = addr.Port
		}
	}
	return &Embedded{srv: srv, cfg: cfg}, nil
}

// enableGlobalJetStream turns JetStream on in the global account, where
// Koers' streams live. A server with accounts configured enables JetStream
// at start only in accounts whose configuration asks for it, and the
// global account's cannot (a configuration file may not name it, and the
// setting is not exported); keeping Koers in the global account keeps the
// streams where a server without agency users has them, in
// <StoreDir>/jetstream/$G.
func enableGlobalJetStream(srv *server.Server) error {
	g := srv.GlobalAccount()
	if g.JetStreamEnabled() {
		return nil
	}
	if err := g.EnableJetStream(nil, nil); err != nil {
		return fmt.Errorf("enabling JetStream in the global account: %w", err)
	}
	return nil
}

// waitReady waits for srv to accept connections, at most timeout, and
// gives up early when the server logged a fatal error (a port in use, a
// store it cannot open).
func waitReady(srv *server.Server, log *serverLog, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		step := min(time.Until(deadline), 50*time.Millisecond)
		if srv.ReadyForConnections(step) {
			return true
		}
		if log.fatal() != "" || time.Now().After(deadline) {
			return false
		}
	}
}

// Config returns the configuration the server runs with, defaults filled
// in, Port the one it listens on (NoListener when it has none) and
// InternalPassword the one it chose. Passing it to StartEmbedded after
// Shutdown starts a server on the same port and store, with the same
// users.
func (e *Embedded) Config() EmbeddedConfig { return e.cfg }

// Port returns the client port the server listens on, or NoListener.
func (e *Embedded) Port() int { return e.cfg.Port }

// ClientURL returns the URL outside clients connect to, or "" when the
// server has no listener.
func (e *Embedded) ClientURL() string {
	if e.cfg.Port == NoListener {
		return ""
	}
	return "nats://" + net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.cfg.Port))
}

// Connect opens a client connection to the server in process, without the
// network, logged in as InternalUser when the server requires it. A
// connection reconnects only to this server: after Shutdown, clients that
// must reach a restarted server connect to ClientURL instead (with
// InternalOptions).
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	url := e.ClientURL()
	if url == "" {
		// The client wants a URL in its server list even when it never
		// dials it.
		url = "nats://in-process"
	}
	base := append([]nats.Option{nats.InProcessServer(e.srv)}, e.InternalOptions()...)
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("bus: connecting in process: %w", err)
	}
	return nc, nil
}

// InternalOptions returns the options that log a client in as Koers' own
// user, InternalUser, or none when the server takes any client.
func (e *Embedded) InternalOptions() []nats.Option {
	if !e.cfg.authRequired() {
		return nil
	}
	return []nats.Option{nats.UserInfo(InternalUser, e.cfg.InternalPassword)}
}

// Server returns the running nats-server, for monitoring and tests.
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits until it has stopped and closed its
// files. It is safe to call more than once.
func (e *Embedded) Shutdown() {
	e.shutdown.Do(func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	})
}

// serverLog passes nats-server's log lines to slog.
type serverLog struct {
	l *slog.Logger

	mu        sync.Mutex
	lastFatal string
}

// Noticef logs at debug level: the server's notices are its start-up banner
// and routine state changes, which would drown Koers' own log at info.
func (s *serverLog) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s *serverLog) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s *serverLog) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLog) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }

func (s *serverLog) Tracef(format string, v ...any) {
	s.l.Log(context.Background(), LevelTrace, fmt.Sprintf(format, v...))
}

// Fatalf logs at error level and remembers the line instead of exiting, as
// nats-server's own logger would: the embedding process decides, and
// StartEmbedded reports the line as its error.
func (s *serverLog) Fatalf(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	s.l.Error(line, "fatal", true)
	s.mu.Lock()
	s.lastFatal = line
	s.mu.Unlock()
}

func (s *serverLog) fatal() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastFatal
}
