package sqlite

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRevisionCache(t *testing.T) {
	// An op is a put (put true) or a get; for a get, want is the revision
	// and ok whether the cache should know the stream.
	type op struct {
		put    bool
		stream string
		rev    uint64
		ok     bool
	}
	put := func(stream string, rev uint64) op { return op{put: true, stream: stream, rev: rev} }
	hit := func(stream string, rev uint64) op { return op{stream: stream, rev: rev, ok: true} }
	miss := func(stream string) op { return op{stream: stream} }

	tests := []struct {
		name     string
		capacity int
		ops      []op
		wantLen  int
	}{
		{
			name: "remembers what was put", capacity: 3,
			ops:     []op{put("a", 1), put("b", 2), hit("a", 1), hit("b", 2), miss("c")},
			wantLen: 2,
		},
		{
			name: "a put to a known stream replaces its revision without growing", capacity: 2,
			ops:     []op{put("a", 1), put("a", 5), put("b", 0), hit("a", 5), hit("b", 0)},
			wantLen: 2,
		},
		{
			name: "forgets the least recently put stream when full", capacity: 2,
			ops:     []op{put("a", 1), put("b", 2), put("c", 3), miss("a"), hit("b", 2), hit("c", 3)},
			wantLen: 2,
		},
		{
			name: "a get makes a stream recently used", capacity: 2,
			ops:     []op{put("a", 1), put("b", 2), hit("a", 1), put("c", 3), miss("b"), hit("a", 1), hit("c", 3)},
			wantLen: 2,
		},
		{
			name: "a put makes a known stream recently used", capacity: 2,
			ops:     []op{put("a", 1), put("b", 2), put("a", 4), put("c", 3), miss("b"), hit("a", 4)},
			wantLen: 2,
		},
		{
			name: "a cache of one keeps the last stream only", capacity: 1,
			ops:     []op{put("a", 1), put("b", 2), miss("a"), hit("b", 2), put("a", 3), miss("b"), hit("a", 3)},
			wantLen: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRevisionCache(tt.capacity)
			for i, o := range tt.ops {
				if o.put {
					c.put(o.stream, o.rev)
					continue
				}
				rev, ok := c.get(o.stream)
				if ok != o.ok || (ok && rev != o.rev) {
					t.Errorf("op %d: get(%q) = %d, %t; want %d, %t", i, o.stream, rev, ok, o.rev, o.ok)
				}
			}
			if c.len() != tt.wantLen {
				t.Errorf("cache holds %d streams, want %d", c.len(), tt.wantLen)
			}
		})
	}
}

func TestRevisionCacheStaysBounded(t *testing.T) {
	const capacity = 100
	c := newRevisionCache(capacity)
	for i := range 10 * capacity {
		c.put(fmt.Sprintf("case-%d", i), uint64(i))
		if c.len() > capacity {
			t.Fatalf("after %d streams the cache holds %d, over its capacity of %d", i+1, c.len(), capacity)
		}
	}
	// Exactly the last capacity streams are known, each with its revision.
	var known []int
	for i := range 10 * capacity {
		if rev, ok := c.get(fmt.Sprintf("case-%d", i)); ok {
			if rev != uint64(i) {
				t.Errorf("case-%d: revision %d, want %d", i, rev, i)
			}
			known = append(known, i)
		}
	}
	want := make([]int, 0, capacity)
	for i := 9 * capacity; i < 10*capacity; i++ {
		want = append(want, i)
	}
	if diff := cmp.Diff(want, known); diff != "" {
		t.Errorf("streams the cache knows (-want +got):\n%s", diff)
	}

	c.reset()
	if _, ok := c.get(fmt.Sprintf("case-%d", 10*capacity-1)); ok || c.len() != 0 {
		t.Errorf("after reset the cache holds %d streams, want 0", c.len())
	}
}
