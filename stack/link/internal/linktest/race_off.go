//go:build !race

package linktest

// RaceEnabled is true when the race detector is on: sync.Pool then drops
// items at random, so allocation counts mean nothing.
const RaceEnabled = false
