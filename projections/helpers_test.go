package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// tally is the test projection: per tenant, the events applied, the last
// position and an order-sensitive digest of the positions; per tenant and
// type, the events applied. A duplicate, a missed event or a change of
// order changes the digest.
type tally struct {
	name    string
	version int
	// poison, when it holds a tenant, makes Apply fail for that tenant's
	// events after a first write, which the savepoint must undo.
	poison *atomic.Pointer[string]
	// ignore is an event type Apply answers ErrUnknownEvent for.
	ignore string
}

func newTally() *tally {
	return &tally{name: "tally", version: 1, poison: new(atomic.Pointer[string]), ignore: "koers.case.v1.ReportingConsentRevoked"}
}

func (t *tally) Name() string { return t.name }
func (t *tally) Version() int { return t.version }

func (t *tally) Tables() []Table {
	return []Table{
		{
			Name: "tenants",
			Create: `CREATE TABLE {tenants} (
				tenant TEXT PRIMARY KEY,
				events BIGINT NOT NULL,
				digest BIGINT NOT NULL,
				last_position BIGINT NOT NULL
			)`,
		},
		{
			Name: "types",
			Create: `CREATE TABLE {types} (
				tenant TEXT NOT NULL REFERENCES {tenants} (tenant),
				type TEXT NOT NULL,
				events BIGINT NOT NULL,
				PRIMARY KEY (tenant, type)
			)`,
			Indexes: []string{`CREATE INDEX {types_by_type} ON {types} (type)`},
		},
	}
}

// digestPrime keeps digest*31+position within a BIGINT.
const digestPrime = 1_000_000_007

