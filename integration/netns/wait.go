package netns

import (
	"testing"
	"time"
)

// pollInterval is how often WaitFor checks its condition.
const pollInterval = 10 * time.Millisecond

// WaitFor polls cond until it returns true and fails the test if that does
// not happen within timeout. It uses real time: it is meant only for real
// external processes, e.g. waiting until a kernel server listens. Code under
// test with timers uses clock.Fake instead.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("netns: condition not met within %v", timeout)
		}
		time.Sleep(pollInterval)
	}
}
