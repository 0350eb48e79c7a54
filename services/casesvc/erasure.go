package casesvc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Erasure is two writes in two places: ClientDataErased in the event store,
// then the client's key out of the keyring. The event goes first, so that
// a key is never gone while its case says nothing of it (a reopened case
// with unreadable data). A crash between the two would leave the key on
// disk while the case says it was erased; two things heal that:
//
//   - every load of an erased case erases its key again (ensureErased), so
//     the next command, retry or GetCase on the case finishes the job;
//   - the journal: before the append, execute writes an entry naming the
//     case, and removes it once the key is gone. Recover, run at start
//     before the service takes calls, finishes every entry it finds.

// journal is a folder with one empty file per case whose erasure has begun
// and not finished. A nil journal keeps nothing.
type journal struct {
	dir string
}

func openJournal(dir string) (*journal, error) {
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("casesvc: erasure journal: %w", err)
	}
	return &journal{dir: dir}, nil
}

// begin records that the erasure of the case of stream begins, durably.
func (j *journal) begin(stream string) error {
	if j == nil {
		return nil
	}
	path := filepath.Join(j.dir, stream)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("erasure journal: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("erasure journal: %w", err)
	}
	return syncDir(j.dir)
}

// done removes the entry of stream.
func (j *journal) done(stream string) error {
	if j == nil {
		return nil
	}
	if err := os.Remove(filepath.Join(j.dir, stream)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("erasure journal: %w", err)
	}
	return nil
}

// pending lists the streams whose erasure began and did not finish.
func (j *journal) pending() ([]string, error) {
	if j == nil {
		return nil, nil
	}
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("erasure journal: %w", err)
	}
	var streams []string
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, "case-") && e.Type().IsRegular() {
			streams = append(streams, name)
		}
	}
	return streams, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Recover finishes the erasures the journal says began: for each case
// whose history holds ClientDataErased it erases the client's key; an
// entry whose case holds none (the append never happened) is dropped. Run
// it once at start, before the service takes calls.
func (s *Service) Recover(ctx context.Context) error {
	streams, err := s.journal.pending()
	if err != nil {
		return fmt.Errorf("casesvc: recover: %w", err)
	}
	for _, stream := range streams {
		c, _, err := s.load(ctx, stream, true)
		if err != nil {
			return fmt.Errorf("casesvc: recover %s: %w", stream, err)
		}
		if c.state.IsErased() {
			if err := s.ensureErased(c.state.ClientKeyID); err != nil {
				return fmt.Errorf("casesvc: recover %s: %w", stream, err)
			}
			s.log.Warn("finished an erasure interrupted by a stop", "stream", stream)
		}
		if err := s.journal.done(stream); err != nil {
			return fmt.Errorf("casesvc: recover %s: %w", stream, err)
		}
	}
	return nil
}

// erase erases the client's key after ClientDataErased was stored, and
// closes the journal entry.
func (s *Service) erase(stream, keyID string) error {
	if err := s.keys.Erase(keyID); err != nil {
		return fmt.Errorf("erase key of %s: %w", stream, err)
	}
	return s.journal.done(stream)
}

// ensureErased erases keyID unless it is erased already.
func (s *Service) ensureErased(keyID string) error {
	erased, err := s.keys.Erased(keyID)
	if err != nil {
		return fmt.Errorf("check erasure of key %s: %w", keyID, err)
	}
	if erased {
		return nil
	}
	if err := s.keys.Erase(keyID); err != nil {
		return fmt.Errorf("erase key %s: %w", keyID, err)
	}
	return nil
}

// erases reports whether events record an erasure.
func erases(events []proto.Message) bool {
	for _, e := range events {
		if _, ok := e.(*casev1.ClientDataErased); ok {
			return true
		}
	}
	return false
}
