package kurrentdbtest

import (
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// firstPosition is where the first event's record starts. A real node's
// log begins with epoch and system records, so no event sits at 0 either.
const firstPosition = 1024

// recordOverhead stands in for the framing of a prepare record around an
// event's stream name, type, data and metadata.
const recordOverhead = 91

// record is one event in the log. It is never changed once appended.
type record struct {
	id          uuid.UUID
	stream      string
	revision    uint64
	eventType   string
	contentType string
	data        []byte
	metadata    []byte
	created     int64 // .NET ticks (100 ns) since the Unix epoch, as the server sends them
	position    uint64
}

// proposed is an event an append asks to write.
type proposed struct {
	id          uuid.UUID
	eventType   string
	contentType string
	data        []byte
	metadata    []byte
}

// expectKind is an append's expected stream revision option.
type expectKind int

const (
	expectAny expectKind = iota
	expectNoStream
	expectExists
	expectRevision
)

type expectation struct {
	kind     expectKind
	revision uint64
}

// outcome is the answer to an append. current is a revision, -1 for no
// stream: of the write's last event on success, the stream's last that
// failed the expectation otherwise.
type outcome struct {
	ok       bool
	current  int64
	position uint64 // of the last event written, or recognised as written
	written  bool   // position is valid
}

type streamState struct {
	records []*record
	byID    map[uuid.UUID]uint64 // revision of each event ID in the stream
}

// eventLog is the double's transaction log: every event in one global
// order, indexed by stream.
type eventLog struct {
	mu      sync.RWMutex
	records []*record // in log order
	streams map[string]*streamState
	next    uint64        // position of the next record
	changed chan struct{} // closed and replaced on every write
}

func newEventLog() *eventLog {
	return &eventLog{streams: map[string]*streamState{}, next: firstPosition, changed: make(chan struct{})}
}

// append checks the expectation as KurrentDB's index writer does
// (IndexWriter.CheckCommit) and writes the events when it holds.
func (l *eventLog) append(stream string, exp expectation, events []proposed) outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.streams[stream]
	cur := int64(-1)
	if st != nil {
		cur = int64(len(st.records)) - 1
	}
	fail := outcome{current: cur}

	switch exp.kind {
	case expectAny, expectExists:
		if exp.kind == expectExists && cur < 0 {
			return fail
		}
		// Weak idempotency: the expectation names no revisions, so look
		// for the IDs anywhere in the stream.
		if len(events) > 0 && st != nil {
			if _, found := st.byID[events[0].id]; found {
				var last uint64
				for _, e := range events {
					rev, ok := st.byID[e.id]
					if !ok {
						return fail // part written, part not: corrupted idempotency
					}
					last = rev
				}
				return l.already(st, last)
			}
		}
	case expectNoStream, expectRevision:
		e := int64(-1)
		if exp.kind == expectRevision {
			e = int64(exp.revision)
		}
		switch {
		case e < cur:
			// Strong idempotency: the events must be at the revisions
			// after e.
			if len(events) == 0 {
				return fail
			}
			for i, ev := range events {
				rev := e + 1 + int64(i)
				if rev > cur || st.records[rev].id != ev.id {
					return fail
				}
			}
			return l.already(st, uint64(e)+uint64(len(events)))
		case e > cur:
			return fail
		}
	}
	return l.write(stream, st, cur, events)
}

// already answers a write whose events are in the stream already, the
// last at revision last, as the original write was answered: with that
// revision and position, whatever the stream holds after them
// (StorageMessage.AlreadyCommitted).
func (l *eventLog) already(st *streamState, last uint64) outcome {
	return outcome{ok: true, current: int64(last), position: st.records[last].position, written: true}
}

func (l *eventLog) write(stream string, st *streamState, cur int64, events []proposed) outcome {
	if len(events) == 0 {
		return outcome{ok: true, current: cur}
	}
	if st == nil {
		st = &streamState{byID: map[uuid.UUID]uint64{}}
		l.streams[stream] = st
	}
	created := time.Now().UnixNano() / 100
	var last *record
	for _, e := range events {
		last = &record{
			id:          e.id,
			stream:      stream,
			revision:    uint64(len(st.records)),
			eventType:   e.eventType,
			contentType: e.contentType,
			data:        e.data,
			metadata:    e.metadata,
			created:     created,
			position:    l.next,
		}
		l.next += uint64(recordOverhead + len(stream) + len(e.eventType) + len(e.data) + len(e.metadata))
		st.records = append(st.records, last)
		st.byID[e.id] = last.revision
		l.records = append(l.records, last)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return outcome{ok: true, current: int64(last.revision), position: last.position, written: true}
}

// stream returns the records of a stream; nil when it has none. The slice
// must not be changed.
func (l *eventLog) stream(name string) []*record {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if st := l.streams[name]; st != nil {
		return st.records[:len(st.records):len(st.records)]
	}
	return nil
}

// all returns the log as it is now, and a channel closed at the next
// write. The slice must not be changed.
func (l *eventLog) all() ([]*record, <-chan struct{}) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.records[:len(l.records):len(l.records)], l.changed
}

// after returns the index in recs of the first record after the position
// (commit, prepare), in the order of KurrentDB's TFPos: by commit position,
// then prepare position. A record's commit and prepare positions are both
// its position.
func after(recs []*record, commit, prepare uint64) int {
	return sort.Search(len(recs), func(i int) bool {
		p := recs[i].position
		return p > commit || (p == commit && p > prepare)
	})
}

// atOrAfter returns the index in recs of the first record at or after the
// position (commit, prepare).
func atOrAfter(recs []*record, commit, prepare uint64) int {
	return sort.Search(len(recs), func(i int) bool {
		p := recs[i].position
		return p > commit || (p == commit && p >= prepare)
	})
}
