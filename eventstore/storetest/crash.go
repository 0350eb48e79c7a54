package storetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koers-io/koers/eventstore"
)

// childDirEnv names the directory of the store a child process appends to.
// The crash test sets it when it re-executes the test binary; RunChild
// looks for it.
const childDirEnv = "KOERS_STORETEST_CHILD_DIR"

const (
	// crashWriters is how many streams the child appends to at once, so
	// that appends are in flight together when it dies.
	crashWriters = 4
	// crashRounds is how many children, one after another, append to the
	// same store and are killed.
	crashRounds = 3
	// acksPerRound is how many acknowledged appends a child prints before
	// the test kills it.
	acksPerRound = 40
	// childLifetime caps a child whose parent vanished without closing
	// its stdin.
	childLifetime = 2 * time.Minute
)

// RunChild acts as the crash test's child process when the test binary was
// re-executed as one, and reports whether it did; call it first thing in the
// adapter's TestMain and return when it reports true. The child opens the
// store in the directory the test names, appends to a few streams from
// concurrent writers, prints a line on stdout for every acknowledged append,
// and goes on until it is killed (or its stdin closes). Any failure ends the
// process with exit status 2 and the reason on stderr.
func RunChild(h Harness) (ran bool) {
	dir, ok := os.LookupEnv(childDirEnv)
	if !ok {
		return false
	}
	if err := runChild(h, dir); err != nil {
		fmt.Fprintf(os.Stderr, "storetest child: %v\n", err)
		os.Exit(2)
	}
	return true
}

// ack is the child's line about one acknowledged append.
type ack struct {
	Stream   string              `json:"stream"`
	IDs      []uuid.UUID         `json:"ids"`
	Revision uint64              `json:"revision"`
	Position eventstore.Position `json:"position"`
}

func runChild(h Harness, dir string) error {
	if h.Open == nil {
		return errors.New("Harness.Open is nil")
	}
	ctx, cancel := context.WithTimeout(context.Background(), childLifetime)
	defer cancel()
	// The parent kills the child. Should the parent die first, its end of
	// stdin closes and the child stops on its own.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	st, err := h.Open(dir)
	if err != nil {
		return fmt.Errorf("Open(%q): %w", dir, err)
	}
	defer st.Close()
	out := &lines{w: os.Stdout}
	if err := out.print("ready"); err != nil {
		return err
	}

	errs := make(chan error, crashWriters)
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() { errs <- appendUntilDone(ctx, st, crashStream(w), out) })
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func crashStream(w int) string { return fmt.Sprintf("case-crash-%d", w) }

// appendUntilDone appends groups of 1 to 3 events to the end of stream and
// prints an ack line after each, until ctx is done.
func appendUntilDone(ctx context.Context, st eventstore.Store, stream string, out *lines) error {
	expected := eventstore.NoStream
	last, err := st.ReadStream(ctx, stream, eventstore.ReadOptions{Backwards: true, From: eventstore.StreamEnd, Limit: 1})
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
	case err != nil:
		return fmt.Errorf("ReadStream(%q): %w", stream, err)
	case len(last) != 1:
		return fmt.Errorf("ReadStream(%q) backwards from the end with limit 1 returned %d events", stream, len(last))
	default:
		expected = eventstore.Exact(last[0].Revision)
	}
	for i := 0; ctx.Err() == nil; i++ {
		ids := make([]uuid.UUID, 1+i%3)
		for k := range ids {
			ids[k] = uuid.New()
		}
		res, err := st.Append(ctx, stream, expected, crashEvents(ids)...)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("Append(%q, %v): %w", stream, expected, err)
		}
		line, err := json.Marshal(ack{Stream: stream, IDs: ids, Revision: res.Revision, Position: res.Position})
		if err != nil {
			return fmt.Errorf("encoding an ack: %w", err)
		}
		if err := out.print("ack " + string(line)); err != nil {
			return err
		}
		expected = eventstore.Exact(res.Revision)
	}
	return nil
}

