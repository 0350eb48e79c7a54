package bus

// The agency feed: a second JetStream stream, KOERS_AGENCY_FEED, that the
// agency router (projections/agencyfeed) fills with the events of each case
// while it is assigned to a re-integration agency and the client's consent
// for that agency holds, redacted to what the consent covers. FeedService
// and agencies' own NATS consumers read it; an agency's NATS user may read
// only its own subjects.
//
// An event of case <uuid> of tenant "acme" routed to agency "reintegra" is
// published on
//
//	koers.agency.acme.reintegra.<uuid>
//
// that is koers.agency.<tenant>.<agency>.<case-id>, each token escaped as
// for event subjects. The body is a serialized koers.event.v1.Event whose
// data has every sealed (personal) part removed; the headers are those of
// the event stream (Nats-Msg-Id, Koers-Position, Koers-Type, ...). The
// resume token of a feed is the message's sequence in KOERS_AGENCY_FEED:
// increasing, sparse per agency.
//
// Two headers read differently on this stream. Koers-Previous-Position
// (and the body's previous_position) is the position of the event the
// same agency received before this one (0 for its first), so an agency
// can check that its own feed has no hole. Nats-Msg-Id is the event ID on
// the first copy of an event only: the one event that goes to several
// agencies (ClientDataErased, to every agency that ever had the case)
// carries it on the copy to the first of them in subject order, because
// JetStream would drop the other copies as duplicates of that ID. The
// router does not rely on it: its publishes are conditional on the
// stream's last sequence.

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// AgencyStreamName is the JetStream stream of the agency feed.
	AgencyStreamName = "KOERS_AGENCY_FEED"
	// AgencySubjectRoot is the subject prefix of every agency feed message.
	AgencySubjectRoot = "koers.agency"
	// AllAgencyEvents is the filter matching every agency feed message; the
	// agency stream listens on it.
	AllAgencyEvents = AgencySubjectRoot + ".>"

	// DefaultAgencyAckWait is how long an agency's consumer waits for the
	// acknowledgement of a message before it delivers the message again.
	DefaultAgencyAckWait = 30 * time.Second
	// DefaultAgencyMaxAckPending is how many messages an agency's consumer
	// delivers without acknowledgement before it waits.
	DefaultAgencyMaxAckPending = 1000
)

// AgencySubject returns the subject an event of case caseID of tenant is
// published on for agency: koers.agency.<tenant>.<agency>.<case-id>.
func AgencySubject(tenant, agency, caseID string) string {
	return agencyPrefix(tenant, agency) + escapeToken(caseID)
}

// AgencyFilter returns the subject filter matching every feed message of
// one agency of tenant: koers.agency.<tenant>.<agency>.*.
func AgencyFilter(tenant, agency string) string {
	return agencyPrefix(tenant, agency) + "*"
}

func agencyPrefix(tenant, agency string) string {
	return AgencySubjectRoot + "." + TenantToken(tenant) + "." + escapeToken(agency) + "."
}

// AgencyStreamConfig returns the configuration EnsureAgencyStream applies:
// subjects AllAgencyEvents, file storage, limits retention without limits
// (an agency that was away for months still finds its events), the event
// stream's duplicate window, and message deletes denied, as for the event
// stream: the router's checkpoint is the stream's last message. replicas
// below 1 mean 1.
func AgencyStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        AgencyStreamName,
		Description: "Koers agency feed: the events of each agency's assigned, consented cases, redacted",
		Subjects:    []string{AllAgencyEvents},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Replicas:    max(replicas, 1),
		Duplicates:  DefaultDuplicateWindow,
		DenyDelete:  true,
	}
}

// EnsureAgencyStream creates the agency feed stream, or updates it to
// AgencyStreamConfig(replicas) when it exists, and returns it.
func EnsureAgencyStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, AgencyStreamConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("bus: ensuring stream %s: %w", AgencyStreamName, err)
	}
	return s, nil
}

// AgencyConsumerName returns the name of the one durable consumer through
// which agency of tenant reads the feed over NATS: agency_<tenant>_<agency>,
// a single subject token. Tenant and agency IDs hold only lower-case
// letters, digits and hyphens, so the underscores keep every pair apart.
func AgencyConsumerName(tenant, agency string) string {
	return "agency_" + TenantToken(tenant) + "_" + escapeToken(agency)
}

// AgencyInboxPrefix returns the inbox prefix an agency's NATS client must
// use (nats.CustomInboxPrefix), _INBOX_<tenant>_<agency>: its user may
// subscribe only below it, never to _INBOX.>, where it could read other
// clients' replies.
func AgencyInboxPrefix(tenant, agency string) string {
	return "_INBOX_" + TenantToken(tenant) + "_" + escapeToken(agency)
}

// AgencyClientOptions returns the connection options of an agency's NATS
// client: its user and password, and its inbox prefix. The client binds to
// its consumer (jetstream.JetStream.Consumer with AgencyStreamName and
// AgencyConsumerName) and fetches or consumes from it. Its pull requests
// must expire within two minutes (nats.go's default is 30 seconds): that
// long NATS carries the answers to one request back into the agency's
// account.
func AgencyClientOptions(tenant, agency, username, password string) []nats.Option {
	return []nats.Option{
		nats.UserInfo(username, password),
		nats.CustomInboxPrefix(AgencyInboxPrefix(tenant, agency)),
	}
}

// AgencyConsumerConfig returns the configuration of agency's durable pull
// consumer: filtered on AgencyFilter, every message from the first,
// explicit acknowledgement. Koers creates it (EnsureAgencyConsumer); the
// agency only reads through it (see AgencyPermissions).
func AgencyConsumerConfig(tenant, agency string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       AgencyConsumerName(tenant, agency),
		Description:   "agency feed of " + agency + " in tenant " + tenant,
		FilterSubject: AgencyFilter(tenant, agency),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       DefaultAgencyAckWait,
		MaxAckPending: DefaultAgencyMaxAckPending,
		MaxDeliver:    -1,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// EnsureAgencyConsumer creates agency's durable consumer on the agency
// stream, or updates it to AgencyConsumerConfig, and returns it. Koers
// calls it for every configured agency user after EnsureAgencyStream: an
// agency cannot create consumers itself.
func EnsureAgencyConsumer(ctx context.Context, js jetstream.JetStream, tenant, agency string) (jetstream.Consumer, error) {
	cfg := AgencyConsumerConfig(tenant, agency)
	c, err := js.CreateOrUpdateConsumer(ctx, AgencyStreamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: ensuring consumer %s on %s: %w", cfg.Durable, AgencyStreamName, err)
	}
	return c, nil
}
