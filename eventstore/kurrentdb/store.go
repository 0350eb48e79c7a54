package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/koers-io/koers/eventstore"
)

// DefaultStreamPrefix is the stream prefix SubscribeAll delivers by default:
// the case streams.
const DefaultStreamPrefix = "case-"

// Defaults for Options.
const (
	DefaultResubscribeAttempts = 20
	DefaultMinBackoff          = 50 * time.Millisecond
	DefaultMaxBackoff          = 2 * time.Second
)

// Options tune a Store. The zero value is the default.
type Options struct {
	// Namespace is put before every stream name on the server, so that
	// stores of several deployments, or of tests, share one KurrentDB
	// without seeing each other's streams. Empty means none. It follows
	// the rules of stream names (eventstore.ValidateStreamName) and must
	// not begin with "$", which marks KurrentDB's system streams.
	Namespace string

	// StreamPrefixes are the prefixes of the streams whose events
	// SubscribeAll delivers; the server filters by them. Nil means
	// []string{DefaultStreamPrefix}: only case streams, so events of other
	// streams are not relayed. A prefix "" matches every stream.
	// KurrentDB's system streams ("$…") are never delivered.
	StreamPrefixes []string

	// ResubscribeAttempts is how many times in a row SubscribeAll tries to
	// subscribe again after the server dropped its subscription, without
	// receiving anything in between, before it yields the error; 0 means
	// DefaultResubscribeAttempts.
	ResubscribeAttempts int
	// MinBackoff and MaxBackoff bound the wait before each attempt; it
	// doubles from one to the next. Zero means DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration

	// Logger receives resubscriptions and, at debug level, the client's
	// own log; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.StreamPrefixes == nil {
		o.StreamPrefixes = []string{DefaultStreamPrefix}
	}
	if o.ResubscribeAttempts <= 0 {
		o.ResubscribeAttempts = DefaultResubscribeAttempts
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o Options) validate() error {
	if o.Namespace != "" {
		if err := eventstore.ValidateStreamName(o.Namespace); err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
		if strings.HasPrefix(o.Namespace, "$") {
			return fmt.Errorf("namespace %q begins with $, which marks system streams", o.Namespace)
		}
	}
	for _, p := range o.StreamPrefixes {
		if p == "" {
			continue
		}
		if err := eventstore.ValidateStreamName(p); err != nil {
			return fmt.Errorf("stream prefix: %w", err)
		}
	}
	return nil
}

// Store is an eventstore.Store on a KurrentDB node or cluster.
type Store struct {
	client *esdb.Client
	opts   Options
	log    *slog.Logger

	// base is cancelled by Close, ending every call in flight.
	base   context.Context
	cancel context.CancelFunc

	// mu guards closed and the start of calls, so that none is added to
	// calls once Close waits for them.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}
	calls   sync.WaitGroup
}

// Open connects to KurrentDB at the esdb:// (or esdb+discover://)
// connection string url and returns a store on it. It returns once the
// node answered, or fails when ctx ends first.
//
// The connection string carries the connection and TLS settings, parsed by
// the client: tls=false for a node without TLS (TLS is on by default);
// tlsVerifyCert=false to accept any server certificate (only for tests);
// tlsCAFile=PATH for a PEM file of the CA that signed the node's
// certificate, instead of the system's roots; userCertFile and userKeyFile
// for client-certificate authentication; user:password@ for basic
// authentication (sent only over TLS); several host:port seeds, or
// esdb+discover:// with a DNS name, for a cluster, with
// nodePreference=leader (the default) so appends go to the leader; and
// keepAliveInterval, keepAliveTimeout, gossipTimeout, discoveryInterval and
// defaultDeadline. maxDiscoverAttempts is overridden: see the package
// documentation.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		// The client's error may quote the URL, password included.
		return nil, errors.New("kurrentdb: the connection string is not a valid esdb:// URL")
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("kurrentdb: options: %w", err)
	}
	log := opts.Logger.With("component", "kurrentdb")
	// The client closes itself for good once a discovery fails, leaving
	// callers that wait on it blocked forever; discovering until it
	// succeeds keeps it usable, and every call here stops waiting when its
	// context ends.
	cfg.MaxDiscoverAttempts = math.MaxInt32
	cfg.Logger = func(level esdb.LogLevel, format string, args ...any) {
		log.Debug(fmt.Sprintf(format, args...), "client_level", level)
	}
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: creating the client: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Store{client: client, opts: opts, log: log, base: base, cancel: cancel, closing: make(chan struct{})}

	if _, err := call(ctx, s, "connect", func(context.Context) (struct{}, error) {
		_, err := client.GetServerVersion()
		return struct{}{}, err
	}); err != nil {
		s.Close()
		return nil, fmt.Errorf("kurrentdb: connecting to %s: %w", endpoint(cfg), err)
	}
	return s, nil
}

// endpoint names the node or seeds of cfg, without credentials.
func endpoint(cfg *esdb.Configuration) string {
	if len(cfg.GossipSeeds) == 0 {
		return cfg.Address
	}
	seeds := make([]string, len(cfg.GossipSeeds))
	for i, s := range cfg.GossipSeeds {
		seeds[i] = s.String()
	}
	return strings.Join(seeds, ",")
}

// Close implements eventstore.Store. Calls in flight end with ErrClosed.
// The client's connection closes as soon as the last of them has
// returned: the client panics when closed while one waits on it.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.closing)
	s.cancel()
	// This goroutine is owned by the store; it ends when the last call
	// does, which cancelling base brings about at once unless the client
	// is still looking for an unreachable server.
	go func() {
		s.calls.Wait()
		_ = s.client.Close()
	}()
	return nil
}

// start registers a goroutine that uses the client, or reports false once
// the store is closed.
func (s *Store) start() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	s.calls.Add(1)
	return true
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// call runs fn in a goroutine of its own and waits for its result, for ctx
// to end, or for Close. The client blocks without regard to contexts while
// it looks for a server, so only a goroutine apart keeps the caller's ctx
// and Close effective. fn's context ends with ctx, with Close, and when fn
// returns.
func call[T any](ctx context.Context, s *Store, op string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if !s.start() {
		return zero, fmt.Errorf("kurrentdb: %s: %w", op, eventstore.ErrClosed)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	fctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.base, cancel)
	go func() {
		defer s.calls.Done()
		defer cancel()
		defer stop()
		v, err := fn(fctx)
		done <- result{v, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-fctx.Done():
		// fn sends its result before its own return ends fctx, so a
		// result that is not there yet is abandoned.
		select {
		case r = <-done:
		default:
			r.err = context.Cause(fctx)
		}
	}
	switch {
	case r.err == nil:
		return r.v, nil
	case s.isClosed():
		return zero, fmt.Errorf("kurrentdb: %s: %w", op, eventstore.ErrClosed)
	case ctx.Err() != nil && !errors.Is(r.err, ctx.Err()):
		return zero, fmt.Errorf("kurrentdb: %s: %w (%v)", op, ctx.Err(), r.err)
	default:
		return zero, fmt.Errorf("kurrentdb: %s: %w", op, r.err)
	}
}

// serverName is the name of stream on the server.
func (s *Store) serverName(stream string) string { return s.opts.Namespace + stream }

// esdbCode returns the client's error code of err, and false when err is
// not a client error.
func esdbCode(err error) (esdb.ErrorCode, bool) {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}
