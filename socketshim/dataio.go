package socketshim

import (
	"encoding/binary"
	"errors"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/socketshim/seccomp"
)

// maxDatagram bounds a served receive: no IP datagram is longer.
const maxDatagram = 65536

// Only calls that carry an address are served; the rest continue to the
// kernel, which runs them on the conduit (the native data path).

func (c *call) sendto(e *entry, fd int) (int64, error) {
	buf, l, flags := c.arg(1), c.arg(2), c.intArg(3)
	if c.arg(4) == 0 {
		return 0, errContinue
	}
	to, err := c.sockaddrArg(4, 5)
	if err != nil {
		return 0, err
	}
	l = min(l, uint64(maxRWCount))
	if l > maxServedLen {
		return 0, unix.EMSGSIZE
	}
	data := make([]byte, l)
	if err := c.mem.read(buf, data); err != nil {
		return 0, err
	}
	return c.send(e, fd, data, flags, to)
}

// send calls the provider and raises SIGPIPE like the kernel for EPIPE
// without MSG_NOSIGNAL. The signal follows the answer: sent before, it
// would interrupt the pending notification and the call would restart.
func (c *call) send(e *entry, fd int, data []byte, flags int, to []byte) (int64, error) {
	ctx, cancel := c.blocking()
	n, err := e.sock.SendTo(ctx, data, flags, to, c.nonblocking(fd) || flags&unix.MSG_DONTWAIT != 0)
	cancel()
	if errors.Is(err, unix.EPIPE) && flags&unix.MSG_NOSIGNAL == 0 {
		c.s.finish(c.n, 0, unix.EPIPE)
		if serr := signalThread(c.n.PID, unix.SIGPIPE); serr != nil {
			c.s.log.Debug("socketshim: SIGPIPE", "pid", c.n.PID, "err", serr)
		}
		return 0, errAnswered
	}
	return int64(n), err
}

// recvfrom is served for datagram sockets that ask for the source address;
// a stream socket reports no address (length 0), as the conduit does.
func (c *call) recvfrom(e *entry, fd int) (int64, error) {
	buf, l, flags, addr, lenPtr := c.arg(1), c.arg(2), c.intArg(3), c.arg(4), c.arg(5)
	if addr == 0 || e.sotype == unix.SOCK_STREAM {
		return 0, errContinue
	}
	l = min(l, uint64(maxRWCount))
	d, err := c.receive(e, fd, int(min(l, maxDatagram)), flags)
	if err != nil {
		return 0, err
	}
	if k := min(d.n, len(d.data)); k > 0 {
		if err := c.mem.write(buf, d.data[:k]); err != nil {
			return 0, c.undeliverable(e, d, flags, err)
		}
	}
	if err := writeSockaddr(c.mem, addr, lenPtr, d.from, false); err != nil {
		return 0, c.undeliverable(e, d, flags, err)
	}
	return int64(d.n), nil
}

// receive takes a kept datagram or asks the provider for one. A socket
// with a receive option on (controlReceiver.WantsControl) has the
// provider encode the datagram's control messages in full into a buffer
// of the shim's (d.ctl): each delivery puts them into its own call's
// control buffer (see putControl), so a datagram kept for a later call
// (undeliverable) fits whatever buffer that call has.
func (c *call) receive(e *entry, fd, size, flags int) (datagram, error) {
	if d, ok := e.popDatagram(flags&unix.MSG_PEEK != 0); ok {
		return d, nil
	}
	p := make([]byte, size)
	ctx, cancel := c.blocking()
	nonblocking := c.nonblocking(fd) || flags&unix.MSG_DONTWAIT != 0
	var n, mflags int
	var from, ctl []byte
	var ctlTrunc bool
	var err error
	if cr, ok := e.sock.(controlReceiver); ok && cr.WantsControl() {
		full := make([]byte, maxControl)
		var ctlLen int
		n, from, ctlLen, mflags, err = cr.RecvMsg(ctx, p, full, true, flags, nonblocking)
		ctl = full[:min(ctlLen, len(full))]
		ctlTrunc = mflags&unix.MSG_CTRUNC != 0
		mflags &^= unix.MSG_CTRUNC
	} else {
		n, from, mflags, err = e.sock.RecvFrom(ctx, p, flags, nonblocking)
	}
	cancel()
	if err != nil {
		return datagram{}, err
	}
	return datagram{data: p[:min(n, len(p))], n: n, from: from, msgFlags: mflags, ctl: ctl, ctlTrunc: ctlTrunc}, nil
}

