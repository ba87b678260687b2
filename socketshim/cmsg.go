package socketshim

import (
	"context"
	"errors"

	"github.com/netprov/netprov/socketshim/seccomp"
)

// Control messages of served recvmsg calls. A provider socket that keeps
// each datagram's ancillary data (netstack: TTL, TOS, destination,
// interface, receive time) implements controlReceiver; its recvmsg is
// served when the program asks for the source or while the socket has a
// receive option on (IP_RECVTTL, IP_PKTINFO, SO_TIMESTAMP, ...), so the
// control messages Linux writes reach the program, or MSG_CTRUNC when the
// control buffer has no room for them. Otherwise the call runs natively
// on the conduit, which writes none, as Linux does without such an
// option.

// controlReceiver is implemented by provider sockets that serve recvmsg's
// control messages (see provider/netstack's Socket.RecvMsg).
type controlReceiver interface {
	// WantsControl reports whether the socket has an option that makes
	// recvmsg write control messages.
	WantsControl() bool
	// RecvMsg is RecvFrom that also writes the control messages into
	// control (the target's buffer, msg_controllen bytes of it, nil for a
	// NULL msg_control) and returns the new msg_controllen; msgFlags has
	// MSG_CTRUNC when they did not fit.
	RecvMsg(ctx context.Context, p, control []byte, withControl bool, flags int, nonblocking bool) (n int, from []byte, ctlLen, msgFlags int, err error)
}

// maxControl bounds the control buffer the shim copies: every control
// message of one datagram fits in far less, so a longer buffer behaves
// the same.
const maxControl = 1024

// wantsControl reports whether a recvmsg with header h must be served for
// its control messages: whenever the socket has a receive option on, even
// without a control buffer (put_cmsg then sets MSG_CTRUNC).
func wantsControl(e *entry, _ msghdr) bool {
	cr, ok := e.sock.(controlReceiver)
	return ok && cr.WantsControl()
}

// anyWantsControl is wantsControl for a recvmmsg vector.
func anyWantsControl(e *entry, hs []msghdr) bool {
	for _, h := range hs {
		if wantsControl(e, h) {
			return true
		}
	}
	return false
}

// readControl copies the target's control buffer (its current bytes: the
// padding Linux leaves alone stays as it was). ok is false when it cannot
// be read: Linux's put_cmsg then writes nothing (the EFAULT is ignored),
// and so does the shim.
func (c *call) readControl(h msghdr) (control []byte, ok bool, err error) {
	if h.control == 0 || h.controllen == 0 {
		return nil, true, nil
	}
	control = make([]byte, min(h.controllen, maxControl))
	if err := c.mem.read(h.control, control); err != nil {
		if errors.Is(err, seccomp.ErrTargetGone) {
			return nil, false, err
		}
		return nil, false, nil
	}
	return control, true, nil
}
