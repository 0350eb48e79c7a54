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
	"sync/atomic"

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
	// readStmts and writeStmts cache the prepared statements of SQLite's
	// read pool and write connection; nil for PostgreSQL, whose driver
	// caches statements per connection itself.
	readStmts, writeStmts *stmtCache
	// commits counts the SQLite write connection's commits twice: odd
	// while one runs (see commit and readTx).
	commits atomic.Uint64
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
		readStmts: newStmtCache(read), writeStmts: newStmtCache(write)}
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

// defaultMaxBatch is the most events in one batch when the configuration
// does not say; db may be nil (Start refuses that later).
func (db *DB) defaultMaxBatch() int {
	if db != nil && db.dialect == SQLite {
		return DefaultSQLiteMaxBatch
	}
	return DefaultMaxBatch
}

// Dialect says which database db is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes the database's connections.
func (db *DB) Close() error {
	db.readStmts.close()
	db.writeStmts.close()
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
	db.writeStmts.preparePending(ctx)
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return db.commit(tx)
}

// commit commits a write transaction. Every write transaction commits
// through it: on SQLite it counts the commit in db.commits, odd while it
// runs, which is how read transactions know they share a snapshot (see
// readTx).
func (db *DB) commit(tx *sql.Tx) error {
	db.commits.Add(1)
	defer db.commits.Add(1)
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
	// sqlite is ex as a SQLite transaction, whose statements run
	// prepared: modernc.org/sqlite parses a statement at every Exec
	// otherwise, which costs more than running an upsert. A statement is
	// prepared once per connection and kept in cache (the pool's), and
	// bound to the transaction once, in stmts. PostgreSQL's driver caches
	// prepared statements per connection itself.
	sqlite *sql.Tx
	cache  *stmtCache
	stmts  map[string]*sql.Stmt
	// ran is set once a statement ran.
	ran bool
}

// newDBTx returns the Tx over ex for the tables of prefix; cache is the
// statement cache of the pool ex's transaction came from, or nil.
func newDBTx(db *DB, ex execer, prefix string, cache *stmtCache) *dbTx {
	t := &dbTx{ex: ex, db: db, prefix: prefix, dialect: db.dialect}
	if tx, ok := ex.(*sql.Tx); ok && db.dialect == SQLite {
		t.sqlite, t.cache = tx, cache
	}
	return t
}

// stmt returns the transaction's prepared statement for query, or nil
// and query rewritten when it runs unprepared.
func (t *dbTx) stmt(ctx context.Context, query string) (*sql.Stmt, string) {
	t.ran = true
	if st, ok := t.stmts[query]; ok {
		return st, ""
	}
	q := t.db.rw.rewrite(t.prefix, query)
	if t.sqlite == nil {
		return nil, q
	}
	var st *sql.Stmt
	if shared := t.cache.lookup(q); shared != nil {
		// Prepared on this transaction's connection at most once, ever.
		st = t.sqlite.StmtContext(ctx, shared)
	} else {
		var err error
		if st, err = t.sqlite.PrepareContext(ctx, q); err != nil {
			// Run it unprepared, so that the caller gets the error from there.
			return nil, q
		}
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	// The prefix is the transaction's, so the projection's own text is
	// the key: a hit needs no rewriting.
	t.stmts[query] = st
	return st, ""
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

// maxCachedStmts bounds a statement cache; when it is full it starts
// over, so that the statements of generations long dropped do not stay.
const maxCachedStmts = 512

// stmtCache keeps the prepared statements of one SQLite pool (the read
// pool, or the write connection). database/sql prepares a cached statement
// once per connection and reuses it, also in transactions
// (Tx.StmtContext).
//
// A transaction holds one of the pool's connections, and the write pool
// has only one, so preparing on the pool from inside a transaction could
// wait for ever. A statement a transaction meets for the first time is
// therefore prepared in that transaction alone and noted; the next
// transaction prepares the noted ones on the pool before it begins
// (preparePending), holding no connection.
type stmtCache struct {
	pool    *sql.DB
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// lookup returns the prepared statement for query, or nil when c is nil
// or it is not prepared yet, which it notes for preparePending.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if len(c.pending) < maxCachedStmts {
		c.pending[query] = true
	}
	return nil
}

// preparePending prepares the statements lookup noted. The caller must
// hold no connection of the pool. A statement that does not prepare is
// left to the transactions, which report its error.
func (c *stmtCache) preparePending(ctx context.Context) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(c.pending))
	for q := range c.pending {
		queries = append(queries, q)
	}
	clear(c.pending)
	c.mu.Unlock()
	for _, q := range queries {
		st, err := c.pool.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, ok := c.m[q]; ok {
			st.Close()
		} else {
			c.add(q, st)
		}
		c.mu.Unlock()
	}
}

// get returns the prepared statement for query, preparing it on the pool
// when needed, or nil when c is nil or the statement does not prepare (the
// caller then runs it directly and sees the error). The caller must hold
// no connection of the pool.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	st, ok := c.m[query]
	c.mu.Unlock()
	if ok {
		return st
	}
	st, err := c.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if have, ok := c.m[query]; ok {
		st.Close()
		return have
	}
	c.add(query, st)
	return st
}

// add caches st; c.mu is held.
func (c *stmtCache) add(query string, st *sql.Stmt) {
	if len(c.m) >= maxCachedStmts {
		// Closing a statement in use is safe: database/sql closes it
		// when its last use ends.
		c.closeLocked()
	}
	c.m[query] = st
}

// close closes the cached statements.
func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

func (c *stmtCache) closeLocked() {
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}
