package socket_test

import (
	"context"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// Semantics scenario u-shutdown: after shutdown(SHUT_RD) of a connected
// UDP socket with nothing queued, recv(MSG_DONTWAIT) is EAGAIN (no wait
// happens, __skb_recv_udp returns -EAGAIN) while a blocking recv returns
// 0 at once (__skb_wait_for_more_packets stops at RCV_SHUTDOWN): the
// kernel prints recv_dontwait=EAGAIN recv=0. An empty datagram queued
// before still reads as a 0-byte datagram with its sender.
func TestUDPRecvAfterShutRead(t *testing.T) {
	n := newNode(t, nil)
	a := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	b := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	ctx := context.Background()
	if err := b.BindAddr(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := a.ConnectAddr(ctx, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.SendMsg(ctx, nil, 0, a.LocalAddr()); err != nil {
		t.Fatalf("send empty datagram: %v", err)
	}
	// Wait for it (loopback delivery is asynchronous).
	if _, err := a.RecvMsg(ctx, make([]byte, 4), unix.MSG_PEEK); err != nil {
		t.Fatalf("peek: %v", err)
	}
	if err := a.Shutdown(unix.SHUT_RD); err != nil {
		t.Fatal(err)
	}
	r, err := a.RecvMsg(ctx, make([]byte, 4), unix.MSG_DONTWAIT)
	if err != nil || r.N != 0 || r.From != b.LocalAddr() {
		t.Fatalf("recv of the empty datagram = %+v, %v; want 0 bytes from %v", r, err, b.LocalAddr())
	}
	if _, err := a.RecvMsg(ctx, make([]byte, 4), unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("recv(MSG_DONTWAIT) after SHUT_RD = %v, want EAGAIN", err)
	}
	if n, err := a.Recv(ctx, make([]byte, 4), 0); err != nil || n != 0 {
		t.Errorf("blocking recv after SHUT_RD = %d, %v; want 0", n, err)
	}
}
