package linktest

import (
	"runtime/debug"
	"testing"
)

// AllocsPerRun is testing.AllocsPerRun with the garbage collector off:
// these tests count the allocations of the whole process while link
// goroutines run, and a collection in between empties the packet pools
// (sync.Pool), whose refill would count as the steady state's.
func AllocsPerRun(runs int, f func()) float64 {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	return testing.AllocsPerRun(runs, f)
}