// crashEvents returns the events of one append in the crash test: their
// content follows from their IDs, so the parent knows what each
// acknowledged event must hold, and their metadata names the append (by its
// first ID) and the event's place in it, so the parent can tell a torn
// append.
func crashEvents(ids []uuid.UUID) []eventstore.EventData {
	evs := make([]eventstore.EventData, len(ids))
	for k, id := range ids {
		evs[k] = eventstore.EventData{
			ID:       id,
			Type:     "storetest.Crashed",
			Data:     append([]byte("crash test event "+id.String()+" "), 0, 0xff),
			Metadata: fmt.Appendf(nil, `{"append":%q,"k":%d,"n":%d}`, ids[0], k, len(ids)),
		}
	}
	return evs
}

// lines writes whole lines, each in one write, from many goroutines.
type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) print(s string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := io.WriteString(l.w, s+"\n"); err != nil {
		return fmt.Errorf("writing to the parent: %w", err)
	}
	return nil
}

func (s suite) testCrash(t *testing.T) {
	if !s.h.Crash {
		t.Skip("Harness.Crash is false: this store cannot be opened by a child process and killed")
	}
	dir := t.TempDir()
	var acked []ack
	for round := range crashRounds {
		got := killChild(t, dir)
		t.Logf("round %d: the child acknowledged %d appends before it was killed", round, len(got))
		acked = append(acked, got...)

		st := s.openDir(t, dir)
		s.checkCrashed(t, st, acked)
		if t.Failed() {
			return
		}
		closeStore(t, st)
	}

	st := s.openDir(t, dir)
	for w := range crashWriters {
		stream := crashStream(w)
		last := mustRead(t, st, stream, eventstore.ReadOptions{Backwards: true, From: eventstore.StreamEnd, Limit: 1})
		res := mustAppend(t, st, stream, eventstore.Exact(last[0].Revision), someEvents(1, "after the crashes")...)
		if res.Revision != last[0].Revision+1 {
			t.Errorf("the first append to %q after the crashes landed at revision %d, want %d", stream, res.Revision, last[0].Revision+1)
		}
	}
	s.checkPositions(t, snapshotAll(t, st))
}

// killChild runs the test binary as a child appending to the store in dir,
// SIGKILLs it once it has acknowledged acksPerRound appends, and returns
// every append it acknowledged, including those still in the pipe.
func killChild(t *testing.T, dir string) []ack {
	t.Helper()
	// -test.run=^$ makes a test binary whose TestMain lacks RunChild run no
	// test at all, and exit, instead of running the suite again.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("child stdin: %v", err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("child stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child %s: %v", os.Args[0], err)
	}

	// The reader ends when the child's stdout closes, which its death does.
	lineCh := make(chan string)
	go func() {
		defer close(lineCh)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return // a line cut off by the kill was never acknowledged
			}
			lineCh <- strings.TrimSuffix(line, "\n")
		}
	}()

	var (
		acks     []ack
		ready    bool
		killed   bool
		problems []string
		timeout  = time.After(patience)
	)
	kill := func() {
		if !killed {
			killed = true
			if err := cmd.Process.Kill(); err != nil {
				problems = append(problems, fmt.Sprintf("killing the child: %v", err))
			}
		}
	}
read:
	for {
		select {
		case line, ok := <-lineCh:
			if !ok {
				break read
			}
			switch {
			case line == "ready":
				ready = true
			case strings.HasPrefix(line, "ack "):
				var a ack
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ack ")), &a); err != nil {
					problems = append(problems, fmt.Sprintf("unreadable ack line %q: %v", line, err))
					kill()
					continue
				}
				acks = append(acks, a)
				if len(acks) >= acksPerRound {
					kill()
				}
			default:
				problems = append(problems, fmt.Sprintf("unexpected line from the child: %q", line))
			}
		case <-timeout:
			if !killed {
				problems = append(problems, fmt.Sprintf("the child acknowledged %d of %d appends within %v", len(acks), acksPerRound, patience))
				kill()
			}
		}
	}
	waitErr := cmd.Wait()
	switch {
	case !ready:
		t.Fatalf("the child never said it was ready (is storetest.RunChild called first in TestMain?); wait: %v; stderr:\n%s", waitErr, stderr.Bytes())
	case cmd.ProcessState.Exited():
		t.Fatalf("the child exited by itself (%v) after %d acks; stderr:\n%s", cmd.ProcessState, len(acks), stderr.Bytes())
	case len(problems) > 0:
		t.Fatalf("%s; stderr:\n%s", strings.Join(problems, "; "), stderr.Bytes())
	}
	return acks
}

