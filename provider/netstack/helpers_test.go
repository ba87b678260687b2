package netstack_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/provider/netstack"
	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/node"
	"github.com/netprov/netprov/stack/socket"
)

// waitLimit bounds every wait of the tests.
const waitLimit = 10 * time.Second

func newNode(t testing.TB, c clock.Clock) *node.Node {
	t.Helper()
	n, err := node.New(node.Options{Stack: stack.Options{Clock: c}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func newProvider(t testing.TB) (*netstack.Provider, *node.Node) {
	t.Helper()
	n := newNode(t, nil)
	p := netstack.New(n)
	t.Cleanup(func() { p.Close() })
	return p, n
}

// newSocket creates a provider socket; fd is its conduit as the target
// sees it (the test plays the sandboxed program on it).
func newSocket(t *testing.T, p provider.Provider, family, sotype int) (provider.Socket, int) {
	t.Helper()
	s, err := p.Socket(family, sotype, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, targetFd(t, s)
}

// targetFd is the target's own reference to the conduit (the shim's
// SECCOMP_IOCTL_NOTIF_ADDFD installs the same open file description, as
// dup does).
func targetFd(t *testing.T, s provider.Socket) int {
	t.Helper()
	fd, err := unix.FcntlInt(s.Conduit().Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func sockaddr(ap netip.AddrPort) []byte {
	fam := unix.AF_INET
	if ap.Addr().Is6() {
		fam = unix.AF_INET6
	}
	return socket.FormatSockaddr(fam, ap)
}

func addrPort(t testing.TB, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// pollFd waits up to d for events on fd and returns revents (0 on
// timeout).
func pollFd(t *testing.T, fd int, events int16, d time.Duration) int16 {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	deadline := time.Now().Add(d)
	for {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms < 0 {
			ms = 0
		}
		n, err := unix.Poll(pfd, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if n == 0 {
			return 0
		}
		return pfd[0].Revents
	}
}

// pollUntil polls fd until revents has all of want.
func pollUntil(t *testing.T, fd int, events, want int16) int16 {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		m := pollFd(t, fd, events, 100*time.Millisecond)
		if m&want == want {
			return m
		}
	}
	t.Fatalf("fd %d: no events %#x within %v", fd, want, waitLimit)
	return 0
}

// readFull reads n bytes from a blocking fd.
func readFull(t *testing.T, fd int, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, 64<<10)
	for len(out) < n {
		pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
		k, err := unix.Read(fd, buf[:min(len(buf), n-len(out))])
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if k == 0 {
			t.Fatalf("read: EOF after %d of %d bytes", len(out), n)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

func writeAll(t *testing.T, fd int, p []byte) {
	t.Helper()
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		p = p[n:]
	}
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// soError reads SO_ERROR through the provider, as the shim serves it.
func soError(t *testing.T, s provider.Socket) unix.Errno {
	t.Helper()
	var b [4]byte
	if _, err := s.GetSockOpt(unix.SOL_SOCKET, unix.SO_ERROR, b[:]); err != nil {
		t.Fatalf("getsockopt SO_ERROR: %v", err)
	}
	return unix.Errno(binary.NativeEndian.Uint32(b[:]))
}

// stackListener opens a TCP listener on the node's loopback.
func stackListener(t *testing.T, n *node.Node) net.Listener {
	t.Helper()
	l, err := n.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// connect connects s to ap with a blocking connect.
func connect(t *testing.T, s provider.Socket, ap netip.AddrPort) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.Connect(ctx, sockaddr(ap), false); err != nil {
		t.Fatalf("connect %v: %v", ap, err)
	}
}

// providerListener is a provider socket of p listening on 127.0.0.1 (a
// kernel-chosen port); fd is its target end.
func providerListener(t *testing.T, p provider.Provider) (provider.Socket, int) {
	t.Helper()
	ls, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	if err := ls.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	if err := ls.Listen(8); err != nil {
		t.Fatal(err)
	}
	return ls, fd
}

// acceptChild accepts one connection on the provider listener ls (a
// blocking accept, bounded by waitLimit), closed at cleanup.
func acceptChild(t *testing.T, ls provider.Socket) provider.Socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	child, _, err := ls.Accept(ctx, false)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { child.Close() })
	return child
}

// acceptConn accepts one connection from l within waitLimit.
func acceptConn(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := l.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(waitLimit):
		t.Fatal("accept: timed out")
	}
	return nil
}

// kernelPair returns a connected kernel TCP pair on 127.0.0.1 (the Linux
// oracle): client fd and server fd, both blocking.
func kernelPair(t *testing.T) (client, server int) {
	t.Helper()
	l := kernelListener(t)
	client = kernelSocket(t)
	sa, _ := unix.Getsockname(l)
	if err := unix.Connect(client, sa); err != nil {
		t.Fatal(err)
	}
	server, _, err := unix.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(server) })
	return client, server
}

func kernelSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func kernelListener(t *testing.T) int {
	t.Helper()
	l := kernelSocket(t)
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 8); err != nil {
		t.Fatal(err)
	}
	return l
}

func setLingerZero(t *testing.T, fd int) {
	t.Helper()
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		t.Fatal(err)
	}
}

// resetConn closes a stack connection with SO_LINGER 0 (RST).
func resetConn(t *testing.T, c net.Conn) {
	t.Helper()
	sc, ok := c.(interface{ Socket() *socket.Socket })
	if !ok {
		t.Fatalf("%T has no stack socket", c)
	}
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:4], 1)
	if err := sc.Socket().SetSockOpt(unix.SOL_SOCKET, unix.SO_LINGER, b[:]); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func mustName(t *testing.T, s provider.Socket) netip.AddrPort {
	t.Helper()
	sa, err := s.GetSockName()
	if err != nil {
		t.Fatal(err)
	}
	if binary.NativeEndian.Uint16(sa) == unix.AF_INET6 {
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])), binary.BigEndian.Uint16(sa[2:4]))
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:4]))
}

// listenUDP is a stack UDP socket of n bound to addr ("udp4" or "udp6"
// network), closed when the test ends.
func listenUDP(t *testing.T, n *node.Node, network, addr string) net.PacketConn {
	t.Helper()
	c, err := n.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedUDPPort is a loopback address and port of n where no UDP socket
// listens (a port unreachable comes back).
func closedUDPPort(t *testing.T, n *node.Node, network, loopback string) netip.AddrPort {
	t.Helper()
	c, err := n.ListenPacket(network, loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return addrPort(t, c.LocalAddr())
}

// isTCPConduit reports whether the target end fd is a kernel TCP socket
// (a TCP conduit) rather than an AF_UNIX one.
func isTCPConduit(fd int) bool {
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	return err == nil && proto == unix.IPPROTO_TCP
}
