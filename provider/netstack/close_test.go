package netstack_test

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
)

func readErr(t *testing.T, c interface {
	Read([]byte) (int, error)
	SetReadDeadline(time.Time) error
}) ([]byte, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	return io.ReadAll(c.(io.Reader))
}

// TestCloseFlushesThenFIN: data the target wrote before its close reaches
// the peer, followed by FIN (EOF), as close(2) on Linux.
func TestCloseFlushesThenFIN(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	writeAll(t, fd, []byte("last words"))
	unix.Close(fd) // the target's reference; then the shim reports the close
	s.Close()
	got, err := readErr(t, srv)
	if err != nil || string(got) != "last words" {
		t.Fatalf("peer read %q, %v; want the data then EOF", got, err)
	}
}

// TestCloseUnreadSendsRST: closing with unread received data sends RST
// (tcp_close), so the peer's read fails with ECONNRESET.
func TestCloseUnreadSendsRST(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	if _, err := srv.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, fd, unix.POLLIN, unix.POLLIN) // delivered to the target end
	s.Close()
	if _, err := readErr(t, srv); errnoOf(err) != unix.ECONNRESET {
		t.Fatalf("peer read after close with unread data: %v, want ECONNRESET", err)
	}
}

// TestCloseLingerZero: SO_LINGER {1, 0} then close sends RST.
func TestCloseLingerZero(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, _ := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	var b [8]byte
	b[0] = 1
	if err := s.SetSockOpt(unix.SOL_SOCKET, unix.SO_LINGER, b[:]); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := readErr(t, srv); errnoOf(err) != unix.ECONNRESET {
		t.Fatalf("peer read after linger-0 close: %v, want ECONNRESET", err)
	}
}

// TestReleasedConduitTargetClose: once the provider released its copy of
// the target end, the target's own close(2) is seen: data, then FIN; and
// a close with unread data sends RST.
func TestReleasedConduitTargetClose(t *testing.T) {
	for _, unread := range []bool{false, true} {
		p, n := newProvider(t)
		l := stackListener(t, n)
		s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
		connect(t, s, addrPort(t, l.Addr()))
		srv := acceptConn(t, l)
		s.(provider.ConduitReleaser).ReleaseConduit()
		if unread {
			if _, err := srv.Write([]byte("unread")); err != nil {
				t.Fatal(err)
			}
			pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
		} else {
			writeAll(t, fd, []byte("bye"))
		}
		unix.Close(fd)
		got, err := readErr(t, srv)
		if unread && errnoOf(err) != unix.ECONNRESET {
			t.Errorf("unread: peer read %q, %v; want ECONNRESET", got, err)
		}
		if !unread && (err != nil || string(got) != "bye") {
			t.Errorf("peer read %q, %v; want bye then EOF", got, err)
		}
	}
}

// TestReleasedConduitPeerReset: after ReleaseConduit, a peer RST still
// reads as ECONNRESET then EPIPE on write (the sentinel byte keeps our
// receive queue non-empty), for a connecting and an accepted socket, also
// after the target's own data went through.
func TestReleasedConduitPeerReset(t *testing.T) {
	for _, accepted := range []bool{false, true} {
		p, n := newProvider(t)
		var fd int
		if accepted {
			ls, _ := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
			if err := ls.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
				t.Fatal(err)
			}
			if err := ls.Listen(4); err != nil {
				t.Fatal(err)
			}
			c, err := n.Dial("tcp4", mustName(t, ls).String())
			if err != nil {
				t.Fatal(err)
			}
			child, _, err := ls.Accept(context.Background(), false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { child.Close() })
			fd = targetFd(t, child)
			child.(provider.ConduitReleaser).ReleaseConduit()
			writeAll(t, fd, []byte("data"))
			got := make([]byte, 4)
			_ = c.SetReadDeadline(time.Now().Add(waitLimit))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "data" {
				t.Fatalf("peer read %q, %v", got, err)
			}
			resetConn(t, c)
		} else {
			l := stackListener(t, n)
			s, sfd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
			connect(t, s, addrPort(t, l.Addr()))
			srv := acceptConn(t, l)
			s.(provider.ConduitReleaser).ReleaseConduit()
			fd = sfd
			resetConn(t, srv)
		}
		pollUntil(t, fd, pollAll, unix.POLLERR)
		if _, err := unix.Read(fd, make([]byte, 8)); err != unix.ECONNRESET {
			t.Errorf("accepted=%v: read after RST = %v, want ECONNRESET", accepted, err)
		}
		if _, err := unix.SendmsgN(fd, []byte("x"), nil, nil, unix.MSG_NOSIGNAL); err != unix.EPIPE {
			t.Errorf("accepted=%v: write after RST = %v, want EPIPE", accepted, err)
		}
	}
}

