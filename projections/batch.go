package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
)

// message is one delivered event message with the positions from its
// headers, read before any transaction.
type message struct {
	msg      jetstream.Msg
	data     []byte
	header   nats.Header
	position eventstore.Position
	previous eventstore.Position
	// bad is why the headers give no usable positions; such a message
	// cannot be placed in the order and is skipped, logged and counted.
	bad error
	// ev is the decoded event, typ its type, and decodeErr why it did not
	// decode (errNoGoType for a type this binary does not know).
	ev        Event
	typ       string
	decodeErr error
}

// newMessage reads a delivered message's positions and decodes its event.
// The feed calls it on the client library's delivery goroutine, so that
// decoding overlaps the database work of the batch before.
func newMessage(m jetstream.Msg) message {
	h := m.Headers()
	msg := message{msg: m, data: m.Data(), header: h}
	msg.position, msg.bad = bus.PositionOf(h)
	if msg.bad == nil {
		msg.previous, msg.bad = bus.PreviousPositionOf(h)
	}
	if msg.bad == nil && msg.previous >= msg.position {
		msg.bad = fmt.Errorf("%w: previous position %d is not before position %d", bus.ErrMalformedMessage, msg.previous, msg.position)
	}
	if msg.bad == nil {
		msg.ev, msg.typ, msg.decodeErr = decodeEvent(msg.data, h)
	}
	return msg
}

// target is what a batch is applied to: the live generation, found anew
// in each transaction, or one generation being rebuilt.
type target struct {
	p Projection
	// rebuild is the generation being built; 0 means the live one.
	rebuild int64
	// afterApply, when set, runs inside the batch transaction after the
	// checkpoint was stored (rebuilds swap there).
	afterApply func(ctx context.Context, tx execer, g generation) error
}

// batchResult is what one batch transaction did.
type batchResult struct {
	generation generation // as of the end of the transaction
	applied    int
	duplicates int
	unknown    int
	parked     int
	malformed  int
	// consumed counts the messages handled, from the first; messages
	// after a gap are not.
	consumed int
	// gap is set when a message did not follow the checkpoint.
	gap *GapError
}

// GapError says that the message after the checkpoint was not the event
// that follows it: events are missing from the stream in between.
type GapError struct {
	Projection string
	// Checkpoint is the last applied position; Previous and Position are
	// those of the message that arrived instead of its successor.
	Checkpoint, Previous, Position eventstore.Position
}

func (e *GapError) Error() string {
	return fmt.Sprintf("projections: %s: gap after checkpoint %d: next message is position %d, which follows %d", e.Projection, e.Checkpoint, e.Position, e.Previous)
}

var (
	// ErrVersionChanged is returned when the live generation was built by
	// another version of the projection than the running one: a newer
	// process swapped in a rebuild, so this one must stop applying.
	ErrVersionChanged = errors.New("projections: the live generation has another version")
	// ErrRebuildAbandoned ends a rebuild whose generation is gone: another
	// rebuild of the same projection started and replaced it.
	ErrRebuildAbandoned = errors.New("projections: rebuild abandoned: another rebuild replaced it")

	// errCareful asks to apply the batch again with a savepoint per event:
	// an Apply failed, and without savepoints its partial changes could
	// not be undone alone.
	errCareful = errors.New("an Apply failed")
)

