package netstack_test

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLoopbackSendToIsInConduitOnReturn: a datagram sent with SendTo to
// another socket of the same provider over lo is in the receiver's
// conduit when SendTo returns, as Linux's loopback delivery is
// synchronous with sendto (semantics scenario u-msg-peek: two sendto()s,
// then a MSG_DONTWAIT recv after the first must find the second). The
// receiving goroutines are starved (GOMAXPROCS 1, busy goroutines) so
// that an asynchronous delivery would be seen.
func TestLoopbackSendToIsInConduitOnReturn(t *testing.T) {
	p, _ := newProvider(t)
	a, _ := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
	b, bfd := newSocket(t, p, unix.AF_INET, unix.SOCK_DGRAM)
	if err := b.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	to := sockaddr(mustName(t, b))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	buf := make([]byte, 64)
	for round := 0; round < 50; round++ {
		for i, msg := range []string{"first", "second"} {
			if n, err := a.SendTo(t.Context(), []byte(msg), 0, to, false); err != nil || n != len(msg) {
				t.Fatalf("round %d: sendto %d = %d, %v", round, i, n, err)
			}
		}
		for _, want := range []string{"first", "second"} {
			n, _, err := unix.Recvfrom(bfd, buf, unix.MSG_DONTWAIT)
			if err != nil || string(buf[:n]) != want {
				t.Fatalf("round %d: recv(MSG_DONTWAIT) right after sendto = %q, %v; want %q", round, buf[:max(n, 0)], err, want)
			}
		}
	}
}

// TestLoopbackNonblockingConnectSettled: a non-blocking connect over lo
// returns EINPROGRESS with the handshake's outcome already visible, as
// Linux processes the loopback SYN, SYN-ACK/RST and ACK within connect:
// refused, the conduit polls at once (zero timeout) like Linux's reset
// socket and SO_ERROR is the stack's ECONNREFUSED (semantics scenarios
// c-refused-nonblocking, c-refused-nonblocking-connect-again, whose
// third connect is refused again before SO_ERROR is read); to a
// listener, the conduit is writable at once. Goroutines are starved
// (GOMAXPROCS 1) so that an asynchronous handshake would be seen.
func TestLoopbackNonblockingConnectSettled(t *testing.T) {
	kmask := pollFd(t, kernelRefused(t), pollAll, time.Second)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	p, n := newProvider(t)
	closed := netip.MustParseAddrPort("127.0.0.1:9")
	for round := 0; round < 20; round++ {
		s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
		if err := s.Connect(t.Context(), sockaddr(closed), true); err != unix.EINPROGRESS {
			t.Fatalf("round %d: connect = %v, want EINPROGRESS", round, err)
		}
		if m := pollFd(t, fd, pollAll, 0); m != kmask {
			t.Fatalf("round %d: poll right after the refused connect = %#x, Linux %#x", round, m, kmask)
		}
		// Again while the error is pending (taken by connect), then a
		// third time: refused before it returns, so SO_ERROR is the
		// stack's ECONNREFUSED, not the conduit's ECONNRESET.
		if err := s.Connect(t.Context(), sockaddr(closed), true); err != unix.ECONNREFUSED {
			t.Fatalf("round %d: second connect = %v, want ECONNREFUSED", round, err)
		}
		if err := s.Connect(t.Context(), sockaddr(closed), true); err != unix.EINPROGRESS {
			t.Fatalf("round %d: third connect = %v, want EINPROGRESS", round, err)
		}
		if e := soError(t, s); e != unix.ECONNREFUSED {
			t.Fatalf("round %d: SO_ERROR after the third connect = %v, want ECONNREFUSED", round, e)
		}
	}
	l := stackListener(t, n)
	to := sockaddr(addrPort(t, l.Addr()))
	for round := 0; round < 20; round++ {
		s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
		if err := s.Connect(t.Context(), to, true); err != unix.EINPROGRESS {
			t.Fatalf("round %d: connect = %v, want EINPROGRESS", round, err)
		}
		if m := pollFd(t, fd, unix.POLLOUT, 0); m != unix.POLLOUT {
			t.Fatalf("round %d: poll right after a non-blocking connect to a listener = %#x, want POLLOUT", round, m)
		}
	}
}

// TestAcceptedDataInConduitOnReturn: bytes a client sent before accept
// are in the accepted socket's conduit when Accept returns, so FIONREAD
// and a MSG_DONTWAIT recv see them at once, as on Linux (semantics
// scenario k-data-before-accept). The pump is starved (GOMAXPROCS 1).
func TestAcceptedDataInConduitOnReturn(t *testing.T) {
	p, _ := newProvider(t)
	l, _ := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	if err := l.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(8); err != nil {
		t.Fatal(err)
	}
	ap := mustName(t, l)
	msg := []byte("early-data")
	for round := 0; round < 20; round++ {
		c, cfd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
		connect(t, c, ap)
		writeAll(t, cfd, msg)
		// Wait until the bytes are in the (not yet accepted) server
		// socket's receive queue.
		from := mustName(t, c)
		deadline := time.Now().Add(waitLimit)
		for queued := false; !queued; {
			for _, conn := range p.Connections() {
				if conn.Protocol == "tcp" && conn.Local == ap && conn.Remote == from && conn.RecvQ == len(msg) {
					queued = true
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: client data not in the server's receive queue: %+v", round, p.Connections())
			}
			time.Sleep(time.Millisecond)
		}
		prev := runtime.GOMAXPROCS(1)
		a, _, err := l.Accept(t.Context(), true)
		if err != nil {
			runtime.GOMAXPROCS(prev)
			t.Fatalf("round %d: accept: %v", round, err)
		}
		afd := int(a.Conduit().Fd())
		q, qerr := unix.IoctlGetInt(afd, unix.SIOCINQ)
		buf := make([]byte, 64)
		k, _, rerr := unix.Recvfrom(afd, buf, unix.MSG_DONTWAIT)
		runtime.GOMAXPROCS(prev)
		a.Close()
		if qerr != nil || q != len(msg) {
			t.Fatalf("round %d: FIONREAD on the conduit right after accept = %d, %v; want %d", round, q, qerr, len(msg))
		}
		if rerr != nil || string(buf[:k]) != string(msg) {
			t.Fatalf("round %d: recv(MSG_DONTWAIT) right after accept = %q, %v; want %q", round, buf[:max(k, 0)], rerr, msg)
		}
	}
}
