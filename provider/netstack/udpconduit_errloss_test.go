package netstack_test

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/waiter"
)

// TestUDPErrorNotLostToUpPump: on Linux, a connected UDP socket that
// sent to a closed port reports the ECONNREFUSED exactly once, by the next
// send (which then sends nothing) or recv, or by SO_ERROR. Here the target
// writes a second datagram the moment the ICMP error reaches the stack
// socket, so the up pump's stack Write may take the pending error before
// the down pump moves it: the error must still reach the target end
// (upSendError), never be dropped.
func TestUDPErrorNotLostToUpPump(t *testing.T) {
	p, n := newProvider(t)
	dead := closedUDPPort(t, n, "udp4", "127.0.0.1:0")
	lost := 0
	const trials = 40
	for i := 0; i < trials; i++ {
		s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
		requireUDPConduit(t, fd)
		connect(t, s, dead)
		var once atomic.Bool
		entry := &waiter.Entry{Mask: waiter.EventErr, Callback: func(waiter.EventMask) {
			if once.CompareAndSwap(false, true) {
				_, _ = unix.Write(fd, []byte("b"))
			}
		}}
		s.EventQueue().Register(entry)
		writeAll(t, fd, []byte("a"))
		// Errors observed by the target: POLLERR within a bound, then a
		// native recv, then SO_ERROR.
		seen := false
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLERR}}
		deadline := time.Now().Add(300 * time.Millisecond)
		for time.Now().Before(deadline) && !seen {
			if k, _ := unix.Poll(pfd, 20); k > 0 && pfd[0].Revents&unix.POLLERR != 0 {
				seen = true
			}
		}
		s.EventQueue().Unregister(entry)
		if !seen && soError(t, s) == 0 {
			lost++
		}
		s.Close()
	}
	if lost > 0 {
		t.Errorf("%d of %d trials: the ICMP error of a connected UDP socket was never reported (taken by the up pump's stack Write)", lost, trials)
	}
}
