// Package kurrentdbtest is a TEST DOUBLE for KurrentDB: an in-process,
// protocol-level stand-in for one KurrentDB node, serving the gRPC Streams
// service on a loopback port, so that the kurrentdb adapter can be tested
// through the real client (github.com/EventStore/EventStore-Client-Go/v4)
// on machines where no KurrentDB server can run. It is not a database: it
// keeps its log in memory and exists only for tests.
//
// It follows KurrentDB's documented gRPC protocol, and the server's source,
// for what Koers uses:
//
//   - Streams.Append: the options message first, then the proposed
//     messages; expected revisions any, no stream, stream exists and exact,
//     with KurrentDB's idempotency (a write of event IDs already at the
//     revisions an exact or no-stream expectation names succeeds again
//     without writing, answering where they are; with any, IDs already in
//     the stream are recognised); a failed expectation answers with the
//     WrongExpectedVersion message carrying the stream's current revision,
//     as the real server does (in both its current and its 20.6.0 fields).
//   - Streams.Read of a stream, forwards and backwards, from the start, the
//     end or a revision, with a count; a stream without events answers with
//     the StreamNotFound message.
//   - Streams.Read of $all, forwards and backwards from a position
//     (inclusive forwards, exclusive backwards), with an optional filter.
//   - Subscriptions to $all from the start, the end or a position
//     (exclusive): the confirmation first, then catch-up, a caught-up
//     message, and live events; with a filter (stream-name or event-type
//     prefixes or regular expression), checkpoints every
//     checkpointIntervalMultiplier × max-search-window events considered,
//     and one when catch-up reaches the end, as the server sends them.
//
// Each event's commit and prepare positions are equal, as KurrentDB gives
// every event written through gRPC (an implicitly committed prepare): the
// log position of its record. Positions grow by the size of each record,
// so they are sparse, like the real transaction file's byte offsets.
//
// Not served: stream subscriptions, deletes, tombstones, batch appends,
// persistent subscriptions, projections, ACLs, and ServerFeatures (the
// client accepts Unimplemented there, as from servers before 21.10). Event
// IDs given as strings are accepted as well as structured ones.
//
// Server.DropSubscriptions ends every open subscription with Unavailable;
// Server.Restart stops serving (dropping every connection) and serves again
// on the same port with the log kept; Server.FailAppends fails appends to a
// stream without writing them; so tests can check what a client does after
// each.
package kurrentdbtest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Server is a running test double. Its methods are safe for concurrent use.
type Server struct {
	log  *eventLog
	addr string

	// started counts subscriptions confirmed since NewServer.
	started atomic.Uint64

	mu      sync.Mutex
	grpc    *grpc.Server
	serving chan struct{} // closed when the current grpc.Server's Serve returns
	subs    map[*subscription]struct{}
	fail    map[string]int // appends still to fail, by stream
	closed  bool
}

// NewServer starts a test double on a free loopback port, with an empty
// log. Close stops it.
func NewServer() (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("kurrentdbtest: listening on loopback: %w", err)
	}
	s := &Server{
		log:  newEventLog(),
		addr: lis.Addr().String(),
		subs: map[*subscription]struct{}{},
		fail: map[string]int{},
	}
	s.serve(lis)
	return s, nil
}

// Start starts a test double for one test and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// serve starts serving on lis; s.mu is held or s is not yet shared.
func (s *Server) serve(lis net.Listener) {
	g := grpc.NewServer(
		// The client pings every 10 s, with or without calls; gRPC's
		// default policy would answer that with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	)
	api.RegisterStreamsServer(g, &streams{srv: s})
	done := make(chan struct{})
	// This goroutine is owned by the server: Restart and Close stop g and
	// wait for it.
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	s.grpc, s.serving = g, done
}

// URL returns the connection string of the double, in the form the client
// parses: esdb://127.0.0.1:PORT?tls=false.
func (s *Server) URL() string {
	return "esdb://" + s.addr + "?tls=false"
}

// Addr returns the double's host:port.
func (s *Server) Addr() string { return s.addr }

// SubscriptionsStarted returns how many subscriptions the double has
// confirmed since it started, across restarts.
func (s *Server) SubscriptionsStarted() uint64 { return s.started.Load() }

// Subscriptions returns how many subscriptions are open now.
func (s *Server) Subscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// DropSubscriptions ends every open subscription with status Unavailable,
// as a server going away would, and returns how many it ended. The
// connections stay up.
func (s *Server) DropSubscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		sub.cancel(errDropped)
	}
	return len(s.subs)
}

// FailAppends makes the next n appends to stream fail with status
// Unavailable after the server has read them, writing nothing, as an append
// whose node went away would.
func (s *Server) FailAppends(stream string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[stream] += n
}

// failing reports whether an append to stream is to fail, and counts it.
func (s *Server) failing(stream string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail[stream] == 0 {
		return false
	}
	s.fail[stream]--
	return true
}

// errDropped is the cause of a subscription ended by DropSubscriptions.
var errDropped = errors.New("kurrentdbtest: subscription dropped by the test server")

// Restart stops serving, ending every call and connection, and serves again
// on the same port with the same log, as a restarted node would.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("kurrentdbtest: restart of a closed server")
	}
	s.grpc.Stop()
	<-s.serving
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("kurrentdbtest: listening on %s again: %w", s.addr, err)
	}
	s.serve(lis)
	return nil
}

// Close stops the double, ending every call and connection. It is
// idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.grpc.Stop()
	<-s.serving
}

// register records an open subscription so that DropSubscriptions can end
// it; the returned function forgets it.
func (s *Server) register(sub *subscription) (unregister func()) {
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}
}

// streams implements the Streams gRPC service.
type streams struct {
	api.UnimplementedStreamsServer
	srv *Server
}
