package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koers-io/koers/eventstore"
)

// appendSome appends n appends of one 1 KiB event each, one after another,
// so that each is a transaction of its own and adds frames to the WAL.
func appendSome(t *testing.T, s *Store, stream string, n int) {
	t.Helper()
	for i := range n {
		e := newEvent(stream)
		e.Data = []byte(strings.Repeat("x", 1024))
		expected := eventstore.Exact(uint64(i - 1))
		if i == 0 {
			expected = eventstore.NoStream
		}
		mustAppend(t, s, stream, expected, e)
	}
}

func TestCheckpointerCopiesTheWALIntoTheDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := openStore(t, path, Options{CheckpointFrames: 16})
	initial := fileSize(t, path)

	appendSome(t, s, "case-checkpointed", 100)
	waitFor(t, "a checkpoint", func() bool { return s.checkpoints.Load() > 0 })
	if got := fileSize(t, path); got <= initial {
		t.Errorf("after a checkpoint the database file is %d bytes, not more than the %d it had at open", got, initial)
	}
}

func TestWriterNeverCheckpoints(t *testing.T) {
	// SQLite's automatic checkpoint would copy the WAL after 1,000 pages,
	// inside a commit. 400 one-event transactions write well over that.
	path := filepath.Join(t.TempDir(), "events.db")
	s := openStore(t, path, Options{CheckpointFrames: 1 << 30})
	initial := fileSize(t, path)
	wal := fileSize(t, path+"-wal")

	appendSome(t, s, "case-not-checkpointed", 400)
	if got := fileSize(t, path+"-wal") - wal; got < 1000*4096 {
		t.Fatalf("the WAL grew by %d bytes, under the 1,000 pages this test means to write", got)
	}
	if got := fileSize(t, path); got != initial {
		t.Errorf("the database file went from %d to %d bytes with checkpoints off the writer's path", initial, got)
	}
	if n := s.checkpoints.Load(); n != 0 {
		t.Errorf("%d checkpoints ran below the threshold", n)
	}

	// Close checkpoints what is left and removes the WAL.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := fileSize(t, path); got <= initial {
		t.Errorf("after Close the database file is %d bytes, not more than its %d at open", got, initial)
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close the WAL is still there (stat: %v)", err)
	}
}
