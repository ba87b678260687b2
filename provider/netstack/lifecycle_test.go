package netstack_test

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider/netstack"
	"github.com/netprov/netprov/stack/socket"
)

// TestNoGoroutineLeak: closing the provider ends every pump and watcher
// of every kind of socket.
func TestNoGoroutineLeak(t *testing.T) {
	n := newNode(t, nil)
	base := runtime.NumGoroutine()
	p := netstack.New(n)
	l := stackListener(t, n)
	for _, kind := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
		if _, err := p.Socket(unix.AF_INET, kind, 0); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, c, addrPort(t, l.Addr()))
	acceptConn(t, l)
	ls, _ := newSocket(t, p, unix.AF_INET6, unix.SOCK_STREAM)
	if err := ls.Listen(4); err != nil {
		t.Fatal(err)
	}
	pending, _ := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	_ = pending.Connect(context.Background(), sockaddr(netip.MustParseAddrPort("127.0.0.1:9")), true)
	p.Close()
	l.Close()
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > base+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", g, base, buf[:runtime.Stack(buf, true)])
	}
}

// TestInterruptedBlockingConnect: a blocking connect interrupted by a
// signal returns ERESTARTSYS and the handshake goes on (as on Linux): the
// conduit becomes writable when it completes and a later connect reports
// success.
func TestInterruptedBlockingConnect(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Connect(ctx, sockaddr(addrPort(t, l.Addr())), false)
	if err != nil && err != socket.ERESTARTSYS {
		t.Fatalf("interrupted connect = %v, want ERESTARTSYS (or done)", err)
	}
	pollUntil(t, fd, unix.POLLOUT, unix.POLLOUT)
	if err != nil {
		if err := s.Connect(context.Background(), sockaddr(addrPort(t, l.Addr())), false); err != nil && err != unix.EISCONN {
			t.Fatalf("connect after the interrupted one = %v", err)
		}
	}
	srv := acceptConn(t, l)
	writeAll(t, fd, []byte("ok"))
	buf := make([]byte, 4)
	_ = srv.SetReadDeadline(time.Now().Add(waitLimit))
	if k, err := srv.Read(buf); err != nil || string(buf[:k]) != "ok" {
		t.Fatalf("server read %q, %v", buf[:k], err)
	}
}

// TestIPv6DualStack: an AF_INET6 socket connects to an IPv4 listener
// through its v4-mapped address and data flows.
func TestIPv6DualStack(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET6, unix.SOCK_STREAM)
	ap := addrPort(t, l.Addr())
	mapped := netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
	connect(t, s, mapped)
	srv := acceptConn(t, l)
	if _, err := srv.Write([]byte("v6")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, fd, 2); string(got) != "v6" {
		t.Fatalf("read %q", got)
	}
}
