package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/relay"
	"github.com/koers-io/koers/eventstore/sqlite"
)

// The crash test runs the store, the relay and the appenders in a child
// process (this test binary, re-executed) so that it can kill them with
// SIGKILL: no deferred close, no flush, no goodbye to NATS.
const (
	childEnv       = "KOERS_RELAY_CRASH_CHILD"
	childStoreEnv  = "KOERS_RELAY_CRASH_STORE"
	childNATSEnv   = "KOERS_RELAY_CRASH_NATS"
	childEventsEnv = "KOERS_RELAY_CRASH_EVENTS"
	childDelayEnv  = "KOERS_RELAY_CRASH_RELAY_DELAY"

	crashStreams   = 100
	crashBatch     = 10
	crashAppenders = 16
	// crashAppendFor paces the appends, so that kills and the restart land
	// while events are still being appended and relayed, not after.
	crashAppendFor = 10 * time.Second
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := crashChild(); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRelayKeepsTheStreamExactThroughKillsAndARestart appends
// crashTestEvents events while the process running store, appenders and
// relay is killed twice and the NATS server restarted once; afterwards the
// stream holds every event exactly once, in store order, and a consumer
// sees positions 1..N chained without a gap.
func TestRelayKeepsTheStreamExactThroughKillsAndARestart(t *testing.T) {
	n := crashTestEvents
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	if _, err := bus.EnsureEventStream(context.Background(), js, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	storePath := filepath.Join(t.TempDir(), "events.db")

	// First child: killed at 20%.
	child := startChild(t, storePath, srv.ClientURL(), n, 0)
	waitForStream(t, js, n*20/100, child)
	t.Logf("killing the first child with %d events appended", child.appended.Load())
	child.kill(t)
	state, err := streamState(js, bus.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}

	// Second child: it starts its relay a second after its appenders, as
	// a relay process started late would, so that the relay is catching up
	// a backlog, with a full window of publishes in flight, when NATS
	// restarts under it. Killed at 70%.
	child = startChild(t, storePath, srv.ClientURL(), n, time.Second)
	waitForStream(t, js, int(state.Msgs)+1, child)
	t.Logf("restarting NATS with %d events appended, %d relayed before the relay started", child.appended.Load(), state.Msgs)
	srv = bustest.Restart(t, srv)
	restarted := child
	waitForStream(t, js, n*70/100, child)
	t.Logf("killing the second child with %d events appended", child.appended.Load())
	if appended := child.kill(t); appended >= int64(n) {
		t.Errorf("the kill came after the appends had finished; slow the pacing")
	}

	// Third child: runs to the end.
	child = startChild(t, storePath, srv.ClientURL(), n, 0)
	child.wait(t)

	// The restart cut the relay off mid-flight: its run ended and it
	// resumed. (Had the relay nothing in flight, this would fail without
	// the invariant being at fault: then the setup, not the relay, broke.)
	if ended := strings.Count(restarted.stderr.String(), "relay run ended"); ended == 0 {
		t.Errorf("the relay of the child alive at the NATS restart logged no restart:\n%s", restarted.stderr)
	} else {
		t.Logf("the NATS restart ended %d relay runs", ended)
	}
	store := openStore(t, storePath)
	if head := store.Head(); head != eventstore.Position(n) {
		t.Fatalf("store head %d, want %d", head, n)
	}
	checkStreamMirrorsStore(t, store, js, bus.DefaultStreamName, n)
}

// crashProcess is a running child.
type crashProcess struct {
	cmd      *exec.Cmd
	appended atomic.Int64 // the store head the child last reported
	stderr   *syncBuffer
	exited   chan struct{}
	err      error // set before exited closes
}

// startChild starts a child that appends up to n events and relays them,
// starting its relay after relayDelay.
func startChild(t *testing.T, storePath, natsURL string, n int, relayDelay time.Duration) *crashProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		childStoreEnv+"="+storePath,
		childNATSEnv+"="+natsURL,
		childEventsEnv+"="+strconv.Itoa(n),
		childDelayEnv+"="+relayDelay.String(),
	)
	p := &crashProcess{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// This goroutine owns the child: it reads its progress until the pipe
	// closes with the child's death, then reaps it.
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "appended "); ok {
				if head, err := strconv.ParseInt(v, 10, 64); err == nil {
					p.appended.Store(head)
				}
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// kill sends SIGKILL and returns the appended count the child reported
// last.
func (p *crashProcess) kill(t *testing.T) int64 {
	t.Helper()
	appended := p.appended.Load()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("killing the child: %v", err)
	}
	<-p.exited
	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v before the kill; stderr:\n%s", p.err, p.stderr)
	}
	return appended
}

