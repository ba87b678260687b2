package netstack

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpConduit is the kernel side of a UDP socket's conduit: the target end
// and our end are UDP sockets on loopback in the conduit namespace
// (conduitnet.go). The target end mirrors the socket's state, so that
// the target's native calls on it give what Linux's UDP gives:
//   - bound only while the socket is bound (bindTarget), and then our end
//     is connected to it. A native send on an unbound, unconnected
//     socket autobinds it before failing with EDESTADDRREQ
//     (inet_sendmsg); the target end then shows the same autobind, and
//     the socket follows it (syncAutobind);
//   - connected to our end exactly while the socket is connected, and
//     dissolved by connect(AF_UNSPEC), which also unbinds a socket whose
//     port was not chosen by bind (udp_disconnect) on both;
//   - shut down as the socket is.
type udpConduit struct {
	// mu serialises binding the target end.
	mu sync.Mutex
	// bound: the target end is bound at target and our end connected to
	// it.
	bound  atomic.Bool
	target netip.AddrPort // written under mu
	ours   netip.AddrPort // fixed at creation
	// connected: the target end is connected to our end (the socket is
	// connected); only then does the kernel report an injected ICMP
	// error on it, as Linux reports ICMP errors only on connected UDP
	// sockets (without IP_RECVERR).
	connected atomic.Bool
}

// udpOursRcvBuf is our end's receive buffer. UDP has no back-pressure
// between the two ends: what the target writes while the up pump waits
// for the stack queues here, and beyond it datagrams are dropped, as a
// real UDP socket's are when its path is full.
const udpOursRcvBuf = 4 << 20

// newUDPConduit makes the conduit of a UDP socket of family in n: our
// end is bound, the target end not yet.
func newUDPConduit(n *conduitNet, family int) (*conduit, error) {
	fds, err := n.udpPair(family)
	if err != nil {
		return nil, err
	}
	tfd, ofd := fds[0], fds[1]
	oaddr := conduitLoopback(family == unix.AF_INET6, oursBlock, n.next.Add(1))
	u := &udpConduit{}
	if u.ours, err = bindLoopback(ofd, oaddr); err != nil {
		unix.Close(tfd)
		unix.Close(ofd)
		return nil, fmt.Errorf("conduit UDP socket: %w", err)
	}
	setConduitBuf(tfd, unix.SOCK_DGRAM, dgramConduitBuf)
	setBuf(ofd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, udpOursRcvBuf)
	return &conduit{
		target: os.NewFile(uintptr(tfd), "netstack-conduit"),
		ours:   os.NewFile(uintptr(ofd), "netstack-conduit-provider"),
		joiner: -1,
		udp:    u,
	}, nil
}

// growTargetRcvBuf lets the target end (target) of a UDP conduit hold as
// much as the socket's receive buffer, once the program raised SO_RCVBUF:
// the down pump moves every datagram the stack queued into it, and
// without back-pressure between the ends (UDP) what does not fit is
// dropped, where Linux keeps a burst up to SO_RCVBUF. (It never shrinks
// below dgramConduitBuf.)
func (s *Socket) growTargetRcvBuf(target int) {
	if s.c.udp == nil {
		return
	}
	var b [4]byte
	n, err := s.so.GetSockOpt(unix.SOL_SOCKET, unix.SO_RCVBUF, b[:])
	if err != nil || n < 4 {
		return
	}
	// SO_RCVBUFFORCE doubles its argument, as SO_RCVBUF does.
	if v := int(binary.NativeEndian.Uint32(b[:])); v > dgramConduitBuf {
		setBuf(target, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, v/2+1)
	}
}

// bindLoopback binds fd to addr with an ephemeral port and returns the
// address it got.
func bindLoopback(fd int, addr netip.Addr) (netip.AddrPort, error) {
	if err := unix.Bind(fd, sockaddrOf(netip.AddrPortFrom(addr, 0))); err != nil {
		return netip.AddrPort{}, err
	}
	return boundAddr(fd)
}

