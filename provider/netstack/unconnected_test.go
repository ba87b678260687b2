package netstack_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/provider/netstack"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/socket"
)

// refusedPort is a port of the kernel's loopback where nothing listens.
func refusedPort(t *testing.T) *unix.SockaddrInet4 {
	t.Helper()
	tmp := kernelSocket(t)
	if err := unix.Bind(tmp, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(tmp)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(tmp)
	return sa.(*unix.SockaddrInet4)
}

// TestFreshSocketPollMask: a fresh TCP socket is in TCP_CLOSE (spec A.2)
// and polls POLLOUT|POLLHUP; bound, it still does. The conduit's target
// end, not connected yet, shows the same mask as the kernel's socket.
func TestFreshSocketPollMask(t *testing.T) {
	kfd := kernelSocket(t)
	kmask := pollFd(t, kfd, pollAll, 0)
	if kmask != unix.POLLOUT|unix.POLLHUP {
		t.Fatalf("Linux fresh TCP socket polls %#x, want POLLOUT|POLLHUP", kmask)
	}
	p, _ := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	if m := pollFd(t, fd, pollAll, 0); m != kmask {
		t.Errorf("fresh socket polls %#x, Linux %#x", m, kmask)
	}
	if err := unix.Bind(kfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	kmask = pollFd(t, kfd, pollAll, 0)
	if m := pollFd(t, fd, pollAll, 0); m != kmask {
		t.Errorf("bound socket polls %#x, Linux %#x", m, kmask)
	}
	// connect(AF_UNSPEC) on an unconnected socket succeeds and changes
	// nothing (spec C.13: a disconnect request).
	unspec := make([]byte, 16) // sockaddr_in with sin_family AF_UNSPEC (0)
	if err := s.Connect(context.Background(), unspec, false); err != nil {
		t.Fatalf("connect(AF_UNSPEC) = %v, want 0", err)
	}
	if m := pollFd(t, fd, pollAll, 0); m != kmask {
		t.Errorf("after connect(AF_UNSPEC) the socket polls %#x, Linux %#x", m, kmask)
	}
	// epoll shows the same (POLLHUP is always reported).
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		t.Fatal(err)
	}
	evs := make([]unix.EpollEvent, 1)
	if n, err := unix.EpollWait(ep, evs, 0); err != nil || n != 1 || evs[0].Events != unix.EPOLLOUT|unix.EPOLLHUP {
		t.Errorf("epoll on a bound socket: n=%d events %#x, %v; want EPOLLOUT|EPOLLHUP", n, evs[0].Events, err)
	}
}

// TestFreshSocketReadWrite: data calls on a socket that never connected
// fail without moving a byte. Linux: send EPIPE with SIGPIPE, recv
// ENOTCONN. The unconnected AF_UNIX end gives ENOTCONN for write (no
// SIGPIPE) and EINVAL for read: a documented difference (doc.go), checked
// here so that a change is noticed.
func TestFreshSocketReadWrite(t *testing.T) {
	kfd := kernelSocket(t)
	if _, err := unix.SendmsgN(kfd, []byte("x"), nil, nil, unix.MSG_NOSIGNAL); err != unix.EPIPE {
		t.Fatalf("Linux send on a fresh socket = %v, want EPIPE", err)
	}
	if _, _, err := unix.Recvfrom(kfd, make([]byte, 4), unix.MSG_DONTWAIT); err != unix.ENOTCONN {
		t.Fatalf("Linux recv on a fresh socket = %v, want ENOTCONN", err)
	}
	p, n := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	// A TCP conduit answers as Linux; an AF_UNIX one (no conduit
	// namespace) with its own errnos.
	wantSend, wantRecv := unix.ENOTCONN, unix.EINVAL
	if isTCPConduit(fd) {
		wantSend, wantRecv = unix.EPIPE, unix.ENOTCONN
	}
	if _, err := unix.SendmsgN(fd, []byte("x"), nil, nil, unix.MSG_NOSIGNAL); err != wantSend {
		t.Errorf("send on a fresh socket = %v, want %v", err, wantSend)
	}
	if _, _, err := unix.Recvfrom(fd, make([]byte, 4), unix.MSG_DONTWAIT); err != wantRecv {
		t.Errorf("recv on a fresh socket = %v, want %v", err, wantRecv)
	}
	// The failed calls left nothing behind: the first bytes the peer sees
	// are the ones written after connect.
	l := stackListener(t, n)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	writeAll(t, fd, []byte("first"))
	buf := make([]byte, 16)
	_ = srv.SetReadDeadline(time.Now().Add(waitLimit))
	if k, err := srv.Read(buf); err != nil || string(buf[:k]) != "first" {
		t.Fatalf("peer read %q, %v; want %q", buf[:k], err, "first")
	}
}

// TestBlockingConnectRefused: a blocking connect refused by the peer
// returns ECONNREFUSED (spec C.20), and the socket is back in TCP_CLOSE
// as Linux leaves it after tcp_disconnect: poll POLLOUT|POLLHUP, SO_ERROR
// 0, getpeername ENOTCONN, and a later connect on the same socket works.
func TestBlockingConnectRefused(t *testing.T) {
	to := refusedPort(t)
	kfd := kernelSocket(t)
	if err := unix.Connect(kfd, to); err != unix.ECONNREFUSED {
		t.Fatalf("Linux blocking connect = %v, want ECONNREFUSED", err)
	}
	kmask := pollFd(t, kfd, pollAll, 0)
	kerr, _ := unix.GetsockoptInt(kfd, unix.SOL_SOCKET, unix.SO_ERROR)

	p, n := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.Connect(ctx, sockaddr(netip.MustParseAddrPort("127.0.0.1:9")), false); err != unix.ECONNREFUSED {
		t.Fatalf("blocking connect = %v, want ECONNREFUSED", err)
	}
	if m := pollFd(t, fd, pollAll, 0); m != kmask || m != unix.POLLOUT|unix.POLLHUP {
		t.Errorf("poll after refused blocking connect = %#x, Linux %#x; want POLLOUT|POLLHUP", m, kmask)
	}
	if e := soError(t, s); e != unix.Errno(kerr) || e != 0 {
		t.Errorf("SO_ERROR = %v, Linux %v; want 0 (connect returned it)", e, unix.Errno(kerr))
	}
	if _, err := s.GetPeerName(); err != unix.ENOTCONN {
		t.Errorf("getpeername = %v, want ENOTCONN", err)
	}
	// Connect again on the same socket (spec C.20: a failed socket can
	// connect again); the target's fd carries the new connection.
	l := stackListener(t, n)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	if m := pollFd(t, fd, pollAll, 0); m != unix.POLLOUT {
		t.Errorf("poll once connected = %#x, want POLLOUT", m)
	}
	writeAll(t, fd, []byte("again"))
	buf := make([]byte, 16)
	_ = srv.SetReadDeadline(time.Now().Add(waitLimit))
	if k, err := srv.Read(buf); err != nil || string(buf[:k]) != "again" {
		t.Fatalf("peer read %q, %v; want %q", buf[:k], err, "again")
	}
	if _, err := srv.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, fd, 4); string(got) != "back" {
		t.Fatalf("target read %q, want %q", got, "back")
	}
}

