//go:build race

package relay_test

// crashTestEvents is how many events the crash test appends. The race
// detector slows the child's store and relay several times over, so the
// test appends fewer under it to stay within the suite's time.
const crashTestEvents = 20_000
