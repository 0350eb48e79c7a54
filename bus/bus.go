// Package bus is Koers's side of NATS JetStream: the embedded server, the
// event stream, the subjects events travel on, and the one place that turns
// a stored event into a NATS message and back.
//
// The bus is a derived copy of the event store. The relay
// (eventstore/relay) publishes every stored event, in store order, on the
// stream KOERS_EVENTS; projections and agency feeds consume it. Because
// the store stays the source of truth, the bus may lose a suffix in a crash
// without losing anything acknowledged to a caller: the relay republishes
// it.
//
// # Subjects
//
// An event of stream "case-<uuid>" owned by tenant "acme" is published on
//
//	koers.events.acme.case.<uuid>
//
// that is koers.events.<tenant>.<category>.<id>, where the stream name splits
// at its first '-' into category and id. A stream name without '-' has the
// whole name as category and id "_". An event whose metadata names no tenant
// (or does not decode) has tenant "_". Consumers filter by tenant with
// TenantFilter, by category with CategoryFilter and by stream with
// StreamFilter.
//
// Each token is escaped so that any tenant and stream name gives a valid
// subject and can be read back (ParseSubject): every byte outside printable
// ASCII (0x21–0x7e), and each of '.', '*', '>' and '%', becomes '%' followed
// by two upper-case hex digits; a token that is empty becomes "%", and a
// value that is exactly "_" becomes "%5F" so that it differs from the
// placeholder. Valid tenant IDs (lower-case letters, digits, hyphens) and
// stream names such as "case-<uuid>" need no escaping.
//
// # Messages
//
// The body of each message is a serialized koers.event.v1.Event. The headers
// repeat what consumers route and checkpoint by, so they need not decode the
// body: Nats-Msg-Id is the event ID (JetStream drops a republished copy within
// the duplicate window), and the Koers-* headers carry position, previous
// position, type, stream, revision and tenant token. Consumers checkpoint by
// Koers-Position, never by the JetStream sequence, and notice a gap when a
// message's Koers-Previous-Position differs from their checkpoint.
package bus