// checkCrashed checks the store after a child was killed: every append it
// acknowledged is there, whole, where it was acknowledged; no append is
// torn; and the global order holds the streams' events and nothing else.
func (s suite) checkCrashed(t *testing.T, st eventstore.Store, acked []ack) {
	t.Helper()
	streams := map[string][]eventstore.RecordedEvent{}
	var names []string
	for w := range crashWriters {
		name := crashStream(w)
		recs, err := st.ReadStream(t.Context(), name, eventstore.ReadOptions{})
		if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Fatalf("ReadStream(%q) after the crash: %v", name, err)
		}
		streams[name] = recs
		names = append(names, name)
	}

	for _, a := range acked {
		recs := streams[a.Stream]
		first := a.Revision + 1 - uint64(len(a.IDs))
		if a.Revision >= uint64(len(recs)) {
			t.Errorf("the append acknowledged at %q revision %d is lost: the stream has %d events after the crash", a.Stream, a.Revision, len(recs))
			continue
		}
		got := recs[first : a.Revision+1]
		if diff := diffStored(want(a.Stream, first, crashEvents(a.IDs)...), got); diff != "" {
			t.Errorf("the append acknowledged at %q revision %d reads back differently after the crash (-want +got):\n%s", a.Stream, a.Revision, diff)
		}
		if p := got[len(got)-1].Position; p != a.Position {
			t.Errorf("the append acknowledged at %q revision %d, position %d, is at position %d after the crash", a.Stream, a.Revision, a.Position, p)
		}
	}

	present, acknowledged := 0, 0
	for name, recs := range streams {
		checkWhole(t, name, recs)
		present += len(recs)
	}
	for _, a := range acked {
		acknowledged += len(a.IDs)
	}
	t.Logf("after the crash the streams hold %d events, %d of them acknowledged", present, acknowledged)
	all := snapshotAll(t, st)
	s.checkPositions(t, all)
	if s.h.DensePositions && len(all) > 0 && all[0].Position != 1 {
		t.Errorf("dense store: the first event is at position %d after the crash, want 1", all[0].Position)
	}
	checkLog(t, readLog(t, st, names), withoutSentinels(all))
}

// checkWhole checks that a crash stream holds whole appends only: an append
// in flight when the child died is there entirely or not at all.
func checkWhole(t *testing.T, stream string, recs []eventstore.RecordedEvent) {
	t.Helper()
	type place struct {
		Append uuid.UUID `json:"append"`
		K      int       `json:"k"`
		N      int       `json:"n"`
	}
	var cur place
	for i, r := range recs {
		var p place
		if err := json.Unmarshal(r.Metadata, &p); err != nil {
			t.Errorf("%q revision %d: unreadable metadata %q: %v", stream, r.Revision, r.Metadata, err)
			return
		}
		wantK := 0
		if cur.K+1 < cur.N {
			wantK = cur.K + 1
		}
		if p.K != wantK || (wantK > 0 && p.Append != cur.Append) {
			t.Errorf("%q revision %d is event %d of %d of append %s, after event %d of %d of append %s: an append is torn",
				stream, r.Revision, p.K, p.N, p.Append, cur.K, cur.N, cur.Append)
			return
		}
		cur = p
		if i == len(recs)-1 && p.K != p.N-1 {
			t.Errorf("%q ends with event %d of %d of append %s: an append is torn", stream, p.K, p.N, p.Append)
		}
	}
}
