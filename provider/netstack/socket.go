package netstack

import (
	"context"
	"encoding/binary"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

// TCP states (Linux numbering) read from the endpoint.
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpClose       = 7
	tcpListen      = 10
)

// connection phases of a stream socket.
type phase uint8

const (
	phaseIdle       phase = iota // fresh or bound
	phaseConnecting              // filler in the conduit, waiting for the handshake
	phasePumping                 // established: both pumps run
	phaseListening               // listener: readiness token protocol
	phaseDead                    // conduit reset or closed
)

// Socket is one sandbox socket: a stack socket and its conduit.
type Socket struct {
	p      *Provider
	so     *socket.Socket
	c      *conduit
	stream bool

	// ctx ends every goroutine of the socket (Close, abort).
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	phase    phase
	filler   int  // filler bytes in our end's receive queue
	sentinel bool // one already-sent byte heads our receive queue (peekRead)
	released bool // the provider's copy of the target end was closed
	// releaseWanted: ReleaseConduit was called (applied once possible).
	releaseWanted bool
	// pendingErr is a connect error the stack returned to the provider
	// itself (a non-blocking connect that failed at once), or a datagram
	// socket's error moveDgramError could not hand to the conduit;
	// SO_ERROR reports it.
	pendingErr unix.Errno
	upDone     chan struct{} // closed when the conduit→stack pump ends
	// bufs: the program's SO_SNDBUF and SO_RCVBUF (tcpbuf.go).
	bufs tcpBufs

	lst   *listenState // listeners
	dgram *dgramState  // datagram sockets

	closeOnce sync.Once

	// downInFlight counts the bytes pumpDown read from the stack and has
	// not yet written to the conduit (SIOCINQ counts them). downMu makes
	// a write to the conduit and the matching decrement one step for
	// ioctlInq, which reads the count and the target end's queue under
	// it, so no byte is counted twice.
	downMu       sync.Mutex
	downInFlight int
	// upInFlight counts the bytes pumpUp read from our end and has not
	// yet written to the stack in full (SIOCOUTQ counts them); upMu
	// makes a read from our end and setting the count one step for
	// ioctlOutq.
	upMu       sync.Mutex
	upInFlight int

	down downSettle // stream pump progress for settleReceived (settle.go)
}

var _ provider.Socket = (*Socket)(nil)

