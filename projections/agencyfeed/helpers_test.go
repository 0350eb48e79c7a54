package agencyfeed_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/agencyfeed"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// sealedMarker starts the ciphertext and key ID of every Sealed value the
// tests write, so that a search of the agency stream's bytes finds any
// that slipped through.
const sealedMarker = "SEALED-PERSONAL-"

// sealed returns a Sealed value whose bytes carry what.
func sealed(what string) *eventv1.Sealed {
	return &eventv1.Sealed{
		KeyId:      sealedMarker + "key-" + what,
		Nonce:      []byte("nonce-12byte"),
		Ciphertext: []byte(sealedMarker + "ciphertext-" + what),
	}
}

func date(y, m, d int32) *casev1.Date { return &casev1.Date{Year: y, Month: m, Day: d} }

func agencyConsent(agency string, scopes ...casev1.ReportingScope) *casev1.ReportingConsentGranted {
	return &casev1.ReportingConsentGranted{
		Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, Id: agency},
		Scopes:    scopes,
	}
}

func agencyRevoked(agency string) *casev1.ReportingConsentRevoked {
	return &casev1.ReportingConsentRevoked{Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, Id: agency}}
}

const (
	progress      = casev1.ReportingScope_REPORTING_SCOPE_PROGRESS
	outcome       = casev1.ReportingScope_REPORTING_SCOPE_OUTCOME
	reintegration = casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION
	plan          = casev1.ReportingScope_REPORTING_SCOPE_DEVELOPMENT_PLAN
)

// history is a list of stored events, in store order.
type history struct {
	events []eventstore.RecordedEvent
	revs   map[string]uint64
}

var epoch = time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)

// add appends an event of case caseID of tenant and returns its position.
func (h *history) add(t testing.TB, tenant, caseID string, body proto.Message) eventstore.Position {
	t.Helper()
	data, err := proto.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return h.addRaw(t, tenant, caseID, string(body.ProtoReflect().Descriptor().FullName()), data)
}

