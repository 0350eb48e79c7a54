package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// schemaVersion is stored in PRAGMA user_version. A file with a newer version
// was written by a newer Koers and is refused rather than misread.
const schemaVersion = 1

// schema is the event table. position is the rowid, so reading by position
// walks the table itself. append_end and append_index place an event in its
// append (the position of the append's last event, and the event's index
// within it): that is how a retry of exactly one earlier append is told from
// a partial overlap. recorded_at is in unix nanoseconds, UTC by definition.
const schema = `
CREATE TABLE events (
	position     INTEGER PRIMARY KEY,
	stream       TEXT    NOT NULL,
	revision     INTEGER NOT NULL,
	id           BLOB    NOT NULL UNIQUE,
	type         TEXT    NOT NULL,
	data         BLOB    NOT NULL,
	metadata     BLOB,
	recorded_at  INTEGER NOT NULL,
	append_end   INTEGER NOT NULL,
	append_index INTEGER NOT NULL,
	UNIQUE (stream, revision)
) STRICT;
PRAGMA user_version = 1;
`

// Connection settings. Every connection waits for locks rather than failing
// at once (the only waits in WAL mode are around recovery and checkpoints).
var (
	// writerPragmas: synchronous=FULL makes each commit fsync the WAL, so an
	// acknowledged append survives an OS crash. wal_autocheckpoint=0 keeps
	// checkpoints out of the commit path (they cost 10–16 ms at p99 there);
	// the checkpointer does them. journal_size_limit truncates a WAL that a
	// long reader let grow, once it is reset.
	writerPragmas = []string{
		"busy_timeout(10000)",
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"wal_autocheckpoint(0)",
		"journal_size_limit(67108864)",
		"cache_size(-32768)",
		"foreign_keys(OFF)",
	}
	readerPragmas = []string{
		"busy_timeout(10000)",
		"query_only(1)",
		"cache_size(-16384)",
	}
	// checkpointerPragmas: with synchronous=FULL a checkpoint syncs the WAL
	// before copying and the database file after.
	checkpointerPragmas = []string{
		"busy_timeout(10000)",
		"synchronous(FULL)",
	}
)

// dsn builds a modernc.org/sqlite data source name for the file at path with
// the given pragmas, as a file: URI so that any path is spelled safely.
func dsn(path string, pragmas []string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String(), nil
}

func openDB(path string, pragmas []string, conns int) (*sql.DB, error) {
	name, err := dsn(path, pragmas)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// openDatabases opens the writer's connection (creating file and schema),
// the read pool and the checkpointer's connection, and returns the writer's
// state. On error the caller closes what was opened.
func (s *Store) openDatabases(path string) (*writer, error) {
	ctx := context.Background()
	var err error
	if s.writeDB, err = openDB(path, writerPragmas, 1); err != nil {
		return nil, err
	}
	conn, err := s.writeDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	w, err := s.prepareWriter(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}

	if s.readDB, err = openDB(path, readerPragmas, s.opts.ReadConns); err != nil {
		w.close()
		return nil, err
	}
	if s.reads, err = prepareReads(ctx, s.readDB); err != nil {
		w.close()
		return nil, err
	}
	if s.ckptDB, err = openDB(path, checkpointerPragmas, 1); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// migrate checks that the connection journals to a WAL and creates the
// schema in a new file.
func migrate(ctx context.Context, conn *sql.Conn) error {
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, not wal (is the file on a filesystem without shared memory?)", mode)
	}
	// Durability rests on this setting: check it took, rather than trust
	// the connection string.
	var sync int
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return fmt.Errorf("read synchronous: %w", err)
	}
	if sync != 2 {
		return fmt.Errorf("synchronous is %d, not 2 (FULL): acknowledged appends could be lost in an OS crash", sync)
	}
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return fmt.Errorf("schema version %d is newer than this program's %d", version, schemaVersion)
	case version != 0:
		return fmt.Errorf("unknown schema version %d", version)
	}
	// BEGIN IMMEDIATE so that two processes racing to create the schema
	// serialise instead of one failing half-way.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err == nil && version == schemaVersion {
		_, err = conn.ExecContext(ctx, "COMMIT")
		return err
	}
	if _, err := conn.ExecContext(ctx, schema); err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		return fmt.Errorf("create schema: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}
