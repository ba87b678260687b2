package netstack_test

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
)

// requireUDPConduit skips when the provider could not make its conduit
// namespace (not root): UDP sockets then have AF_UNIX conduits.
func requireUDPConduit(t *testing.T, fd int) {
	t.Helper()
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil || proto != unix.IPPROTO_UDP {
		t.Skip("UDP sockets have AF_UNIX conduits here (the conduit namespace needs CAP_SYS_ADMIN)")
	}
}

// connectedUDP is a UDP socket of a new provider connected to a stack
// peer on loopback; fd is the target's.
func connectedUDP(t *testing.T) (s provider.Socket, fd int, peer net.PacketConn) {
	t.Helper()
	p, n := newProvider(t)
	peer = listenUDP(t, n, "udp4", "127.0.0.1:0")
	s, fd = newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
	requireUDPConduit(t, fd)
	connect(t, s, addrPort(t, peer.LocalAddr()))
	return s, fd, peer
}

// nameOf is the socket's getsockname as an address and port.
func nameOf(t *testing.T, s provider.Socket) netip.AddrPort {
	t.Helper()
	sa, err := s.GetSockName()
	if err != nil {
		t.Fatal(err)
	}
	return sockaddrAddrPort(sa)
}

func sockaddrAddrPort(sa []byte) netip.AddrPort {
	port := uint16(sa[2])<<8 | uint16(sa[3])
	if len(sa) >= 24 && sa[0] == unix.AF_INET6 {
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
}

// TestUDPUnconnectedNativeSend: the target's native send on an
// unconnected UDP socket fails with EDESTADDRREQ and autobinds the socket
// first (inet_sendmsg), as on Linux (semantics scenarios u-edestaddrreq,
// c-udp-af-unspec-disconnect, spec C.13).
func TestUDPUnconnectedNativeSend(t *testing.T) {
	p, n := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
	requireUDPConduit(t, fd)
	if _, err := unix.Write(fd, []byte("x")); err != unix.EDESTADDRREQ {
		t.Fatalf("write on a fresh UDP socket = %v, want EDESTADDRREQ", err)
	}
	if _, _, err := unix.Recvfrom(fd, make([]byte, 4), unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Fatalf("recv on a fresh UDP socket = %v, want EAGAIN", err)
	}
	me := nameOf(t, s)
	if me.Port() == 0 || !me.Addr().IsUnspecified() {
		t.Fatalf("getsockname after the failed send = %v, want 0.0.0.0 and an ephemeral port (autobind)", me)
	}
	// The autobound port receives: a datagram to it reaches the target.
	peer := listenUDP(t, n, "udp4", "127.0.0.1:0")
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), me.Port())
	if _, err := peer.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(to)); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
	buf := make([]byte, 16)
	if k, err := unix.Read(fd, buf); err != nil || string(buf[:k]) != "hello" {
		t.Fatalf("read = %q, %v; want hello", buf[:k], err)
	}
}