// addRaw appends an event of the given type and body bytes.
func (h *history) addRaw(t testing.TB, tenant, caseID, typ string, data []byte) eventstore.Position {
	t.Helper()
	if h.revs == nil {
		h.revs = map[string]uint64{}
	}
	pos := eventstore.Position(len(h.events) + 1)
	at := epoch.Add(time.Duration(pos) * time.Hour)
	meta, err := proto.Marshal(&eventv1.Metadata{
		TenantId: tenant, CaseId: caseID,
		OccurredAt: timestamppb.New(at), RecordedAt: timestamppb.New(at),
		Actor: "coach-7", RequestId: "req-" + strconv.Itoa(int(pos)), CorrelationId: "corr-" + caseID,
		SchemaVersion: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	stream := "case-" + caseID
	h.events = append(h.events, eventstore.RecordedEvent{
		ID:       uuid.NewSHA1(uuid.NameSpaceURL, []byte(fmt.Sprintf("koers-test/%d", pos))),
		Stream:   stream,
		Type:     typ,
		Data:     data,
		Metadata: meta,
		Revision: h.revs[stream],
		Position: pos, RecordedAt: at,
	})
	h.revs[stream]++
	return pos
}

// projectionEvents turns events into what the engine hands Apply.
func projectionEvents(t testing.TB, events []eventstore.RecordedEvent) []projections.Event {
	t.Helper()
	var out []projections.Event
	for _, ev := range events {
		mt, err := protoregistryFind(ev.Type)
		if err != nil {
			continue
		}
		body := mt.New().Interface()
		if err := proto.Unmarshal(ev.Data, body); err != nil {
			t.Fatal(err)
		}
		var meta eventv1.Metadata
		if err := proto.Unmarshal(ev.Metadata, &meta); err != nil {
			t.Fatal(err)
		}
		out = append(out, projections.Event{
			Position: ev.Position, ID: ev.ID.String(), Stream: ev.Stream, Revision: ev.Revision,
			Type: ev.Type, RecordedAt: ev.RecordedAt, Metadata: &meta, Body: body,
		})
	}
	return out
}

// bench is an embedded NATS server with the event and agency streams,
// and Koers' JetStream context on it.
type bench struct {
	srv *bus.Embedded
	js  jetstream.JetStream
	// published is how many events of the history are on the event
	// stream.
	published int
}

func newBench(t *testing.T) *bench {
	t.Helper()
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	ctx := context.Background()
	if _, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureAgencyStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	return &bench{srv: srv, js: js}
}

// publish relays the history's events not yet on the event stream, as the
// relay would.
func (b *bench) publish(t testing.TB, h *history) {
	t.Helper()
	ctx := context.Background()
	for ; b.published < len(h.events); b.published++ {
		var prev eventstore.Position
		if b.published > 0 {
			prev = h.events[b.published-1].Position
		}
		msg, err := bus.Message(h.events[b.published], prev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *bench) router(t testing.TB) *agencyfeed.Router {
	t.Helper()
	r, err := agencyfeed.New(agencyfeed.Options{JetStream: b.js, Logger: bustest.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run starts an engine with r on db and waits until it applied up to
// position; the engine stops when the test ends or on stop().
func (b *bench) run(t *testing.T, db *projections.DB, r *agencyfeed.Router, position eventstore.Position) (stop func()) {
	t.Helper()
	ctx := context.Background()
	e, err := projections.Start(ctx, projections.Config{
		DB: db, JetStream: b.js, Projections: []projections.Projection{r},
		Logger: bustest.Logger(t, slog.LevelWarn),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	b.wait(t, db, position)
	return e.Stop
}

func (b *bench) wait(t *testing.T, db *projections.DB, position eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.WaitForPosition(ctx, agencyfeed.Name, position); err != nil {
		t.Fatalf("waiting for the router to apply position %d: %v", position, err)
	}
}

// feedMsg is one message of the agency stream.
type feedMsg struct {
	seq     uint64
	subject string
	header  map[string][]string
	data    []byte
	ev      *eventv1.Event
	body    proto.Message
}

// feed reads the whole agency stream.
func (b *bench) feed(t testing.TB) []feedMsg {
	t.Helper()
	ctx := context.Background()
	s, err := b.js.Stream(ctx, bus.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	var out []feedMsg
	state := s.CachedInfo().State
	if state.Msgs == 0 {
		return nil
	}
	for seq := state.FirstSeq; seq <= state.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("agency stream sequence %d: %v", seq, err)
		}
		ev, err := bus.Decode(m.Data, m.Header)
		if err != nil {
			t.Fatalf("agency stream sequence %d on %s: %v", seq, m.Subject, err)
		}
		mt, err := protoregistryFind(ev.GetType())
		if err != nil {
			t.Fatalf("agency stream sequence %d: type %s: %v", seq, ev.GetType(), err)
		}
		body := mt.New().Interface()
		if err := proto.Unmarshal(ev.GetData(), body); err != nil {
			t.Fatal(err)
		}
		out = append(out, feedMsg{seq: seq, subject: m.Subject, header: m.Header, data: m.Data, ev: ev, body: body})
	}
	return out
}

// summary is a feed message as the routing tests compare it:
// "<tenant>/<agency> <position> <type>".
func summary(m feedMsg) string {
	rest := strings.TrimPrefix(m.subject, bus.AgencySubjectRoot+".")
	parts := strings.Split(rest, ".")
	short := strings.TrimPrefix(m.ev.GetType(), "koers.case.v1.")
	return fmt.Sprintf("%s/%s %d %s", parts[0], parts[1], m.ev.GetPosition(), short)
}

func summaries(msgs []feedMsg) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, summary(m))
	}
	return out
}

// hasSealed reports whether m holds a Sealed value anywhere.
func hasSealed(m protoreflect.Message) bool {
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		md := fd.Message()
		if fd.IsMap() {
			md = fd.MapValue().Message()
		}
		switch {
		case md == nil:
		case md.FullName() == "koers.event.v1.Sealed":
			found = true
		case fd.IsList():
			for i := range v.List().Len() {
				found = found || hasSealed(v.List().Get(i).Message())
			}
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				found = found || hasSealed(mv.Message())
				return true
			})
		default:
			found = found || hasSealed(v.Message())
		}
		return !found
	})
	return found
}

// containsSealedBytes reports whether b holds the bytes of a Sealed value
// the tests wrote.
func containsSealedBytes(b []byte) bool { return bytes.Contains(b, []byte(sealedMarker)) }

// dialects are the read-model databases the engine tests run on: SQLite,
// and PostgreSQL when KOERS_TEST_POSTGRES_DSN is set.
func forEachDialect(t *testing.T, f func(t *testing.T, open func(t *testing.T) *projections.DB)) {
	t.Run("sqlite", func(t *testing.T) { f(t, openSQLite) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(pgEnv) == "" {
			t.Skip(pgEnv + " is not set; PostgreSQL runs are skipped")
		}
		f(t, openPostgres)
	})
}

const pgEnv = "KOERS_TEST_POSTGRES_DSN"

func openSQLite(t *testing.T) *projections.DB {
	t.Helper()
	db, err := projections.Open(context.Background(), projections.Options{Path: filepath.Join(t.TempDir(), "readmodel.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgres opens a read model in a fresh schema of the server named
// by KOERS_TEST_POSTGRES_DSN, dropped when the test ends.
func openPostgres(t *testing.T) *projections.DB {
	t.Helper()
	base := os.Getenv(pgEnv)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := "agencyfeed_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		if admin, err := sql.Open("pgx", base); err == nil {
			admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			admin.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := projections.Open(context.Background(), projections.Options{PostgresDSN: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func protoregistryFind(typ string) (protoreflect.MessageType, error) {
	return protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
}
