package netstack_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider/netstack"
)

// TestNonblockingConnectReadiness: poll on the conduit shows no POLLOUT
// while the handshake is pending (SYN_SENT: tcp_poll reports nothing),
// then POLLOUT once established; the filler that kept the conduit
// unwritable never reaches the peer (spec: non-blocking connect).
func TestNonblockingConnectReadiness(t *testing.T) {
	// The SYN-ACK waits until the test advances the fake clock.
	p, fake, l := delayedPeer(t)
	addr := addrPort(t, l.Addr())
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)

	if err := s.Connect(context.Background(), sockaddr(addr), true); err != unix.EINPROGRESS {
		t.Fatalf("non-blocking connect = %v, want EINPROGRESS", err)
	}
	if m := pollFd(t, fd, unix.POLLIN|unix.POLLOUT, 0); m != 0 {
		t.Fatalf("poll while SYN_SENT = %#x, want 0 (Linux: no events)", m)
	}
	if _, err := unix.SendmsgN(fd, []byte("x"), nil, nil, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Fatalf("write while connecting = %v, want EAGAIN (Linux waits for the handshake)", err)
	}
	if err := s.Connect(context.Background(), sockaddr(addr), true); err != unix.EALREADY {
		t.Fatalf("second connect while pending = %v, want EALREADY", err)
	}
	established := false
	for i := 0; i < 100 && !established; i++ {
		fake.Advance(time.Second)
		established = pollFd(t, fd, unix.POLLOUT, 50*time.Millisecond)&unix.POLLOUT != 0
	}
	if !established {
		t.Fatal("no POLLOUT after the handshake")
	}
	if e := soError(t, s); e != 0 {
		t.Fatalf("SO_ERROR after connect = %v, want 0", e)
	}
	if err := s.Connect(context.Background(), sockaddr(addr), true); err != nil {
		t.Fatalf("connect after establishment = %v, want 0 (then EISCONN)", err)
	}
	if err := s.Connect(context.Background(), sockaddr(addr), true); err != unix.EISCONN {
		t.Fatalf("connect again = %v, want EISCONN", err)
	}
	srv := acceptConn(t, l)
	if _, err := unix.SendmsgN(fd, []byte("payload"), nil, nil, unix.MSG_DONTWAIT); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, 8)
	buf := make([]byte, 64)
	for len(got) < 7 { // client→server is not delayed
		_ = srv.SetReadDeadline(time.Now().Add(waitLimit))
		k, err := srv.Read(buf)
		if err != nil {
			t.Fatalf("server read: %v", err)
		}
		got = append(got, buf[:k]...)
	}
	if string(got) != "payload" {
		t.Fatalf("server got %q, want %q (the filler must not leak)", got, "payload")
	}
}

