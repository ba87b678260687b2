package socket_test

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

func listener(t *testing.T, so *socket.Socket) netip.AddrPort {
	t.Helper()
	if err := so.BindAddr(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := so.Listen(16); err != nil {
		t.Fatal(err)
	}
	return so.LocalAddr()
}

// Spec 18-20: a blocking connect to a closed port fails with
// ECONNREFUSED; a non-blocking one gives EINPROGRESS, then POLLERR and
// SO_ERROR = ECONNREFUSED.
func TestConnectRefused(t *testing.T) {
	n := newNode(t, nil)
	probe := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err := probe.BindAddr(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	closed := probe.LocalAddr()
	probe.Close()

	c := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err := c.ConnectAddr(context.Background(), closed); err != unix.ECONNREFUSED {
		t.Fatalf("blocking connect to a closed port: %v, want ECONNREFUSED", err)
	}
	nb := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err := nb.ConnectAddr(ctx0, closed); err != unix.EINPROGRESS {
		t.Fatalf("non-blocking connect: %v, want EINPROGRESS", err)
	}
	e, ch := waiter.ChannelEntry(waiter.EventOut)
	nb.EventQueue().Register(e)
	defer nb.EventQueue().Unregister(e)
	deadline := time.After(5 * time.Second)
	for nb.Readiness(waiter.EventOut)&(waiter.EventErr|waiter.EventOut) == 0 {
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("refused connect never became ready")
		}
	}
	if m := nb.Readiness(waiter.EventOut); m&waiter.EventErr == 0 {
		t.Errorf("readiness after refusal %#x, want POLLERR", m)
	}
	if got := getInt(t, nb, unix.SOL_SOCKET, unix.SO_ERROR); got != int(unix.ECONNREFUSED) {
		t.Errorf("SO_ERROR = %d, want ECONNREFUSED", got)
	}
}

// Spec 18, 82: connect and accept on loopback; EISCONN after; accept on a
// non-listening socket is EINVAL; a non-blocking accept with an empty
// queue is EAGAIN.
func TestConnectAccept(t *testing.T) {
	n := newNode(t, nil)
	l := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM, 0)
	addr := listener(t, l)
	if got := getInt(t, l, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); got != 1 {
		t.Errorf("SO_ACCEPTCONN on a listener = %d", got)
	}
	c := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM, 0)
	if _, _, err := c.Accept(ctx0); err != unix.EINVAL {
		t.Errorf("accept on a non-listening socket: %v, want EINVAL", err)
	}
	if err := c.Connect(context.Background(), sockaddr4(unix.AF_INET, "127.0.0.1", addr.Port(), 16)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := c.ConnectAddr(context.Background(), addr); err != unix.EISCONN {
		t.Errorf("second connect: %v, want EISCONN", err)
	}
	s, peer, err := l.Accept4(context.Background(), unix.SOCK_NONBLOCK)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer s.Close()
	if !s.Nonblocking() {
		t.Error("accept4(SOCK_NONBLOCK) socket is blocking")
	}
	if want := socket.FormatSockaddr(unix.AF_INET, c.LocalAddr()); !bytes.Equal(peer, want) {
		t.Errorf("accepted peer %x, want %x", peer, want)
	}
	if _, _, err := l.Accept4(ctx0, 0x100); err != unix.EINVAL {
		t.Errorf("accept4 with a bad flag: %v, want EINVAL", err)
	}
	l.SetNonblocking(true)
	if _, _, err := l.Accept(ctx0); err != unix.EAGAIN {
		t.Errorf("non-blocking accept on an empty queue: %v, want EAGAIN", err)
	}

	// Data both ways; MSG_WAITALL collects a full buffer.
	msg := bytes.Repeat([]byte("abcdefgh"), 4096)
	go c.Write(context.Background(), msg)
	s.SetNonblocking(false)
	buf := make([]byte, len(msg))
	nr, err := s.Recv(context.Background(), buf, unix.MSG_WAITALL)
	if err != nil || nr != len(msg) || !bytes.Equal(buf, msg) {
		t.Fatalf("MSG_WAITALL read %d, %v", nr, err)
	}
	// Shutdown(SHUT_WR): the peer reads EOF; writing then fails with
	// EPIPE and asks for SIGPIPE unless MSG_NOSIGNAL.
	if err := c.Shutdown(unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if nr, err := s.Read(context.Background(), buf); nr != 0 || err != nil {
		t.Fatalf("read after peer SHUT_WR: %d %v, want EOF", nr, err)
	}
	if _, sig, err := c.Write(context.Background(), []byte("x")); err != unix.EPIPE || !sig {
		t.Errorf("write after SHUT_WR: %v sigpipe=%v, want EPIPE with SIGPIPE", err, sig)
	}
	if _, sig, err := c.Send(context.Background(), []byte("x"), unix.MSG_NOSIGNAL); err != unix.EPIPE || sig {
		t.Errorf("send(MSG_NOSIGNAL) after SHUT_WR: %v sigpipe=%v", err, sig)
	}
	if err := c.Shutdown(9); err != unix.EINVAL {
		t.Errorf("shutdown(9): %v, want EINVAL", err)
	}
}

// Spec 82: SO_RCVTIMEO bounds a blocking accept (EAGAIN); an interrupted
// accept loses no connection.
func TestAcceptTimeoutAndInterrupt(t *testing.T) {
	fake := clock.NewFake()
	n := newNode(t, fake)
	l := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM, 0)
	addr := listener(t, l)
	if err := l.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, timeval(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	ch := make(chan result, 1)
	go func() {
		_, _, err := l.Accept(context.Background())
		ch <- result{0, err}
	}()
	waitTimer(t, fake, 200*time.Millisecond)
	fake.Advance(200 * time.Millisecond)
	if r := await(t, ch); r.err != unix.EAGAIN {
		t.Fatalf("accept with SO_RCVTIMEO: %v, want EAGAIN", r.err)
	}
	if err := l.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, timeval(0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _, err := l.Accept(ctx)
		ch <- result{0, err}
	}()
	cancel()
	if r := await(t, ch); r.err != socket.ERESTARTSYS {
		t.Fatalf("interrupted accept: %v, want ERESTARTSYS", r.err)
	}
	c := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err := c.ConnectAddr(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	s, _, err := l.Accept(context.Background())
	if err != nil {
		t.Fatalf("accept after interruption: %v", err)
	}
	s.Close()
}

// Spec 19: a blocking connect whose SO_SNDTIMEO expires returns
// EINPROGRESS; the next non-blocking connect is EALREADY.
func TestConnectSendTimeout(t *testing.T) {
	fake := clock.NewFake()
	n := newNode(t, fake)
	a, b := pipe.New(pipe.Config{})
	defer b.Close() // the far end is never attached: frames vanish
	if _, err := n.AddNIC(a, "np0", netip.MustParsePrefix("10.213.1.1/24")); err != nil {
		t.Fatal(err)
	}
	c := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err := c.SetSockOpt(unix.SOL_SOCKET, unix.SO_SNDTIMEO, timeval(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	ch := make(chan result, 1)
	go func() {
		ch <- result{0, c.ConnectAddr(context.Background(), netip.MustParseAddrPort("10.213.1.2:80"))}
	}()
	waitTimer(t, fake, 500*time.Millisecond)
	fake.Advance(500 * time.Millisecond)
	if r := await(t, ch); r.err != unix.EINPROGRESS {
		t.Fatalf("connect with SO_SNDTIMEO: %v, want EINPROGRESS", r.err)
	}
	c.SetNonblocking(true)
	if err := c.ConnectAddr(ctx0, netip.MustParseAddrPort("10.213.1.2:80")); err != unix.EALREADY {
		t.Fatalf("connect while pending: %v, want EALREADY", err)
	}
	var _ = stack.RouteEntry{}
}

// handshakeFirst is a TCP endpoint whose Connect, once it has started a
// handshake, returns only after the handshake is over: the interleaving in
// which a loopback SYN-ACK arrives right after connect(2) sent the SYN.
type handshakeFirst struct{ stack.Endpoint }

func (h handshakeFirst) Connect(ap netip.AddrPort) error {
	err := h.Endpoint.Connect(ap)
	for i := 0; err == unix.EINPROGRESS && i < 2000 && h.Endpoint.Info().State != 1; i++ { // bounded: 2 s
		time.Sleep(time.Millisecond)
	}
	return err
}

// Spec C.18: a connect interrupted before it waits (the provider's
// non-blocking connect) returns the interruption even when the handshake
// is already over; the next connect completes it with 0, and only the one
// after that is EISCONN. (Asking the endpoint again inside the first call
// used to complete it there, so the caller's next connect got EISCONN.)
func TestInterruptedConnectLeavesCompletionToNextCall(t *testing.T) {
	n := newNode(t, nil)
	l := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM, 0)
	addr := listener(t, l)
	c := newSocket(t, n, unix.AF_INET, unix.SOCK_STREAM, 0)
	socket.WrapEndpoint(c, func(ep stack.Endpoint) stack.Endpoint { return handshakeFirst{ep} })
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.ConnectAddr(done, addr); !socket.IsInterrupt(err) {
		t.Fatalf("interrupted connect: %v, want an interruption", err)
	}
	if err := c.ConnectAddr(context.Background(), addr); err != nil {
		t.Fatalf("second connect: %v, want 0", err)
	}
	if err := c.ConnectAddr(context.Background(), addr); err != unix.EISCONN {
		t.Fatalf("third connect: %v, want EISCONN", err)
	}
}
