package netstack

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// A TCP conduit adds two kernel TCP buffers to each direction of the
// program's socket: the target end's and our end's. Left to autotuning
// they would hold megabytes that Linux's socket does not have, and a
// program that sized its buffers (SO_SNDBUF, SO_RCVBUF) would see writes
// go on long after they block on Linux: a send timed out by SO_SNDTIMEO
// could be followed by one that succeeds, while the pumps keep draining
// the hidden buffers into the stack. So a size the program sets is
// applied to the conduit too, and locks those buffers as it locks
// Linux's: the target end takes the program's own value, and our end
// the same size for the hop that carries that direction (SO_SNDBUF: the
// target's bytes going up, so our end's receive buffer; SO_RCVBUF: the
// peer's bytes coming down, so our end's send buffer).

// tcpBufs records the program's buffer sizes, as set (0: never set), so
// that a conduit joined later (a connect after the setsockopt) and an
// accepted connection (which inherits its listener's) get them too.
// Guarded by Socket.mu.
type tcpBufs struct {
	snd, rcv int32
	// sndForce, rcvForce: set with SO_SNDBUFFORCE / SO_RCVBUFFORCE.
	sndForce, rcvForce bool
}

// mirrorTCPBuf applies the program's SO_SNDBUF or SO_RCVBUF (name, val)
// to a TCP conduit: to the target end (target, -1 when nobody holds it)
// and to our end if joined, and keeps it for a later join.
func (s *Socket) mirrorTCPBuf(name int, val []byte, target int) {
	if s.c.tcp == nil || len(val) < 4 {
		return
	}
	v := int32(binary.NativeEndian.Uint32(val))
	s.mu.Lock()
	switch name {
	case unix.SO_SNDBUF, unix.SO_SNDBUFFORCE:
		s.bufs.snd, s.bufs.sndForce = v, name == unix.SO_SNDBUFFORCE
	case unix.SO_RCVBUF, unix.SO_RCVBUFFORCE:
		s.bufs.rcv, s.bufs.rcvForce = v, name == unix.SO_RCVBUFFORCE
	default:
		s.mu.Unlock()
		return
	}
	bufs := s.bufs
	ours := s.c.ours
	s.mu.Unlock()
	if target >= 0 {
		bufs.applyTarget(target)
	}
	if ours != nil {
		withFd(ours, bufs.applyOurs)
	}
}

// applyTarget gives the target end the program's own sizes.
func (b tcpBufs) applyTarget(fd int) {
	if b.snd != 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, optName(unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, b.sndForce), int(b.snd))
	}
	if b.rcv != 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, optName(unix.SO_RCVBUF, unix.SO_RCVBUFFORCE, b.rcvForce), int(b.rcv))
	}
}

// applyOurs sizes our end for the directions the program sized: its send
// buffer bounds what goes up through our receive buffer, its receive
// buffer what comes down through our send buffer. Forced, as the
// provider may (the program's value passed the stack's checks already).
func (b tcpBufs) applyOurs(fd int) {
	if b.snd != 0 {
		setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, int(b.snd))
	}
	if b.rcv != 0 {
		setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, int(b.rcv))
	}
}

func optName(plain, force int, forced bool) int {
	if forced {
		return force
	}
	return plain
}

// applyTCPBufsLocked sizes a newly joined conduit (s.mu held): both ends
// take what the program set before.
func (s *Socket) applyTCPBufsLocked() {
	if s.c.tcp == nil || s.bufs == (tcpBufs{}) {
		return
	}
	withFd(s.c.target, s.bufs.applyTarget)
	withFd(s.c.ours, s.bufs.applyOurs)
}

// inheritTCPBufs gives an accepted connection its listener's sizes, as
// Linux's child socket inherits them (sk_clone_lock).
func (s *Socket) inheritTCPBufs(child *Socket) {
	s.mu.Lock()
	bufs := s.bufs
	s.mu.Unlock()
	if bufs == (tcpBufs{}) || child.c.tcp == nil {
		return
	}
	child.mu.Lock()
	child.bufs = bufs
	child.applyTCPBufsLocked()
	child.mu.Unlock()
}
