package sqlite

// revisionCache remembers the last revision of the streams written most
// recently, up to a fixed number of streams; the least recently used one is
// forgotten first. A stream it does not know costs the writer one index
// lookup. Only committed revisions go in, so a rolled-back transaction
// leaves it right.
//
// It belongs to the writer goroutine and is not safe for concurrent use.
type revisionCache struct {
	capacity int
	entries  map[string]*cacheEntry
	// root is the sentinel of a circular list, most recently used first.
	root cacheEntry
}

type cacheEntry struct {
	stream     string
	revision   uint64
	prev, next *cacheEntry
}

func newRevisionCache(capacity int) *revisionCache {
	c := &revisionCache{capacity: capacity, entries: make(map[string]*cacheEntry, min(capacity, 1024))}
	c.root.prev, c.root.next = &c.root, &c.root
	return c
}

// get returns the last revision of stream, and whether the cache knows it.
func (c *revisionCache) get(stream string) (uint64, bool) {
	e, ok := c.entries[stream]
	if !ok {
		return 0, false
	}
	c.moveToFront(e)
	return e.revision, true
}

// put records revision as the last of stream, forgetting the least recently
// used stream when the cache is full.
func (c *revisionCache) put(stream string, revision uint64) {
	if e, ok := c.entries[stream]; ok {
		e.revision = revision
		c.moveToFront(e)
		return
	}
	var e *cacheEntry
	if len(c.entries) >= c.capacity {
		// Reuse the evicted entry: the cache stays at capacity under load,
		// and this keeps the writer from allocating per new stream.
		e = c.root.prev
		c.unlink(e)
		delete(c.entries, e.stream)
	} else {
		e = new(cacheEntry)
	}
	e.stream, e.revision = stream, revision
	c.entries[stream] = e
	c.linkFront(e)
}

// reset forgets every stream.
func (c *revisionCache) reset() {
	clear(c.entries)
	c.root.prev, c.root.next = &c.root, &c.root
}

func (c *revisionCache) len() int { return len(c.entries) }

func (c *revisionCache) moveToFront(e *cacheEntry) {
	if c.root.next == e {
		return
	}
	c.unlink(e)
	c.linkFront(e)
}

func (c *revisionCache) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *revisionCache) linkFront(e *cacheEntry) {
	e.prev, e.next = &c.root, c.root.next
	c.root.next.prev = e
	c.root.next = e
}
