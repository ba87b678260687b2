package socket_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/node"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

// api is the part of the socket interface the transcript scenarios use,
// implemented once by kernel sockets and once by the stack's, so the
// same scenario can run on both and print what a test program would.
type api interface {
	socket(family, sotype, proto int) (int, error)
	bind(fd int, ap netip.AddrPort) error
	connect(fd int, ap netip.AddrPort) error
	sendto(fd int, p []byte, flags int, to netip.AddrPort) (int, error)
	// recvfrom waits (unless MSG_DONTWAIT) for the socket to be
	// readable or in error, then receives without blocking.
	recvfrom(fd int, p []byte, flags int) (int, netip.AddrPort, error)
	// wait waits (at most 2 s) for POLLIN, POLLERR or POLLHUP.
	wait(fd int)
	getsockname(fd int) netip.AddrPort
	getsockoptInt(fd, level, name int) (int, error)
	setsockoptInt(fd, level, name, v int) error
	shutdown(fd, how int) error
	close(fd int)
}

type kernelAPI struct{}

func toSockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func fromSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

func (kernelAPI) socket(f, t, p int) (int, error)      { return unix.Socket(f, t, p) }
func (kernelAPI) bind(fd int, ap netip.AddrPort) error { return unix.Bind(fd, toSockaddr(ap)) }
func (kernelAPI) connect(fd int, ap netip.AddrPort) error {
	if !ap.IsValid() {
		return kernelCall(unix.SYS_CONNECT, fd, make([]byte, 16)) // AF_UNSPEC
	}
	return unix.Connect(fd, toSockaddr(ap))
}
func (kernelAPI) shutdown(fd, how int) error              { return unix.Shutdown(fd, how) }
func (kernelAPI) close(fd int)                            { unix.Close(fd) }
func (kernelAPI) setsockoptInt(fd, l, n, v int) error     { return unix.SetsockoptInt(fd, l, n, v) }
func (kernelAPI) getsockoptInt(fd, l, n int) (int, error) { return unix.GetsockoptInt(fd, l, n) }
func (kernelAPI) getsockname(fd int) netip.AddrPort {
	sa, _ := unix.Getsockname(fd)
	return fromSockaddr(sa)
}

func (kernelAPI) sendto(fd int, p []byte, flags int, to netip.AddrPort) (int, error) {
	if !to.IsValid() {
		return unix.SendmsgN(fd, p, nil, nil, flags)
	}
	return unix.SendmsgN(fd, p, nil, toSockaddr(to), flags)
}

func (kernelAPI) wait(fd int) {
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 2000)
}

func (k kernelAPI) recvfrom(fd int, p []byte, flags int) (int, netip.AddrPort, error) {
	if flags&unix.MSG_DONTWAIT == 0 {
		k.wait(fd)
	}
	n, _, _, from, err := unix.Recvmsg(fd, p, nil, flags|unix.MSG_DONTWAIT)
	if err != nil {
		n = 0
	}
	return n, fromSockaddr(from), err
}

// stackAPI serves the same calls from a Node's sockets.
type stackAPI struct {
	n     *node.Node
	socks map[int]*socket.Socket
	next  int
}

func (s *stackAPI) socket(f, t, p int) (int, error) {
	so, err := s.n.Socket(f, t, p)
	if err != nil {
		return -1, err
	}
	s.next++
	s.socks[s.next] = so
	return s.next, nil
}
func (s *stackAPI) bind(fd int, ap netip.AddrPort) error    { return s.socks[fd].BindAddr(ap) }
func (s *stackAPI) connect(fd int, ap netip.AddrPort) error { return s.socks[fd].ConnectAddr(ctx0, ap) }
func (s *stackAPI) shutdown(fd, how int) error              { return s.socks[fd].Shutdown(how) }
func (s *stackAPI) close(fd int)                            { s.socks[fd].Close() }
func (s *stackAPI) getsockname(fd int) netip.AddrPort       { return s.socks[fd].LocalAddr() }
func (s *stackAPI) setsockoptInt(fd, l, n, v int) error {
	b := make([]byte, 4)
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return s.socks[fd].SetSockOpt(l, n, b)
}
func (s *stackAPI) getsockoptInt(fd, l, n int) (int, error) {
	b := make([]byte, 4)
	_, err := s.socks[fd].GetSockOpt(l, n, b)
	return int(int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)), err
}
func (s *stackAPI) sendto(fd int, p []byte, flags int, to netip.AddrPort) (int, error) {
	n, _, err := s.socks[fd].SendMsg(ctx0, p, flags, to)
	return n, err
}
func (s *stackAPI) recvfrom(fd int, p []byte, flags int) (int, netip.AddrPort, error) {
	if flags&unix.MSG_DONTWAIT == 0 {
		s.wait(fd)
	}
	r, err := s.socks[fd].RecvMsg(ctx0, p, flags|unix.MSG_DONTWAIT)
	return r.N, r.From, err
}

func (s *stackAPI) wait(fd int) {
	so := s.socks[fd]
	e, ch := waiter.ChannelEntry(waiter.EventIn)
	so.EventQueue().Register(e)
	defer so.EventQueue().Unregister(e)
	deadline := time.After(2 * time.Second)
	for so.Readiness(waiter.EventIn)&(waiter.EventIn|waiter.EventErr|waiter.EventHUp) == 0 {
		select {
		case <-ch:
		case <-deadline:
			return
		}
	}
}