// TestConnectKeepsFile: the conduit is connected in place, so the
// target's open file, its inode (the shim's key), a dup made before
// connect and an epoll registration made before connect (nginx adds the
// socket to epoll, then connects) all carry the connection.
func TestConnectKeepsFile(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	var before, after unix.Stat_t
	if err := unix.Fstat(fd, &before); err != nil {
		t.Fatal(err)
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background(), sockaddr(addrPort(t, l.Addr())), true); err != unix.EINPROGRESS {
		t.Fatalf("non-blocking connect = %v, want EINPROGRESS", err)
	}
	srv := acceptConn(t, l)
	evs := make([]unix.EpollEvent, 1)
	deadline := time.Now().Add(waitLimit)
	for {
		k, err := unix.EpollWait(ep, evs, 100)
		if err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		if k == 1 && evs[0].Events&unix.EPOLLOUT != 0 {
			if evs[0].Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				t.Fatalf("epoll after the handshake = %#x, want no HUP/ERR", evs[0].Events)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("epoll registered before connect never reported EPOLLOUT")
		}
	}
	if err := unix.Fstat(fd, &after); err != nil {
		t.Fatal(err)
	}
	if before.Ino != after.Ino {
		t.Errorf("conduit inode changed across connect: %d → %d", before.Ino, after.Ino)
	}
	writeAll(t, dup, []byte("via-dup"))
	buf := make([]byte, 16)
	_ = srv.SetReadDeadline(time.Now().Add(waitLimit))
	if k, err := srv.Read(buf); err != nil || string(buf[:k]) != "via-dup" {
		t.Fatalf("peer read %q, %v; want %q", buf[:k], err, "via-dup")
	}
	if _, err := srv.Write([]byte("in")); err != nil {
		t.Fatal(err)
	}
	for {
		k, err := unix.EpollWait(ep, evs, 100)
		if err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		if k == 1 && evs[0].Events&unix.EPOLLIN != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("epoll registered before connect never reported EPOLLIN")
		}
	}
	if got := readFull(t, fd, 2); string(got) != "in" {
		t.Fatalf("target read %q", got)
	}
}

