package sqlite

// Benchmarks of the store, each beside a baseline measured in the same run,
// so that the gain is a ratio read off one run:
//
//	go test ./eventstore/sqlite -run '^$' -bench . -benchtime 3s -count 3
//
// BenchmarkAppend puts the adapter (one writer goroutine, group commit) next
// to the plain way: one SQLite transaction per append through database/sql,
// on the same schema with WAL and synchronous=FULL. Both are durable on
// every acknowledged append.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore"
)

var (
	benchData     = []byte(`{"case":"` + strings.Repeat("d", 280) + `"}`) // 300 bytes
	benchMetadata = []byte(`{"tenant":"t-0001","actor":"coach-42","correlation":"3f1c2a9e-8d7b-4c61-9a0e-5b2d7f4e1c88"}`)
)

func benchEvents(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{ID: uuid.New(), Type: "koers.case.v1.NoteAdded", Data: benchData, Metadata: benchMetadata}
	}
	return evs
}

// streamPlan gives each writer its own run of case streams of 20 events'
// worth of appends, as a command handler would: the first append to a
// stream expects no stream, the next ones the revision the last returned.
type streamPlan struct {
	writer, appends int
	revision        uint64
}

const appendsPerStream = 20

func (p *streamPlan) next() (string, eventstore.ExpectedRevision) {
	stream := fmt.Sprintf("case-%d-%d", p.writer, p.appends/appendsPerStream)
	expected := eventstore.Exact(p.revision)
	if p.appends%appendsPerStream == 0 {
		expected = eventstore.NoStream
	}
	p.appends++
	return stream, expected
}

// appendFunc appends events to stream expecting a revision and returns the
// stream's new revision.
type appendFunc func(ctx context.Context, stream string, expected eventstore.ExpectedRevision, evs []eventstore.EventData) (uint64, error)

// runAppends runs b.N appends of n events each from writers goroutines and
// reports throughput and latency.
func runAppends(b *testing.B, writers, n int, appendTo appendFunc) {
	ctx := context.Background()
	latencies := make([]time.Duration, b.N)
	var (
		claimed atomic.Int64
		failed  atomic.Pointer[error]
		wg      sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			plan := streamPlan{writer: w}
			for {
				i := claimed.Add(1) - 1
				if i >= int64(b.N) || failed.Load() != nil {
					return
				}
				stream, expected := plan.next()
				evs := benchEvents(n)
				t0 := time.Now()
				rev, err := appendTo(ctx, stream, expected, evs)
				latencies[i] = time.Since(t0)
				if err != nil {
					failed.Store(&err)
					return
				}
				plan.revision = rev
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatalf("append: %v", *err)
	}
	appends := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(appends, "appends/s")
	b.ReportMetric(appends*float64(n), "events/s")
	reportLatency(b, latencies)
}

// reportLatency reports the median and the 99th percentile of latencies in
// microseconds.
func reportLatency(b *testing.B, latencies []time.Duration) {
	slices.Sort(latencies)
	at := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-us")
	b.ReportMetric(at(0.99), "p99-us")
}

func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 3} {
		for _, writers := range []int{1, 32} {
			name := fmt.Sprintf("events=%d/writers=%d", n, writers)
			b.Run(name+"/adapter", func(b *testing.B) {
				s, err := Open(filepath.Join(b.TempDir(), "events.db"), Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				runAppends(b, writers, n, func(ctx context.Context, stream string, expected eventstore.ExpectedRevision, evs []eventstore.EventData) (uint64, error) {
					res, err := s.Append(ctx, stream, expected, evs...)
					return res.Revision, err
				})
				b.ReportMetric(float64(b.N)/float64(s.commits.Load()), "appends/commit")
				b.ReportMetric(float64(s.checkpoints.Load()), "checkpoints")

			})
			b.Run(name+"/baseline", func(b *testing.B) {
				bl := openBaseline(b, filepath.Join(b.TempDir(), "events.db"))
				defer bl.close()
				runAppends(b, writers, n, bl.append)
			})
		}
	}
}

// baseline is the plain way to append to SQLite: one transaction per
// append, the revision checked by a SELECT, positions read from the table,
// one INSERT per event, through a database/sql pool. The pool has one
// connection, so that writers queue on it instead of on SQLite's busy
// timeout.
type baseline struct {
	db                     *sql.DB
	lastRev, head, insertE *sql.Stmt
}

func openBaseline(b *testing.B, path string) *baseline {
	db, err := openDB(path, []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"}, 1)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(schema); err != nil {
		b.Fatal(err)
	}
	bl := &baseline{db: db}
	for _, p := range []struct {
		st    **sql.Stmt
		query string
	}{
		{&bl.lastRev, "SELECT revision FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1"},
		{&bl.head, "SELECT COALESCE(MAX(position), 0) FROM events"},
		{&bl.insertE, insertSQL(1)},
	} {
		if *p.st, err = db.Prepare(p.query); err != nil {
			b.Fatal(err)
		}
	}
	return bl
}

func (bl *baseline) close() { bl.db.Close() }

