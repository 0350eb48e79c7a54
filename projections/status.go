package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/eventstore"
)

// Status is the state of one projection as the database records it.
type Status struct {
	Name string
	// Live is the generation queries read; nil before the first start.
	Live *GenerationStatus
	// Building lists generations being rebuilt.
	Building []GenerationStatus
	// Head is the position of the last event on the stream, when known.
	Head      eventstore.Position
	HeadKnown bool
}

// Lag is the stream head minus the live checkpoint, 0 when either is
// unknown.
func (s Status) Lag() uint64 {
	if !s.HeadKnown || s.Live == nil {
		return 0
	}
	return lag(s.Head, s.Live.Position)
}

// GenerationStatus is the state of one generation of a projection.
type GenerationStatus struct {
	Generation int64
	Version    int
	// State is "live", "building" or "retired" (about to be dropped).
	State    string
	Position eventstore.Position
	// Applied counts the events applied; Unknown those skipped because
	// the projection does not handle their type, per type in UnknownTypes.
	Applied, Unknown uint64
	UnknownTypes     map[string]uint64
	// DeadLetters counts the parked events waiting for a retry.
	DeadLetters int
	StartedAt   time.Time
	UpdatedAt   time.Time
}

// ReadStatus returns the status of every projection in db, by name. With a
// stream it also reads the stream head, for the lag.
func ReadStatus(ctx context.Context, db *DB, stream jetstream.Stream) ([]Status, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT g.name, g.generation, g.version, g.state, g.position, g.applied, g.unknown, g.started_at, g.updated_at,
			(SELECT COUNT(*) FROM koers_projection_dead_letters d WHERE d.name = g.name AND d.generation = g.generation)
		FROM koers_projection_generations g ORDER BY g.name, g.generation`)
	if err != nil {
		return nil, fmt.Errorf("projections: reading status: %w", err)
	}
	byName := map[string]*Status{}
	var out []*Status
	for rows.Next() {
		var (
			name                              string
			g                                 GenerationStatus
			pos, applied, unknown, start, upd int64
		)
		if err := rows.Scan(&name, &g.Generation, &g.Version, &g.State, &pos, &applied, &unknown, &start, &upd, &g.DeadLetters); err != nil {
			rows.Close()
			return nil, fmt.Errorf("projections: reading status: %w", err)
		}
		g.Position, g.Applied, g.Unknown = eventstore.Position(pos), uint64(applied), uint64(unknown)
		g.StartedAt, g.UpdatedAt = time.UnixMilli(start).UTC(), time.UnixMilli(upd).UTC()
		s, ok := byName[name]
		if !ok {
			s = &Status{Name: name}
			byName[name] = s
			out = append(out, s)
		}
		switch g.State {
		case stateLive:
			s.Live = &g
		case stateBuilding:
			s.Building = append(s.Building, g)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projections: reading status: %w", err)
	}
	if err := readUnknown(ctx, db, byName); err != nil {
		return nil, err
	}
	var head eventstore.Position
	headKnown := false
	if stream != nil {
		if head, err = StreamHead(ctx, stream); err == nil {
			headKnown = true
		}
	}
	res := make([]Status, len(out))
	for i, s := range out {
		s.Head, s.HeadKnown = head, headKnown
		res[i] = *s
	}
	return res, nil
}

func readUnknown(ctx context.Context, db *DB, byName map[string]*Status) error {
	rows, err := db.read.QueryContext(ctx, "SELECT name, generation, type, events FROM koers_projection_unknown")
	if err != nil {
		return fmt.Errorf("projections: reading unknown counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name, typ string
			gen, n    int64
		)
		if err := rows.Scan(&name, &gen, &typ, &n); err != nil {
			return fmt.Errorf("projections: reading unknown counts: %w", err)
		}
		s := byName[name]
		if s == nil {
			continue
		}
		var g *GenerationStatus
		if s.Live != nil && s.Live.Generation == gen {
			g = s.Live
		}
		for i := range s.Building {
			if s.Building[i].Generation == gen {
				g = &s.Building[i]
			}
		}
		if g == nil {
			continue
		}
		if g.UnknownTypes == nil {
			g.UnknownTypes = map[string]uint64{}
		}
		g.UnknownTypes[typ] = uint64(n)
	}
	return rows.Err()
}

// DeadLetter is an event parked because its Apply failed.
type DeadLetter struct {
	Projection string
	Generation int64
	Position   eventstore.Position
	EventID    string
	Type       string
	// Error is the last Apply's error.
	Error     string
	Attempts  int
	ParkedAt  time.Time
	RetriedAt time.Time // zero when never retried
}

// DeadLetters returns the parked events of projection's live generation,
// by position.
func DeadLetters(ctx context.Context, db *DB, projection string) ([]DeadLetter, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT d.generation, d.position, d.event_id, d.type, d.error, d.attempts, d.parked_at, d.retried_at
		FROM koers_projection_dead_letters d
		JOIN koers_projections p ON p.name = d.name AND p.live_generation = d.generation
		WHERE d.name = ? ORDER BY d.position`), projection)
	if err != nil {
		return nil, fmt.Errorf("projections: reading dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		d := DeadLetter{Projection: projection}
		var pos, parked int64
		var retried sql.NullInt64
		if err := rows.Scan(&d.Generation, &pos, &d.EventID, &d.Type, &d.Error, &d.Attempts, &parked, &retried); err != nil {
			return nil, fmt.Errorf("projections: reading dead letters: %w", err)
		}
		d.Position, d.ParkedAt = eventstore.Position(pos), time.UnixMilli(parked).UTC()
		if retried.Valid {
			d.RetriedAt = time.UnixMilli(retried.Int64).UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RetryResult says what a Retry did.
type RetryResult struct {
	// Applied are the positions whose events now applied; Unknown those
	// the projection no longer handles (counted as unknown, and removed).
	Applied, Unknown []eventstore.Position
	// Failed are the events that failed again and stay parked.
	Failed []DeadLetter
}

// Retry applies parked events of p's live generation again: the one at
// position, or all of them, oldest first, when position is 0. Each is
// applied in its own transaction, under the lock live appliers take; one
// that applies leaves the dead-letter table, one that fails again stays
// with its new error.
//
// A retried event is applied after the events that followed it. That is
// right for the projection that failed on one event's content (the common
// case); one whose tables depend on the order of events should be rebuilt
// instead, which applies everything in order.
func Retry(ctx context.Context, db *DB, p Projection, position eventstore.Position) (RetryResult, error) {
	var res RetryResult
	dead, err := DeadLetters(ctx, db, p.Name())
	if err != nil {
		return res, err
	}
	found := false
	for _, d := range dead {
		if position != 0 && d.Position != position {
			continue
		}
		found = true
		outcome, applyErr, err := db.retryOne(ctx, p, d)
		switch {
		case err != nil:
			return res, fmt.Errorf("projections: retrying %s at position %d: %w", p.Name(), d.Position, err)
		case applyErr != nil:
			d.Error, d.Attempts, d.RetriedAt = applyErr.Error(), d.Attempts+1, time.Now().UTC()
			res.Failed = append(res.Failed, d)
		case outcome == outcomeUnknown:
			res.Unknown = append(res.Unknown, d.Position)
		default:
			res.Applied = append(res.Applied, d.Position)
		}
	}
	if position != 0 && !found {
		return res, fmt.Errorf("projections: %s has no parked event at position %d", p.Name(), position)
	}
	return res, nil
}

// Retry retries parked events of projection name of this engine; see the
// package function Retry.
func (e *Engine) Retry(ctx context.Context, name string, position eventstore.Position) (RetryResult, error) {
	r, ok := e.runners[name]
	if !ok {
		return RetryResult{}, fmt.Errorf("projections: no projection %q in this engine", name)
	}
	return Retry(ctx, e.cfg.DB, r.p, position)
}

// retryOne applies one parked event. applyErr is the projection's error
// (the event stays parked); err is any other failure.
func (db *DB) retryOne(ctx context.Context, p Projection, d DeadLetter) (kind outcomeKind, applyErr, err error) {
	name := p.Name()
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		g, ok, err := db.lockLive(ctx, tx, name)
		switch {
		case err != nil:
			return err
		case !ok || g.number != d.Generation:
			return fmt.Errorf("generation %d is no longer live", d.Generation)
		case g.version != p.Version():
			return fmt.Errorf("%w: version %d is live, this process runs %d", ErrVersionChanged, g.version, p.Version())
		}
		var data []byte
		if err := tx.QueryRowContext(ctx, db.q(`SELECT message FROM koers_projection_dead_letters
			WHERE name = ? AND generation = ? AND position = ?`), name, g.number, int64(d.Position)).Scan(&data); err != nil {
			return err
		}
		ev, typ, decodeErr := decodeEvent(data, nil)
		kind = outcomeApplied
		switch {
		case errors.Is(decodeErr, errNoGoType):
			kind = outcomeUnknown
		case decodeErr != nil:
			applyErr = decodeErr
			return errRetryFailed
		default:
			err := p.Apply(ctx, newDBTx(db, tx, tablePrefix(name, g.number), db.writeStmts), ev)
			switch {
			case errors.Is(err, ErrUnknownEvent):
				kind = outcomeUnknown
			case err != nil:
				applyErr = err
				return errRetryFailed
			}
		}
		if kind == outcomeUnknown {
			if _, err := tx.ExecContext(ctx, db.q("UPDATE koers_projection_generations SET unknown = unknown + 1 WHERE name = ? AND generation = ?"), name, g.number); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO koers_projection_unknown (name, generation, type, events) VALUES (?, ?, ?, 1)
				ON CONFLICT (name, generation, type) DO UPDATE SET events = koers_projection_unknown.events + 1`), name, g.number, typ); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, db.q("DELETE FROM koers_projection_dead_letters WHERE name = ? AND generation = ? AND position = ?"), name, g.number, int64(d.Position))
		return err
	})
	if !errors.Is(err, errRetryFailed) {
		return kind, nil, err
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`UPDATE koers_projection_dead_letters SET attempts = attempts + 1, error = ?, retried_at = ?
			WHERE name = ? AND generation = ? AND position = ?`), truncate(applyErr.Error(), 4000), nowMillis(), name, d.Generation, int64(d.Position))
		return err
	})
	return kind, applyErr, err
}

var errRetryFailed = errors.New("retry failed")

// progressLogger returns a Progress callback that logs at most every
// interval, and at the end.
func progressLogger(log *slog.Logger, interval time.Duration) func(Progress) {
	var last time.Time
	return func(p Progress) {
		if !p.Done && time.Since(last) < interval {
			return
		}
		last = time.Now()
		log.Info("rebuild progress", "generation", p.Generation, "position", p.Position, "target", p.Target, "applied", p.Applied, "done", p.Done)
	}
}

// FormatStatus renders statuses as the table `koers projections status`
// prints.
func FormatStatus(statuses []Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %4s %4s %12s %12s %10s %8s %5s  %s\n", "PROJECTION", "GEN", "VER", "POSITION", "HEAD", "LAG", "UNKNOWN", "DEAD", "REBUILDING")
	for _, s := range statuses {
		head, lagText := "?", "?"
		if s.HeadKnown {
			head, lagText = fmt.Sprint(s.Head), fmt.Sprint(s.Lag())
		}
		rebuilding := "-"
		if len(s.Building) > 0 {
			g := s.Building[len(s.Building)-1]
			rebuilding = fmt.Sprintf("generation %d at %d", g.Generation, g.Position)
		}
		if s.Live == nil {
			fmt.Fprintf(&b, "%-16s %4s %4s %12s %12s %10s %8s %5s  %s\n", s.Name, "-", "-", "-", head, "-", "-", "-", rebuilding)
			continue
		}
		g := s.Live
		fmt.Fprintf(&b, "%-16s %4d %4d %12d %12s %10s %8d %5d  %s\n", s.Name, g.Generation, g.Version, g.Position, head, lagText, g.Unknown, g.DeadLetters, rebuilding)
		for _, typ := range slices.Sorted(maps.Keys(g.UnknownTypes)) {
			fmt.Fprintf(&b, "  unknown %s: %d\n", typ, g.UnknownTypes[typ])
		}
	}
	return b.String()
}
