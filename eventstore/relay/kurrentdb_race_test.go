//go:build race

package relay_test

// kurrentdbRelayEvents is how many events the KurrentDB relay test appends
// and relays. The race detector slows the adapter, the test double and the
// relay several times over, so the test relays fewer under it to stay
// within the suite's time.
const kurrentdbRelayEvents = 20_000
