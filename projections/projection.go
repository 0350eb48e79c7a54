// Package projections builds read models from the event stream on NATS
// JetStream: the coach dashboard and the organisational report, in SQLite (the
// embedded default) or PostgreSQL.
//
// A Projection says what tables it needs and how one event changes them. The
// engine does the rest, the same for every projection: it consumes the
// JetStream event stream with a durable consumer, applies events in global
// order in batched transactions, and stores the projection's checkpoint (the
// last applied store position) in the same transaction as the change, so a
// crash at any point neither loses nor double-counts an event.
//
// Tables are versioned by generation: a projection writes physical tables
// named <projection>_g<N>_<table>, and queries read views named
// <projection>_<table> that point at the live generation. A rebuild fills
// generation N+1 from position 0 while queries keep reading generation N, and
// swaps the views in one transaction when it has caught up.
//
// # Applying events
//
// Each projection has a runner (Start) that reads the stream through a
// durable pull consumer named koers_projection_<name>_<db>_<suffix>, where
// <db> is a hash of the read-model database's identity (ack-all, one ack
// after each commit), and applies up to Config.MaxBatch events per
// transaction. Every batch transaction first locks the projection's row in koers_projections
// and reads the live generation and its checkpoint there; then, per
// message, by the Koers-Position and Koers-Previous-Position headers:
//
//   - a position at or below the checkpoint (a redelivery, or a copy the
//     relay republished) is skipped;
//   - a previous position equal to the checkpoint is the next event: it is
//     applied and becomes the checkpoint;
//   - anything else is a gap: events are missing between the checkpoint and
//     this message. The batch commits what came before, the runner logs
//     the gap, counts it (koers_projection_gaps_total) and goes back to the
//     checkpoint: it replaces the durable consumer with one that starts at
//     the first stream message after the checkpoint (found by binary
//     search over the headers; after the same gap twice, alternately by
//     reading the stream from its first message), waiting longer each
//     time, up to 5 s. A gap
//     is never skipped: until the missing events arrive (the relay
//     republishes what the bus lost) the projection stays at its
//     checkpoint, and its lag shows it.
//
// The checkpoint, the read-model change and the counters commit together,
// and the consumer is acknowledged only afterwards, so a crash before the
// commit re-applies nothing twice and one after it redelivers only events
// the checkpoint skips. Whenever a runner starts following the stream it
// replaces the durable consumer (under a fresh name, deleting those of
// earlier holders) with one that starts at the checkpoint, which also
// covers a read model restored from a backup or one that lost its last
// transactions.
//
// A projection that implements BatchProjection gets each batch's events
// through one Batch, which may keep what it reads and writes in memory
// and write it once per batch (Flush) before the checkpoint is stored:
// while catching up, a batch holds up to DefaultSQLiteMaxBatch (10,000)
// events on SQLite, and the fewer statements and pages per event are most
// of a read model's catch-up rate. The dashboard and the report do so. A batch
// whose Apply or Flush fails is rolled back and applied again through
// Apply, one event at a time, as below.
//
// An event whose type has no registered Go message, or for which Apply
// returns ErrUnknownEvent, is skipped and counted per type
// (koers_projection_unknown, shown by `koers projections status`). An
// event whose Apply fails otherwise is parked in koers_projection_dead_letters
// with the error and the message, and the projection goes on: the batch is
// applied again with a savepoint around each event, so the failed Apply
// leaves no partial change (batches that fail nothing run without
// savepoints). Retry (`koers projections retry NAME [POSITION]`) applies
// parked events again after a fix.
//
// # Stores
//
// SQLite (modernc.org/sqlite, file <data>/readmodel.db) runs in WAL mode
// with synchronous=NORMAL: commits are not fsynced, checkpoints are. The
// database stays consistent through any crash; an OS crash or power cut
// may lose the last transactions, but each carries its own checkpoint, so
// what is lost is a checkpoint moving back together with the changes it
// covered, and the runner re-applies from there (its consumer is recreated
// at the older checkpoint). A derived read model can afford that; paying an
// fsync per batch would buy nothing. Writes go through one connection whose
// transactions begin IMMEDIATE; queries through a read-only pool that never
// waits for the writer.
//
// PostgreSQL is used through pgx's database/sql driver, so one set of
// projection code runs on both: the engine rewrites ? placeholders and
// {table} tokens for the dialect and generation. The engine's own tables
// come from migrations compiled into the binary and applied by Open.
//
// # Rebuilds
//
// A projection whose stored version differs from Version is rebuilt by
// its runner; Rebuild (`koers projections rebuild NAME`) does the same on
// demand, in any process. The rebuild fills a new generation through an
// ordered consumer from the stream's first message, and swaps it in, in
// the transaction that brings it to or past both the stream head seen at
// its start and the live checkpoint, which it reads under the same row
// lock the live appliers take: a live applier in any process continues
// from the new generation's checkpoint with its next batch. On PostgreSQL,
// which resolves a statement's view names after taking its snapshot, the
// swap first waits (at most 10 s) until no session holds a snapshot older
// than the new generation's last write, so that no query sees it half
// built.
//
// # Scale-out
//
// `koers projector` runs the runners in a process of its own against
// PostgreSQL. Per projection, one process holds a lease, a session
// advisory lock (pg_try_advisory_lock) on a dedicated connection: it
// applies, and the others retry every Config.LeaseRetry and take over the
// moment the holder's session ends. The lease only saves work: correctness
// does not depend on it, because every batch re-reads the checkpoint under
// the row lock, so even two appliers at once would not double-count. A
// SQLite read model belongs to the one process holding the data folder's
// lock, so there the lease is granted at once.
//
// # Reading
//
// DB.Reader gives queries over a projection's views with the same ?
// and {table} rewriting, and DB.WaitForPosition waits until a projection
// has applied a given position (read your writes): woken by an engine on
// the same DB in this process, or else by reading the checkpoint every
// 20 ms. Reader.ReadTx runs a function's queries on one snapshot; its Tx
// can Fork another transaction on the same snapshot, so that a report's
// independent queries run on two connections at once (on PostgreSQL by
// pg_export_snapshot; on SQLite, which cannot open an older snapshot, only
// while no commit ran since the first one took its snapshot, which the
// engine tells by counting its commits).
//
// On SQLite every statement runs prepared, and each is prepared once per
// connection: the write connection and the read pool keep their
// statements across transactions (modernc.org/sqlite would parse a
// statement at every call otherwise).
//
// # Metrics
//
// Engine.Metrics holds koers_projection_events_total by outcome (its
// rate is the throughput), koers_projection_position,
// koers_projection_lag_events (stream head minus checkpoint),
// koers_projection_batch_seconds, koers_projection_gaps_total and
// koers_projection_active.
package projections

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/eventstore"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// Projection is one read model: its tables and how events change them.
// Implementations hold no state of their own between calls; everything lives
// in the tables, so that a projection can be rebuilt and run in any process.
type Projection interface {
	// Name identifies the projection in table names, checkpoints, metrics
	// and commands: lower-case letters and underscores, for example
	// "dashboard".
	Name() string
	// Version changes whenever Tables or Apply change meaning; the engine
	// rebuilds a projection whose stored version differs.
	Version() int
	// Tables are the projection's tables, created fresh for each generation.
	Tables() []Table
	// Apply changes the tables for one event, inside the engine's batch
	// transaction. It returns ErrUnknownEvent for an event type it does not
	// handle; any other error parks the event in the dead-letter table.
	Apply(ctx context.Context, tx Tx, ev Event) error
}

