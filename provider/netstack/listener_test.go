package netstack_test

import (
	"context"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/stack/socket"
)

// listenConduit makes a provider listener on the stack's loopback.
func listenConduit(t *testing.T) (provider.Socket, int, netip.AddrPort, func() error) {
	t.Helper()
	p, n := newProvider(t)
	s, fd := providerListener(t, p)
	sa, _ := s.GetSockName()
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), uint16(sa[2])<<8|uint16(sa[3]))
	dial := func() error {
		c, err := n.Dial("tcp4", ap.String())
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return err
	}
	return s, fd, ap, dial
}

// TestListenerReadiness: poll on a listener's conduit behaves like
// Linux's inet_csk_listen_poll: nothing while the accept queue is empty,
// POLLIN while it is not, nothing again after accept drained it.
func TestListenerReadiness(t *testing.T) {
	kl := kernelListener(t)
	kEmpty := pollFd(t, kl, pollAll, 0)

	s, fd, _, dial := listenConduit(t)
	if m := pollFd(t, fd, pollAll, 0); m != kEmpty {
		t.Fatalf("poll on idle listener: conduit %#x, Linux %#x", m, kEmpty)
	}
	kc := kernelSocket(t)
	ksa, _ := unix.Getsockname(kl)
	if err := unix.Connect(kc, ksa); err != nil {
		t.Fatal(err)
	}
	kReady := pollUntil(t, kl, pollAll, unix.POLLIN)
	if err := dial(); err != nil {
		t.Fatal(err)
	}
	if m := pollUntil(t, fd, pollAll, unix.POLLIN); m != kReady {
		t.Fatalf("poll with a pending connection: conduit %#x, Linux %#x", m, kReady)
	}
	child, peer, err := s.Accept(context.Background(), true)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer child.Close()
	if len(peer) < 8 || peer[4] != 127 {
		t.Fatalf("accept peer = %x", peer)
	}
	nfd, _, err := unix.Accept(kl)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(nfd)
	kAfter := pollFd(t, kl, pollAll, 0)
	if m := pollFd(t, fd, pollAll, 0); m != kAfter {
		t.Fatalf("poll after accept drained the queue: conduit %#x, Linux %#x", m, kAfter)
	}
	if _, _, err := s.Accept(context.Background(), true); err != unix.EAGAIN {
		t.Fatalf("non-blocking accept on empty queue = %v, want EAGAIN", err)
	}
	// The accepted socket has its own established conduit.
	cfd := targetFd(t, child)
	if m := pollFd(t, cfd, unix.POLLOUT, 0); m&unix.POLLOUT == 0 {
		t.Fatalf("accepted conduit poll = %#x, want POLLOUT", m)
	}
}

// TestAcceptNotLost: a connection taken while the target was interrupted
// is kept and returned by the next accept; a blocking accept interrupted
// with an empty queue returns ERESTARTSYS and takes nothing.
func TestAcceptNotLost(t *testing.T) {
	s, fd, _, dial := listenConduit(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Accept(ctx, false)
		done <- err
	}()
	cancel()
	if err := <-done; err != socket.ERESTARTSYS {
		t.Fatalf("interrupted blocking accept = %v, want ERESTARTSYS", err)
	}
	if err := dial(); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
	// The target is interrupted when the connection is taken.
	if _, _, err := s.Accept(ctx, false); err != socket.ERESTARTSYS {
		t.Fatalf("accept with cancelled ctx = %v, want ERESTARTSYS", err)
	}
	if m := pollFd(t, fd, pollAll, 0); m&unix.POLLIN == 0 {
		t.Fatalf("listener poll after the interrupted accept = %#x: the pending connection must keep it readable", m)
	}
	c1, _, err := s.Accept(context.Background(), true)
	if err != nil {
		t.Fatalf("accept of the kept connection: %v", err)
	}
	// The shim could not inject it either: give it back.
	s.(provider.Requeuer).Requeue(c1, nil)
	c2, _, err := s.Accept(context.Background(), false)
	if err != nil || c2 != c1 {
		t.Fatalf("accept after Requeue = %v, %v; want the same connection", c2, err)
	}
	defer c2.Close()
	if m := pollFd(t, fd, pollAll, 0); m != 0 {
		t.Fatalf("listener poll after the queue drained = %#x, want 0", m)
	}
}
