//go:build !race

package relay_test

// crashTestEvents is how many events the crash test appends.
const crashTestEvents = 100_000
