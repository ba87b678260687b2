package netstack_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUDPShutdownAfterWriteLosesNothing: a datagram written just before
// shutdown(SHUT_WR) is sent (on Linux the write already sent it); the
// shutdown waits for the pump instead of shutting the stack socket first.
func TestUDPShutdownAfterWriteLosesNothing(t *testing.T) {
	p, n := newProvider(t)
	peer := listenUDP(t, n, "udp4", "127.0.0.1:0")
	for i := 0; i < 20; i++ {
		s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
		connect(t, s, addrPort(t, peer.LocalAddr()))
		writeAll(t, fd, []byte{'d', byte('a' + i)})
		if err := s.Shutdown(unix.SHUT_WR); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if _, err := unix.Write(fd, []byte("late")); err != unix.EPIPE {
			t.Fatalf("write after SHUT_WR: %v, want EPIPE", err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(waitLimit))
		buf := make([]byte, 16)
		k, _, err := peer.ReadFrom(buf)
		if err != nil || string(buf[:k]) != string([]byte{'d', byte('a' + i)}) {
			t.Fatalf("round %d: peer read %q, %v", i, buf[:k], err)
		}
	}
}

// TestUDPFionreadIsFirstDatagram: FIONREAD (SIOCINQ) of a datagram socket
// is the size of the next datagram, not the conduit's total.
func TestUDPFionreadIsFirstDatagram(t *testing.T) {
	p, n := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
	if err := s.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Ioctl(unix.SIOCINQ); err != nil || v != 0 {
		t.Fatalf("empty: %d, %v", v, err)
	}
	c := listenUDP(t, n, "udp4", "127.0.0.1:0")
	to := net.UDPAddrFromAddrPort(mustName(t, s))
	for _, m := range []string{"abc", "defghij"} {
		if _, err := c.WriteTo([]byte(m), to); err != nil {
			t.Fatal(err)
		}
	}
	pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
	deadline := time.Now().Add(waitLimit)
	for {
		v, err := s.Ioctl(unix.SIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if v == 3 {
			break
		}
		if v != 0 || time.Now().After(deadline) {
			t.Fatalf("FIONREAD = %d, want 3 (the first datagram)", v)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestShutRdwrKeepsSocket: a target that shuts a connection down both
// ways but keeps its fd sees EOF, not ECONNRESET, and no POLLERR (spec
// L.88): the provider must not take SHUTDOWN_MASK on its end for the
// target's close.
func TestShutRdwrKeepsSocket(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	peer := acceptConn(t, l)
	defer peer.Close()
	s.(interface{ ReleaseConduit() }).ReleaseConduit()
	if err := unix.Shutdown(fd, unix.SHUT_RDWR); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(waitLimit))
	if k, err := peer.Read(make([]byte, 4)); k != 0 || err == nil {
		t.Fatalf("peer read %d, %v; want EOF", k, err)
	}
	time.Sleep(50 * time.Millisecond) // let the pumps act on the shutdown
	if m := pollFd(t, fd, unix.POLLIN|unix.POLLOUT|unix.POLLRDHUP, 0); m&unix.POLLERR != 0 {
		t.Errorf("poll after SHUT_RDWR = %#x, has POLLERR", m)
	}
	if k, err := unix.Read(fd, make([]byte, 4)); k != 0 || err != nil {
		t.Errorf("read after SHUT_RDWR = %d, %v; want 0 (EOF)", k, err)
	}
	if e := soError(t, s); e != 0 {
		t.Errorf("SO_ERROR = %v, want 0", e)
	}
}

// TestListenerWriteEPIPE: writing to a listener fails with EPIPE at once
// (tcp_sendmsg on a listener) instead of blocking on the filled conduit.
func TestListenerWriteEPIPE(t *testing.T) {
	p, _ := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	if err := s.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(4); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.SendmsgN(fd, []byte("x"), nil, nil, unix.MSG_NOSIGNAL); err != unix.EPIPE {
		t.Errorf("send on a listener: %v, want EPIPE", err)
	}
	if m := pollFd(t, fd, unix.POLLIN|unix.POLLOUT|unix.POLLRDHUP, 0); m != 0 {
		t.Errorf("listener poll = %#x, want 0", m)
	}
}