// delayedPeer is a provider on node A whose connections to the returned
// listener on node B wait for the SYN-ACK until the test advances the fake
// clock.
func delayedPeer(t *testing.T) (*netstack.Provider, *clock.Fake, net.Listener) {
	t.Helper()
	fake := clock.NewFake()
	a, b := pipe.New(pipe.Config{Clock: fake, BToA: pipe.Impairments{Delay: time.Second}})
	na, nb := newNode(t, nil), newNode(t, nil)
	nicA, err := na.AddNIC(a, "eth0", netip.MustParsePrefix("10.213.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	nicB, err := nb.AddNIC(b, "eth0", netip.MustParsePrefix("10.213.0.2/24"))
	if err != nil {
		t.Fatal(err)
	}
	na.ARP.Table(nicA.ID()).AddStatic(netip.MustParseAddr("10.213.0.2"), b.LinkAddress())
	nb.ARP.Table(nicB.ID()).AddStatic(netip.MustParseAddr("10.213.0.1"), a.LinkAddress())
	l, err := nb.Listen("tcp4", "10.213.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := netstack.New(na)
	t.Cleanup(func() { p.Close() })
	return p, fake, l
}

// TestInterruptedBlockingConnectReadiness: a blocking connect interrupted
// while the handshake is pending (spec C.19: ERESTARTSYS, the handshake
// goes on) leaves the socket as a non-blocking connect does: no events
// while SYN_SENT (not the fresh socket's POLLOUT|POLLHUP), POLLOUT when
// established.
func TestInterruptedBlockingConnectReadiness(t *testing.T) {
	p, fake, l := delayedPeer(t)
	to := addrPort(t, l.Addr())
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Connect(ctx, sockaddr(to), false); !socket.IsInterrupt(err) {
		t.Fatalf("interrupted blocking connect = %v, want an interruption errno", err)
	}
	if m := pollFd(t, fd, pollAll, 0); m != 0 {
		t.Fatalf("poll while SYN_SENT = %#x, want 0 (Linux: no events)", m)
	}
	established := false
	for i := 0; i < 100 && !established; i++ {
		fake.Advance(time.Second)
		established = pollFd(t, fd, pollAll, 50*time.Millisecond) == unix.POLLOUT
	}
	if !established {
		t.Fatal("no POLLOUT (alone) after the handshake")
	}
	if err := s.Connect(context.Background(), sockaddr(to), false); err != nil && err != unix.EISCONN {
		t.Fatalf("connect after the interrupted one = %v", err)
	}
}

// TestListenAfterFreshPoll: listen on a fresh socket connects its conduit
// in place: the listener polls nothing until a connection waits (Linux:
// inet_csk_listen_poll), then POLLIN.
func TestListenAfterFreshPoll(t *testing.T) {
	p, n := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	if m := pollFd(t, fd, pollAll, 0); m != unix.POLLOUT|unix.POLLHUP {
		t.Fatalf("fresh socket polls %#x, want POLLOUT|POLLHUP", m)
	}
	if err := s.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(4); err != nil {
		t.Fatal(err)
	}
	if m := pollFd(t, fd, pollAll, 0); m != 0 {
		t.Fatalf("listener polls %#x, want 0", m)
	}
	c, err := n.Dial("tcp4", mustName(t, s).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := pollUntil(t, fd, pollAll, unix.POLLIN); m != unix.POLLIN {
		t.Errorf("listener with a pending connection polls %#x, want POLLIN", m)
	}
	conn, _, err := s.Accept(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var _ provider.Socket = conn
}

// TestConnectWithoutFileDescriptors: when the conduit cannot be joined
// (the provider is out of file descriptors), connect fails with that
// errno instead of leaving a connection the target cannot see.
func TestConnectWithoutFileDescriptors(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, _ := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var err error
	withoutFileDescriptors(t, func() { err = s.Connect(ctx, sockaddr(addrPort(t, l.Addr())), false) })
	if errnoOf(err) != unix.EMFILE {
		t.Fatalf("connect without descriptors = %v, want EMFILE", err)
	}
}

// withoutFileDescriptors runs f with RLIMIT_NOFILE's soft limit at the
// lowest free descriptor number, so that no new descriptor can be made.
func withoutFileDescriptors(t *testing.T, f func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	free, err := unix.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(free)
	lim := old
	lim.Cur = uint64(free)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	defer func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Fatal(err)
		}
	}()
	f()
}

// TestListenWithoutFileDescriptors: when the listener's conduit cannot be
// joined (no file descriptors), listen fails with EMFILE and leaves
// nothing half-done: the stack socket is in CLOSE again (no handshake
// completes that nobody could accept: a peer's connect is refused), the
// target end polls OUT|HUP as Linux's socket after a failed listen, and
// a later listen works.
func TestListenWithoutFileDescriptors(t *testing.T) {
	p, n := newProvider(t)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	if isTCPConduit(fd) {
		t.Skip("a TCP conduit's listen makes no descriptor: the target end itself listens")
	}
	if err := s.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	sa, err := s.GetSockName()
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), uint16(sa[2])<<8|uint16(sa[3]))
	var lerr error
	withoutFileDescriptors(t, func() { lerr = s.Listen(8) })
	if errnoOf(lerr) != unix.EMFILE {
		t.Fatalf("listen without descriptors = %v, want EMFILE", lerr)
	}
	if st := s.(*netstack.Socket).Stack().Endpoint().Info().State; st != 7 {
		t.Errorf("stack socket state after the failed listen = %d, want 7 (CLOSE)", st)
	}
	if m, want := pollFd(t, fd, unix.POLLIN|unix.POLLOUT|unix.POLLPRI|unix.POLLRDHUP, 0), int16(unix.POLLOUT|unix.POLLHUP); m != want {
		t.Errorf("poll after the failed listen = %#x, want %#x (OUT|HUP)", m, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if c, err := n.DialContext(ctx, "tcp4", ap.String()); err == nil {
		c.Close()
		t.Fatal("a peer connected to the socket whose listen failed")
	} else if errnoOf(err) != unix.ECONNREFUSED {
		t.Errorf("connect to the socket whose listen failed = %v, want ECONNREFUSED", err)
	}

	if err := s.Listen(8); err != nil {
		t.Fatalf("listen again: %v", err)
	}
	c, err := n.DialContext(ctx, "tcp4", ap.String())
	if err != nil {
		t.Fatalf("connect after the second listen: %v", err)
	}
	defer c.Close()
	child, _, err := s.Accept(ctx, false)
	if err != nil {
		t.Fatalf("accept after the second listen: %v", err)
	}
	child.Close()
}