// kernelRefused runs a non-blocking connect to a closed port on the
// kernel's loopback and returns the conduit-comparable observations.
func kernelRefused(t *testing.T) (fd int) {
	t.Helper()
	// A port that nobody listens on: bind, read it, close.
	tmp := kernelSocket(t)
	if err := unix.Bind(tmp, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(tmp)
	unix.Close(tmp)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != unix.EINPROGRESS {
		t.Fatalf("kernel connect = %v, want EINPROGRESS", err)
	}
	return fd
}

// refusedConduit does the same through the provider: a connect to a port
// of the stack's loopback where nothing listens.
func refusedConduit(t *testing.T) (*netstack.Socket, int) {
	t.Helper()
	p, _ := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	to := netip.MustParseAddrPort("127.0.0.1:9")
	if err := s.Connect(context.Background(), sockaddr(to), true); err != unix.EINPROGRESS {
		t.Fatalf("non-blocking connect = %v, want EINPROGRESS", err)
	}
	return s.(*netstack.Socket), fd
}

const pollAll = unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP

// TestRefusedConnectSOErrorFirst: a refused non-blocking connect shows
// the same poll mask as Linux (POLLERR with POLLHUP, POLLIN, POLLOUT,
// POLLRDHUP), SO_ERROR is ECONNREFUSED, and after it was read, read(2)
// returns 0 on both.
func TestRefusedConnectSOErrorFirst(t *testing.T) {
	kfd := kernelRefused(t)
	kmask := pollUntil(t, kfd, pollAll, unix.POLLERR)
	s, fd := refusedConduit(t)
	mask := pollUntil(t, fd, pollAll, unix.POLLERR)
	if mask != kmask {
		t.Errorf("poll after refused connect: conduit %#x, Linux %#x", mask, kmask)
	}
	kerr, _ := unix.GetsockoptInt(kfd, unix.SOL_SOCKET, unix.SO_ERROR)
	if e := soError(t, s); e != unix.Errno(kerr) || e != unix.ECONNREFUSED {
		t.Errorf("SO_ERROR: conduit %v, Linux %v; want ECONNREFUSED", e, unix.Errno(kerr))
	}
	kn, kerrRead := unix.Read(kfd, make([]byte, 8))
	n, errRead := unix.Read(fd, make([]byte, 8))
	if n != kn || errRead != kerrRead {
		t.Errorf("read after SO_ERROR: conduit %d, %v; Linux %d, %v", n, errRead, kn, kerrRead)
	}
	if e := soError(t, s); e != 0 {
		t.Errorf("SO_ERROR again = %v, want 0", e)
	}
}

// TestRefusedConnectReadFirst: reading before SO_ERROR returns an error
// and POLLERR goes away. Linux returns ECONNREFUSED (sk_err); the AF_UNIX
// conduit can only carry ECONNRESET (documented in doc.go).
func TestRefusedConnectReadFirst(t *testing.T) {
	kfd := kernelRefused(t)
	pollUntil(t, kfd, pollAll, unix.POLLERR)
	_, kerr := unix.Read(kfd, make([]byte, 8))
	if kerr != unix.ECONNREFUSED {
		t.Fatalf("Linux read after refused connect = %v, want ECONNREFUSED", kerr)
	}
	_, fd := refusedConduit(t)
	pollUntil(t, fd, pollAll, unix.POLLERR)
	if _, err := unix.Read(fd, make([]byte, 8)); err != unix.ECONNRESET {
		t.Fatalf("conduit read after refused connect = %v, want ECONNRESET", err)
	}
	kmask := pollFd(t, kfd, pollAll, 0)
	mask := pollFd(t, fd, pollAll, 0)
	if mask != kmask {
		t.Errorf("poll after the error was read: conduit %#x, Linux %#x", mask, kmask)
	}
}

// TestPeerReset: after the peer's RST (SO_LINGER 0 + close) the conduit
// shows Linux's poll mask, the next read returns ECONNRESET and the next
// write EPIPE, exactly as a kernel TCP socket in the same scenario.
func TestPeerReset(t *testing.T) {
	kc, ks := kernelPair(t)
	setLingerZero(t, ks)
	unix.Close(ks)
	kmask := pollUntil(t, kc, pollAll, unix.POLLERR)
	_, kReadErr := unix.Read(kc, make([]byte, 8))
	_, kWriteErr := unix.SendmsgN(kc, []byte("x"), nil, nil, unix.MSG_NOSIGNAL)

	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	// Some data first: it must be readable before the error.
	if _, err := srv.Write([]byte("before-rst")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, fd, 10); string(got) != "before-rst" {
		t.Fatalf("read %q", got)
	}
	resetConn(t, srv)
	// The RST reaches the target end asynchronously (as a remote peer's
	// does on Linux): a poll that runs while tcp_done_with_error is
	// between setting the error and closing may see ERR without HUP, or
	// HUP (TCP_CLOSE) before RDHUP (sk_shutdown, set last).
	// Compare the settled mask.
	mask := pollUntil(t, fd, pollAll, unix.POLLERR|unix.POLLHUP|unix.POLLRDHUP)
	_, readErr := unix.Read(fd, make([]byte, 8))
	_, writeErr := unix.SendmsgN(fd, []byte("x"), nil, nil, unix.MSG_NOSIGNAL)
	if mask != kmask || readErr != kReadErr || writeErr != kWriteErr {
		t.Errorf("after peer RST: conduit poll %#x read %v write %v; Linux poll %#x read %v write %v",
			mask, readErr, writeErr, kmask, kReadErr, kWriteErr)
	}
	if readErr != unix.ECONNRESET || writeErr != unix.EPIPE {
		t.Errorf("read %v write %v, want ECONNRESET and EPIPE", readErr, writeErr)
	}
}
