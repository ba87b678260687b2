package netns

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

// pollInterval is how often the Wait functions check their condition.
const pollInterval = 10 * time.Millisecond

// WaitFor polls cond until it returns true and fails the test if that does
// not happen within timeout. It uses real time: it is meant only for real
// external processes, e.g. waiting until a kernel server listens. Code under
// test with timers uses clock.Fake instead.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("netns: condition not met within %v", timeout)
	}
}

// poll calls cond every pollInterval until it returns true (poll then
// returns true) or timeout has passed (false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// waitTimeout bounds WaitOperUp and WaitListening.
const waitTimeout = 5 * time.Second

// WaitOperUp waits (at most 5 s) until dev has carrier and a real qdisc.
// Right after "ip link set up" the kernel may still have the no-op qdisc
// attached, which drops every frame, until its link watcher runs (up to a
// second later).
func (ns *NS) WaitOperUp(t testing.TB, dev string) {
	t.Helper()
	var out []byte
	if !poll(waitTimeout, func() bool {
		out, _ = ipCommand("-n", ns.name, "-o", "link", "show", dev)
		return bytes.Contains(out, []byte("LOWER_UP")) && !bytes.Contains(out, []byte("qdisc noop"))
	}) {
		t.Fatalf("netns %s: %s not operationally up:\n%s", ns.name, dev, out)
	}
}

// WaitListening waits (at most 5 s) until a TCP socket listens on port in
// the namespace.
func (ns *NS) WaitListening(t testing.TB, port int) {
	t.Helper()
	var out []byte
	if !poll(waitTimeout, func() bool {
		out, _ = ns.Exec("ss", "-Hltn", "sport", "= :"+strconv.Itoa(port))
		return len(bytes.TrimSpace(out)) > 0
	}) {
		t.Fatalf("netns %s: nothing listens on TCP port %d:\n%s", ns.name, port, out)
	}
}
