package projections

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// childEnv carries "<NATS URL>|<read-model path>" to TestChildEngine.
const childEnv = "KOERS_PROJECTIONS_CHILD"

// Markers the child prints from its test hooks, then pauses so that the
// parent's SIGKILL lands right there.
const (
	markBeforeCommit = "KOERS-CHILD BEFORE-COMMIT"
	markAfterCommit  = "KOERS-CHILD AFTER-COMMIT"
)

// TestChildEngine is the projector process TestKilledProjectorConverges
// starts and kills; run directly, it skips.
func TestChildEngine(t *testing.T) {
	env := os.Getenv(childEnv)
	if env == "" {
		t.Skip("runs only as the child process of TestKilledProjectorConverges")
	}
	natsURL, path, _ := strings.Cut(env, "|")
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	db := openSQLitePath(t, path)
	mark := func(what string) func() {
		return func() {
			fmt.Println(what)
			time.Sleep(100 * time.Millisecond)
		}
	}
	startEngine(t, Config{DB: db, JetStream: js, Projections: []Projection{newTally()}, MaxBatch: 40, Linger: -1,
		hooks: &testHooks{beforeCommit: mark(markBeforeCommit), afterCommit: mark(markAfterCommit)}})
	// Killed long before this.
	time.Sleep(2 * time.Minute)
	t.Fatal("the parent did not kill the child")
}

// TestKilledProjectorConverges kills a projector process with SIGKILL
// again and again, inside a batch transaction and between a commit and
// its acknowledgement, and checks that the projection, finished by a
// fresh process, equals one built in one go.
func TestKilledProjectorConverges(t *testing.T) {
	f := newNATS(t)
	events := history(2400)
	publish(t, f.js, messages(t, events))
	path := filepath.Join(t.TempDir(), "readmodel.db")

	kills := []struct {
		at    string
		after int // occurrences of the marker before the kill
	}{
		{markBeforeCommit, 2},
		{markAfterCommit, 3},
		{markBeforeCommit, 4},
		{markAfterCommit, 1},
		{markBeforeCommit, 3},
	}
	for i, k := range kills {
		killChildAt(t, f.srv.ClientURL(), path, k.at, k.after)
		db := openSQLitePath(t, path)
		pos, err := db.Reader("tally").Position(context.Background())
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kill %d (%s #%d): checkpoint %d", i+1, k.at, k.after, pos)
		if pos >= 2400 {
			t.Fatalf("the child finished before kill %d", i+1)
		}
	}

	// A fresh process finishes the job.
	resumed := openSQLitePath(t, path)
	p := newTally()
	startEngine(t, Config{DB: resumed, JetStream: f.js, Projections: []Projection{p}})
	waitPosition(t, resumed, p.Name(), 2400)

	// Built in one go, in another database (and so another projection
	// name, for a consumer of its own).
	oneGo := openSQLiteDB(t)
	q := newTally()
	q.name = "tally_one_go"
	startEngine(t, Config{DB: oneGo, JetStream: f.js, Projections: []Projection{q}})
	waitPosition(t, oneGo, q.Name(), 2400)

	want := dumpTally(t, oneGo, q.Name())
	if diff := cmp.Diff(want, dumpTally(t, resumed, p.Name())); diff != "" {
		t.Errorf("killed and resumed differs from built in one go (-one go +resumed):\n%s", diff)
	}
	if diff := cmp.Diff(expectedTally(events, p.ignore), want); diff != "" {
		t.Errorf("built in one go differs from the history (-want +got):\n%s", diff)
	}
	s := statusOf(t, resumed, f.stream, p.Name())
	if s.Live.Applied+s.Live.Unknown != 2400 {
		t.Errorf("checkpoint rows count %d applied + %d unknown events, want 2400 (each once)", s.Live.Applied, s.Live.Unknown)
	}
}

// killChildAt starts the child projector and SIGKILLs it when it prints
// marker for the n-th time.
func killChildAt(t *testing.T, natsURL, path, marker string, n int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildEngine$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+natsURL+"|"+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() { // a stuck child must not hang the test
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
		}
	}()
	seen := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != marker {
			continue
		}
		if seen++; seen == n {
			cmd.Process.Kill() // SIGKILL
			break
		}
	}
	cmd.Wait()
	if seen < n {
		t.Fatalf("the child ended after %d of %d %q markers", seen, n, marker)
	}
}
