package projections_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/dashboard"
	"github.com/koers-io/koers/projections/report"
	"github.com/koers-io/koers/projections/report/testbed"
)

// The read models' catch-up benchmark shares one stream of the synthetic
// history (testbed.Large), published once per test process.
var readModels struct {
	once   sync.Once
	srv    *bus.Embedded
	js     jetstream.JetStream
	stream jetstream.Stream
	last   eventstore.Position
	events int
	err    error
}

// readModelCases is the size of the history: KOERS_BENCH_CASES cases, or
// 100,000 (about a million events).
func readModelCases() int {
	if n, err := strconv.Atoi(os.Getenv("KOERS_BENCH_CASES")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

func readModelStream(b *testing.B) {
	readModels.once.Do(func() {
		loc, err := time.LoadLocation("Europe/Amsterdam")
		if err != nil {
			readModels.err = err
			return
		}
		dir, err := os.MkdirTemp("", "koers-readmodels-bench-")
		if err != nil {
			readModels.err = err
			return
		}
		// The server outlives the benchmark; its files go with the process's
		// temporary directory.
		readModels.srv, readModels.err = bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: dir, Port: bus.RandomPort,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if readModels.err != nil {
			return
		}
		nc, err := nats.Connect(readModels.srv.ClientURL())
		if err != nil {
			readModels.err = err
			return
		}
		if readModels.js, readModels.err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000)); readModels.err != nil {
			return
		}
		if readModels.stream, readModels.err = bus.EnsureEventStream(context.Background(), readModels.js, bus.StreamConfig{}); readModels.err != nil {
			return
		}
		start := time.Now()
		events := testbed.History(testbed.Large(readModelCases(), loc))
		readModels.events = len(events)
		readModels.err = publishHistory(readModels.js, events)
		readModels.last = events[len(events)-1].Position
		b.Logf("published %d events of %d cases in %v", len(events), readModelCases(), time.Since(start).Round(time.Millisecond))
	})
	if readModels.err != nil {
		b.Fatal(readModels.err)
	}
}

// publishHistory publishes events as the relay would, waiting for every
// acknowledgement.
func publishHistory(js jetstream.JetStream, events []projections.Event) error {
	var prev eventstore.Position
	var pending []jetstream.PubAckFuture
	wait := func() error {
		for _, f := range pending {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			}
		}
		pending = pending[:0]
		return nil
	}
	for _, ev := range events {
		data, err := proto.Marshal(ev.Body)
		if err != nil {
			return err
		}
		meta, err := proto.Marshal(ev.Metadata)
		if err != nil {
			return err
		}
		m, err := bus.Message(eventstore.RecordedEvent{
			ID: uuid.MustParse(ev.ID), Stream: ev.Stream, Type: ev.Type, Data: data, Metadata: meta,
			Revision: ev.Revision, Position: ev.Position, RecordedAt: ev.RecordedAt,
		}, prev)
		if err != nil {
			return err
		}
		prev = ev.Position
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return err
		}
		if pending = append(pending, f); len(pending) == 2000 {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}

// BenchmarkCatchUpReadModels measures the rate of building the read models
// Koers serves — the coach dashboard, the organisational report, and both
// at once as `koers serve` runs them — from position 0 into SQLite over
// the synthetic history of 100,000 cases (about a million events, cases
// interleaved as the store records them), next to the raw rate of reading
// the same stream with an ordered consumer that does nothing. Run with
// -benchtime=1x; events/s and cpu-µs/event (the process's CPU time,
// embedded NATS server included, per event) are the figures.
func BenchmarkCatchUpReadModels(b *testing.B) {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		b.Fatal(err)
	}
	var raw atomic.Uint64
	b.Run("raw-ordered-consumer", func(b *testing.B) {
		readModelStream(b)
		b.ResetTimer()
		for range b.N {
			cpu := processCPU()
			start := time.Now()
			readOrdered(b, readModels.stream, readModels.events)
			rate := float64(readModels.events) / time.Since(start).Seconds()
			raw.Store(uint64(rate))
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(readModels.events), "cpu-µs/event")
		}
	})
	for _, tc := range []struct {
		name string
		ps   func() []projections.Projection
	}{
		{"dashboard", func() []projections.Projection {
			return []projections.Projection{dashboard.New(dashboard.Options{Location: loc})}
		}},
		{"report", func() []projections.Projection {
			return []projections.Projection{report.New(report.Options{Location: loc})}
		}},
		{"dashboard+report", func() []projections.Projection {
			return []projections.Projection{dashboard.New(dashboard.Options{Location: loc}), report.New(report.Options{Location: loc})}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			readModelStream(b)
			b.ResetTimer()
			for range b.N {
				rate, cpu := catchUpReadModels(b, tc.ps())
				b.ReportMetric(rate, "events/s")
				b.ReportMetric(cpu, "cpu-µs/event")
				if r := raw.Load(); r > 0 {
					b.ReportMetric(rate/float64(r), "x_raw")
				}
			}
		})
	}
}

// catchUpReadModels builds ps from position 0 in a fresh SQLite file and
// returns the rate and the CPU time per event.
func catchUpReadModels(b *testing.B, ps []projections.Projection) (rate, cpuPerEvent float64) {
	b.StopTimer()
	ctx := context.Background()
	db, err := projections.Open(ctx, projections.Options{Path: filepath.Join(b.TempDir(), "readmodel.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.StartTimer()
	start, cpu := time.Now(), processCPU()
	e, err := projections.Start(ctx, projections.Config{DB: db, JetStream: readModels.js, Projections: ps,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	for _, p := range ps {
		if err := db.WaitForPosition(wctx, p.Name(), readModels.last); err != nil {
			e.Stop()
			b.Fatal(err)
		}
	}
	elapsed, used := time.Since(start), processCPU()-cpu
	b.StopTimer()
	e.Stop()
	for _, p := range ps {
		if dead, err := projections.DeadLetters(ctx, db, p.Name()); err != nil || len(dead) > 0 {
			b.Fatalf("%s parked %d events (%v); the history must apply cleanly", p.Name(), len(dead), err)
		}
	}
	deleteConsumersOf(readModels.stream, "koers_projection_")
	b.StartTimer()
	return float64(readModels.events) / elapsed.Seconds(), float64(used.Microseconds()) / float64(readModels.events)
}

func readOrdered(b *testing.B, stream jetstream.Stream, n int) {
	c, err := stream.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var count atomic.Int64
	done := make(chan struct{})
	cc, err := c.Consume(func(jetstream.Msg) {
		if count.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(2000))
	if err != nil {
		b.Fatal(err)
	}
	<-done
	cc.Stop()
}

func deleteConsumersOf(stream jetstream.Stream, prefix string) {
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

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