// applyBatch applies msgs in one transaction, skipping those at or below
// the checkpoint, and stores the new checkpoint in the same transaction.
// It stops before a message that does not follow the checkpoint and
// reports the gap. careful applies each event under a savepoint so that a
// failed Apply is undone alone and its event parked; without it, a failed
// Apply rolls everything back and returns errCareful.
func (db *DB) applyBatch(ctx context.Context, t target, msgs []message, careful bool, hooks *testHooks) (res batchResult, err error) {
	name := t.p.Name()
	b, err := db.beginBatch(ctx)
	if err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			b.rollback()
		}
	}()
	g, err := db.lockTarget(ctx, b.ex, t)
	if err != nil {
		return res, err
	}
	ptx := newDBTx(db, b.ex, tablePrefix(name, g.number), db.writeStmts)
	var batch Batch
	if bp, ok := t.p.(BatchProjection); ok && !careful {
		batch = bp.NewBatch(ptx)
	}
	checkpoint := g.position
	var unknownTypes map[string]int64
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.bad != nil:
			res.malformed++
		case m.position <= checkpoint:
			res.duplicates++
		case m.previous != checkpoint:
			res.gap = &GapError{Projection: name, Checkpoint: checkpoint, Previous: m.previous, Position: m.position}
		default:
			outcome, err := db.applyOne(ctx, b, ptx, t.p, batch, g.number, m, careful)
			if err != nil {
				return res, err
			}
			switch outcome.kind {
			case outcomeApplied:
				res.applied++
			case outcomeUnknown:
				res.unknown++
				if unknownTypes == nil {
					unknownTypes = map[string]int64{}
				}
				unknownTypes[outcome.typ]++
			case outcomeParked:
				res.parked++
			}
			checkpoint = m.position
		}
		if res.gap != nil {
			break
		}
		res.consumed++
	}
	if batch != nil && res.applied > 0 {
		if err := batch.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			// Which event's change failed is known one event at a time.
			return res, errCareful
		}
	}
	if checkpoint != g.position || res.unknown > 0 {
		if _, err := b.ex.ExecContext(ctx, db.q(`UPDATE koers_projection_generations
			SET position = ?, applied = applied + ?, unknown = unknown + ?, updated_at = ?
			WHERE name = ? AND generation = ?`),
			int64(checkpoint), res.applied, res.unknown, nowMillis(), name, g.number); err != nil {
			return res, fmt.Errorf("storing the checkpoint: %w", err)
		}
		for typ, n := range unknownTypes {
			if _, err := b.ex.ExecContext(ctx, db.q(`INSERT INTO koers_projection_unknown (name, generation, type, events) VALUES (?, ?, ?, ?)
				ON CONFLICT (name, generation, type) DO UPDATE SET events = koers_projection_unknown.events + excluded.events`),
				name, g.number, typ, n); err != nil {
				return res, fmt.Errorf("counting unknown events: %w", err)
			}
		}
	}
	g.position = checkpoint
	if t.afterApply != nil {
		if err := t.afterApply(ctx, b.ex, g); err != nil {
			return res, err
		}
	}
	if err := b.flush(ctx); err != nil {
		if !careful && isStatementError(err) {
			// A queued statement of some Apply failed: find out which.
			return res, errCareful
		}
		return res, fmt.Errorf("applying: %w", err)
	}
	if hooks != nil && hooks.beforeCommit != nil && res.applied > 0 {
		hooks.beforeCommit()
	}
	committed = true
	if err := b.commit(ctx); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	res.generation = g
	return res, nil
}

// isStatementError reports whether err is PostgreSQL's verdict on a
// statement, rather than a failure to reach it.
func isStatementError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

// batchTx is one batch's transaction: a *sql.Tx for SQLite, a pipelined
// transaction for PostgreSQL.
type batchTx struct {
	db   *DB
	ex   execer
	tx   *sql.Tx
	pipe *pgPipeline
}

func (db *DB) beginBatch(ctx context.Context) (*batchTx, error) {
	if db.dialect == Postgres {
		p, err := db.beginPipeline(ctx)
		if err != nil {
			return nil, err
		}
		return &batchTx{db: db, ex: p, pipe: p}, nil
	}
	db.writeStmts.preparePending(ctx)
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &batchTx{db: db, ex: tx, tx: tx}, nil
}

// flush sends queued statements; their first error, if any, is returned.
func (b *batchTx) flush(ctx context.Context) error {
	if b.pipe == nil {
		return nil
	}
	return b.pipe.flush(ctx)
}

// failure is the first error the pipeline met, which explains an error
// that a later statement reported (an aborted transaction), or nil.
func (b *batchTx) failure() error {
	if b.pipe == nil {
		return nil
	}
	return b.pipe.err
}

func (b *batchTx) rollbackTo(ctx context.Context, savepoint string) error {
	if b.pipe != nil {
		return b.pipe.rollbackTo(ctx, savepoint)
	}
	_, err := b.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+savepoint)
	return err
}

func (b *batchTx) commit(ctx context.Context) error {
	if b.pipe != nil {
		return b.pipe.commit(ctx)
	}
	return b.db.commit(b.tx)
}

func (b *batchTx) rollback() {
	if b.pipe != nil {
		b.pipe.rollback()
		return
	}
	b.tx.Rollback()
}

// lockTarget locks and returns the generation a batch writes.
func (db *DB) lockTarget(ctx context.Context, tx execer, t target) (generation, error) {
	if t.rebuild != 0 {
		g, ok, err := db.lockGeneration(ctx, tx, t.p.Name(), t.rebuild)
		switch {
		case err != nil:
			return g, fmt.Errorf("reading the checkpoint: %w", err)
		case !ok || g.state != stateBuilding:
			return g, ErrRebuildAbandoned
		}
		return g, nil
	}
	g, ok, err := db.lockLive(ctx, tx, t.p.Name())
	switch {
	case err != nil:
		return g, fmt.Errorf("reading the checkpoint: %w", err)
	case !ok:
		return g, fmt.Errorf("projections: %s has no live generation", t.p.Name())
	case g.version != t.p.Version():
		return g, fmt.Errorf("%w: %s is at version %d, this process runs version %d", ErrVersionChanged, t.p.Name(), g.version, t.p.Version())
	}
	return g, nil
}

