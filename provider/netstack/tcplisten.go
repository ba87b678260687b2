package netstack

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// A listener with a TCP conduit: the target end itself listens, on its own
// loopback address of the conduit namespace, so the target's native calls
// on it are a TCP listener's (poll POLLIN only while a connection can be
// accepted, no POLLOUT; send EPIPE; recv ENOTCONN; after shutdown(SHUT_RD)
// CLOSE: POLLOUT|POLLHUP). Readiness: while a connection can be accepted,
// one token connection to it sits in its accept queue (syncTokenConn).
// Accept takes the token back and gives the accepted socket a conduit of
// its own.

// listenTarget binds the target end (once, to a loopback address of its
// own: 127.4.0.0/16, or ::1) and makes it listen with backlog; s.mu is
// held.
func (s *Socket) listenTarget(backlog int) error {
	var err error
	if !withFd(s.c.target, func(fd int) {
		var cur netip.AddrPort
		if cur, err = boundAddr(fd); err != nil {
			return
		}
		if cur.Port() == 0 {
			addr := conduitLoopback(s.so.Family() == unix.AF_INET6, listenerBlock, s.c.cnet.next.Add(1))
			if _, err = bindLoopback(fd, addr); err != nil {
				return
			}
		}
		err = unix.Listen(fd, max(backlog, 1))
	}) {
		return unix.EBADF
	}
	return err
}

// syncTokenConn puts a token connection in the listening target end's
// accept queue, or takes it out, after want; l.mu is held.
func (s *Socket) syncTokenConn(l *listenState, want bool) {
	if s.ctx.Err() != nil {
		// Closing (abortPending dropped the token): make none again.
		return
	}
	switch {
	case want && !l.token:
		withFd(s.c.target, func(fd int) {
			if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
				return // shut down: CLOSE until listen again
			}
			to, err := boundAddr(fd)
			if err != nil {
				return
			}
			c, err := s.c.cnet.tcpSocket(s.so.Family())
			if err != nil {
				return
			}
			// Non-blocking: a full accept queue must not block us here
			// (on loopback the handshake completes within connect).
			if err := unix.SetNonblock(c, true); err != nil {
				unix.Close(c)
				return
			}
			if err := unix.Connect(c, sockaddrOf(to)); err != nil && err != unix.EINPROGRESS {
				unix.Close(c)
				return
			}
			l.tokenConn, l.token = c, true
		})
	case !want && l.token:
		withFd(s.c.target, func(fd int) {
			// accept4 would block on a target end without O_NONBLOCK
			// when the token is not (yet) queued.
			if pollMask(fd, unix.POLLIN)&unix.POLLIN == 0 {
				return
			}
			if a, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK); err == nil {
				unix.Close(a)
			}
		})
		l.dropTokenConn()
	}
}

// dropTokenConn closes the token connection; l.mu is held.
func (l *listenState) dropTokenConn() {
	if l.tokenConn >= 0 {
		unix.Close(l.tokenConn)
		l.tokenConn = -1
	}
	l.token = false
}