// transcript records what a scenario observed, without port numbers
// (ephemeral ports differ between runs).
type transcript struct{ lines []string }

func (t *transcript) add(format string, args ...any) {
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
}

func errs(err error) string {
	if err == nil {
		return "ok"
	}
	return unix.ErrnoName(errnoOf(err))
}

// udpScenario exercises connected and unconnected UDP on loopback: echo,
// MSG_PEEK/MSG_TRUNC, ECONNREFUSED after a port unreachable (reported
// once), IP_RECVERR, dual-stack receive, shutdown.
func udpScenario(a api, tr *transcript) {
	lo := netip.MustParseAddr("127.0.0.1")
	srv, _ := a.socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	defer a.close(srv)
	tr.add("bind [::]:0 %s", errs(a.bind(srv, netip.AddrPortFrom(netip.IPv6Unspecified(), 0))))
	port := a.getsockname(srv).Port()
	cli, _ := a.socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	defer a.close(cli)
	n, err := a.sendto(cli, make([]byte, 100), 0, netip.AddrPortFrom(lo, port))
	tr.add("sendto 100: %d %s", n, errs(err))
	buf := make([]byte, 10)
	n, from, err := a.recvfrom(srv, buf, unix.MSG_PEEK|unix.MSG_TRUNC)
	tr.add("recvfrom peek|trunc: %d from %v %s", n, from.Addr(), errs(err))
	n, _, err = a.recvfrom(srv, buf, 0)
	tr.add("recvfrom 10-byte buffer: %d %s", n, errs(err))
	n, _, err = a.recvfrom(srv, make([]byte, 10), unix.MSG_DONTWAIT)
	tr.add("recvfrom empty: %d %s", n, errs(err))

	// A port nobody listens on: use a port we bound and closed.
	tmp, _ := a.socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	a.bind(tmp, netip.AddrPortFrom(lo, 0))
	dead := a.getsockname(tmp)
	a.close(tmp)
	c, _ := a.socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	defer a.close(c)
	tr.add("connect dead port %s", errs(a.connect(c, dead)))
	n, err = a.sendto(c, []byte("x"), 0, netip.AddrPort{})
	tr.add("send: %d %s", n, errs(err))
	_, _, err = a.recvfrom(c, buf, 0)
	tr.add("recv after port unreachable: %s", errs(err))
	_, _, err = a.recvfrom(c, buf, unix.MSG_DONTWAIT)
	tr.add("recv again: %s", errs(err))
	a.sendto(c, []byte("x"), 0, netip.AddrPort{})
	a.wait(c)
	v, err := a.getsockoptInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
	tr.add("SO_ERROR: %s %s", unix.ErrnoName(unix.Errno(v)), errs(err))
	v, err = a.getsockoptInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
	tr.add("SO_ERROR again: %d %s", v, errs(err))
	n, err = a.sendto(c, []byte("x"), 0, netip.AddrPort{})
	tr.add("send after reading SO_ERROR: %d %s", n, errs(err))
	a.wait(c)
	n, err = a.sendto(c, []byte("x"), 0, netip.AddrPort{})
	tr.add("send with the error pending: %d %s", n, errs(err))
	tr.add("disconnect: %s", errs(a.connect(c, netip.AddrPort{})))
	tr.add("local after disconnect: %v", a.getsockname(c))

	u, _ := a.socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	defer a.close(u)
	tr.add("IP_RECVERR %s", errs(a.setsockoptInt(u, unix.SOL_IP, unix.IP_RECVERR, 1)))
	a.sendto(u, []byte("x"), 0, dead)
	_, _, err = a.recvfrom(u, buf, 0)
	tr.add("unconnected with IP_RECVERR: %s", errs(err))

	tr.add("shutdown unconnected: %s", errs(a.shutdown(u, unix.SHUT_WR)))
	_, err = a.sendto(u, []byte("x"), unix.MSG_NOSIGNAL, dead)
	tr.add("send after SHUT_WR: %s", errs(err))
	v, _ = a.getsockoptInt(u, unix.SOL_SOCKET, unix.SO_TYPE)
	tr.add("SO_TYPE %d", v)
	tr.add("SO_RCVBUF=1 %s", errs(a.setsockoptInt(u, unix.SOL_SOCKET, unix.SO_RCVBUF, 1)))
	v, _ = a.getsockoptInt(u, unix.SOL_SOCKET, unix.SO_RCVBUF)
	tr.add("SO_RCVBUF reads %d", v)
	tr.add("IPV6_V6ONLY on AF_INET %s", errs(a.setsockoptInt(u, unix.SOL_IPV6, unix.IPV6_V6ONLY, 1)))
	v, _ = a.getsockoptInt(srv, unix.SOL_IPV6, unix.IPV6_V6ONLY)
	tr.add("IPV6_V6ONLY default %d", v)
}

func TestUDPTranscriptMatchesLinux(t *testing.T) {
	if fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0); err != nil {
		t.Skipf("skipping: the host has no IPv6 sockets: %v", err)
	} else {
		unix.Close(fd)
	}
	var kernel, ours transcript
	udpScenario(kernelAPI{}, &kernel)
	udpScenario(&stackAPI{n: newNode(t, nil), socks: map[int]*socket.Socket{}}, &ours)
	compareTranscripts(t, kernel, ours)
}