// TestResetAfterHalfClose: after the target's shutdown(SHUT_WR) (served
// through Shutdown) the peer's RST still reads as ECONNRESET, as on
// Linux, also with the conduit released.
func TestResetAfterHalfClose(t *testing.T) {
	kc, ks := kernelPair(t)
	if err := unix.Shutdown(kc, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if k, err := unix.Read(ks, make([]byte, 4)); k != 0 || err != nil {
		t.Fatalf("kernel server read = %d, %v; want EOF", k, err)
	}
	setLingerZero(t, ks)
	unix.Close(ks)
	pollUntil(t, kc, pollAll, unix.POLLERR)
	_, kerr := unix.Read(kc, make([]byte, 4))

	for _, release := range []bool{false, true} {
		p, n := newProvider(t)
		l := stackListener(t, n)
		s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
		connect(t, s, addrPort(t, l.Addr()))
		srv := acceptConn(t, l)
		if release {
			s.(provider.ConduitReleaser).ReleaseConduit()
		}
		// The shim shuts a connected stream socket down on the target's
		// own fd (natively); the provider's Shutdown does it on its copy.
		shut := func() error { return s.Shutdown(unix.SHUT_WR) }
		if release {
			shut = func() error { return unix.Shutdown(fd, unix.SHUT_WR) }
		}
		if err := shut(); err != nil {
			t.Fatal(err)
		}
		// Like Linux after shutdown(SHUT_WR): writing fails with EPIPE.
		if _, err := unix.SendmsgN(fd, []byte("x"), nil, nil, unix.MSG_NOSIGNAL); err != unix.EPIPE {
			t.Errorf("release=%v: write after SHUT_WR = %v, want EPIPE", release, err)
		}
		if got, err := readErr(t, srv); err != nil || len(got) != 0 {
			t.Fatalf("server read %q, %v; want EOF", got, err)
		}
		resetConn(t, srv)
		pollUntil(t, fd, pollAll, unix.POLLERR)
		if _, err := unix.Read(fd, make([]byte, 4)); err != kerr {
			t.Errorf("release=%v: read after RST = %v, Linux %v", release, err, kerr)
		}
	}
}

// TestPeerResetSOErrorFirst: after a peer RST, SO_ERROR is ECONNRESET and
// the next read returns 0, as on Linux (reading SO_ERROR consumes the
// error).
func TestPeerResetSOErrorFirst(t *testing.T) {
	kc, ks := kernelPair(t)
	setLingerZero(t, ks)
	unix.Close(ks)
	pollUntil(t, kc, pollAll, unix.POLLERR)
	kso, _ := unix.GetsockoptInt(kc, unix.SOL_SOCKET, unix.SO_ERROR)
	kn, kerr := unix.Read(kc, make([]byte, 4))

	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	resetConn(t, acceptConn(t, l))
	pollUntil(t, fd, pollAll, unix.POLLERR)
	so := soError(t, s)
	k, err := unix.Read(fd, make([]byte, 4))
	if so != unix.Errno(kso) || k != kn || err != kerr {
		t.Fatalf("SO_ERROR %v then read %d, %v; Linux SO_ERROR %v then read %d, %v", so, k, err, unix.Errno(kso), kn, kerr)
	}
}

// TestReleaseBeforeConnect: ReleaseConduit right after the socket was
// injected takes effect once connect filled the conduit; the connection
// works and the target's close is seen as FIN.
func TestReleaseBeforeConnect(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	s.(provider.ConduitReleaser).ReleaseConduit()
	if err := s.Connect(context.Background(), sockaddr(addrPort(t, l.Addr())), true); err != unix.EINPROGRESS {
		t.Fatalf("connect = %v", err)
	}
	pollUntil(t, fd, unix.POLLOUT, unix.POLLOUT)
	srv := acceptConn(t, l)
	writeAll(t, fd, []byte("released"))
	unix.Close(fd)
	got, err := readErr(t, srv)
	if err != nil || string(got) != "released" {
		t.Fatalf("peer read %q, %v; want the data then EOF", got, err)
	}
}
