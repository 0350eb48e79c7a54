package sqlite

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/eventstore"
)

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := openStore(t, path, Options{})
	mustAppend(t, s, "case-a", eventstore.NoStream, newEvents(3, "a")...)
	mustAppend(t, s, "case-b", eventstore.NoStream, newEvents(2, "b")...)
	resA := mustAppend(t, s, "case-a", eventstore.Exact(2), newEvents(1, "a")...)
	before := readAll(t, s)
	head := s.Head()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, path, Options{})
	if got := s.Head(); got != head {
		t.Errorf("Head after reopening is %d, want %d", got, head)
	}
	if diff := cmp.Diff(before, readAll(t, s)); diff != "" {
		t.Errorf("events after reopening (-before +after):\n%s", diff)
	}
	// The writer goes on from the table: next position and next revision.
	got := mustAppend(t, s, "case-a", eventstore.Exact(resA.Revision), newEvent("after"))
	if want := (eventstore.AppendResult{Revision: resA.Revision + 1, Position: head + 1}); got != want {
		t.Errorf("first append after reopening: %+v, want %+v", got, want)
	}
	if got := s.Head(); got != head+1 {
		t.Errorf("Head after the append is %d, want %d", got, head+1)
	}
}

func TestOpenRefuses(t *testing.T) {
	newer := filepath.Join(t.TempDir(), "newer.db")
	db, err := sql.Open("sqlite", newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 2"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	tests := []struct {
		name, path, wantInError string
	}{
		{name: "a schema newer than its own", path: newer, wantInError: "schema version 2 is newer"},
		{name: "a folder that does not exist", path: filepath.Join(t.TempDir(), "missing", "events.db"), wantInError: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tt.path)
			}
			if !strings.Contains(err.Error(), tt.wantInError) {
				t.Errorf("Open(%q): %v; want it to mention %q", tt.path, err, tt.wantInError)
			}
		})
	}
}

func TestOpenTakesAnyPath(t *testing.T) {
	// The path becomes a file: URI; characters that mean something in a URI
	// must stay part of the name.
	dir := filepath.Join(t.TempDir(), "a dir%20with #odd?chars")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events?.db")
	s := openStore(t, path, Options{})
	mustAppend(t, s, "case-path", eventstore.NoStream, newEvent("path"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"events?.db"}, names); diff != "" {
		t.Errorf("files in the folder (-want +got):\n%s", diff)
	}
}

func TestHeadFollowsAcknowledgedAppends(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"), Options{})
	if got := s.Head(); got != 0 {
		t.Errorf("Head of a new store is %d, want 0", got)
	}
	for i, n := range []int{1, 3, 2} {
		res := mustAppend(t, s, "case-head", eventstore.Any, newEvents(n, "head")...)
		if got := s.Head(); got != res.Position {
			t.Errorf("append %d: Head is %d right after the append returned position %d", i, got, res.Position)
		}
	}
}
