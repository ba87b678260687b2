package socket_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

// streamAPI adds the stream calls to api.
type streamAPI interface {
	api
	listen(fd, backlog int) error
	// accept waits (if wait, at most 2 s) for a connection, then accepts
	// without blocking.
	accept(fd int, wait bool) (int, netip.AddrPort, error)
	// poll waits (at most 2 s) for any of events and returns the ready
	// events.
	poll(fd int, events int16) int16
	setNonblock(fd int, on bool)
	getpeername(fd int) (netip.AddrPort, error)
}

func (kernelAPI) listen(fd, backlog int) error { return unix.Listen(fd, backlog) }
func (kernelAPI) accept(fd int, wait bool) (int, netip.AddrPort, error) {
	if wait {
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 2000)
	}
	nfd, sa, err := unix.Accept4(fd, unix.SOCK_NONBLOCK)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	unix.SetNonblock(nfd, false)
	return nfd, fromSockaddr(sa), nil
}
func (kernelAPI) poll(fd int, events int16) int16 {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	unix.Poll(fds, 2000)
	return fds[0].Revents
}
func (kernelAPI) setNonblock(fd int, on bool) { unix.SetNonblock(fd, on) }
func (kernelAPI) getpeername(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getpeername(fd)
	return fromSockaddr(sa), err
}

func (s *stackAPI) listen(fd, backlog int) error { return s.socks[fd].Listen(backlog) }
func (s *stackAPI) accept(fd int, wait bool) (int, netip.AddrPort, error) {
	if wait {
		s.poll(fd, unix.POLLIN)
	}
	ns, peer, err := s.socks[fd].AcceptAddr(ctx0, unix.SOCK_NONBLOCK)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	ns.SetNonblocking(false)
	s.next++
	s.socks[s.next] = ns
	return s.next, peer, nil
}
func (s *stackAPI) poll(fd int, events int16) int16 {
	so := s.socks[fd]
	mask := waiter.EventMask(events) | waiter.EventErr | waiter.EventHUp
	e, ch := waiter.ChannelEntry(mask)
	so.EventQueue().Register(e)
	defer so.EventQueue().Unregister(e)
	deadline := time.After(2 * time.Second)
	for {
		if m := so.Readiness(waiter.EventMask(events)); m != 0 {
			return int16(m)
		}
		select {
		case <-ch:
		case <-deadline:
			return 0
		}
	}
}
func (s *stackAPI) setNonblock(fd int, on bool) { s.socks[fd].SetNonblocking(on) }
func (s *stackAPI) getpeername(fd int) (netip.AddrPort, error) {
	return s.socks[fd].PeerAddr()
}

func pollNames(r int16) string {
	var names []string
	for _, e := range []struct {
		bit  int16
		name string
	}{{unix.POLLIN, "IN"}, {unix.POLLOUT, "OUT"}, {unix.POLLERR, "ERR"}, {unix.POLLHUP, "HUP"}, {unix.POLLRDHUP, "RDHUP"}} {
		if r&e.bit != 0 {
			names = append(names, e.name)
		}
	}
	return strings.Join(names, "|")
}

