package sqlite

import (
	"context"
)

// runCheckpointer is the checkpointer goroutine. The writer never checkpoints
// (wal_autocheckpoint=0): a checkpoint inside a commit stalls every append of
// the batch. Instead, once the writer has added Options.CheckpointFrames
// pages to the WAL, this goroutine copies them into the database file on its
// own connection, in PASSIVE mode: it waits for no reader and no writer, and
// leaves for the next round what a reader still needs. The writer restarts
// the WAL from its beginning once everything in it is copied. It returns when
// Close starts.
func (s *Store) runCheckpointer() {
	defer close(s.ckptDone)
	for {
		select {
		case <-s.closing:
			// The writer's connection, closing last, checkpoints what
			// is left.
			return
		case <-s.ckptKick:
		}
		if counted := s.walFrames.Load(); counted >= int64(s.opts.CheckpointFrames) {
			s.checkpoint(counted)
		}
	}
}

// checkpoint runs one PASSIVE checkpoint. counted is the writer's count of
// frames added since the last one; it is taken off the count only when the
// checkpoint ran, so a failed one is tried again after the next commit.
func (s *Store) checkpoint(counted int64) {
	var busy, walFrames, copied int
	err := s.ckptDB.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walFrames, &copied)
	if err != nil {
		s.log.Warn("sqlite event store: checkpoint failed", "err", err)
		return
	}
	s.walFrames.Add(-counted)
	s.checkpoints.Add(1)
	s.log.Debug("sqlite event store: checkpoint", "wal_frames", walFrames, "copied", copied)
}
