package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/koers-io/koers/eventstore"
)

// Generation states.
const (
	stateBuilding = "building"
	stateLive     = "live"
	stateRetired  = "retired"
)

// maxIdentifier is PostgreSQL's limit on identifier length.
const maxIdentifier = 63

var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ErrBadProjection is wrapped by the errors for a projection whose name,
// version or tables the engine cannot use.
var ErrBadProjection = errors.New("projections: unusable projection")

// validate checks what the engine relies on: names that make valid,
// distinct identifiers in both dialects.
func validate(p Projection) error {
	name := p.Name()
	if !identRE.MatchString(name) {
		return fmt.Errorf("%w: name %q must be lower-case letters, digits and underscores, starting with a letter", ErrBadProjection, name)
	}
	if p.Version() < 1 {
		return fmt.Errorf("%w: %s: version %d must be at least 1", ErrBadProjection, name, p.Version())
	}
	tables := p.Tables()
	if len(tables) == 0 {
		return fmt.Errorf("%w: %s has no tables", ErrBadProjection, name)
	}
	seen := map[string]bool{}
	for _, t := range tables {
		if !identRE.MatchString(t.Name) || seen[t.Name] {
			return fmt.Errorf("%w: %s: table name %q is not a fresh lower-case identifier", ErrBadProjection, name, t.Name)
		}
		seen[t.Name] = true
		// Room for the longest generation number anyone will reach.
		if len(tablePrefix(name, 1_000_000))+len(t.Name) > maxIdentifier {
			return fmt.Errorf("%w: %s: table %q makes names longer than %d characters", ErrBadProjection, name, t.Name, maxIdentifier)
		}
		if !strings.Contains(t.Create, "{"+t.Name+"}") {
			return fmt.Errorf("%w: %s: the CREATE statement of table %q does not name it as {%s}", ErrBadProjection, name, t.Name, t.Name)
		}
	}
	return nil
}

func validateAll(ps []Projection) error {
	seen := map[string]bool{}
	for _, p := range ps {
		if err := validate(p); err != nil {
			return err
		}
		if seen[p.Name()] {
			return fmt.Errorf("%w: two projections are named %q", ErrBadProjection, p.Name())
		}
		seen[p.Name()] = true
	}
	return nil
}

// tablePrefix is what {table} becomes in statements that write generation
// gen of projection name.
func tablePrefix(name string, gen int64) string { return fmt.Sprintf("%s_g%d_", name, gen) }

// viewPrefix is what {table} becomes in queries, which read the views.
func viewPrefix(name string) string { return name + "_" }

func tableNames(p Projection) []string {
	var names []string
	for _, t := range p.Tables() {
		names = append(names, t.Name)
	}
	return names
}

// generation is one row of koers_projection_generations.
type generation struct {
	name     string
	number   int64
	version  int
	state    string
	tables   []string
	position eventstore.Position
}

const generationColumns = "g.generation, g.version, g.state, g.tables, g.position"

func scanGeneration(name string, row *sql.Row) (generation, error) {
	g := generation{name: name}
	var tables string
	var pos int64
	err := row.Scan(&g.number, &g.version, &g.state, &tables, &pos)
	g.tables = strings.Fields(tables)
	g.position = eventstore.Position(pos)
	return g, err
}

// ensureProjectionRow makes sure name has a koers_projections row, with
// live generation 0 (none) when it is new.
func (db *DB) ensureProjectionRow(ctx context.Context, tx execer, name string) error {
	_, err := tx.ExecContext(ctx, db.q("INSERT INTO koers_projections (name, live_generation) VALUES (?, 0) ON CONFLICT (name) DO NOTHING"), name)
	return err
}

// lockLive locks name's koers_projections row, when it exists, and
// returns its live generation; ok is false when there is none yet.
func (db *DB) lockLive(ctx context.Context, tx execer, name string) (g generation, ok bool, err error) {
	row := tx.QueryRowContext(ctx, db.q(`SELECT p.live_generation, COALESCE(g.version, 0), COALESCE(g.state, ''), COALESCE(g.tables, ''), COALESCE(g.position, 0)
		FROM koers_projections p
		LEFT JOIN koers_projection_generations g ON g.name = p.name AND g.generation = p.live_generation
		WHERE p.name = ?`+db.forUpdate("p")), name)
	g, err = scanGeneration(name, row)
	if errors.Is(err, sql.ErrNoRows) {
		return g, false, nil
	}
	return g, err == nil && g.state != "", err
}

// lockGeneration locks and returns one generation's row; ok is false when
// it does not exist.
func (db *DB) lockGeneration(ctx context.Context, tx execer, name string, number int64) (g generation, ok bool, err error) {
	row := tx.QueryRowContext(ctx, db.q(`SELECT `+generationColumns+`
		FROM koers_projection_generations g
		WHERE g.name = ? AND g.generation = ?`+db.forUpdate("")), name, number)
	g, err = scanGeneration(name, row)
	if errors.Is(err, sql.ErrNoRows) {
		return g, false, nil
	}
	return g, err == nil, err
}

