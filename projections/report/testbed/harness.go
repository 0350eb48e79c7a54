// Package testbed holds what the tests and benchmarks of the read models
// share: a deterministic synthetic history of cases (History), and a
// TEMPORARY harness (DB) that creates a projection's tables and applies
// events to them in a real SQLite file or PostgreSQL schema.
//
// The harness stands in for the projection engine's own test support until
// that lands: it does the same {table} and ? rewriting the engine does
// (without generations: a table {cases} of projection "dashboard" is the
// physical table dashboard_cases), so that projections and their queries
// are tested against the real databases now. When the engine exports a way
// to apply a list of events and to read, the tests switch to it here, in one
// place.
package testbed

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"github.com/koers-io/koers/projections"
)

// PostgresDSNEnv names the environment variable that holds the DSN of a
// PostgreSQL server for tests; without it PostgreSQL tests skip.
const PostgresDSNEnv = "KOERS_TEST_POSTGRES_DSN"

// DB is a read-model database for one test: a SQLite file in the test's
// temporary directory, or a fresh schema in the PostgreSQL server named by
// KOERS_TEST_POSTGRES_DSN.
type DB struct {
	// SQL is the database handle.
	SQL *sql.DB
	// Dialect is the database's dialect.
	Dialect projections.Dialect

	// stmts caches the prepared statements of Apply by their rewritten
	// text: parsing dominates SQLite's cost of a small statement.
	mu    sync.Mutex
	stmts map[string]*sql.Stmt

	// path is the SQLite file, dsn the PostgreSQL connection string with
	// the test's schema: where Engine opens the engine's database.
	path, dsn string
}

// Dialects lists the dialects tests run against: SQLite, and PostgreSQL,
// whose tests skip, saying why, when KOERS_TEST_POSTGRES_DSN is not set.
func Dialects() []projections.Dialect {
	return []projections.Dialect{projections.SQLite, projections.Postgres}
}

// Open opens a fresh database of the dialect for tb, closed and removed
// when tb ends. A PostgreSQL database without KOERS_TEST_POSTGRES_DSN skips
// tb, saying why.
func Open(tb testing.TB, d projections.Dialect) *DB {
	tb.Helper()
	switch d {
	case projections.SQLite:
		return OpenSQLite(tb, filepath.Join(tb.TempDir(), "readmodel.db"))
	case projections.Postgres:
		return OpenPostgres(tb)
	}
	tb.Fatalf("testbed: unknown dialect %q", d)
	return nil
}

// OpenSQLite opens (or creates) the SQLite database in file, with the
// settings the engine gives an embedded read model: WAL, synchronous
// NORMAL, a 32 MiB page cache.
func OpenSQLite(tb testing.TB, file string) *DB {
	tb.Helper()
	dsn := "file:" + file + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=cache_size(-32768)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		tb.Fatalf("testbed: open SQLite %s: %v", file, err)
	}
	tb.Cleanup(func() { db.Close() })
	return &DB{SQL: db, Dialect: projections.SQLite, path: file}
}

