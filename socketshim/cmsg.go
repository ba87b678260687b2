package socketshim

import (
	"context"
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"

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

// A datagram's control messages are kept encoded in full (cmsghdr, data,
// padding to CMSG_SPACE) as the provider wrote them into a buffer of the
// shim's, and put into each call's own control buffer by putControl, which
// is the kernel's put_cmsg: the call that finally gets a datagram kept for
// it (a restarted recvmsg, or another thread's) may have a smaller buffer
// than the call it was received for, or none.

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

// deliverControl puts d's control messages into control, the current
// call's buffer (its current bytes, as readControl copied them; nil for a
// NULL msg_control or msg_controllen 0), and returns the new
// msg_controllen and the msg_flags to report. With controlOK false (the
// buffer cannot be read) Linux's put_cmsg faults on its first write and
// writes nothing, which the kernel ignores: msg_controllen 0, no
// MSG_CTRUNC.
func deliverControl(control []byte, controlOK bool, d datagram) (ctlLen, msgFlags int) {
	msgFlags = d.msgFlags &^ unix.MSG_CTRUNC
	if !controlOK || (len(d.ctl) == 0 && !d.ctlTrunc) {
		return 0, msgFlags
	}
	ctlLen, ctrunc := putControl(control, d.ctl)
	if ctrunc || d.ctlTrunc {
		msgFlags |= unix.MSG_CTRUNC
	}
	return ctlLen, msgFlags
}

const (
	sizeofCmsghdr = 16 // cmsg_len (8), cmsg_level, cmsg_type
	cmsgAlign     = 8
)

func cmsgSpace(n int) int { return sizeofCmsghdr + (n+cmsgAlign-1)&^(cmsgAlign-1) }

// putControl writes the control messages encoded in msgs into buf (len is
// msg_controllen) as the kernel's put_cmsg does, one message at a time: a
// message that does not fit is cut to the space left (cmsg_len says so)
// and sets MSG_CTRUNC; with less than a cmsghdr left (or no buffer)
// nothing is written and MSG_CTRUNC is set; each message takes
// CMSG_SPACE(len) of the buffer (at most what is left) and its padding
// is not written. It returns the bytes used (the new msg_controllen) and
// whether MSG_CTRUNC is set.
func putControl(buf, msgs []byte) (used int, ctrunc bool) {
	for off := 0; off+sizeofCmsghdr <= len(msgs); {
		cmlen := binary.NativeEndian.Uint64(msgs[off:])
		if cmlen < sizeofCmsghdr || cmlen > uint64(len(msgs)-off) {
			break // not written by an encoder: nothing more to take
		}
		data := msgs[off+sizeofCmsghdr : off+int(cmlen)]
		space := len(buf) - used
		if space < sizeofCmsghdr {
			ctrunc = true
		} else {
			n := sizeofCmsghdr + len(data)
			if space < n {
				ctrunc = true
				n = space
			}
			b := buf[used:]
			binary.NativeEndian.PutUint64(b[0:], uint64(n))
			copy(b[8:sizeofCmsghdr], msgs[off+8:off+sizeofCmsghdr]) // level, type
			copy(b[sizeofCmsghdr:n], data)
			used += min(cmsgSpace(len(data)), space)
		}
		off += cmsgSpace(len(data))
	}
	return used, ctrunc
}
