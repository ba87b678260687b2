package netstack_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket"
)

// TestUDPRecvFromSources: datagrams from two senders keep their
// boundaries in the conduit and RecvFrom pairs each with its source, also
// after the target consumed some with a plain read(2) (which does not
// trap); MSG_PEEK leaves the datagram and its source in place.
func TestUDPRecvFromSources(t *testing.T) {
	p, n := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
	if err := s.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	sa, _ := s.GetSockName()
	me := netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), uint16(sa[2])<<8|uint16(sa[3]))
	senders := make([]net.PacketConn, 2)
	for i := range senders {
		c := listenUDP(t, n, "udp4", "127.0.0.1:0")
		senders[i] = c
	}
	send := func(i int, msg string) {
		t.Helper()
		if _, err := senders[i].WriteTo([]byte(msg), net.UDPAddrFromAddrPort(me)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	recvFrom := func(flags int, want string, from int) {
		t.Helper()
		buf := make([]byte, 64)
		k, sa, _, err := s.RecvFrom(ctx, buf, flags, false)
		if err != nil {
			t.Fatalf("recvfrom: %v", err)
		}
		wantSA := sockaddr(addrPort(t, senders[from].LocalAddr()))
		if string(buf[:k]) != want || !bytes.Equal(sa, wantSA) {
			t.Fatalf("recvfrom = %q from %x; want %q from %x", buf[:k], sa, want, wantSA)
		}
	}
	send(0, "a1")
	send(1, "b1")
	send(0, "a2")
	recvFrom(0, "a1", 0)
	recvFrom(unix.MSG_PEEK, "b1", 1)
	recvFrom(0, "b1", 1)
	// Plain read of a2 (no trap), then more datagrams.
	pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
	buf := make([]byte, 64)
	if k, err := unix.Read(fd, buf); err != nil || string(buf[:k]) != "a2" {
		t.Fatalf("plain read = %q, %v", buf[:k], err)
	}
	send(1, "b2")
	send(0, "")
	recvFrom(0, "b2", 1)
	recvFrom(0, "", 0) // zero-length datagrams survive the conduit
	// Non-blocking on an empty queue.
	if _, _, _, err := s.RecvFrom(ctx, buf, 0, true); err != unix.EAGAIN {
		t.Fatalf("non-blocking recvfrom on empty queue = %v, want EAGAIN", err)
	}
	// A blocking recvfrom on an empty queue waits; interrupted, it returns
	// ERESTARTSYS and takes nothing.
	intr, stop := context.WithCancel(context.Background())
	stop()
	if _, _, _, err := s.RecvFrom(intr, buf, 0, false); err != socket.ERESTARTSYS {
		t.Fatalf("interrupted recvfrom = %v, want ERESTARTSYS", err)
	}
	go func() { _, _ = senders[1].WriteTo([]byte("late"), net.UDPAddrFromAddrPort(me)) }()
	recvFrom(0, "late", 1)
	// Truncation: MSG_TRUNC in msg_flags like Linux.
	send(0, "0123456789")
	small := make([]byte, 4)
	k, _, mflags, err := s.RecvFrom(ctx, small, 0, false)
	if err != nil || k != 4 || mflags&unix.MSG_TRUNC == 0 {
		t.Fatalf("short recvfrom = %d, flags %#x, %v; want 4 with MSG_TRUNC", k, mflags, err)
	}
}

// TestUDPConnectedWrite: on a connected UDP socket each write(2) on the
// conduit is one datagram to the peer, and SendTo with an address goes
// straight to the stack.
func TestUDPConnectedWrite(t *testing.T) {
	p, n := newProvider(t)
	peer := listenUDP(t, n, "udp4", "127.0.0.1:0")
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
	connect(t, s, addrPort(t, peer.LocalAddr()))
	writeAll(t, fd, []byte("one"))
	writeAll(t, fd, []byte("two"))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if k, err := s.SendTo(ctx, []byte("three"), 0, sockaddr(addrPort(t, peer.LocalAddr())), false); k != 5 || err != nil {
		t.Fatalf("sendto = %d, %v", k, err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(waitLimit))
	got := map[string]bool{}
	buf := make([]byte, 64)
	for i := 0; i < 3; i++ {
		k, _, err := peer.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		got[string(buf[:k])] = true
	}
	for _, w := range []string{"one", "two", "three"} {
		if !got[w] {
			t.Fatalf("peer got %v, missing %q", got, w)
		}
	}
	// The reply comes back through the conduit as one datagram.
	if _, err := peer.WriteTo([]byte("reply"), net.UDPAddrFromAddrPort(mustName(t, s))); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
	if k, err := unix.Read(fd, buf); err != nil || string(buf[:k]) != "reply" {
		t.Fatalf("read = %q, %v", buf[:k], err)
	}
}

// waitTargetError waits (bounded) until the target's fd of a connected
// UDP socket shows POLLERR: the stack's ICMP error was moved to the
// kernel conduit.
func waitTargetError(t *testing.T, fd int) {
	t.Helper()
	pollUntil(t, fd, unix.POLLERR, unix.POLLERR)
}

// TestUDPConnectedRefused: an ICMP port unreachable for a connected UDP
// socket is reported as on Linux (semantics scenarios
// u-econnrefused-so-error and u-econnrefused-connected, spec C.20): once,
// by getsockopt(SO_ERROR), by a served recvfrom (which a blocked
// recvfrom wakes for) or by a native read of the target's fd, before a
// datagram that arrived after it; poll shows POLLERR meanwhile.
func TestUDPConnectedRefused(t *testing.T) {
	p, n := newProvider(t)
	dead := closedUDPPort(t, n, "udp4", "127.0.0.1:0")
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
	requireUDPConduit(t, fd)
	connect(t, s, dead)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	writeAll(t, fd, []byte("x"))
	waitTargetError(t, fd)
	if e := soError(t, s); e != unix.ECONNREFUSED {
		t.Fatalf("SO_ERROR after port unreachable = %v, want ECONNREFUSED", e)
	}
	if e := soError(t, s); e != 0 {
		t.Fatalf("SO_ERROR read twice = %v, want 0 (sock_error clears it)", e)
	}

	buf := make([]byte, 16)
	writeAll(t, fd, []byte("y"))
	waitTargetError(t, fd)
	if _, _, _, err := s.RecvFrom(ctx, buf, 0, true); err != unix.ECONNREFUSED {
		t.Fatalf("recvfrom with the error pending = %v, want ECONNREFUSED", err)
	}
	if _, _, _, err := s.RecvFrom(ctx, buf, 0, true); err != unix.EAGAIN {
		t.Fatalf("recvfrom after the error was reported = %v, want EAGAIN", err)
	}
	if e := soError(t, s); e != 0 {
		t.Fatalf("SO_ERROR after recvfrom reported the error = %v, want 0", e)
	}

	// A blocked recvfrom ends with the error (sk_error_report).
	res := make(chan error, 1)
	go func() {
		_, _, _, err := s.RecvFrom(ctx, make([]byte, 16), 0, false)
		res <- err
	}()
	writeAll(t, fd, []byte("z"))
	select {
	case err := <-res:
		if err != unix.ECONNREFUSED {
			t.Fatalf("blocked recvfrom = %v, want ECONNREFUSED", err)
		}
	case <-ctx.Done():
		t.Fatal("blocked recvfrom did not wake for the ICMP error")
	}

	// A datagram from the peer address after the error: a native read
	// reports the error first, then the datagram, as udp_recvmsg does.
	writeAll(t, fd, []byte("w"))
	waitTargetError(t, fd)
	peer := listenUDP(t, n, "udp4", dead.String())
	if _, err := peer.WriteTo([]byte("reply"), net.UDPAddrFromAddrPort(mustName(t, s))); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, fd, unix.POLLIN|unix.POLLERR, unix.POLLIN|unix.POLLERR)
	if _, err := unix.Read(fd, buf); err != unix.ECONNREFUSED {
		t.Fatalf("native read with the error pending = %v, want ECONNREFUSED", err)
	}
	if k, err := unix.Read(fd, buf); err != nil || string(buf[:k]) != "reply" {
		t.Fatalf("read after the error = %q, %v", buf[:k], err)
	}
	if e := soError(t, s); e != 0 {
		t.Fatalf("SO_ERROR after a read reported the error = %v, want 0", e)
	}
}
