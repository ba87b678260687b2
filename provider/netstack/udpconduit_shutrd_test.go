package netstack_test

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUDPReceivesAfterShutRD: Linux's UDP keeps queueing datagrams after
// shutdown(SHUT_RD) (neither udp_queue_rcv_skb nor __skb_recv_udp looks at
// RCV_SHUTDOWN while the queue has data), so a recv returns a datagram
// that arrived after the shutdown: the down pump goes on after the
// stack's empty read.
func TestUDPReceivesAfterShutRD(t *testing.T) {
	s, fd, peer := connectedUDP(t)
	if err := s.Shutdown(unix.SHUT_RD); err != nil {
		t.Fatalf("shutdown(SHUT_RD) = %v", err)
	}
	time.Sleep(50 * time.Millisecond) // let the down pump see the shutdown
	sa, _ := s.GetSockName()
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(sa[2])<<8 | int(sa[3])}
	if _, err := peer.WriteTo([]byte("after"), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	deadline := time.Now().Add(time.Second)
	for {
		k, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err == nil && string(buf[:k]) == "after" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("native recv after SHUT_RD = %q, %v; Linux returns the datagram that arrived after the shutdown", buf[:max(k, 0)], err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
