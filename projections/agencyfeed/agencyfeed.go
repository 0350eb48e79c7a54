// Package agencyfeed is the agency router: a projection that republishes
// the events of each case, while it is assigned to a re-integration agency
// and the client's consent for that agency holds, on that agency's own
// subjects of the JetStream stream KOERS_AGENCY_FEED
// (koers.agency.<tenant>.<agency>.<case-id>, see bus.AgencySubject),
// redacted to what the consent covers. FeedService and agencies' own NATS
// consumers read that stream.
//
// # What an agency receives
//
// The router's tables keep, per case, its tenant and assigned agency (if
// any); per case and agency, the scopes the client granted that agency
// (ReportingConsentGranted and ReportingConsentRevoked with recipient kind
// AGENCY; a later grant replaces the scopes); and which agencies ever had
// the case assigned.
//
// An event goes to agency A when, after the event's own change to the
// assignment, A is the assigned agency, A's consent holds, and the event
// falls under a scope A was granted:
//
//	scope             events
//	REINTEGRATION     ReintegrationStarted, ReintegrationCheckpointRecorded,
//	                  SecondTrackStarted
//	OUTCOME           PlacementAchieved, OutplacementEndedWithoutPlacement,
//	                  CaseClosed
//	PROGRESS          SessionRecorded, OutplacementStarted,
//	                  OutplacementPhaseEntered
//	DEVELOPMENT_PLAN  DevelopmentPlanAgreed, DevelopmentPlanRevised
//	                  (dates only: the goals are sealed)
//	CONTACT_DETAILS   nothing: contact details exist only sealed, and the
//	                  feed carries nothing sealed
//
// Whatever the scopes, an agency receives its own assignment
// (ReintegrationAgencyAssigned, when its consent holds), its own
// unassignment (ReintegrationAgencyUnassigned: the last event it receives
// while assigned, also when it follows the revocation of its consent in
// the same decision), and grants and revocations of its own consent while
// it is assigned. ClientDataErased goes to every agency that ever had the
// case, assigned or not, so that each can erase what it holds.
//
// Nothing else ever goes to an agency: not CaseOpened, IntakeCompleted
// (answers, and warning signals, which are health-related),
// QuestionReclassified, CoachAssigned, CaseReferred, CaseReopened (which
// always precedes any new assignment, since closing unassigns), nor the
// consents of other recipients. A case event type this table does not name
// is skipped and counted as unknown by the engine.
//
// Because casework unassigns the agency in the same decision as a consent
// revocation or a close (after the close), an agency sees the close of a
// case it works on (with OUTCOME) and nothing of the case after its
// unassignment.
//
// # Redaction
//
// The body of each message is the event with every koers.event.v1.Sealed
// field cleared, wherever it sits in the message (a walk over the message
// with protoreflect, so that fields added later are covered): session and
// checkpoint notes, plan goals, close summaries, and any other sealed part.
// Also cleared: google.protobuf.Any fields (their content cannot be
// inspected), unknown fields (a newer schema's fields, which this binary
// cannot judge), and the plain fields listed in personalFields (the
// client's pseudonymous ID and birth year, intake warning signals and
// referral advice) should an event carrying them ever be routed. The
// envelope (koers.event.v1.Metadata: tenant, case, times, actor,
// request, correlation and causation IDs, schema version) holds no data
// of the client and is kept, minus unknown fields. Headers are those of
// the event stream (bus.Message), with Koers-Previous-Position naming the
// agency's own previous event, as bus/agency.go describes.
//
// # Exactly once
//
// The agency stream is the router's publish checkpoint, as the event
// stream is the relay's. Apply publishes synchronously, inside the
// engine's batch transaction and before it commits. On its first publish,
// and again after any failure, the router reads the stream's last message:
// its Koers-Position (and subject) say how far publishing got, and the
// router publishes nothing at or below that position; for the one event
// that goes to several agencies, copies are published in subject order,
// and those at or before the last message's subject count as published.
// So a batch that rolls back after publishing (a crash before the commit,
// a failed Apply later in the batch re-run with savepoints), a redelivery,
// a read model restored from a backup and a rebuild from position 0 all
// apply their events to the tables again without publishing any twice.
//
// Every publish is also conditional on the stream's last sequence
// (Nats-Expected-Last-Sequence): the router expects the stream to end
// where it last saw it. The engine runs one applier per projection (the
// lease; on SQLite the one process holding the data folder), and batches
// serialize on the checkpoint's row lock, but a rebuild applies beside the
// live applier, and two processes may briefly both apply after a lost
// lease. If two appliers ever publish at once, the one whose publish lands
// second is refused, re-reads the stream's last message and skips what is
// already there: no event is published twice or out of order. Each event
// is then routed by whichever applier reaches it first; they differ only
// when their versions of this package route differently (a rebuild to a
// new version racing the old live applier).
//
// # When NATS is unavailable
//
// A publish that fails is retried, re-reading the stream's end each time,
// for up to Options.RetryFor. Then Apply fails with an error wrapping
// ErrUnavailable, and the engine parks the event in its dead-letter
// table and goes on; the agency does not receive that event even when it
// is retried later, because by then the feed has moved past it. A retry
// of a parked event publishes only if nothing later was published.
package agencyfeed

