package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Options say where the read models live: a SQLite file, or a PostgreSQL
// database when PostgresDSN is set.
type Options struct {
	// Path is the SQLite file, for example <data>/readmodel.db; it is
	// created when missing. Ignored when PostgresDSN is set.
	Path string
	// PostgresDSN is a PostgreSQL connection string, for example
	// postgres://koers@db:5432/koers?sslmode=require. A search_path
	// parameter selects the schema.
	PostgresDSN string
	// MaxConns caps the open connections to PostgreSQL (default 8) and the
	// read connections to SQLite (default: the number of CPUs, at least 4).
	MaxConns int
}

// DB is a read-model database: the projections' tables, their views and
// the engine's own tables (checkpoints, dead letters, counters). It is
// safe for concurrent use; an Engine, Rebuild and Readers may share one.
type DB struct {
	dialect Dialect
	// write runs every transaction that changes the database. For SQLite
	// it is one connection whose transactions begin IMMEDIATE, so they
	// take the file's write lock up front and never fail half-way on a
	// lock upgrade; for PostgreSQL it is the pool.
	write *sql.DB
	// read serves queries: SQLite's read-only pool (WAL readers never wait
	// for the writer), or the same pool as write for PostgreSQL.
	read *sql.DB
	// lockSpace is what advisory lock keys are derived from: database and
	// schema, so that schemas sharing a PostgreSQL database do not contend.
	lockSpace string
	rw        rewriter
	hub       hub
	// readStmts caches the prepared statements of SQLite's read pool; nil
	// for PostgreSQL.
	readStmts *stmtCache
}

// Open opens the read-model database opts names and brings the engine's
// tables up to date (see migrations). The caller closes it.
func Open(ctx context.Context, opts Options) (*DB, error) {
	var (
		db  *DB
		err error
	)
	if opts.PostgresDSN != "" {
		db, err = openPostgres(ctx, opts)
	} else {
		db, err = openSQLite(ctx, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// sqlitePragmas are set on every SQLite connection. synchronous=NORMAL in
// WAL mode keeps the database consistent through any crash and loses at
// most the last transactions in an OS crash or power cut; a read model
// can afford that because each transaction carries its own checkpoint, so
// a lost transaction is a checkpoint that moved back, and the engine
// re-applies from there (see the package doc).
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"synchronous(NORMAL)",
	"foreign_keys(ON)",
	"cache_size(-32768)",
}

func sqliteDSN(path string, extra url.Values) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p)
	}
	for k, vs := range extra {
		q[k] = append(q[k], vs...)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String(), nil
}

func openSQLite(ctx context.Context, opts Options) (*DB, error) {
	if opts.Path == "" {
		return nil, errors.New("projections: Open: neither Path nor PostgresDSN is set")
	}
	wdsn, err := sqliteDSN(opts.Path, url.Values{"_txlock": {"immediate"}})
	if err != nil {
		return nil, fmt.Errorf("projections: read-model path %q: %w", opts.Path, err)
	}
	write, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("projections: open %s: %w", opts.Path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	// Create the file and switch it to WAL before readers connect.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("projections: open %s: %w", opts.Path, err)
	}
	rdsn, _ := sqliteDSN(opts.Path, url.Values{"_pragma": {"query_only(1)"}})
	read, err := sql.Open("sqlite", rdsn)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("projections: open %s: %w", opts.Path, err)
	}
	n := opts.MaxConns
	if n <= 0 {
		n = max(4, runtime.NumCPU())
	}
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	read.SetConnMaxIdleTime(0)
	abs, _ := filepath.Abs(opts.Path)
	db := &DB{dialect: SQLite, write: write, read: read, lockSpace: abs,
		readStmts: newStmtCache(read)}
	db.rw.dialect = SQLite
	return db, nil
}

func openPostgres(ctx context.Context, opts Options) (*DB, error) {
	pool, err := sql.Open("pgx", opts.PostgresDSN)
	if err != nil {
		return nil, fmt.Errorf("projections: PostgreSQL DSN: %w", err)
	}
	n := opts.MaxConns
	if n <= 0 {
		n = 8
	}
	pool.SetMaxOpenConns(n)
	pool.SetMaxIdleConns(n)
	var space string
	if err := pool.QueryRowContext(ctx, "SELECT current_database() || '.' || current_schema()").Scan(&space); err != nil {
		pool.Close()
		return nil, fmt.Errorf("projections: connect to PostgreSQL: %w", err)
	}
	db := &DB{dialect: Postgres, write: pool, read: pool, lockSpace: space}
	db.rw.dialect = Postgres
	return db, nil
}