// boundAddr is fd's local address, a wildcard one (an autobind) given
// as loopback, which reaches it; port 0 when fd is not bound.
func boundAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		a := netip.AddrFrom4(sa.Addr)
		if a.IsUnspecified() {
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		return netip.AddrPortFrom(a, uint16(sa.Port)), nil
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if a.IsUnspecified() {
			a = netip.IPv6Loopback()
		}
		return netip.AddrPortFrom(a, uint16(sa.Port)), nil
	}
	return netip.AddrPort{}, unix.EAFNOSUPPORT
}

func sockaddrOf(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
}

// bindTarget binds the target end of a UDP conduit once the socket is
// bound (by bind, connect, sendto or a received datagram's pump), and
// connects our end to it, so the pump can deliver. It binds with port 0
// like an autobind, so a connect(AF_UNSPEC) unbinds it
// (udp_disconnect), after which mirrorConnect binds it again if the
// socket is still bound. A target end already bound (a native send's
// autobind) is kept.
func (s *Socket) bindTarget() {
	u := s.c.udp
	if u == nil || u.bound.Load() {
		return
	}
	if !s.stackBound() {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bound.Load() {
		return
	}
	withFd(s.c.target, func(fd int) {
		target, err := boundAddr(fd)
		if err == nil && target.Port() == 0 {
			taddr := conduitLoopback(s.so.Family() == unix.AF_INET6, targetBlock, s.p.cnet.next.Add(1))
			target, err = bindLoopback(fd, taddr)
		}
		if err != nil {
			return
		}
		withFd(s.c.ours, func(ofd int) { err = unix.Connect(ofd, sockaddrOf(target)) })
		if err == nil {
			u.target = target
			u.bound.Store(true)
		}
	})
}

// syncAutobind follows a native send's autobind of the target end (see
// udpConduit): the socket, still unbound, is autobound too, before a
// served call that would show or depend on it.
func (s *Socket) syncAutobind() {
	u := s.c.udp
	if u == nil || u.bound.Load() {
		return
	}
	var port uint16
	withFd(s.c.target, func(fd int) {
		if a, err := boundAddr(fd); err == nil {
			port = a.Port()
		}
	})
	if port == 0 {
		return
	}
	// inet_autobind keeps an address the socket still has (one given to
	// bind survives udp_disconnect) and picks a port.
	if !s.stackBound() {
		if name, err := s.so.GetSockName(); err == nil {
			_ = s.so.Bind(name)
		}
	}
	s.bindTarget()
}

// stackBound reports whether the stack socket has a local port.
func (s *Socket) stackBound() bool { return s.so.Endpoint().Info().Local.Port() != 0 }

// mirrorConnect applies the socket's successful connect(sa) to the
// target end of a UDP conduit: connect(AF_UNSPEC) dissolves the
// association (and may unbind it, see bindTarget), any other address
// connects it to our end.
func (s *Socket) mirrorConnect(sa []byte) {
	u := s.c.udp
	if u == nil {
		return
	}
	if len(sa) >= 2 && binary.NativeEndian.Uint16(sa) == unix.AF_UNSPEC {
		u.connected.Store(false)
		u.mu.Lock()
		withFd(s.c.target, func(fd int) {
			_ = connectUnspec(fd)
			if a, err := boundAddr(fd); err == nil && a.Port() == 0 {
				u.bound.Store(false)
			}
		})
		u.mu.Unlock()
		s.bindTarget()
		return
	}
	s.bindTarget()
	if !u.bound.Load() {
		return
	}
	withFd(s.c.target, func(fd int) {
		if unix.Connect(fd, sockaddrOf(u.ours)) == nil {
			u.connected.Store(true)
		}
	})
}

// connectUnspec is connect(fd, {AF_UNSPEC}), which x/sys/unix cannot
// express.
func connectUnspec(fd int) error {
	var sa [unix.SizeofSockaddrInet6]byte // sa_family 0: AF_UNSPEC
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	if e != 0 {
		return e
	}
	return nil
}

// moveDgramError hands the stack socket's pending error (an ICMP error
// on the connected socket) to the target end of a UDP conduit, where the
// target's native recv, send and poll report it as Linux's do.
func (s *Socket) moveDgramError() {
	if u := s.c.udp; u != nil && u.connected.Load() {
		s.giveDgramError(s.takeStackDgramError())
	}
}

// giveDgramError sets e on the target end of a connected UDP conduit. An
// error the kernel cannot be made to report stays with the provider, for
// SO_ERROR and the served recvfrom/recvmsg.
func (s *Socket) giveDgramError(e unix.Errno) {
	u := s.c.udp
	if e == 0 || u == nil || !u.connected.Load() {
		return
	}
	u.mu.Lock()
	target := u.target // (bindTarget may move it)
	u.mu.Unlock()
	if s.p.cnet.injectError(target, u.ours, e) {
		// The kernel handles the ICMP error in softirq, usually before
		// the send returns; wait (bounded) until the target end shows
		// it, then wake a served recvfrom blocked on the stack's error,
		// which found that gone: it looks at the target end again.
		withFd(s.c.target, func(fd int) {
			pfd := []unix.PollFd{{Fd: int32(fd)}}
			_, _ = unix.Poll(pfd, int(injectSettle/time.Millisecond))
		})
		select {
		case s.dgram.kick <- struct{}{}:
		default:
		}
		return
	}
	s.mu.Lock()
	if s.pendingErr == 0 {
		s.pendingErr = e
	}
	s.mu.Unlock()
}

// injectSettle bounds the wait for an injected error to show.
const injectSettle = 50 * time.Millisecond

// upSendError handles the error of the up pump's send of a datagram the
// target wrote. A pending ICMP error the send took (Linux's send returns
// it and sends nothing) cannot be the target's write's result any more:
// it goes to the target end, for the target's next call, rather than be
// lost. Other send errors (no route, ...) are lost (see doc.go).
func (s *Socket) upSendError(err error) {
	e, ok := err.(unix.Errno)
	if !ok || s.c.udp == nil {
		return
	}
	if _, _, icmp := icmpForErrno(s.so.Family() == unix.AF_INET6, e); icmp {
		s.giveDgramError(e)
	}
}

// shutdownUDP applies shutdown(how) to the socket and to the target end
// of its UDP conduit. Shutting down writing stops the target's native
// writes first and waits (bounded) until the up pump sent every datagram
// they queued before: on Linux they were sent already. The target end is
// shut down whatever the stack answered (inet_shutdown sets the flags of
// an unconnected socket too, then reports ENOTCONN).
func (s *Socket) shutdownUDP(how int) error {
	if how != unix.SHUT_RD {
		withFd(s.c.target, func(fd int) { _ = unix.Shutdown(fd, unix.SHUT_WR) })
		s.dgram.waitUpDrained(s.c.ours, dgramDrainTimeout)
	}
	err := s.so.Shutdown(how)
	withFd(s.c.target, func(fd int) { _ = unix.Shutdown(fd, how) })
	return err
}

// drainUp waits (bounded) until the datagrams the target wrote on a
// connected UDP conduit were sent, before a served call changes the
// association or sends itself: on Linux they were sent already.
func (s *Socket) drainUp() {
	if u := s.c.udp; u != nil && u.connected.Load() {
		s.dgram.waitUpDrained(s.c.ours, dgramDrainTimeout)
	}
}

// waitUpDrained waits until our end's receive queue is empty and the up
// pump is not sending a datagram, or timeout.
func (d *dgramState) waitUpDrained(ours *os.File, timeout time.Duration) {
	var t *time.Timer // made only when there is something to wait for
	for {
		d.upMu.Lock()
		empty := true
		withFd(ours, func(fd int) { empty = pollMask(fd, unix.POLLIN)&unix.POLLIN == 0 })
		d.upMu.Unlock()
		if empty {
			return
		}
		if t == nil {
			t = time.NewTimer(timeout)
			defer t.Stop()
		}
		select {
		case <-d.upIdle:
		case <-t.C:
			return
		}
	}
}