// tcpScenario runs the socket-level TCP rules of spec sections B, C and K
// on loopback.
func tcpScenario(a streamAPI, tr *transcript) {
	lo := netip.MustParseAddr("127.0.0.1")
	l, _ := a.socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	defer a.close(l)
	tr.add("bind %s", errs(a.bind(l, netip.AddrPortFrom(lo, 0))))
	addr := a.getsockname(l)
	dup, _ := a.socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	tr.add("bind same address: %s; then local %v", errs(a.bind(dup, addr)), a.getsockname(dup))
	a.close(dup)
	tr.add("listen %s", errs(a.listen(l, 8)))
	v, _ := a.getsockoptInt(l, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	tr.add("SO_ACCEPTCONN %d", v)
	tr.add("bind a listener again: %s", errs(a.bind(l, netip.AddrPortFrom(lo, 0))))
	tr.add("connect a listener: %s", errs(a.connect(l, addr)))
	a.setNonblock(l, true)
	_, _, err := a.accept(l, false)
	a.setNonblock(l, false)
	tr.add("accept on an empty queue: %s", errs(err))

	c, _ := a.socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	defer a.close(c)
	_, err = a.getpeername(c)
	tr.add("getpeername before connect: %s", errs(err))
	a.setNonblock(c, true)
	tr.add("non-blocking connect: %s", errs(a.connect(c, addr)))
	tr.add("poll OUT: %s", pollNames(a.poll(c, unix.POLLOUT)))
	tr.add("connect after the handshake: %s", errs(a.connect(c, addr)))
	tr.add("connect again: %s", errs(a.connect(c, addr)))
	a.setNonblock(c, false)
	s, peer, err := a.accept(l, true)
	tr.add("accept: %s, peer is the client: %v", errs(err), peer == a.getsockname(c))
	defer a.close(s)
	tr.add("listen on a connected socket: %s", errs(a.listen(c, 1)))

	n, err := a.sendto(c, []byte("hello"), 0, netip.AddrPort{})
	tr.add("client send: %d %s", n, errs(err))
	buf := make([]byte, 64)
	n, _, err = a.recvfrom(s, buf, 0)
	tr.add("server recv: %q %s", buf[:max(n, 0)], errs(err))
	tr.add("server SHUT_WR: %s", errs(a.shutdown(s, unix.SHUT_WR)))
	n, _, err = a.recvfrom(c, buf, 0)
	tr.add("client recv after server SHUT_WR: %d %s", n, errs(err))
	tr.add("client poll: %s", pollNames(a.poll(c, unix.POLLIN|unix.POLLOUT|unix.POLLRDHUP)))
	n, err = a.sendto(c, []byte("still"), 0, netip.AddrPort{})
	tr.add("client send on the half-closed connection: %d %s", n, errs(err))
	n, _, err = a.recvfrom(s, buf, 0)
	tr.add("server recv: %q %s", buf[:max(n, 0)], errs(err))
	n, err = a.sendto(s, []byte("x"), unix.MSG_NOSIGNAL, netip.AddrPort{})
	tr.add("server send after SHUT_WR: %d %s", n, errs(err))

	// Refused non-blocking connect: EINPROGRESS, POLLERR, SO_ERROR, then
	// ECONNABORTED once SO_ERROR was read (spec 20).
	tmp, _ := a.socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	a.bind(tmp, netip.AddrPortFrom(lo, 0))
	dead := a.getsockname(tmp)
	a.close(tmp)
	r, _ := a.socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	defer a.close(r)
	a.setNonblock(r, true)
	tr.add("connect to a closed port: %s", errs(a.connect(r, dead)))
	tr.add("poll: %s", pollNames(a.poll(r, unix.POLLOUT)))
	v, _ = a.getsockoptInt(r, unix.SOL_SOCKET, unix.SO_ERROR)
	tr.add("SO_ERROR %s", unix.ErrnoName(unix.Errno(v)))
	tr.add("connect after SO_ERROR was read: %s", errs(a.connect(r, dead)))
	a.setNonblock(r, false)
	tr.add("blocking connect to the closed port: %s", errs(a.connect(r, dead)))
}

func TestTCPTranscriptMatchesLinux(t *testing.T) {
	var kernel, ours transcript
	tcpScenario(kernelAPI{}, &kernel)
	tcpScenario(&stackAPI{n: newNode(t, nil), socks: map[int]*socket.Socket{}}, &ours)
	compareTranscripts(t, kernel, ours)
}

func compareTranscripts(t *testing.T, kernel, ours transcript) {
	t.Helper()
	if strings.Join(kernel.lines, "\n") == strings.Join(ours.lines, "\n") {
		if testing.Verbose() {
			for _, l := range ours.lines {
				t.Log(l)
			}
		}
		return
	}
	for i := range max(len(kernel.lines), len(ours.lines)) {
		var k, o string
		if i < len(kernel.lines) {
			k = kernel.lines[i]
		}
		if i < len(ours.lines) {
			o = ours.lines[i]
		}
		mark := "  "
		if k != o {
			mark = "!="
		}
		t.Logf("%s linux: %-50s stack: %s", mark, k, o)
	}
	t.Fatal("the stack's transcript differs from Linux's")
}