// Dialect says which database db is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes the database's connections.
func (db *DB) Close() error {
	db.readStmts.close()
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// forUpdate is the row-locking suffix of a SELECT inside a write
// transaction: PostgreSQL locks the rows; SQLite needs nothing because its
// write transactions already exclude each other.
func (db *DB) forUpdate(of string) string {
	if db.dialect != Postgres {
		return ""
	}
	if of == "" {
		return " FOR UPDATE"
	}
	return " FOR UPDATE OF " + of
}

// batchContext is the context a batch transaction runs under. A started
// batch is finished even when ctx is cancelled, so that stopping leaves a
// clean checkpoint. For PostgreSQL a timeout bounds a database that hangs;
// a SQLite file cannot hang that way (busy_timeout bounds lock waits), and
// a context that is never done spares modernc.org/sqlite a watcher
// goroutine per statement, a tenth of the catch-up time.
func (db *DB) batchContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = context.WithoutCancel(ctx)
	if db.dialect == SQLite {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, batchTimeout)
}

// q rewrites an engine statement's ? placeholders for the dialect.
func (db *DB) q(query string) string { return db.rw.rewrite("", query) }

// inTx runs fn in a write transaction and commits it when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// dbTx is the Tx a projection writes through: its statements reach one
// generation's tables, or, read-only, the live views.
type dbTx struct {
	// ex runs the statements: a *sql.Tx, or for PostgreSQL batches a
	// pgPipeline.
	ex      execer
	db      *DB
	prefix  string
	dialect Dialect
	// sqlite is ex as a SQLite transaction, whose statements are prepared
	// once per transaction and kept in stmts: modernc.org/sqlite parses a
	// statement at every Exec otherwise, which costs more than running an
	// upsert. PostgreSQL's driver caches prepared statements per
	// connection itself.
	sqlite *sql.Tx
	stmts  map[string]*sql.Stmt
}

func newDBTx(db *DB, ex execer, prefix string) *dbTx {
	t := &dbTx{ex: ex, db: db, prefix: prefix, dialect: db.dialect}
	if tx, ok := ex.(*sql.Tx); ok && db.dialect == SQLite {
		t.sqlite = tx
	}
	return t
}

func (t *dbTx) stmt(ctx context.Context, query string) (*sql.Stmt, string) {
	q := t.db.rw.rewrite(t.prefix, query)
	if t.sqlite == nil {
		return nil, q
	}
	if st, ok := t.stmts[q]; ok {
		return st, q
	}
	st, err := t.sqlite.PrepareContext(ctx, q)
	if err != nil {
		// Run it unprepared, so that the caller gets the error from there.
		return nil, q
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[q] = st
	return st, q
}

func (t *dbTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, q := t.stmt(ctx, query)
	if st == nil {
		return t.ex.ExecContext(ctx, q, args...)
	}
	return st.ExecContext(ctx, args...)
}

func (t *dbTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, q := t.stmt(ctx, query)
	if st == nil {
		return t.ex.QueryContext(ctx, q, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (t *dbTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, q := t.stmt(ctx, query)
	if st == nil {
		return t.ex.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (t *dbTx) Dialect() Dialect { return t.dialect }

// maxCachedStmts bounds a statement cache; statements past it are
// prepared at each use, as without a cache.
const maxCachedStmts = 512

// stmtCache keeps the prepared statements of SQLite's read pool for
// queries outside transactions. database/sql prepares a cached statement
// once per connection and reuses it.
type stmtCache struct {
	pool *sql.DB
	mu   sync.Mutex
	m    map[string]*sql.Stmt
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: map[string]*sql.Stmt{}}
}

// get returns the prepared statement for query, or nil when c is nil, full
// or the statement does not prepare (the caller then runs it directly and
// sees the error).
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if len(c.m) >= maxCachedStmts {
		return nil
	}
	st, err := c.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.m[query] = st
	return st
}

// close closes the cached statements.
func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}