func (t *tally) Apply(ctx context.Context, tx Tx, ev Event) error {
	if ev.Type == t.ignore {
		return ErrUnknownEvent
	}
	tenant := ev.Metadata.GetTenantId()
	pos := int64(ev.Position)
	if _, err := tx.ExecContext(ctx, `INSERT INTO {tenants} (tenant, events, digest, last_position) VALUES (?, 1, ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET events = {tenants}.events + 1,
			digest = ({tenants}.digest * 31 + excluded.digest) % 1000000007,
			last_position = excluded.last_position`, tenant, pos%digestPrime, pos); err != nil {
		return err
	}
	if p := t.poison.Load(); p != nil && *p == tenant {
		return fmt.Errorf("tally: tenant %s is poisoned", tenant)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO {types} (tenant, type, events) VALUES (?, ?, 1)
		ON CONFLICT (tenant, type) DO UPDATE SET events = {types}.events + 1`, tenant, ev.Type)
	return err
}

// tallyRow is one row of either table, for comparisons.
type tallyRow struct {
	Tenant, Type           string
	Events, Digest, LastPo int64
}

// expectedTally is what tally's tables hold after applying events in
// order, each once.
func expectedTally(events []eventstore.RecordedEvent, ignore string) []tallyRow {
	tenants := map[string]*tallyRow{}
	types := map[[2]string]int64{}
	var order []string
	for _, ev := range events {
		if ev.Type == ignore || ev.Type == futureType {
			continue
		}
		var m eventv1.Metadata
		proto.Unmarshal(ev.Metadata, &m)
		r, ok := tenants[m.TenantId]
		pos := int64(ev.Position)
		if !ok {
			r = &tallyRow{Tenant: m.TenantId, Digest: pos % digestPrime}
			tenants[m.TenantId] = r
			order = append(order, m.TenantId)
		} else {
			r.Digest = (r.Digest*31 + pos%digestPrime) % digestPrime
		}
		r.Events++
		r.LastPo = pos
		types[[2]string{m.TenantId, ev.Type}]++
	}
	var out []tallyRow
	for _, r := range tenants {
		out = append(out, *r)
	}
	for k, n := range types {
		out = append(out, tallyRow{Tenant: k[0], Type: k[1], Events: n})
	}
	sortRows(out)
	return out
}

func sortRows(rows []tallyRow) {
	slices.SortFunc(rows, func(a, b tallyRow) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return strings.Compare(a.Tenant, b.Tenant)
	})
}

// dumpTally reads tally's tables through its views.
func dumpTally(t testing.TB, db *DB, name string) []tallyRow {
	t.Helper()
	ctx := context.Background()
	r := db.Reader(name)
	var out []tallyRow
	rows, err := r.QueryContext(ctx, "SELECT tenant, events, digest, last_position FROM {tenants}")
	if err != nil {
		t.Fatalf("reading %s tenants: %v", name, err)
	}
	for rows.Next() {
		var row tallyRow
		if err := rows.Scan(&row.Tenant, &row.Events, &row.Digest, &row.LastPo); err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
	rows.Close()
	rows, err = r.QueryContext(ctx, "SELECT tenant, type, events FROM {types}")
	if err != nil {
		t.Fatalf("reading %s types: %v", name, err)
	}
	for rows.Next() {
		var row tallyRow
		if err := rows.Scan(&row.Tenant, &row.Type, &row.Events); err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
	rows.Close()
	sortRows(out)
	return out
}

// --- histories -----------------------------------------------------------

var idSpace = uuid.MustParse("6f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b")

var tenants = []string{"acme", "bolt", "coda", "dune"}

// futureType is an event type no Go message is registered for: an event
// from a newer schema than this binary knows.
const futureType = "koers.case.v9.SomethingNew"

// caseEvent returns event k of a history: a realistic mix of case events
// over many cases, most of them sessions, as a coaching practice writes
// them. Each case's first event is CaseOpened.
func caseEvent(k int) (stream string, rev uint64, typ string, body proto.Message) {
	const perCase = 12
	c, rev := k/perCase, uint64(k%perCase)
	stream = "case-" + uuid.NewSHA1(idSpace, fmt.Appendf(nil, "case %d", c)).String()
	day := &casev1.Date{Year: 2025, Month: int32(1 + c%12), Day: int32(1 + (k % 28))}
	sealed := &eventv1.Sealed{KeyId: "client-" + fmt.Sprint(c), Nonce: make([]byte, 12), Ciphertext: make([]byte, 96)}
	switch rev {
	case 0:
		body = &casev1.CaseOpened{ClientId: fmt.Sprintf("client-%d", c), Client: sealed, BirthYear: int32(1960 + c%40),
			OrganisationId: fmt.Sprintf("org-%d", c%17), Department: fmt.Sprintf("dept-%d", c%5), OpenedOn: day,
			OrganisationalContext: casev1.OrganisationalContext(1 + c%3)}
	case 1:
		body = &casev1.CoachAssigned{CoachId: fmt.Sprintf("coach-%d", c%23)}
	case 2:
		body = &casev1.IntakeCompleted{HeldOn: day, QuestionType: casev1.QuestionType(1 + c%5), Answers: sealed,
			MobilityWillingness: uint32(1 + c%5), MobilityCapacity: uint32(1 + (c/5)%5), ReferralAdvised: c%11 == 0}
	case 5:
		body = &casev1.DevelopmentPlanAgreed{AgreedOn: day, ReviewOn: day, Goals: sealed}
	case 9:
		body = &casev1.ReportingConsentRevoked{Recipient: &casev1.Recipient{}}
	default:
		body = &casev1.SessionRecorded{HeldOn: day, Kind: casev1.SessionKind(1 + k%3), DurationMinutes: 60, Notes: sealed}
	}
	return stream, rev, string(body.ProtoReflect().Descriptor().FullName()), body
}

// history returns n recorded events at positions 1..n; every 97th is of an
// unregistered type.
func history(n int) []eventstore.RecordedEvent { return historyRange(0, n) }

// historyRange returns events from..from+n-1 of the history (0-based), at
// positions from+1..from+n.
func historyRange(from, n int) []eventstore.RecordedEvent {
	out := make([]eventstore.RecordedEvent, n)
	base := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		k := from + i
		stream, rev, typ, body := caseEvent(k)
		data, _ := proto.Marshal(body)
		if k%97 == 96 {
			typ, data = futureType, []byte("from the future")
		}
		c := k / 12
		meta, _ := proto.Marshal(&eventv1.Metadata{
			TenantId:      tenants[c%len(tenants)],
			CaseId:        stream[len("case-"):],
			OccurredAt:    timestamppb.New(base.Add(time.Duration(k) * time.Minute)),
			RecordedAt:    timestamppb.New(base.Add(time.Duration(k) * time.Minute)),
			Actor:         fmt.Sprintf("coach-%d", c%23),
			RequestId:     fmt.Sprintf("req-%d", k),
			SchemaVersion: 1,
		})
		out[i] = eventstore.RecordedEvent{
			ID:         uuid.NewSHA1(idSpace, fmt.Appendf(nil, "event %d", k)),
			Stream:     stream,
			Type:       typ,
			Data:       data,
			Metadata:   meta,
			Revision:   rev,
			Position:   eventstore.Position(k + 1),
			RecordedAt: base.Add(time.Duration(k) * time.Minute),
		}
	}
	return out
}

// messages turns events into the messages the relay would publish, each
// following the one before it in the slice.
func messages(tb testing.TB, events []eventstore.RecordedEvent) []*nats.Msg {
	tb.Helper()
	out := make([]*nats.Msg, len(events))
	var prev eventstore.Position
	for i, ev := range events {
		m, err := bus.Message(ev, prev)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = m
		prev = ev.Position
	}
	return out
}

// withoutMsgID returns a copy of m that JetStream does not de-duplicate: a
// republished copy from after the duplicate window.
func withoutMsgID(m *nats.Msg) *nats.Msg {
	c := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{}}
	for k, v := range m.Header {
		if k != bus.HeaderMsgID {
			c.Header[k] = v
		}
	}
	return c
}

// publish publishes msgs in order, waiting for every ack.
func publish(tb testing.TB, js jetstream.JetStream, msgs []*nats.Msg) {
	tb.Helper()
	const window = 2000
	var pending []jetstream.PubAckFuture
	wait := func() {
		for _, f := range pending {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				tb.Fatalf("publish: %v", err)
			case <-time.After(30 * time.Second):
				tb.Fatal("publish: no ack")
			}
		}
		pending = pending[:0]
	}
	for _, m := range msgs {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			tb.Fatalf("publish: %v", err)
		}
		pending = append(pending, f)
		if len(pending) == window {
			wait()
		}
	}
	wait()
}

// --- fixtures -------------------------------------------------------------

// natsFixture is an embedded NATS server with the event stream.
type natsFixture struct {
	srv    *bus.Embedded
	js     jetstream.JetStream
	stream jetstream.Stream
}

func newNATS(tb testing.TB) *natsFixture {
	tb.Helper()
	srv := bustest.StartServer(tb)
	js := bustest.JetStream(tb, srv)
	s, err := bus.EnsureEventStream(context.Background(), js, bus.StreamConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return &natsFixture{srv: srv, js: js, stream: s}
}

// dialect is a database the tests run against.
type dialect struct {
	name string
	open func(tb testing.TB) *DB
}

const pgEnv = "KOERS_TEST_POSTGRES_DSN"

// dialects returns SQLite, and PostgreSQL when KOERS_TEST_POSTGRES_DSN is
// set.
func dialects(t *testing.T) []dialect {
	ds := []dialect{{"sqlite", openSQLiteDB}}
	if os.Getenv(pgEnv) != "" {
		ds = append(ds, dialect{"postgres", openPostgresDB})
	}
	return ds
}

// forEachDialect runs f as a subtest per dialect, and notes a skipped
// PostgreSQL run.
func forEachDialect(t *testing.T, f func(t *testing.T, open func(tb testing.TB) *DB)) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) { f(t, d.open) })
	}
	if os.Getenv(pgEnv) == "" {
		t.Run("postgres", func(t *testing.T) { t.Skip(pgEnv + " is not set; PostgreSQL runs are skipped") })
	}
}

func openSQLiteDB(tb testing.TB) *DB {
	tb.Helper()
	return openSQLitePath(tb, filepath.Join(tb.TempDir(), "readmodel.db"))
}

func openSQLitePath(tb testing.TB, path string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), Options{Path: path})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func requirePostgres(tb testing.TB) {
	if os.Getenv(pgEnv) == "" {
		tb.Skip(pgEnv + " is not set; this test needs PostgreSQL")
	}
}

// postgresSchemaDSN creates a fresh schema for tb and returns a DSN whose
// search_path selects it; the schema is dropped when tb ends.
func postgresSchemaDSN(tb testing.TB) string {
	tb.Helper()
	requirePostgres(tb)
	base := os.Getenv(pgEnv)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	schema := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("creating schema: %v", err)
	}
	tb.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openPostgresDSN(tb testing.TB, dsn string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), Options{PostgresDSN: dsn})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func openPostgresDB(tb testing.TB) *DB {
	tb.Helper()
	return openPostgresDSN(tb, postgresSchemaDSN(tb))
}

// startEngine starts an engine that the test stops when it ends.
func startEngine(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = bustest.Logger(tb, slog.LevelWarn)
	}
	e, err := Start(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Stop)
	return e
}

// waitPosition waits until projection name in db has reached pos.
func waitPosition(tb testing.TB, db *DB, name string, pos eventstore.Position) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := db.WaitForPosition(ctx, name, pos); err != nil {
		tb.Fatal(err)
	}
}

// eventually polls cond until it holds or the time is up.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func statusOf(tb testing.TB, db *DB, stream jetstream.Stream, name string) Status {
	tb.Helper()
	all, err := ReadStatus(context.Background(), db, stream)
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	tb.Fatalf("no status for %s", name)
	return Status{}
}

// fetchMessages reads stream sequences from..to as the engine receives them.
func fetchMessages(tb testing.TB, f *natsFixture, from, to uint64) []message {
	tb.Helper()
	ctx := context.Background()
	c, err := openOrdered(ctx, f.stream, from)
	if err != nil {
		tb.Fatal(err)
	}
	var out []message
	for uint64(len(out)) < to-from+1 {
		batch, err := c.Fetch(int(to-from+1) - len(out))
		if err != nil {
			tb.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, newMessage(m))
		}
		if err := batch.Error(); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// batchTally is tally applying each batch through BatchProjection: it adds
// a batch's events up in memory, per tenant and type, and writes each row
// once in Flush. flushed counts the events its Flushes wrote.
type batchTally struct {
	*tally
	flushed *atomic.Int64
}

func newBatchTally() batchTally { return batchTally{newTally(), new(atomic.Int64)} }

func (t batchTally) NewBatch(tx Tx) Batch {
	return &tallyBatch{t: t, tx: tx, tenants: map[string]*tenantSum{}, types: map[[2]string]int64{}}
}

type tallyBatch struct {
	t       batchTally
	tx      Tx
	tenants map[string]*tenantSum
	order   []string
	types   map[[2]string]int64
}

// tenantSum is what a batch adds to a tenant's row: digest is the digest of
// the batch's positions alone, and pow 31 to the power of their number, so
// that the row's digest becomes old*pow + digest.
type tenantSum struct {
	events, digest, pow, last int64
}

func (b *tallyBatch) Apply(ctx context.Context, ev Event) error {
	if ev.Type == b.t.ignore {
		return ErrUnknownEvent
	}
	tenant := ev.Metadata.GetTenantId()
	if p := b.t.poison.Load(); p != nil && *p == tenant {
		return fmt.Errorf("tally: tenant %s is poisoned", tenant)
	}
	s, ok := b.tenants[tenant]
	if !ok {
		s = &tenantSum{pow: 1}
		b.tenants[tenant] = s
		b.order = append(b.order, tenant)
	}
	pos := int64(ev.Position)
	s.events++
	s.digest = (s.digest*31 + pos%digestPrime) % digestPrime
	s.pow = s.pow * 31 % digestPrime
	s.last = pos
	b.types[[2]string{tenant, ev.Type}]++
	return nil
}

func (b *tallyBatch) Flush(ctx context.Context) error {
	for _, tenant := range b.order {
		s := b.tenants[tenant]
		b.t.flushed.Add(s.events)
		var old int64
		err := b.tx.QueryRowContext(ctx, `SELECT digest FROM {tenants} WHERE tenant = ?`, tenant).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = b.tx.ExecContext(ctx, `INSERT INTO {tenants} (tenant, events, digest, last_position) VALUES (?, ?, ?, ?)`,
				tenant, s.events, s.digest, s.last)
		case err == nil:
			_, err = b.tx.ExecContext(ctx, `UPDATE {tenants} SET events = events + ?, digest = ?, last_position = ? WHERE tenant = ?`,
				s.events, (old*s.pow+s.digest)%digestPrime, s.last, tenant)
		}
		if err != nil {
			return err
		}
	}
	for k, n := range b.types {
		if _, err := b.tx.ExecContext(ctx, `INSERT INTO {types} (tenant, type, events) VALUES (?, ?, ?)
			ON CONFLICT (tenant, type) DO UPDATE SET events = {types}.events + excluded.events`, k[0], k[1], n); err != nil {
			return err
		}
	}
	return nil
}