// undeliverable keeps a received datagram whose target went away, so the
// restarted call gets it.
func (c *call) undeliverable(e *entry, d datagram, flags int, err error) error {
	if errors.Is(err, seccomp.ErrTargetGone) && flags&unix.MSG_PEEK == 0 {
		e.pushDatagram(d)
	}
	return err
}

func (c *call) sendmsg(e *entry, fd int) (int64, error) {
	h, err := readMsghdr(c.mem, c.arg(1))
	if err != nil {
		return 0, err
	}
	// Without a destination the conduit carries it. Control messages of
	// IP levels must not reach a datagram conduit's kernel socket (a UDP
	// conduit would apply IP_PKTINFO in the conduit namespace): such a
	// sendmsg is served, and the stack sends it as a plain send, as an
	// AF_UNIX conduit always did (the control messages are ignored).
	if !servedSend(e, h) {
		return 0, errContinue
	}
	return c.sendOne(e, fd, h, c.intArg(2))
}

func hasName(h msghdr) bool { return h.name != 0 }

// servedSend reports whether a sendmsg must be served: it names a
// destination, or it carries control messages a datagram conduit's
// kernel socket must not see (see sendmsg).
func servedSend(e *entry, h msghdr) bool {
	return hasName(h) || h.controllen != 0 && e.sotype != unix.SOCK_STREAM && !e.sock.Passthrough()
}

func (c *call) sendOne(e *entry, fd int, h msghdr, flags int) (int64, error) {
	var to []byte // nil: no destination (a connected send)
	if h.name != 0 {
		var err error
		if to, err = readSockaddr(c.mem, h.name, uint64(h.namelen)); err != nil {
			return 0, err
		}
		if to == nil {
			to = []byte{}
		}
	}
	iovs, _, err := readIovecs(c.mem, h.iov, h.iovlen)
	if err != nil {
		return 0, err
	}
	data, err := gather(c.mem, iovs, maxServedLen)
	if err != nil {
		return 0, err
	}
	return c.send(e, fd, data, flags, to)
}

func (c *call) recvmsg(e *entry, fd int) (int64, error) {
	addr := c.arg(1)
	h, err := readMsghdr(c.mem, addr)
	if err != nil {
		return 0, err
	}
	if e.sotype == unix.SOCK_STREAM || (h.name == 0 && !wantsControl(e, h)) {
		return 0, errContinue
	}
	return c.recvOne(e, fd, addr, h, c.intArg(2))
}

// recvOne receives one datagram into the msghdr at addr and writes back
// msg_namelen, the control messages and msg_controllen (see cmsg.go; 0
// from providers without them) and msg_flags.
func (c *call) recvOne(e *entry, fd int, addr uint64, h msghdr, flags int) (int64, error) {
	iovs, total, err := readIovecs(c.mem, h.iov, h.iovlen)
	if err != nil {
		return 0, err
	}
	control, controlOK, err := c.readControl(h)
	if err != nil {
		return 0, err
	}
	d, err := c.receive(e, fd, min(total, maxDatagram), flags)
	if err != nil {
		return 0, err
	}
	if _, err := scatter(c.mem, iovs, d.data[:min(d.n, len(d.data))]); err != nil {
		return 0, c.undeliverable(e, d, flags, err)
	}
	if err := writeSockaddr(c.mem, h.name, addr+offMsgNamelen, d.from, false); err != nil {
		return 0, c.undeliverable(e, d, flags, err)
	}
	ctlLen, msgFlags := deliverControl(control, controlOK, d)
	if ctlLen > 0 {
		if err := c.mem.write(h.control, control[:ctlLen]); err != nil {
			if errors.Is(err, seccomp.ErrTargetGone) {
				return 0, c.undeliverable(e, d, flags, err)
			}
			ctlLen = 0 // put_cmsg's EFAULT is ignored: nothing written
		}
	}
	var tail [16]byte // msg_controllen (8 bytes) then msg_flags (int)
	binary.LittleEndian.PutUint64(tail[0:], uint64(ctlLen))
	binary.LittleEndian.PutUint32(tail[8:], uint32(msgFlags))
	if err := c.mem.write(addr+offMsgControllen, tail[:12]); err != nil {
		return 0, c.undeliverable(e, d, flags, err)
	}
	return int64(d.n), nil
}