// BatchProjection is a Projection that applies the events of a batch
// transaction together, which can be much faster than one at a time: it
// may keep what it read and what it changed in memory, and write it once
// per batch. The engine applies every batch through it; should an event
// of the batch fail (or the Flush), the engine rolls the batch back and
// applies it again one event at a time through Apply, with a savepoint
// each, so that the failing event is parked alone. The tables must
// therefore end the same whichever way a history is applied, in batches
// of any size or one event at a time.
type BatchProjection interface {
	Projection
	// NewBatch starts a batch in the engine's batch transaction tx.
	NewBatch(tx Tx) Batch
}

// Batch applies the events of one batch transaction, in order.
type Batch interface {
	// Apply is Projection.Apply for the next event of the batch; its
	// changes may stay in memory until Flush. An event it returns
	// ErrUnknownEvent for must leave the batch unchanged; after any other
	// error the engine abandons the batch.
	Apply(ctx context.Context, ev Event) error
	// Flush writes what the batch kept in memory. The engine calls it
	// once, after the last event, when Apply accepted any, before it
	// stores the checkpoint in the same transaction.
	Flush(ctx context.Context) error
}

// Table is one table of a projection.
type Table struct {
	// Name is the table's short name, for example "cases"; in SQL the
	// projection writes it as {cases}.
	Name string
	// Create is the CREATE TABLE statement, with the table written as
	// {name} and portable column types (INTEGER/BIGINT, TEXT, BOOLEAN,
	// REAL) that SQLite and PostgreSQL both accept.
	Create string
	// Indexes are CREATE INDEX statements, the table written as {name} and
	// each index name as {name_suffix}, which the engine makes unique per
	// generation.
	Indexes []string
}

// Tx is a read-model transaction as a projection sees it. Statements use ?
// placeholders and {table} names; the engine rewrites both for the dialect
// and for the generation being written.
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	// Dialect says which database the statements run on, for the rare
	// statement that cannot be written portably.
	Dialect() Dialect
}

// Dialect is the SQL database a read model lives in.
type Dialect string

// The dialects Koers supports.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Event is one event as a projection receives it: the bus's envelope with
// the body decoded.
type Event struct {
	// Position is the event's place in the store's global order.
	Position eventstore.Position
	// ID, Stream and Revision identify the event in the store.
	ID       string
	Stream   string
	Revision uint64
	// Type is the full protobuf name of Body.
	Type string
	// RecordedAt is when the store committed the event.
	RecordedAt time.Time
	// Metadata is the envelope: tenant, case, occurred-at, actor, …
	Metadata *eventv1.Metadata
	// Body is the decoded event, for example *casev1.CaseOpened.
	Body proto.Message
}

// ErrUnknownEvent is returned by Apply for an event type the projection does
// not handle. The engine skips the event and counts it, so that old
// projectors keep running while the schema grows.
var ErrUnknownEvent = errors.New("projections: event type not handled")
