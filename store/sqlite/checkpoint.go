package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// The WAL grows with every commit until a checkpoint copies its pages into
// the database file. SQLite's automatic checkpoint runs inside the commit
// that crosses the threshold, so the writer would stop to copy (and fsync)
// megabytes every few batches. Instead a background goroutine with its own
// connection checkpoints after commits, in PASSIVE mode: it never blocks
// writers or readers, and on a second core it overlaps with the next write.
// The writer's own automatic checkpoint stays as a backstop, with a larger
// threshold, for when the background one falls behind.

// checkpointEvery is the least time between two background checkpoints;
// commits in between are checkpointed together.
const checkpointEvery = 20 * time.Millisecond

// backstopWALBytes is the WAL size at which the writer checkpoints itself.
const backstopWALBytes = 64 << 20

// kickCheckpoint tells the checkpointer that a commit happened.
func (s *Store) kickCheckpoint() {
	select {
	case s.ckptKick <- struct{}{}:
	default:
	}
}

func (s *Store) checkpointLoop(db *sql.DB) {
	defer close(s.ckptDone)
	for {
		select {
		case <-s.ckptStop:
			return
		case <-s.ckptKick:
		}
		start := time.Now()
		var busy, frames, copied int
		err := db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
		if err != nil {
			s.log.Warn("sqlite store: checkpoint", "err", err)
		}
		select {
		case <-s.ckptStop:
			return
		case <-time.After(checkpointEvery - time.Since(start)):
		}
	}
}