// wait waits for the child to finish appending and relaying.
func (p *crashProcess) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(3 * time.Minute):
		t.Fatalf("child did not finish; stderr:\n%s", p.stderr)
	}
	if p.err != nil {
		t.Fatalf("child failed: %v; stderr:\n%s", p.err, p.stderr)
	}
}

// waitForStream waits until the stream holds at least n messages.
func waitForStream(t *testing.T, js jetstream.JetStream, n int, child *crashProcess) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		state, err := streamState(js, bus.DefaultStreamName)
		if err == nil && state.Msgs >= uint64(n) {
			return
		}
		select {
		case <-child.exited:
			t.Fatalf("child ended (%v) before the stream held %d messages; stderr:\n%s", child.err, n, child.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream did not reach %d messages (state %+v, err %v); child stderr:\n%s", n, state, err, child.stderr)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// crashChild is the child process: it opens the store, starts the relay,
// appends the events the store does not have yet at a paced rate, and
// exits once the relay has caught up with all of them.
func crashChild() error {
	n, err := strconv.Atoi(os.Getenv(childEventsEnv))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := sqlite.Open(os.Getenv(childStoreEnv), sqlite.Options{Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	nc, err := nats.Connect(os.Getenv(childNATSEnv), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return err
	}

	relayDelay, err := time.ParseDuration(os.Getenv(childDelayEnv))
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := relay.New(store, js, relay.Options{Logger: log, MaxBackoff: 200 * time.Millisecond})
	relayDone := make(chan error, 1)
	go func() {
		select {
		case <-time.After(relayDelay):
		case <-ctx.Done():
		}
		relayDone <- r.Run(ctx)
	}()
	reportDone := make(chan struct{})
	go func() {
		defer close(reportDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			fmt.Printf("appended %d\n", store.Head())
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	if err := appendPaced(ctx, store, n); err != nil {
		return err
	}
	for r.Position() < eventstore.Position(n) {
		select {
		case err := <-relayDone:
			return fmt.Errorf("relay stopped at position %d: %v", r.Position(), err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	<-reportDone
	return <-relayDone
}

// appendPaced appends the crash test's events that store lacks, at
// crashAppendFor's pace, from crashAppenders goroutines that each own
// some streams.
func appendPaced(ctx context.Context, store *sqlite.Store, n int) error {
	perStream := uint64(n / crashStreams)
	perEvent := crashAppendFor / time.Duration(n)
	var count atomic.Int64
	count.Store(int64(store.Head()))
	startCount, start := count.Load(), time.Now()

	errs := make(chan error, crashAppenders)
	for g := range crashAppenders {
		go func() {
			errs <- func() error {
				next := map[int]uint64{}
				for k := g; k < crashStreams; k += crashAppenders {
					last, err := store.ReadStream(ctx, streamName(k), eventstore.ReadOptions{Backwards: true, From: eventstore.StreamEnd, Limit: 1})
					switch {
					case errors.Is(err, eventstore.ErrStreamNotFound):
						next[k] = 0
					case err != nil:
						return err
					default:
						next[k] = last[0].Revision + 1
					}
				}
				for more := true; more; {
					more = false
					for k := g; k < crashStreams; k += crashAppenders {
						if next[k] >= perStream {
							continue
						}
						more = true
						size := int(min(crashBatch, perStream-next[k]))
						time.Sleep(time.Until(start.Add(time.Duration(count.Load()-startCount) * perEvent)))
						if _, err := appendBatch(ctx, store, k, next[k], size); err != nil {
							return fmt.Errorf("stream %d revision %d: %w", k, next[k], err)
						}
						next[k] += uint64(size)
						count.Add(int64(size))
					}
				}
				return nil
			}()
		}()
	}
	var first error
	for range crashAppenders {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