func (bl *baseline) append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, evs []eventstore.EventData) (uint64, error) {
	tx, err := bl.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var last int64
	exists := true
	if err := tx.StmtContext(ctx, bl.lastRev).QueryRowContext(ctx, stream).Scan(&last); errors.Is(err, sql.ErrNoRows) {
		exists = false
	} else if err != nil {
		return 0, err
	}
	if !expected.Matches(uint64(last), exists) {
		return 0, &eventstore.WrongRevisionError{Stream: stream, Expected: expected, Actual: uint64(last), Exists: exists}
	}
	first := int64(0)
	if exists {
		first = last + 1
	}
	var head int64
	if err := tx.StmtContext(ctx, bl.head).QueryRowContext(ctx).Scan(&head); err != nil {
		return 0, err
	}
	insert := tx.StmtContext(ctx, bl.insertE)
	now := time.Now().UnixNano()
	end := head + int64(len(evs))
	for i, e := range evs {
		if _, err := insert.ExecContext(ctx, head+1+int64(i), stream, first+int64(i), e.ID[:], e.Type, e.Data, e.Metadata, now, end, i); err != nil {
			return 0, err
		}
	}
	return uint64(first) + uint64(len(evs)) - 1, tx.Commit()
}

// populate fills s with streams of perStream events, appended n at a time
// from a few writers, and returns the streams' names.
func populate(b *testing.B, s *Store, streams, perStream, n int) []string {
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("case-%05d", i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < streams; i += 8 {
				for k := 0; k < perStream; k += n {
					if _, err := s.Append(context.Background(), names[i], eventstore.Any, benchEvents(min(n, perStream-k))...); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return names
}

func BenchmarkSubscribeAllCatchUp(b *testing.B) {
	const streams, perStream = 5000, 20 // 100,000 events
	s, err := Open(filepath.Join(b.TempDir(), "events.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	populate(b, s, streams, perStream, 10)
	head := s.Head()

	b.Run(fmt.Sprintf("events=%d/adapter", head), func(b *testing.B) {
		for b.Loop() {
			n := 0
			for e, err := range s.SubscribeAll(context.Background(), 0) {
				if err != nil {
					b.Fatal(err)
				}
				n++
				if e.Position == head {
					break
				}
			}
			if n != int(head) {
				b.Fatalf("caught up with %d events, want %d", n, head)
			}
		}
		b.ReportMetric(float64(b.N)*float64(head)/b.Elapsed().Seconds(), "events/s")
	})

	// The baseline: one plain query over the whole table on a connection of
	// the read pool, scanned with database/sql.
	b.Run(fmt.Sprintf("events=%d/baseline", head), func(b *testing.B) {
		for b.Loop() {
			rows, err := s.readDB.Query("SELECT " + eventColumns + " FROM events WHERE position > 0 ORDER BY position")
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				if _, err := scanEvent(rows); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil || n != int(head) {
				b.Fatalf("read %d events, want %d: %v", n, head, err)
			}
		}
		b.ReportMetric(float64(b.N)*float64(head)/b.Elapsed().Seconds(), "events/s")
	})
}

func BenchmarkReadStream(b *testing.B) {
	const streams, perStream = 2000, 20
	s, err := Open(filepath.Join(b.TempDir(), "events.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	names := populate(b, s, streams, perStream, 4)

	for _, readers := range []int{1, 32} {
		b.Run(fmt.Sprintf("events=%d/readers=%d", perStream, readers), func(b *testing.B) {
			latencies := make([]time.Duration, b.N)
			var claimed atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range readers {
				wg.Go(func() {
					for {
						i := claimed.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						got, err := s.ReadStream(context.Background(), names[rand.IntN(len(names))], eventstore.ReadOptions{})
						latencies[i] = time.Since(t0)
						if err != nil || len(got) != perStream {
							b.Errorf("ReadStream: %d events, %v", len(got), err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reads/s")
			reportLatency(b, latencies)
		})
	}
}

// BenchmarkSubscribeAllLive measures how long a live subscriber waits for an
// append: p50/p99 from the start of the append to the event's delivery,
// beside the append's own median latency and the median time from the
// append's return to the delivery.
func BenchmarkSubscribeAllLive(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "events.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	delivered := make(chan time.Time, 1)
	go func() {
		for _, err := range s.SubscribeAll(ctx, 0) {
			if err != nil {
				return
			}
			delivered <- time.Now()
		}
	}()

	appendLat := make([]time.Duration, b.N)
	deliverLat := make([]time.Duration, b.N)
	afterAck := make([]time.Duration, b.N)
	plan := streamPlan{}
	for i := range b.N {
		stream, expected := plan.next()
		t0 := time.Now()
		res, err := s.Append(ctx, stream, expected, benchEvents(1)...)
		if err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		appendLat[i] = acked.Sub(t0)
		plan.revision = res.Revision
		at := <-delivered
		deliverLat[i] = at.Sub(t0)
		// The writer signals subscribers just before it answers the
		// append, so delivery may come first: then this is 0.
		afterAck[i] = max(0, at.Sub(acked))
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Microsecond)
	}
	b.ReportMetric(median(appendLat), "append-p50-us")
	b.ReportMetric(median(afterAck), "after-ack-p50-us")
	reportLatency(b, deliverLat)
}
