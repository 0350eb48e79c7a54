// Package kurrentdb is the eventstore.Store adapter for KurrentDB (formerly
// EventStoreDB), through the official gRPC client
// github.com/EventStore/EventStore-Client-Go/v4. It passes the contract
// suite in eventstore/storetest, against the protocol-level test double in
// kurrentdbtest and, when KOERS_KURRENTDB_URL names one, a real KurrentDB.
//
// Open takes an esdb:// connection string; it carries the TLS settings
// (see Open). Each port stream is the KurrentDB stream of the same name,
// after an optional Options.Namespace.
//
// # Positions
//
// KurrentDB places every event in its transaction log by a pair of byte
// offsets, the commit and the prepare position, ordered by commit position
// first. Every write through gRPC, of one event or several, is committed by
// its own records (prepares flagged as committed, with no separate commit
// record), and the server reports each such event at (p, p), where p is the
// offset of the event's own record; its stream reads report the same pair
// as its $all reads (KurrentDB's ResolvedEvent.CalculatePosition and
// AllReader). The port's Position of an event is therefore p: unique,
// strictly increasing along $all, and sparse, since p grows by the size of
// each record and the log holds other records besides. An event whose two
// positions differ (written by an explicit transaction of the retired TCP
// protocol, which this adapter never writes) cannot be placed and is
// reported as an error. AppendResult.Position is the last event's p, which
// is what the server answers an append with.
//
// SubscribeAll(after) subscribes from (after, after), which the server
// treats as exclusive; 0 subscribes from the start. Consumers must not
// check continuity by arithmetic on positions: the relay sends each event
// with the position of the event it relayed before it
// (Koers-Previous-Position), and a consumer checks that each message's
// previous position is the position of the last message it saw. That chain
// is as strict with sparse positions as with dense ones.
//
// # Idempotency and event IDs
//
// The caller's EventData.ID is the KurrentDB event ID. KurrentDB recognises
// a repeated write only within one stream, and reliably only when the
// repeat expects the same revision as the original; the port asks more: a
// retry returns the original result whatever the stream's revision is now,
// and an ID used by another append, in any stream, fails with
// ErrDuplicateEventID. So the adapter keeps an index of event IDs in
// KurrentDB itself: one stream per event ID, named Namespace + "koers-eventid
// " + ID (the space keeps it apart from every stream name the port allows),
// whose last event is a claim naming the append that holds the ID: its
// stream, the revision it expected, a digest of its stream and all its IDs,
// and the ID's place in it. An append:
//
//  1. reads the last revision of its stream and checks the expected
//     revision against it. When it does not match, the append is either a
//     retry of an append that was written, which the claim on its first ID
//     shows, or it fails with a *WrongRevisionError carrying that revision
//     (the client does not expose the current revision the server sends,
//     except in an error message, so the adapter reads it);
//  2. claims each ID by appending a claim to its index stream, expecting the
//     index stream where it found it. A claim already there stands when its
//     append was written (the ID is then a duplicate, or this append a retry
//     and its original result is returned) or may still be written (its
//     stream is still at the revision it expected); it is void, and taken
//     over, when its stream moved past that revision without it, since then
//     KurrentDB will refuse that append for good;
//  3. writes the events, expecting the stream at the revision read in step
//     1 (Any is turned into that revision, so that every claim names a
//     revision its append can be judged by). When the stream moved in
//     between, the claims are void and the append starts over from step 1.
//
// An append that fails in step 2 releases the claims it wrote. A process
// that dies between steps 2 and 3 leaves its claims pending: a retry of the
// same append (same stream, same IDs) proceeds, but a different append
// using one of those IDs fails with ErrDuplicateEventID until the claimed
// stream moves past the revision the claim names. Claims cost one small
// event per event ID in the log (not relayed: they are outside the case
// prefix, and SubscribeAll skips them when every stream is subscribed).
//
// # Subscriptions
//
// SubscribeAll uses a catch-up subscription to $all with a server-side
// filter: the stream prefixes of Options.StreamPrefixes (by default
// "case-", so events of other streams are not relayed), after the
// namespace. The client never subscribes again after the server dropped a
// subscription; the adapter does, from the position of the last event it
// received or the last checkpoint the server sent, whichever is later: the
// server delivers events strictly after that position, so nothing is lost
// and nothing delivered twice. A checkpoint means the server's filter has
// considered every event up to it, so resuming from it skips only events
// the filter would drop. After Options.ResubscribeAttempts drops in a row
// with nothing received in between, the sequence yields the error.
//
// # The client
//
// The client closes itself for good when a discovery of the server fails,
// and then leaves callers blocked on it; it also looks for the server
// without regard to contexts. So the adapter sets maxDiscoverAttempts to
// unlimited (the client retries every discoveryInterval until the server
// answers), runs every call of the client in a goroutine of its own so that
// the caller's context and Close still end the call, and closes the client
// only once no call is inside it (closing it earlier makes it panic).
//
// # Testing
//
// The contract suite (eventstore/storetest) runs through the real client
// against kurrentdbtest, an in-process protocol-level test double, and
// against a real KurrentDB when KOERS_KURRENTDB_URL is set. It reaches
// every path of the adapter (84% of statements; 94% with this package's own
// tests) except error plumbing: I/O and transport errors from the client,
// index entries that do not decode, guards against a server that breaks the
// protocol, and races between a call and its context's end.
package kurrentdb
