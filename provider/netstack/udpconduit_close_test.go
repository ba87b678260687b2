package netstack_test

import (
	"testing"
	"time"
)

// TestUDPCloseSendsWhatWasWritten: on Linux a datagram is sent when
// write(2) returns, so a program that writes to a connected UDP socket and
// closes it at once (a statsd or syslog client) loses nothing: Close
// waits until the up pump sent what the target wrote (flushDgrams).
func TestUDPCloseSendsWhatWasWritten(t *testing.T) {
	s, fd, peer := connectedUDP(t)
	const count = 50
	for i := 0; i < count; i++ {
		writeAll(t, fd, []byte("metric"))
	}
	s.Close()
	got := 0
	buf := make([]byte, 16)
	for got < count {
		_ = peer.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, _, err := peer.ReadFrom(buf); err != nil {
			break
		}
		got++
	}
	if got != count {
		t.Errorf("peer got %d of %d datagrams written before close", got, count)
	}
}