type outcomeKind int

const (
	outcomeApplied outcomeKind = iota
	outcomeUnknown
	outcomeParked
)

type outcome struct {
	kind outcomeKind
	typ  string
}

// applyOne applies one event that follows the checkpoint: through batch
// when it is set (never when careful), else through p's Apply.
func (db *DB) applyOne(ctx context.Context, b *batchTx, tx *dbTx, p Projection, batch Batch, gen int64, m *message, careful bool) (outcome, error) {
	ev, typ, err := m.ev, m.typ, m.decodeErr
	switch {
	case errors.Is(err, errNoGoType):
		return outcome{kind: outcomeUnknown, typ: typ}, nil
	case err != nil:
		return outcome{kind: outcomeParked}, db.park(ctx, b.ex, p.Name(), gen, m, typ, err)
	}
	if !careful {
		var err error
		if batch != nil {
			err = batch.Apply(ctx, ev)
		} else {
			err = p.Apply(ctx, tx, ev)
		}
		switch {
		case err == nil:
			return outcome{kind: outcomeApplied}, nil
		case errors.Is(err, ErrUnknownEvent):
			return outcome{kind: outcomeUnknown, typ: typ}, nil
		default:
			return outcome{}, errCareful
		}
	}
	const savepoint = "koers_event"
	if _, err := b.ex.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
		return outcome{}, fmt.Errorf("savepoint: %w", err)
	}
	applyErr := p.Apply(ctx, tx, ev)
	if applyErr == nil {
		// Statements still queued belong to this event.
		if err := b.flush(ctx); err != nil {
			if !isStatementError(err) {
				return outcome{}, err
			}
			applyErr = err
		}
	} else if cause := b.failure(); cause != nil {
		applyErr = cause
	}
	if applyErr != nil {
		if err := b.rollbackTo(ctx, savepoint); err != nil {
			return outcome{}, fmt.Errorf("rollback to savepoint: %w", err)
		}
	}
	if _, err := b.ex.ExecContext(ctx, "RELEASE SAVEPOINT "+savepoint); err != nil {
		return outcome{}, fmt.Errorf("release savepoint: %w", err)
	}
	switch {
	case applyErr == nil:
		return outcome{kind: outcomeApplied}, nil
	case errors.Is(applyErr, ErrUnknownEvent):
		return outcome{kind: outcomeUnknown, typ: typ}, nil
	case ctx.Err() != nil:
		// A cancelled Apply says nothing about the event.
		return outcome{}, ctx.Err()
	default:
		return outcome{kind: outcomeParked}, db.park(ctx, b.ex, p.Name(), gen, m, typ, applyErr)
	}
}

// park stores an event whose Apply failed in the dead-letter table.
func (db *DB) park(ctx context.Context, tx execer, name string, gen int64, m *message, typ string, cause error) error {
	id := m.header.Get(bus.HeaderMsgID)
	if typ == "" {
		typ = m.header.Get(bus.HeaderEventType)
	}
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO koers_projection_dead_letters
		(name, generation, position, event_id, type, error, message, attempts, parked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)`),
		name, gen, int64(m.position), id, typ, truncate(cause.Error(), 4000), m.data, nowMillis())
	if err != nil {
		return fmt.Errorf("parking event at position %d: %w", m.position, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// errNoGoType marks an event whose type no Go message is registered for.
var errNoGoType = errors.New("no Go type registered for the event type")

// decodeEvent turns a message body into an Event, decoding the body by its
// type's registered Go message. typ is the event type when known.
func decodeEvent(data []byte, header nats.Header) (ev Event, typ string, err error) {
	e, err := bus.Decode(data, header)
	if err != nil {
		return ev, header.Get(bus.HeaderEventType), err
	}
	typ = e.GetType()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
	if err != nil {
		return ev, typ, fmt.Errorf("%w: %s", errNoGoType, typ)
	}
	body := mt.New().Interface()
	if err := proto.Unmarshal(e.GetData(), body); err != nil {
		return ev, typ, fmt.Errorf("decoding the %s body: %w", typ, err)
	}
	return Event{
		Position:   eventstore.Position(e.GetPosition()),
		ID:         e.GetId(),
		Stream:     e.GetStream(),
		Revision:   e.GetRevision(),
		Type:       typ,
		RecordedAt: e.GetRecordedAt().AsTime(),
		Metadata:   e.GetMetadata(),
		Body:       body,
	}, typ, nil
}

// testHooks let tests stop a process at chosen points.
type testHooks struct {
	// beforeCommit runs before each batch commit that applied events.
	beforeCommit func()
	// afterCommit runs after such a commit, before the acknowledgement.
	afterCommit func()
}