func newSocket(p *Provider, so *socket.Socket, c *conduit) *Socket {
	s := &Socket{p: p, so: so, c: c, stream: so.Type() == unix.SOCK_STREAM}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Stack returns the stack socket (for tests and diagnostics).
func (s *Socket) Stack() *socket.Socket { return s.so }

// Conduit implements provider.Socket: the target's end of the socketpair.
// The provider keeps its own reference (see doc.go, "The provider's copy
// of the target end") until ReleaseConduit or Close.
func (s *Socket) Conduit() *os.File { return s.c.target }

// ReleaseConduit implements provider.ConduitReleaser: it closes the
// provider's copy of the target end of an established (or connecting)
// stream socket, so that the target's last close becomes visible on the
// provider's end (EOF and POLLHUP) and the socket closes itself like
// Linux's close(2). It is safe to call right after injecting any socket:
// a fresh stream socket releases once its connection is established (the
// conduit's filler and buffer need the copy until then);
// listeners and datagram sockets keep the copy (they need it: listener
// readiness, RecvFrom), so the shim must still Close them. See doc.go.
func (s *Socket) ReleaseConduit() {
	s.mu.Lock()
	s.releaseWanted = true
	s.mu.Unlock()
	s.releaseIfWanted()
}

func (s *Socket) releaseIfWanted() {
	s.mu.Lock()
	ok := s.releaseWanted && !s.released && s.stream &&
		(s.phase == phasePumping || s.phase == phaseDead)
	if ok {
		s.released = true // before the close: waitHangup checks it
	}
	s.mu.Unlock()
	if ok {
		s.c.target.Close()
	}
}

// Passthrough implements provider.Socket.
func (s *Socket) Passthrough() bool { return false }

// Bind implements provider.Socket.
func (s *Socket) Bind(sa []byte) error {
	s.syncAutobind()
	if err := s.so.Bind(sa); err != nil {
		return err
	}
	s.bindTarget()
	return nil
}

// GetSockName implements provider.Socket.
func (s *Socket) GetSockName() ([]byte, error) {
	s.syncAutobind()
	return s.so.GetSockName()
}

// GetPeerName implements provider.Socket.
func (s *Socket) GetPeerName() ([]byte, error) { return s.so.GetPeerName() }

// Readiness implements provider.Socket (the stack socket's events).
func (s *Socket) Readiness(mask waiter.EventMask) waiter.EventMask { return s.so.Readiness(mask) }

// EventQueue implements provider.Socket.
func (s *Socket) EventQueue() *waiter.Queue { return s.so.EventQueue() }

// SetSockOpt implements provider.Socket. The options the native data
// path depends on are applied to the conduit too (mirrorSockOpt).
func (s *Socket) SetSockOpt(level, name int, val []byte) error {
	return s.SetSockOptWithConduit(level, name, val, -1)
}

// SetSockOptWithConduit is SetSockOpt for a caller that holds the
// target's fd itself (the shim, through pidfd_getfd; conduit < 0: none),
// so the options reach the target end even after ReleaseConduit.
func (s *Socket) SetSockOptWithConduit(level, name int, val []byte, conduit int) error {
	if err := s.so.SetSockOpt(level, name, val); err != nil {
		return err
	}
	if level != unix.SOL_SOCKET {
		return nil
	}
	if conduit < 0 && withFd(s.c.target, func(fd int) { s.mirrorSockOpt(name, val, fd) }) {
		return nil
	}
	s.mirrorSockOpt(name, val, conduit)
	return nil
}

// mirrorSockOpt applies a socket option the stack socket took to the
// conduit, target being the target end (-1: nobody holds it): SO_RCVTIMEO
// and SO_SNDTIMEO, so that the target's native reads and writes time out
// (and fail with EINTR on a signal even under SA_RESTART,
// sock_intr_errno) as on Linux; SO_OOBINLINE, for the urgent bytes the
// pump sends out of band (urgent.go); buffer sizes (a UDP conduit's
// receive buffer, growTargetRcvBuf; a TCP conduit's ends, tcpbuf.go).
func (s *Socket) mirrorSockOpt(name int, val []byte, target int) {
	switch name {
	case unix.SO_RCVTIMEO, unix.SO_RCVTIMEO_NEW, unix.SO_SNDTIMEO, unix.SO_SNDTIMEO_NEW:
		if target >= 0 {
			_ = unix.SetsockoptString(target, unix.SOL_SOCKET, name, string(val))
		}
	case unix.SO_OOBINLINE:
		if target >= 0 && len(val) >= 4 {
			on := binary.NativeEndian.Uint32(val[:4]) != 0
			_ = unix.SetsockoptInt(target, unix.SOL_SOCKET, unix.SO_OOBINLINE, boolInt(on))
		}
	case unix.SO_RCVBUF, unix.SO_RCVBUFFORCE:
		if target >= 0 {
			s.growTargetRcvBuf(target)
		}
		s.mirrorTCPBuf(name, val, target)
	case unix.SO_SNDBUF, unix.SO_SNDBUFFORCE:
		s.mirrorTCPBuf(name, val, target)
	}
}

// GetSockOpt implements provider.Socket. SO_ERROR is the stack's pending
// error, else the conduit's (a reset the pump already took from the
// stack); reading it clears both, as reading SO_ERROR clears sk_err.
func (s *Socket) GetSockOpt(level, name int, buf []byte) (int, error) {
	if level == unix.SOL_SOCKET && name == unix.SO_ERROR {
		var conduitErr unix.Errno
		held := withFd(s.c.target, func(fd int) { conduitErr = sockError(fd) })
		return s.soError(buf, conduitErr, held)
	}
	return s.so.GetSockOpt(level, name, buf)
}

// SockErrorWithConduit is GetSockOpt(SOL_SOCKET, SO_ERROR) for a caller
// that holds the target's fd itself (the shim, through pidfd_getfd): the
// conduit's error is read and cleared on it, which also works once the
// provider released its own copy (ReleaseConduit). So a target that read
// a reset's ECONNRESET natively then finds SO_ERROR 0, as on Linux.
func (s *Socket) SockErrorWithConduit(buf []byte, conduit int) (int, error) {
	return s.soError(buf, sockError(conduit), true)
}

// soError merges the stack's pending error with the conduit's (read and
// cleared by the caller; held: the caller could look at the conduit).
func (s *Socket) soError(buf []byte, conduitErr unix.Errno, held bool) (int, error) {
	n, err := s.so.GetSockOpt(unix.SOL_SOCKET, unix.SO_ERROR, buf)
	if err != nil {
		return n, err
	}
	s.mu.Lock()
	pending := s.pendingErr
	s.pendingErr = 0
	s.mu.Unlock()
	if held && conduitErr == 0 && s.stream {
		pending = 0 // the target took the error with a read already
	}
	if pending != 0 {
		conduitErr = pending
	}
	if n >= 4 && buf[0]|buf[1]|buf[2]|buf[3] == 0 && conduitErr != 0 {
		var b [4]byte
		putInt(b[:], int(conduitErr))
		return copy(buf, b[:]), nil
	}
	return n, nil
}

func putInt(b []byte, v int) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// Ioctl implements provider.Socket. Queue sizes count the conduit too:
// SIOCINQ adds the bytes waiting in the target's end, SIOCOUTQ the bytes
// the target wrote that have not reached the stack yet (outq.go).
func (s *Socket) Ioctl(req uint) (int, error) {
	var v int
	var err error
	if !withFd(s.c.target, func(fd int) { v, err = s.ioctl(req, fd) }) {
		v, err = s.ioctl(req, -1)
	}
	return v, err
}

// IoctlWithConduit is Ioctl for a caller that holds the target's fd
// itself (the shim, through pidfd_getfd): SIOCINQ then counts the bytes
// waiting in the target end, SIOCOUTQ those it has not sent, and
// SIOCATMARK looks at the urgent mark there, even after ReleaseConduit.
func (s *Socket) IoctlWithConduit(req uint, conduit int) (int, error) {
	return s.ioctl(req, conduit)
}

// ioctl serves req with target the target end (-1: not held).
func (s *Socket) ioctl(req uint, target int) (int, error) {
	switch {
	case req == unix.SIOCATMARK && s.stream:
		return ioctlAtMark(target)
	case req == unix.SIOCINQ:
		return s.ioctlInq(target)
	case (req == unix.SIOCOUTQ || req == unix.SIOCOUTQNSD) && s.stream:
		return s.ioctlOutq(req, target)
	}
	return s.so.Ioctl(req)
}

// ioctlInq is SIOCINQ: the stack's queue, the bytes a pump holds between
// the stack and the conduit, and the target end's queue (target < 0:
// unknown). A datagram socket reports its next datagram, which is the
// conduit's first when there is one (SIOCINQ of a SOCK_SEQPACKET conduit
// would count them all).
func (s *Socket) ioctlInq(target int) (int, error) {
	if !s.stream && target >= 0 {
		if s.c.udp != nil {
			// udp_ioctl: the first datagram's length, without taking
			// the socket's error as a peek would.
			if t := inq(target); t > 0 {
				return t, nil
			}
		} else if t, ok := firstDatagramLen(target); ok {
			return t, nil
		}
	}
	v, err := s.so.Ioctl(unix.SIOCINQ)
	if err != nil || !s.stream {
		return v, err
	}
	s.mu.Lock()
	ours := s.c.ours // set by join, under s.mu
	s.mu.Unlock()
	s.downMu.Lock()
	v += s.downInFlight
	if target >= 0 {
		if s.c.tcp != nil {
			// tcp_ioctl itself, plus what our end has not sent to it
			// yet (the target end's window was full).
			v += inq(target)
			withFd(ours, func(fd int) { v += outqNotSent(fd) })
		} else {
			v += targetInq(target)
		}
	}
	s.downMu.Unlock()
	return v, nil
}

// Listen implements provider.Socket.
func (s *Socket) Listen(backlog int) error {
	if err := s.so.Listen(backlog); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c.tcp != nil && (s.phase == phaseIdle || s.phase == phaseListening) {
		// The target end listens itself (tcplisten.go); again after a
		// shutdown, or to change the backlog.
		if err := s.listenTarget(backlog); err != nil {
			if s.phase == phaseIdle {
				// Undone, as after a failed listen on Linux.
				_ = s.so.Shutdown(unix.SHUT_RD)
			}
			return err
		}
		if s.phase == phaseIdle {
			s.startListening()
		}
		return nil
	}
	if s.phase == phaseListening {
		return nil // listen again only changes the backlog
	}
	if s.phase == phaseIdle {
		// A listener's target end is connected (it carries the
		// readiness token) and filled (no POLLOUT).
		if err := s.joinLocked(); err != nil {
			// No conduit (no file descriptors left): undo the listen,
			// or peers would complete handshakes nobody can accept.
			// shutdown(SHUT_RD) of a listener is tcp_disconnect: the
			// socket is in CLOSE again, as Linux leaves it after a
			// failed listen, and the target end is still unconnected
			// (poll OUT|HUP), so a later listen can try again.
			_ = s.so.Shutdown(unix.SHUT_RD)
			return err
		}
		s.startListening()
	}
	return nil
}

// Close implements provider.Socket: the target's last reference is gone.
// Data the target wrote is flushed into the stack first (unless SO_LINGER
// is on with a zero timeout), then the stack socket is closed as close(2)
// does: RST if the target left unread data, FIN otherwise.
func (s *Socket) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		pumping := s.phase == phasePumping
		upDone := s.upDone
		s.mu.Unlock()
		if s.dgram != nil {
			s.flushDgrams()
		}
		if !pumping || s.lingerZero() {
			s.abort()
			return
		}
		// Unread data: in the stack, or in the target end's receive queue
		// (what our end sent and the target did not consume: SIOCOUTQ).
		unread := s.so.Endpoint().Info().RecvQ
		withFd(s.c.ours, func(fd int) {
			if v, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err == nil {
				unread += v
			}
		})
		if s.c.tcp != nil {
			// What reached the target end's receive queue is acked:
			// not in our end's SIOCOUTQ.
			withFd(s.c.target, func(fd int) { unread += inq(fd) })
		}
		if unread > 0 {
			// tcp_close with unread data: RST at once, unsent data dropped.
			s.setLingerZero()
			s.abort()
			return
		}
		// EOF on our end after the target's data: the pump flushes it,
		// then FIN.
		withFd(s.c.ours, func(fd int) { _ = unix.Shutdown(fd, unix.SHUT_RD) })
		s.c.target.Close()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			select {
			case <-upDone:
			case <-s.ctx.Done():
			}
			s.abort()
		}()
	})
	return nil
}