import (
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/projections"
)

// Name is the projection's name in table names, checkpoints and commands.
const Name = "agencyfeed"

// version is bumped whenever the tables or the meaning of Apply change;
// the engine then rebuilds the tables, which publishes nothing already
// published (see the package doc).
const version = 1

// Defaults for Options.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultRetryFor       = 30 * time.Second
)

// ErrUnavailable is wrapped by Apply's error when the agency stream could
// not be published to within Options.RetryFor.
var ErrUnavailable = errors.New("agencyfeed: the agency stream is unavailable")

// Options configure the router.
type Options struct {
	// JetStream reaches the agency stream, which must exist
	// (bus.EnsureAgencyStream). Required.
	JetStream jetstream.JetStream
	// Logger receives publish failures; nil means slog.Default().
	Logger *slog.Logger
	// RequestTimeout bounds each JetStream request; 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// RetryFor bounds how long one Apply keeps retrying a failed publish;
	// 0 means DefaultRetryFor.
	RetryFor time.Duration
}

// Router is the agency router projection. Its routing state lives in its
// tables; what it keeps in memory is only a cache of where the agency
// stream ends, read back from the stream whenever in doubt. Use New.
type Router struct {
	pub *publisher
}

var _ projections.Projection = (*Router)(nil)

// New returns the agency router publishing through opts.JetStream.
func New(opts Options) (*Router, error) {
	if opts.JetStream == nil {
		return nil, errors.New("agencyfeed: New: JetStream is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = DefaultRetryFor
	}
	return &Router{pub: newPublisher(opts)}, nil
}

// Name returns "agencyfeed".
func (*Router) Name() string { return Name }

// Version returns the version of the tables and their meaning.
func (*Router) Version() int { return version }

// Tables returns the router's tables.
func (*Router) Tables() []projections.Table {
	return []projections.Table{
		{
			// One row per case: its tenant and the agency assigned now
			// ('' when none).
			Name: "cases",
			Create: `CREATE TABLE {cases} (
				case_id TEXT NOT NULL PRIMARY KEY,
				tenant_id TEXT NOT NULL,
				agency_id TEXT NOT NULL
			)`,
		},
		{
			// The client's consent per case and agency: scopes is a bit
			// set, bit n for koers.case.v1.ReportingScope n. No row: no
			// consent.
			Name: "consents",
			Create: `CREATE TABLE {consents} (
				case_id TEXT NOT NULL,
				agency_id TEXT NOT NULL,
				scopes BIGINT NOT NULL,
				PRIMARY KEY (case_id, agency_id)
			)`,
		},
		{
			// Every agency that ever had the case, from the position of
			// its first assignment: they all receive the erasure.
			Name: "agencies",
			Create: `CREATE TABLE {agencies} (
				case_id TEXT NOT NULL,
				agency_id TEXT NOT NULL,
				first_assigned BIGINT NOT NULL,
				PRIMARY KEY (case_id, agency_id)
			)`,
		},
	}
}