// createGeneration creates the tables of a new generation of p and its row.
func (db *DB) createGeneration(ctx context.Context, tx execer, p Projection, number int64, state string) (generation, error) {
	prefix := tablePrefix(p.Name(), number)
	for _, t := range p.Tables() {
		for _, stmt := range append([]string{t.Create}, t.Indexes...) {
			if _, err := tx.ExecContext(ctx, db.rw.rewrite(prefix, stmt)); err != nil {
				return generation{}, fmt.Errorf("creating table %s of generation %d: %w", t.Name, number, err)
			}
		}
	}
	g := generation{name: p.Name(), number: number, version: p.Version(), state: state, tables: tableNames(p)}
	now := nowMillis()
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO koers_projection_generations
		(name, generation, version, state, tables, position, applied, unknown, started_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?, ?)`),
		g.name, g.number, g.version, g.state, strings.Join(g.tables, " "), now, now)
	return g, err
}

// nextGeneration is the number a new generation of name gets.
func (db *DB) nextGeneration(ctx context.Context, tx execer, name string) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, db.q(`SELECT COALESCE(MAX(generation), 0) FROM koers_projection_generations WHERE name = ?`), name).Scan(&n)
	var live int64
	if err == nil {
		err = tx.QueryRowContext(ctx, db.q(`SELECT COALESCE(MAX(live_generation), 0) FROM koers_projections WHERE name = ?`), name).Scan(&live)
	}
	return max(n, live) + 1, err
}

// makeLive points the views of g's projection at g's tables, drops the
// views of tables the old live generation had and g has not, and records g
// as live and old (if any) as retired. The caller holds the projection row
// lock.
func (db *DB) makeLive(ctx context.Context, tx execer, g generation, old *generation) error {
	prefix := tablePrefix(g.name, g.number)
	var drop []string
	if old != nil {
		for _, t := range old.tables {
			if !slices.Contains(g.tables, t) {
				drop = append(drop, t)
			}
		}
	}
	for _, t := range append(drop, g.tables...) {
		if _, err := tx.ExecContext(ctx, "DROP VIEW IF EXISTS "+viewPrefix(g.name)+t); err != nil {
			return fmt.Errorf("dropping view %s%s: %w", viewPrefix(g.name), t, err)
		}
	}
	for _, t := range g.tables {
		if _, err := tx.ExecContext(ctx, "CREATE VIEW "+viewPrefix(g.name)+t+" AS SELECT * FROM "+prefix+t); err != nil {
			return fmt.Errorf("creating view %s%s: %w", viewPrefix(g.name), t, err)
		}
	}
	now := nowMillis()
	if _, err := tx.ExecContext(ctx, db.q("UPDATE koers_projection_generations SET state = ?, updated_at = ? WHERE name = ? AND generation = ?"), stateLive, now, g.name, g.number); err != nil {
		return err
	}
	if old != nil {
		if _, err := tx.ExecContext(ctx, db.q("UPDATE koers_projection_generations SET state = ?, updated_at = ? WHERE name = ? AND generation = ?"), stateRetired, now, old.name, old.number); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, db.q("UPDATE koers_projections SET live_generation = ? WHERE name = ?"), g.number, g.name)
	return err
}

// dropGenerations drops the tables of name's generations in state and
// forgets them, with their counters and dead letters; except, when not
// zero, generation keep.
func (db *DB) dropGenerations(ctx context.Context, tx execer, name, state string, keep int64) error {
	rows, err := tx.QueryContext(ctx, db.q("SELECT generation, tables FROM koers_projection_generations WHERE name = ? AND state = ? AND generation <> ?"), name, state, keep)
	if err != nil {
		return err
	}
	type gen struct {
		n      int64
		tables []string
	}
	var gens []gen
	for rows.Next() {
		var g gen
		var tables string
		if err := rows.Scan(&g.n, &tables); err != nil {
			rows.Close()
			return err
		}
		g.tables = strings.Fields(tables)
		gens = append(gens, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, g := range gens {
		// Backwards, so that a table referencing an earlier one goes first.
		for _, t := range slices.Backward(g.tables) {
			if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+tablePrefix(name, g.n)+t); err != nil {
				return fmt.Errorf("dropping table %s of generation %d: %w", t, g.n, err)
			}
		}
		for _, table := range []string{"koers_projection_dead_letters", "koers_projection_unknown", "koers_projection_generations"} {
			if _, err := tx.ExecContext(ctx, db.q("DELETE FROM "+table+" WHERE name = ? AND generation = ?"), name, g.n); err != nil {
				return err
			}
		}
	}
	return nil
}
