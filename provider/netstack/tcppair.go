package netstack

// Kernel TCP pairs of the conduit namespace, the building blocks of TCP
// conduits (doc.go, "TCP conduits"): a TCP conduit's target end is a
// kernel TCP socket of the conduit namespace, so every native call on it
// is answered by Linux's TCP; our end is connected to it through a pair
// listener on the namespace's loopback.

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// pairListener accepts the connections that make TCP pairs.
type pairListener struct {
	mu   sync.Mutex // one pair at a time: accept returns that pair's O
	fd   int
	addr netip.AddrPort
}

// tcpRmemPath is the conduit namespace's tcp_rmem sysctl, read and written
// by the worker (its thread is in the namespace).
const tcpRmemPath = "/proc/sys/net/ipv4/tcp_rmem"

// newPairListener makes the pair listener of family, on the worker. It is
// created while the namespace's default receive buffer (tcp_rmem[1]) is
// 4096, so the connections it accepts start with a small receive window
// (a filler of a few KiB closes it, see fillTCP) without locking their
// buffer: window scaling and autotuning stay as for any socket.
func (n *conduitNet) newPairListener(family int) (*pairListener, error) {
	addr := netip.AddrPortFrom(conduitLoopback(family == unix.AF_INET6, pairBlock, 1), 0)
	var l *pairListener
	var err error
	if werr := n.onWorker(func() { l, err = makePairListener(family, addr) }); werr != nil {
		return nil, werr
	}
	return l, err
}

func makePairListener(family int, addr netip.AddrPort) (*pairListener, error) {
	old, err := os.ReadFile(tcpRmemPath)
	if err != nil {
		return nil, fmt.Errorf("pair listener: %w", err)
	}
	var lo, def, hi int
	if _, err := fmt.Sscan(string(old), &lo, &def, &hi); err != nil {
		return nil, fmt.Errorf("pair listener: parse tcp_rmem %q: %w", old, err)
	}
	if err := os.WriteFile(tcpRmemPath, fmt.Appendf(nil, "%d 4096 %d", lo, hi), 0); err != nil {
		return nil, fmt.Errorf("pair listener: %w", err)
	}
	defer os.WriteFile(tcpRmemPath, old, 0) //nolint:errcheck // best effort: only pair listeners are made here
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("pair listener: %w", err)
	}
	if err := unix.Bind(fd, sockaddrOf(addr)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pair listener: bind: %w", err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pair listener: listen: %w", err)
	}
	bound, err := boundAddr(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &pairListener{fd: fd, addr: bound}, nil
}

// tcpSocket returns an unconnected TCP socket of family in the namespace
// (pooled).
func (n *conduitNet) tcpSocket(family int) (int, error) {
	fds, err := n.pooled(poolKind(unix.IPPROTO_TCP, family), family)
	return fds[0], err
}

// pair connects p (a TCP socket of the namespace, blocking or not) to the
// listener and returns our end, non-blocking. On loopback the handshake
// completes within connect, so the accept does not wait; the accepted
// connection is checked to be p's.
func (l *pairListener) pair(p int) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd < 0 {
		return -1, unix.EBADF
	}
	// p is the target's blocking socket, with the target's SO_SNDTIMEO:
	// on a busy host the loopback handshake can outlast the call, which
	// then returns EINPROGRESS (timed out) or EINTR (a signal to this
	// thread, such as Go's preemption: with a send timeout set, connect
	// is not restarted). The handshake goes on either way; the accepts
	// below wait for it.
	switch err := unix.Connect(p, sockaddrOf(l.addr)); err {
	case nil, unix.EINPROGRESS, unix.EINTR, unix.EALREADY:
	default:
		return -1, fmt.Errorf("pair: connect: %w", err)
	}
	want, err := boundAddr(p)
	if err != nil {
		return -1, err
	}
	for range 4 {
		o, sa, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		if err == unix.EAGAIN {
			pfd := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}}
			_, _ = unix.Poll(pfd, 1000)
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("pair: accept: %w", err)
		}
		if peer, ok := addrPortOf(sa); ok && peer.Port() == want.Port() {
			// The hop between the ends must not delay what it carries
			// (Nagle applies in the stack, with the target's options),
			// and our end keeps the target's urgent bytes in line
			// (readToMark) from the first byte on.
			_ = unix.SetsockoptInt(p, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			_ = unix.SetsockoptInt(o, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			setOursInline(o)
			return o, nil
		}
		unix.Close(o) // not p's: nothing else connects here
	}
	return -1, fmt.Errorf("pair: no connection from %v", want)
}

