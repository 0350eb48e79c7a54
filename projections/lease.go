package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"time"
)

// lease is the right to apply one projection's events. Only the engine's
// efficiency depends on it: exactly-once comes from the checkpoint row
// every batch transaction locks, so two holders at once (one that has not
// noticed its loss yet) would still not double-count, only contend.
type lease interface {
	// lost is closed when the lease is gone before release.
	lost() <-chan struct{}
	release()
}

// acquireLease blocks until this process holds the lease named key, or ctx
// is done. On PostgreSQL the lease is a session advisory lock
// (pg_try_advisory_lock) held on a dedicated connection: the server frees
// it the moment that connection ends, however the process died, and a
// standby polling every retry takes it over. A SQLite read model belongs to
// the one process that holds the data folder's lock, so there the lease is
// granted at once.
func (db *DB) acquireLease(ctx context.Context, key string, retry, check time.Duration) (lease, error) {
	if db.dialect != Postgres {
		return sqliteLease{}, nil
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease %s: connect: %w", key, err)
	}
	id := db.lockKey("lease/" + key)
	for {
		var ok bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", id).Scan(&ok); err != nil {
			discard(conn)
			return nil, fmt.Errorf("lease %s: %w", key, err)
		}
		if ok {
			break
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			conn.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	l := &pgLease{conn: conn, id: id, lostCh: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch(check)
	return l, nil
}

type sqliteLease struct{}

func (sqliteLease) lost() <-chan struct{} { return nil }
func (sqliteLease) release()              {}

type pgLease struct {
	conn   *sql.Conn
	id     int64
	lostCh chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func (l *pgLease) lost() <-chan struct{} { return l.lostCh }

// watch pings the lease's connection every check until release; a ping
// that fails means the session, and with it the lock, is gone.
func (l *pgLease) watch(check time.Duration) {
	defer close(l.done)
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), check+5*time.Second)
		var held bool
		err := l.conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
			AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid)`, l.id).Scan(&held)
		cancel()
		if err != nil || !held {
			close(l.lostCh)
			return
		}
	}
}

func (l *pgLease) release() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := l.conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", l.id); err != nil {
			discard(l.conn)
			return
		}
		l.conn.Close()
	})
}

// discard closes conn for good instead of returning it to the pool, so
// that a session whose state is unknown (it may still hold a lock) ends.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}