// readMmsgVec reads vlen (capped at UIO_MAXIOV) mmsghdrs.
func (c *call) readMmsgVec() (uint64, []msghdr, error) {
	vec, vlen := c.arg(1), min(c.arg(2)&0xffffffff, uioMaxIOV)
	if vlen == 0 {
		return vec, nil, nil
	}
	b := make([]byte, vlen*sizeofMmsghdr)
	if err := c.mem.read(vec, b); err != nil {
		return vec, nil, err
	}
	hs := make([]msghdr, vlen)
	for i := range hs {
		h, err := parseMsghdr(b[i*sizeofMmsghdr:])
		if err != nil && i == 0 {
			return vec, nil, err
		}
		if err != nil {
			return vec, hs[:i], nil
		}
		hs[i] = h
	}
	return vec, hs, nil
}

// sendmmsg sends each message like sendmsg; an error after the first
// message ends the batch with the count sent, as on Linux.
func (c *call) sendmmsg(e *entry, fd int) (int64, error) {
	vec, hs, err := c.readMmsgVec()
	if err != nil {
		return 0, err
	}
	if !slices.ContainsFunc(hs, func(h msghdr) bool { return servedSend(e, h) }) {
		return 0, errContinue
	}
	flags := c.intArg(3)
	sent := 0
	for i, h := range hs {
		var n int64
		if h.name == 0 {
			// A conduit write would reorder against served ones; the
			// provider takes it with its connected destination.
			iovs, _, ierr := readIovecs(c.mem, h.iov, h.iovlen)
			var data []byte
			if ierr == nil {
				data, ierr = gather(c.mem, iovs, maxServedLen)
			}
			if ierr == nil {
				n, ierr = c.send(e, fd, data, flags, nil)
			}
			err = ierr
		} else {
			n, err = c.sendOne(e, fd, h, flags)
		}
		if errors.Is(err, errAnswered) { // EPIPE with SIGPIPE already answered
			return 0, errAnswered
		}
		if err != nil {
			break
		}
		if werr := writeInt32(c.mem, vec+uint64(i)*sizeofMmsghdr+offMmsgLen, int32(n)); werr != nil {
			err = werr
			break
		}
		sent++
	}
	if sent > 0 {
		return int64(sent), nil
	}
	return 0, err
}

// recvmmsg receives up to vlen datagrams; after the first, MSG_WAITFORONE
// makes the rest non-blocking. The timeout argument is not honoured.
func (c *call) recvmmsg(e *entry, fd int) (int64, error) {
	vec, hs, err := c.readMmsgVec()
	if err != nil {
		return 0, err
	}
	if e.sotype == unix.SOCK_STREAM || (!slices.ContainsFunc(hs, hasName) && !anyWantsControl(e, hs)) {
		return 0, errContinue
	}
	flags := c.intArg(3)
	got := 0
	for i, h := range hs {
		f := flags &^ unix.MSG_WAITFORONE
		if i > 0 && flags&unix.MSG_WAITFORONE != 0 {
			f |= unix.MSG_DONTWAIT
		}
		addr := vec + uint64(i)*sizeofMmsghdr
		var n int64
		n, err = c.recvOne(e, fd, addr, h, f)
		if err != nil {
			break
		}
		if werr := writeInt32(c.mem, addr+offMmsgLen, int32(n)); werr != nil {
			err = werr
			break
		}
		got++
	}
	if got > 0 {
		return int64(got), nil
	}
	return 0, err
}
