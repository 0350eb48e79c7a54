package projections

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"time"
)

// migrations are the engine's own tables, shipped in the binary and
// applied in order on Open; migration i (from 1) is recorded in
// koers_schema_migrations once applied, so Open is idempotent. A migration
// is never edited once released; a change is a new one at the end.
//
//   - koers_projections: one row per projection, naming its live generation.
//     Every transaction that writes the live generation locks this row
//     first, which is how appliers, rebuilds and retries in any process
//     agree on which generation is live.
//   - koers_projection_generations: each generation's version, state
//     (building, live, retired), tables and checkpoint (position) with its
//     counters of applied and unknown events.
//   - koers_projection_unknown: unknown events per generation and type.
//   - koers_projection_dead_letters: events whose Apply failed, with the
//     error and the message, until a retry applies them.
var migrations = []func(d Dialect) []string{
	func(d Dialect) []string {
		blob := "BLOB"
		if d == Postgres {
			blob = "BYTEA"
		}
		return []string{
			`CREATE TABLE koers_projections (
				name TEXT PRIMARY KEY,
				live_generation BIGINT NOT NULL
			)`,
			`CREATE TABLE koers_projection_generations (
				name TEXT NOT NULL,
				generation BIGINT NOT NULL,
				version BIGINT NOT NULL,
				state TEXT NOT NULL,
				tables TEXT NOT NULL,
				position BIGINT NOT NULL,
				applied BIGINT NOT NULL,
				unknown BIGINT NOT NULL,
				started_at BIGINT NOT NULL,
				updated_at BIGINT NOT NULL,
				PRIMARY KEY (name, generation)
			)`,
			`CREATE TABLE koers_projection_unknown (
				name TEXT NOT NULL,
				generation BIGINT NOT NULL,
				type TEXT NOT NULL,
				events BIGINT NOT NULL,
				PRIMARY KEY (name, generation, type)
			)`,
			`CREATE TABLE koers_projection_dead_letters (
				name TEXT NOT NULL,
				generation BIGINT NOT NULL,
				position BIGINT NOT NULL,
				event_id TEXT NOT NULL,
				type TEXT NOT NULL,
				error TEXT NOT NULL,
				message ` + blob + ` NOT NULL,
				attempts BIGINT NOT NULL,
				parked_at BIGINT NOT NULL,
				retried_at BIGINT,
				PRIMARY KEY (name, generation, position)
			)`,
		}
	},
}

// ErrNewerSchema is returned by Open for a read-model database whose engine
// tables a newer Koers has migrated.
var ErrNewerSchema = fmt.Errorf("projections: the read-model database was migrated by a newer koers (this one knows %d migrations)", len(migrations))

// migrate applies the migrations the database lacks, all in one
// transaction. PostgreSQL serializes concurrent starts with a transaction
// advisory lock; SQLite's write transaction already does.
func (db *DB) migrate(ctx context.Context) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if db.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", db.lockKey("migrate")); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS koers_schema_migrations (
			version BIGINT PRIMARY KEY,
			applied_at BIGINT NOT NULL
		)`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM koers_schema_migrations").Scan(&have); err != nil {
			return err
		}
		if have > len(migrations) {
			return fmt.Errorf("%w; it has %d", ErrNewerSchema, have)
		}
		for v := have + 1; v <= len(migrations); v++ {
			for _, stmt := range migrations[v-1](db.dialect) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d: %w", v, err)
				}
			}
			if _, err := tx.ExecContext(ctx, db.q("INSERT INTO koers_schema_migrations (version, applied_at) VALUES (?, ?)"), v, nowMillis()); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("projections: migrating the engine tables: %w", err)
	}
	return nil
}

// lockKey is the PostgreSQL advisory lock key for name in this database
// and schema.
func (db *DB) lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("koers.projections\x00" + db.lockSpace + "\x00" + name))
	return int64(h.Sum64())
}

func nowMillis() int64 { return time.Now().UnixMilli() }
