//go:build !race

package relay_test

// kurrentdbRelayEvents is how many events the KurrentDB relay test
// appends and relays.
const kurrentdbRelayEvents = 100_000