func addrPortOf(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), true
	}
	return netip.AddrPort{}, false
}

// fillTCP makes the connected target end p look like a socket in
// SYN_SENT: no POLLOUT, writes EAGAIN or blocking. With
// TCP_NOTSENT_LOWAT 1, p is writable only while its unsent queue is
// (almost) empty; filler bytes written until EAGAIN close our end's small
// initial window (see newPairListener) and stay unsent. It returns how
// many were written; our end reads and discards exactly those once the
// handshake is done (restoreSendBuf, discardFillerLocked).
func fillTCP(p int) int {
	if unix.SetsockoptInt(p, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 1) != nil {
		return 0
	}
	var zeros [16 << 10]byte
	total := 0
	for range 64 {
		k, err := unix.SendmsgN(p, zeros[:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if k > 0 {
			total += k
		}
		if err != nil {
			break
		}
	}
	return total
}

// close closes the listener (pairs made later fail with EBADF).
func (l *pairListener) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

// newTCPConduit makes the conduit of a TCP socket of family: the target
// end is a kernel TCP socket of the conduit namespace, unconnected (join
// connects it to our end through l) unless established (an accepted
// connection: connected at once).
func newTCPConduit(n *conduitNet, l *pairListener, family int, established bool) (*conduit, error) {
	p, err := n.tcpSocket(family)
	if err != nil {
		return nil, fmt.Errorf("conduit TCP socket: %w", err)
	}
	c := &conduit{target: os.NewFile(uintptr(p), "netstack-conduit"), joiner: -1, tcp: l, cnet: n}
	if established {
		if err := c.join(0); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// joinTCP connects the target end to a new our end through the pair
// listener.
func (c *conduit) joinTCP() error {
	o, err := -1, error(unix.EBADF)
	withFd(c.target, func(fd int) { o, err = c.tcp.pair(fd) })
	if err != nil {
		return fmt.Errorf("conduit join: %w", err)
	}
	c.ours = os.NewFile(uintptr(o), "netstack-conduit-provider")
	return nil
}

// tcpTargetGone reports whether the target closed its last fd of the
// connected target end: sock_diag finds it orphaned (inode 0) or gone.
// Our end (fd) sees the same FIN for a close as for shutdown(SHUT_WR).
// A target end shut down both ways but not orphaned may be a close in
// progress (tcp_close sends its FIN before sock_orphan, and our end can
// take the FIN in between): it is asked again for up to closeSettle
// before it counts as a target that shut down and keeps its fd.
func (c *conduit) tcpTargetGone(fd int) bool {
	ours, err1 := boundAddr(fd)
	sa, err2 := unix.Getpeername(fd)
	target, ok := addrPortOf(sa)
	if err1 != nil || err2 != nil || !ok {
		return true // our end is no longer connected: nothing to keep
	}
	deadline := time.Now().Add(closeSettle)
	for {
		st, err := c.cnet.tcpLookup(target, ours)
		switch {
		case err != nil:
			return false
		case !st.found || st.inode == 0:
			return true
		case st.shutdown != unix.SHUT_RDWR+1 || time.Now().After(deadline):
			// RCV_SHUTDOWN|SEND_SHUTDOWN is 3 (SHUT_RDWR+1).
			return false
		}
		time.Sleep(closeSettle / 50)
	}
}

// closeSettle bounds how long tcpTargetGone waits for a target end shut
// down both ways to be orphaned (the closing thread between its FIN and
// sock_orphan).
const closeSettle = 20 * time.Millisecond