// OpenPostgres creates a schema of its own in the server named by
// KOERS_TEST_POSTGRES_DSN and opens a handle whose search path is that
// schema; the schema is dropped when tb ends. Without the variable it
// skips tb.
func OpenPostgres(tb testing.TB) *DB {
	tb.Helper()
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		tb.Skipf("PostgreSQL tests need %s (for example postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", PostgresDSNEnv)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatalf("testbed: open PostgreSQL: %v", err)
	}
	tb.Cleanup(func() { admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "koers_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("testbed: create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			tb.Errorf("testbed: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("testbed: %s is not a URL: %v", PostgresDSNEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		tb.Fatalf("testbed: open PostgreSQL schema %s: %v", schema, err)
	}
	tb.Cleanup(func() { db.Close() })
	return &DB{SQL: db, Dialect: projections.Postgres, dsn: u.String()}
}

// Engine opens the projection engine's database over the same database,
// so that tests and benchmarks read the tables through the engine's Reader
// and Reader.ReadTx, as the QueryService does. The harness has no
// generations, so the tables it creates stand where the engine reads its
// views (<projection>_<table>). The engine adds its own tables. It is
// closed when tb ends.
func (db *DB) Engine(tb testing.TB) *projections.DB {
	tb.Helper()
	edb, err := projections.Open(context.Background(), projections.Options{Path: db.path, PostgresDSN: db.dsn})
	if err != nil {
		tb.Fatalf("testbed: open the engine's database: %v", err)
	}
	tb.Cleanup(func() { edb.Close() })
	return edb
}

// Create creates p's tables and indexes.
func (db *DB) Create(ctx context.Context, p projections.Projection) error {
	for _, t := range p.Tables() {
		for _, stmt := range append([]string{t.Create}, t.Indexes...) {
			if _, err := db.SQL.ExecContext(ctx, Rewrite(db.Dialect, p.Name(), stmt)); err != nil {
				return fmt.Errorf("testbed: create %s table %s: %w", p.Name(), t.Name, err)
			}
		}
	}
	return nil
}

// Apply applies events to p's tables in transactions of at most batch
// events, the way the engine does: through p's projections.Batch when p
// is a projections.BatchProjection, else event by event. An event p does
// not handle is skipped; any other error of Apply fails the whole call,
// since a test's history is meant to apply cleanly.
func (db *DB) Apply(ctx context.Context, p projections.Projection, events []projections.Event, batch int) error {
	return db.apply(ctx, p, events, batch, true)
}

// ApplyOneByOne is Apply through p's Apply alone, one event at a time,
// even when p can apply batches: the way the engine applies a batch again
// after an event failed.
func (db *DB) ApplyOneByOne(ctx context.Context, p projections.Projection, events []projections.Event, batch int) error {
	return db.apply(ctx, p, events, batch, false)
}

func (db *DB) apply(ctx context.Context, p projections.Projection, events []projections.Event, batch int, batches bool) error {
	if batch <= 0 {
		batch = 1000
	}
	for len(events) > 0 {
		n := min(batch, len(events))
		if err := db.applyBatch(ctx, p, events[:n], batches); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

func (db *DB) applyBatch(ctx context.Context, p projections.Projection, events []projections.Event, batches bool) (err error) {
	sqlTx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("testbed: begin: %w", err)
	}
	defer func() {
		if err != nil {
			sqlTx.Rollback()
		}
	}()
	tx := &Tx{db: db, tx: sqlTx, dialect: db.Dialect, projection: p.Name()}
	apply := func(ctx context.Context, ev projections.Event) error { return p.Apply(ctx, tx, ev) }
	var b projections.Batch
	if bp, ok := p.(projections.BatchProjection); ok && batches {
		b = bp.NewBatch(tx)
		apply = b.Apply
	}
	for _, ev := range events {
		if err := apply(ctx, ev); err != nil && !errors.Is(err, projections.ErrUnknownEvent) {
			return fmt.Errorf("testbed: apply %s at position %d: %w", ev.Type, ev.Position, err)
		}
	}
	if b != nil {
		if err := b.Flush(ctx); err != nil {
			return fmt.Errorf("testbed: flush a batch of %d events: %w", len(events), err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("testbed: commit: %w", err)
	}
	return nil
}

// Dump returns every row of p's tables as text, a line per row, sorted:
// two read models built from one history, in two ways, must dump alike.
func (db *DB) Dump(tb testing.TB, p projections.Projection) []string {
	tb.Helper()
	var out []string
	for _, t := range p.Tables() {
		rows, err := db.SQL.Query(Rewrite(db.Dialect, p.Name(), "SELECT * FROM {"+t.Name+"}"))
		if err != nil {
			tb.Fatalf("testbed: dump %s: %v", t.Name, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			tb.Fatal(err)
		}
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatalf("testbed: dump %s: %v", t.Name, err)
			}
			line := t.Name
			for _, v := range vals {
				line += "|" + v.String
			}
			out = append(out, line)
		}
		if err := rows.Close(); err != nil {
			tb.Fatalf("testbed: dump %s: %v", t.Name, err)
		}
	}
	slices.Sort(out)
	return out
}

// Reader returns a reader of p's tables: statements written with {table}
// names and ? placeholders, as queries of the read models are. Like the
// engine's, it prepares each statement once.
func (db *DB) Reader(projection string) *Reader {
	return &Reader{db: db, projection: projection}
}

// Tx is the harness's projections.Tx: a database transaction that rewrites
// each statement for the dialect and the projection's tables.
type Tx struct {
	db         *DB
	tx         *sql.Tx
	dialect    projections.Dialect
	projection string
}

// ExecContext runs a statement that returns no rows.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryContext runs a statement that returns rows.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs a statement that returns at most one row.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := t.stmt(ctx, query)
	if err != nil {
		// sql.Row cannot be made with an error; the unprepared call
		// reports the same error through Scan.
		return t.tx.QueryRowContext(ctx, Rewrite(t.dialect, t.projection, query), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// stmt returns the transaction's handle of the statement, prepared once
// per database.
func (t *Tx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	st, err := t.db.prepared(ctx, t.projection, query)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, st), nil
}

// prepared returns the statement of projection, prepared once.
func (db *DB) prepared(ctx context.Context, projection, query string) (*sql.Stmt, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.stmts == nil {
		db.stmts = map[string]*sql.Stmt{}
	}
	key := projection + "\x00" + query
	st, ok := db.stmts[key]
	if !ok {
		var err error
		if st, err = db.SQL.PrepareContext(ctx, Rewrite(db.Dialect, projection, query)); err != nil {
			return nil, err
		}
		db.stmts[key] = st
	}
	return st, nil
}

// Dialect says which database the transaction runs on.
func (t *Tx) Dialect() projections.Dialect { return t.dialect }

// Reader runs queries on a projection's tables with the same rewriting as
// Tx.
type Reader struct {
	db         *DB
	projection string
}

// QueryContext runs a statement that returns rows.
func (r *Reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := r.db.prepared(ctx, r.projection, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

var tableToken = regexp.MustCompile(`\{([a-z][a-z0-9_]*)\}`)

// Rewrite turns a projection's statement into one the database runs: each
// {name} becomes <projection>_<name>, and for PostgreSQL each ? outside a
// quoted string becomes $1, $2, ….
func Rewrite(d projections.Dialect, projection, stmt string) string {
	stmt = tableToken.ReplaceAllString(stmt, projection+"_$1")
	if d != projections.Postgres {
		return stmt
	}
	var b strings.Builder
	n, quoted := 0, false
	for _, r := range stmt {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '?' && !quoted:
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
