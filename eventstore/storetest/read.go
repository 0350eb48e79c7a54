package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/eventstore"
)

func (s suite) testRead(t *testing.T) {
	const stream = "case-read" // revisions 0 to 9, interleaved with another stream
	st, _ := s.open(t)
	var written []eventstore.EventData
	for i, n := range []int{4, 3, 3} {
		evs := someEvents(n, "read")
		mustAppend(t, st, stream, eventstore.Any, evs...)
		written = append(written, evs...)
		mustAppend(t, st, "case-noise", eventstore.Any, someEvents(i+1, "noise")...)
	}
	all := want(stream, 0, written...)

	tests := []struct {
		name string
		opts eventstore.ReadOptions
		want []uint64 // revisions
	}{
		{name: "forwards from the start reads all", opts: eventstore.ReadOptions{}, want: revs(0, 9)},
		{name: "forwards from a middle revision reads the rest", opts: eventstore.ReadOptions{From: 4}, want: revs(4, 9)},
		{name: "forwards from the last revision reads one", opts: eventstore.ReadOptions{From: 9}, want: revs(9, 9)},
		{name: "forwards past the end reads nothing", opts: eventstore.ReadOptions{From: 10}, want: nil},
		{name: "forwards with a limit stops there", opts: eventstore.ReadOptions{From: 4, Limit: 3}, want: revs(4, 6)},
		{name: "forwards with a limit beyond the end reads the rest", opts: eventstore.ReadOptions{From: 8, Limit: 5}, want: revs(8, 9)},
		{name: "backwards from the end reads all newest first", opts: eventstore.ReadOptions{Backwards: true, From: eventstore.StreamEnd}, want: revs(9, 0)},
		{name: "backwards from the end with a limit reads the newest", opts: eventstore.ReadOptions{Backwards: true, From: eventstore.StreamEnd, Limit: 3}, want: revs(9, 7)},
		{name: "backwards from a middle revision reads down to 0", opts: eventstore.ReadOptions{Backwards: true, From: 5}, want: revs(5, 0)},
		{name: "backwards from a middle revision with a limit stops there", opts: eventstore.ReadOptions{Backwards: true, From: 5, Limit: 2}, want: revs(5, 4)},
		{name: "backwards from revision 0 reads one", opts: eventstore.ReadOptions{Backwards: true, From: 0}, want: revs(0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustRead(t, st, stream, tt.opts)
			wantEvs := make([]stored, 0, len(tt.want))
			for _, r := range tt.want {
				wantEvs = append(wantEvs, all[r])
			}
			if diff := diffStored(wantEvs, got); diff != "" {
				t.Errorf("ReadStream(%+v) (-want +got):\n%s", tt.opts, diff)
			}
			if tt.opts.Backwards {
				got = reversed(got)
			}
			checkOrdered(t, got)
		})
	}

	missing := []struct {
		name string
		opts eventstore.ReadOptions
	}{
		{name: "forwards", opts: eventstore.ReadOptions{}},
		{name: "forwards from a revision", opts: eventstore.ReadOptions{From: 3, Limit: 1}},
		{name: "backwards from the end", opts: eventstore.ReadOptions{Backwards: true, From: eventstore.StreamEnd}},
	}
	for _, tt := range missing {
		t.Run("a missing stream is not found reading "+tt.name, func(t *testing.T) {
			got, err := st.ReadStream(t.Context(), "case-never-written", tt.opts)
			if !errors.Is(err, eventstore.ErrStreamNotFound) {
				t.Errorf("ReadStream of a missing stream: %d events, error %v; want an error wrapping eventstore.ErrStreamNotFound", len(got), err)
			}
		})
	}

	t.Run("a stream whose name extends another's holds only its own events", func(t *testing.T) {
		for _, name := range []string{stream + "-2", strings.TrimSuffix(stream, "d")} {
			if got, err := st.ReadStream(t.Context(), name, eventstore.ReadOptions{}); !errors.Is(err, eventstore.ErrStreamNotFound) {
				t.Errorf("ReadStream(%q): %d events, error %v; want eventstore.ErrStreamNotFound", name, len(got), err)
			}
		}
		got := mustRead(t, st, "case-noise", eventstore.ReadOptions{})
		if diff := cmp.Diff(revs(0, 5), revisions(got)); diff != "" {
			t.Errorf("the other stream's revisions (-want +got):\n%s", diff)
		}
	})
}

// revs returns the revisions from a to b, both included, counting down when
// b < a.
func revs(a, b uint64) []uint64 {
	var out []uint64
	for r := a; ; {
		out = append(out, r)
		switch {
		case r == b:
			return out
		case a < b:
			r++
		default:
			r--
		}
	}
}

func revisions(recs []eventstore.RecordedEvent) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Revision
	}
	return out
}

func reversed(recs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
	out := make([]eventstore.RecordedEvent, len(recs))
	for i, r := range recs {
		out[len(recs)-1-i] = r
	}
	return out
}