// lingerZero reports SO_LINGER on with a zero timeout (close sends RST).
func (s *Socket) lingerZero() bool {
	var b [8]byte
	n, err := s.so.GetSockOpt(unix.SOL_SOCKET, unix.SO_LINGER, b[:])
	return err == nil && n == 8 && b[0]|b[1]|b[2]|b[3] != 0 && b[4]|b[5]|b[6]|b[7] == 0
}

// setLingerZero makes the stack's close send RST (tcp_close with unread
// data does the same).
func (s *Socket) setLingerZero() {
	var b [8]byte
	putInt(b[0:4], 1)
	_ = s.so.SetSockOpt(unix.SOL_SOCKET, unix.SO_LINGER, b[:])
}

// abort ends the socket now: goroutines stop, the stack socket closes
// (honouring SO_LINGER) and both conduit ends close. Once phaseDead is
// set, join no longer sets s.c.ours, so it is read here without s.mu.
func (s *Socket) abort() {
	s.mu.Lock()
	s.phase = phaseDead
	s.mu.Unlock()
	s.cancel()
	s.abortPending()
	_ = s.c.ours.SetDeadline(pastDeadline)
	s.so.Close()
	s.c.close()
	s.p.forget(s)
}

// outqNotSent is SIOCOUTQNSD of a TCP socket: bytes queued but not yet
// sent (0 on error).
func outqNotSent(fd int) int {
	v, err := unix.IoctlGetInt(fd, unix.SIOCOUTQNSD)
	if err != nil {
		return 0
	}
	return v
}