// TestUDPDisconnectLikeLinux: connect(AF_UNSPEC) dissolves the
// association on the target's fd too (native send: EDESTADDRREQ again).
// udp_disconnect keeps a port given to bind, and the socket still
// receives on it; it unbinds a port chosen by the kernel (bind to port 0,
// or connect's autobind) but keeps an address given to bind, which the
// next autobind (the failed native send's) reuses. Spec C.13.
func TestUDPDisconnectLikeLinux(t *testing.T) {
	p, n := newProvider(t)
	peer := listenUDP(t, n, "udp4", "127.0.0.1:0")
	peerAddr := addrPort(t, peer.LocalAddr())
	free, err := n.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freePort := addrPort(t, free.LocalAddr()).Port()
	free.Close()
	unspec := make([]byte, 16) // sa_family AF_UNSPEC
	loopback := netip.MustParseAddr("127.0.0.1")

	for _, tc := range []struct {
		name string
		bind string // "" for none
		// keepsPort: the port survives the disconnect; after: the
		// address getsockname shows after the disconnect and, for a
		// port that did not survive, after the failed native send.
		keepsPort bool
		after     netip.Addr
	}{
		{"bound", netip.AddrPortFrom(loopback, freePort).String(), true, loopback},
		{"bound-port-0", "127.0.0.1:0", false, loopback},
		{"autobound", "", false, netip.IPv4Unspecified()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
			requireUDPConduit(t, fd)
			if tc.bind != "" {
				if err := s.Bind(sockaddr(netip.MustParseAddrPort(tc.bind))); err != nil {
					t.Fatal(err)
				}
			}
			connect(t, s, peerAddr)
			me := nameOf(t, s)
			writeAll(t, fd, []byte("c"))
			if err := s.Connect(context.Background(), unspec, false); err != nil {
				t.Fatalf("connect(AF_UNSPEC) = %v", err)
			}
			got := nameOf(t, s)
			if tc.keepsPort && got != me || !tc.keepsPort && got != netip.AddrPortFrom(tc.after, 0) {
				t.Fatalf("getsockname after disconnect = %v (was %v)", got, me)
			}
			if _, err := unix.Write(fd, []byte("x")); err != unix.EDESTADDRREQ {
				t.Fatalf("write after disconnect = %v, want EDESTADDRREQ", err)
			}
			got = nameOf(t, s)
			if got.Addr() != tc.after || got.Port() == 0 || tc.keepsPort && got != me {
				t.Fatalf("getsockname after the failed send = %v (was %v)", got, me)
			}
			// The socket receives on its port.
			to := netip.AddrPortFrom(loopback, got.Port())
			if _, err := peer.WriteTo([]byte("still"), net.UDPAddrFromAddrPort(to)); err != nil {
				t.Fatal(err)
			}
			pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
			buf := make([]byte, 16)
			if k, err := unix.Read(fd, buf); err != nil || string(buf[:k]) != "still" {
				t.Fatalf("read after disconnect = %q, %v; want still", buf[:k], err)
			}
			// Connected again, the target's writes reach the peer.
			connect(t, s, peerAddr)
			writeAll(t, fd, []byte("again"))
			for {
				k, _, err := peer.ReadFrom(buf)
				if err != nil {
					t.Fatal(err)
				}
				if string(buf[:k]) == "again" {
					break
				}
			}
		})
	}
}

// TestUDPShutdownReadLikeLinux: after shutdown(SHUT_RD) a MSG_DONTWAIT
// recv on the target's fd gives EAGAIN and a blocking one 0, as Linux's
// UDP does (semantics scenario u-shutdown); after SHUT_WR a send gives
// EPIPE, and the datagram written just before it was sent.
func TestUDPShutdownReadLikeLinux(t *testing.T) {
	s, fd, peer := connectedUDP(t)
	if err := s.Shutdown(unix.SHUT_RD); err != nil {
		t.Fatalf("shutdown(SHUT_RD) = %v", err)
	}
	buf := make([]byte, 4)
	if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Fatalf("MSG_DONTWAIT recv after SHUT_RD = %v, want EAGAIN", err)
	}
	if k, _, err := unix.Recvfrom(fd, buf, 0); k != 0 || err != nil {
		t.Fatalf("blocking recv after SHUT_RD = %d, %v; want 0", k, err)
	}
	writeAll(t, fd, []byte("last"))
	if err := s.Shutdown(unix.SHUT_WR); err != nil {
		t.Fatalf("shutdown(SHUT_WR) = %v", err)
	}
	if _, err := unix.SendmsgN(fd, []byte("x"), nil, nil, unix.MSG_NOSIGNAL); err != unix.EPIPE {
		t.Fatalf("send after SHUT_WR = %v, want EPIPE", err)
	}
	k, _, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "last" {
		t.Fatalf("peer read = %q, %v; want the datagram written before SHUT_WR", buf[:k], err)
	}
}

// TestUDPConnectedRefusedIPv6: the ICMPv6 port unreachable for a
// connected AF_INET6 UDP socket reaches the target's fd as on Linux:
// POLLERR, then a native recv gives ECONNREFUSED once (spec C.20).
func TestUDPConnectedRefusedIPv6(t *testing.T) {
	p, n := newProvider(t)
	dead := closedUDPPort(t, n, "udp6", "[::1]:0")
	s, fd := newSocket(t, p, unix.AF_INET6, unix.SOCK_DGRAM)
	requireUDPConduit(t, fd)
	connect(t, s, dead)
	writeAll(t, fd, []byte("x"))
	waitTargetError(t, fd)
	buf := make([]byte, 4)
	if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != unix.ECONNREFUSED {
		t.Fatalf("recv after the port unreachable = %v, want ECONNREFUSED", err)
	}
	if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Fatalf("recv again = %v, want EAGAIN", err)
	}
	if e := soError(t, s); e != 0 {
		t.Fatalf("SO_ERROR after the read = %v, want 0", e)
	}
}
