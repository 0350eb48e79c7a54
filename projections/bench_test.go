package projections

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
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
	"github.com/koers-io/koers/eventstore"
)

// The catch-up benchmarks share one stream of benchEvents() events, built
// once per test process (publishing a million events takes a while) in a
// server that TestMain shuts down.
var bench struct {
	once   sync.Once
	dir    string
	srv    *bus.Embedded
	js     jetstream.JetStream
	stream jetstream.Stream
	err    error
	// raw is the rate of the ordered consumer doing nothing, once measured.
	raw atomic.Uint64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.srv != nil {
		bench.srv.Shutdown()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// benchEvents is the size of the benchmark history: KOERS_BENCH_EVENTS, or
// a million.
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("KOERS_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

func benchStream(b *testing.B) (jetstream.JetStream, jetstream.Stream, int) {
	n := benchEvents()
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "koers-projections-bench-")
		if bench.err != nil {
			return
		}
		bench.srv, bench.err = bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: bench.dir, Port: bus.RandomPort,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if bench.err != nil {
			return
		}
		var nc *nats.Conn
		if nc, bench.err = nats.Connect(bench.srv.ClientURL()); bench.err != nil {
			return
		}
		if bench.js, bench.err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000)); bench.err != nil {
			return
		}
		if bench.stream, bench.err = bus.EnsureEventStream(context.Background(), bench.js, bus.StreamConfig{}); bench.err != nil {
			return
		}
		start := time.Now()
		const chunk = 20_000
		var prev eventstore.Position
		for from := 0; from < n; from += chunk {
			events := historyRange(from, min(chunk, n-from))
			msgs := make([]*nats.Msg, len(events))
			for i, ev := range events {
				if msgs[i], bench.err = bus.Message(ev, prev); bench.err != nil {
					return
				}
				prev = ev.Position
			}
			publish(b, bench.js, msgs)
		}
		b.Logf("published %d events in %v", n, time.Since(start).Round(time.Millisecond))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.js, bench.stream, n
}

// BenchmarkCatchUp measures the rate of projecting the whole stream from
// position 0 with the tally projection (two upserts per event; one event
// in 97 of an unknown type, one in 12 ignored) over a realistic mix of case
// events (CaseOpened, CoachAssigned, IntakeCompleted, sessions, plans,
// consent), next to the raw rate of reading the same stream with an
// ordered consumer that does nothing. Run with -benchtime=1x; events/s is
// the figure, and x_raw its ratio to the raw rate of the same run.
func BenchmarkCatchUp(b *testing.B) {
	b.Run("raw-ordered-consumer", func(b *testing.B) {
		_, stream, n := benchStream(b)
		b.ResetTimer()
		for range b.N {
			cpu := cpuTime()
			rate := readRaw(b, stream, n)
			bench.raw.Store(uint64(rate))
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(n), "cpu-µs/event")
		}
	})
	b.Run("sqlite", func(b *testing.B) {
		benchCatchUp(b, func(tb testing.TB) *DB { return openSQLiteDB(tb) })
	})
	b.Run("postgres", func(b *testing.B) {
		if os.Getenv(pgEnv) == "" {
			b.Skip(pgEnv + " is not set; PostgreSQL runs are skipped")
		}
		benchCatchUp(b, func(tb testing.TB) *DB { return openPostgresDB(tb) })
	})
}

func readRaw(b *testing.B, stream jetstream.Stream, n int) float64 {
	ctx := context.Background()
	c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var count atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	cc, err := c.Consume(func(m jetstream.Msg) {
		if count.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(2000))
	if err != nil {
		b.Fatal(err)
	}
	<-done
	elapsed := time.Since(start)
	cc.Stop()
	return float64(n) / elapsed.Seconds()
}

func benchCatchUp(b *testing.B, open func(tb testing.TB) *DB) {
	js, stream, n := benchStream(b)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		db := open(b)
		p := newTally()
		p.name = fmt.Sprintf("tally_bench_%d", i)
		stopProfile := startBenchProfile(b, fmt.Sprintf("%s-%d", strings.ReplaceAll(b.Name(), "/", "-"), i))
		b.StartTimer()
		start, cpu := time.Now(), cpuTime()
		e, err := Start(context.Background(), Config{DB: db, JetStream: js, Projections: []Projection{p},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		progress := make(chan struct{})
		go func() { // the rate over time, to tell a slowdown from a slow machine
			t := time.NewTicker(10 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-progress:
					return
				case <-t.C:
					pos, _ := db.Reader(p.Name()).Position(ctx)
					b.Logf("%v: position %d", time.Since(start).Round(time.Second), pos)
				}
			}
		}()
		err = db.WaitForPosition(ctx, p.Name(), eventstore.Position(n))
		close(progress)
		cancel()
		elapsed, used := time.Since(start), cpuTime()-cpu
		b.StopTimer()
		stopProfile()
		e.Stop()
		deleteConsumers(stream, db.durablePrefix(p.Name()))
		if err != nil {
			b.Fatal(err)
		}
		rate := float64(n) / elapsed.Seconds()
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(float64(used.Microseconds())/float64(n), "cpu-µs/event")
		if raw := bench.raw.Load(); raw > 0 {
			b.ReportMetric(rate/float64(raw), "x_raw")
		}
		b.StartTimer()
	}
}

// cpuTime is the CPU time the process has used, user and system: a
// benchmark's CPU per event says what its rate does not on a machine
// shared with other work. It includes the embedded NATS server, as in
// `koers serve`.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchProfileEnv names a directory where the catch-up benchmarks write a
// CPU profile of each catch-up alone (go test's -cpuprofile would include
// publishing the stream).
const benchProfileEnv = "KOERS_BENCH_CPUPROFILE_DIR"

func startBenchProfile(b *testing.B, name string) (stop func()) {
	dir := os.Getenv(benchProfileEnv)
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".cpu"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func deleteConsumers(stream jetstream.Stream, prefix string) {
	ctx := context.Background()
	names := stream.ConsumerNames(ctx)
	var old []string
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix) {
			old = append(old, name)
		}
	}
	for _, name := range old {
		stream.DeleteConsumer(ctx, name)
	}
}
