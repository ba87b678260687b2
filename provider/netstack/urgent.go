package netstack

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/waiter"
)

// TCP urgent data (MSG_OOB) through the conduit. AF_UNIX stream sockets
// have their own MSG_OOB (Linux 5.15+, CONFIG_AF_UNIX_OOB), modelled on
// TCP's: one out-of-band byte, POLLPRI while it is pending, recv(MSG_OOB),
// SO_OOBINLINE and SIOCATMARK, a normal read stopping at the mark, a new
// urgent byte turning the previous one into normal data. So the pumps
// carry the mark over: the target then gets all of it natively.
//
//   - Stack → target (pumpDown): the stack socket is read with ReadRelay,
//     which stops at the urgent mark and hands over the urgent byte
//     alone; the pump writes it with send(MSG_OOB) on our end.
//   - Target → stack (pumpUp): our end has SO_OOBINLINE on, so the
//     target's urgent byte keeps its place in the stream there; POLLPRI
//     on our end shows it, a read stops before it, SIOCATMARK tells when
//     it is next; the pump sends the bytes up to and including it with
//     MSG_OOB: the last byte of that send is urgent, as tcp_sendmsg makes
//     it (tcp_mark_urg; spec 43 for the urgent pointer on the wire).

// urgentRelay is stack/tcp's endpoint: ReadRelay stops at the urgent mark
// and returns the urgent byte alone, never dropping it.
type urgentRelay interface {
	ReadRelay(p []byte) (n int, urgent bool, err error)
}

// errStopped: the socket is closing; the pump ends.
var errStopped = errors.New("netstack: socket stopped")

// stackReader reads the stack socket for pumpDown, blocking in the
// socket's wait queue. It wakes on EventPri too: an urgent byte alone at
// the mark does not make the socket readable (tcp_poll's target++).
type stackReader struct {
	s     *Socket
	relay urgentRelay
	entry *waiter.Entry
	ch    <-chan struct{}
}

func (s *Socket) newStackReader() *stackReader {
	r := &stackReader{s: s}
	r.relay, _ = s.so.Endpoint().(urgentRelay)
	if r.relay != nil {
		r.entry, r.ch = waiter.ChannelEntry(waiter.EventIn | waiter.EventPri | waiter.EventHUp | waiter.EventErr | waiter.EventRdHUp)
		s.so.EventQueue().Register(r.entry)
	}
	return r
}

func (r *stackReader) close() {
	if r.entry != nil {
		r.s.so.EventQueue().Unregister(r.entry)
	}
}

// read returns the next bytes of the stream (0 at EOF); urgent: the one
// byte returned is the urgent byte. errStopped when the socket ends.
func (r *stackReader) read(p []byte) (int, bool, error) {
	if r.relay == nil {
		n, err := r.s.so.Read(r.s.ctx, p)
		if err != nil && r.s.ctx.Err() != nil {
			return 0, false, errStopped
		}
		if err == unix.EAGAIN {
			return r.read(p) // SO_RCVTIMEO expired: read on
		}
		return n, false, err
	}
	for {
		n, urgent, err := r.relay.ReadRelay(p)
		if err != unix.EAGAIN {
			return n, urgent, err
		}
		r.s.down.idle() // everything read before is in the conduit
		select {
		case <-r.ch:
		case <-r.s.ctx.Done():
			return 0, false, errStopped
		}
		r.s.down.waiting.Store(false)
	}
}

// urgentPending reports whether an urgent byte is queued on fd (our end,
// SO_OOBINLINE off): recv(MSG_OOB|MSG_PEEK) fails with EINVAL otherwise.
func urgentPending(fd int, scratch []byte) bool {
	k, err := recvRaw(fd, scratch[:1], unix.MSG_OOB|unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == nil && k == 1
}

// atMark is SIOCATMARK on fd.
func atMark(fd int) bool {
	v, err := unix.IoctlGetInt(fd, unix.SIOCATMARK)
	return err == nil && v != 0
}

// urgentQueued reports whether a target's urgent byte that the pump has
// not sent yet is queued on our end (fd): POLLPRI shows an out-of-band
// byte, unless it is the sentinel already sent (still at the head: at
// the mark).
func (r *upRead) urgentQueued(fd int) bool {
	if pollMask(fd, unix.POLLPRI)&unix.POLLPRI == 0 {
		return false
	}
	return !r.sentinelMark || !atMark(fd)
}

// readToMark is upRead.read while an urgent byte of the target is queued
// on our end (q: SIOCINQ). Our end has SO_OOBINLINE on, so the byte
// stays in its place in the stream (a newer urgent byte makes it normal
// data there, as TCP does, and nothing is reordered): a read stops before
// it, and SIOCATMARK tells when it is next. The bytes before it and the
// byte itself (copied with MSG_PEEK: it stays queued as the sentinel)
// make r.data, which the pump sends with MSG_OOB. A newer urgent byte
// arriving between SIOCATMARK and the peek turns the byte copied into
// normal data: it is still sent urgent, in its place, as a TCP sender
// that sent both urgent would have marked it first.
func (r *upRead) readToMark(fd, q int) bool {
	skip := 0
	if r.sentinel {
		skip = 1
	}
	n := 0
	if skip == 1 || !atMark(fd) {
		// The head is data (the sentinel, or bytes before the mark):
		// the read takes at least one byte, then stops at the mark.
		want := skip + max(1, min(q-skip, len(r.buf)-2)) // room for the urgent byte
		k, e := recvRaw(fd, r.buf[:want], unix.MSG_DONTWAIT)
		if e != nil {
			if e == unix.EAGAIN {
				return false
			}
			r.err = e
			return true
		}
		n = k
		r.sentinel, r.sentinelMark = false, false
		if !atMark(fd) {
			// The mark is further on (the buffer was full).
			r.data = r.buf[min(skip, n):n]
			return true
		}
	}
	flags := unix.MSG_DONTWAIT
	if r.keepLast {
		flags |= unix.MSG_PEEK // it stays queued as the sentinel
	}
	if k, e := recvRaw(fd, r.buf[n:n+1], flags); e == nil && k == 1 {
		r.data = r.buf[min(skip, n) : n+1]
		r.urgent = true
		r.sentinel, r.sentinelMark = r.keepLast, r.keepLast
		return true
	}
	r.data = r.buf[min(skip, n):n]
	return true
}

// setOursInline turns SO_OOBINLINE on for our end (see readToMark).
func setOursInline(fd int) {
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
}

// Out-of-band inline and the mark as the target sees them.

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// inheritOOBInline gives an accepted socket its listener's SO_OOBINLINE
// (sk_clone_lock copies the socket flags), on the stack socket and on
// its conduit.
func (s *Socket) inheritOOBInline(child *Socket) {
	var b [4]byte
	n, err := s.so.GetSockOpt(unix.SOL_SOCKET, unix.SO_OOBINLINE, b[:])
	if err != nil || n < 4 || b == [4]byte{} {
		return
	}
	_ = child.SetSockOpt(unix.SOL_SOCKET, unix.SO_OOBINLINE, b[:])
}

// ioctlAtMark is SIOCATMARK of a stream socket: the urgent mark is in the
// conduit, so the target end's answer is TCP's (tcp_ioctl: the next byte
// to read is the urgent one, read or not). target < 0: the provider no
// longer holds the target end and the caller gave none: 0.
func ioctlAtMark(target int) (int, error) {
	if target < 0 {
		return 0, nil
	}
	return unix.IoctlGetInt(target, unix.SIOCATMARK)
}

// targetInq is SIOCINQ of the target end as tcp_ioctl counts it. Without
// SO_OOBINLINE, TCP counts only the bytes before a pending urgent mark
// (urg_seq - copied_seq: 0 at the mark, also once the urgent byte was read
// with MSG_OOB, until a read passes it); AF_UNIX counts the whole queue,
// out-of-band byte included. So: 0 at the mark (SIOCATMARK), and with an
// urgent byte pending the bytes before it, measured with a MSG_PEEK read,
// which stops at the mark (bounded by one pump buffer; beyond, the queue
// less the urgent byte). An urgent byte the target read with MSG_OOB
// before reaching its mark is not seen: the queue is counted.
//
// AF_UNIX (Linux 6.18) also keeps counting an out-of-band byte that a
// normal read passed over (and dropped): an empty queue (no POLLIN) is 0
// whatever SIOCINQ says; with more data queued the count stays one high.
func targetInq(fd int) int {
	n := inq(fd)
	if n == 0 || pollMask(fd, unix.POLLIN)&unix.POLLIN == 0 {
		return 0
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_OOBINLINE); err != nil || v != 0 {
		return n
	}
	if atMark(fd) {
		return 0
	}
	var b [1]byte
	if !urgentPending(fd, b[:]) {
		return n
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	k, err := recvRaw(fd, (*bp)[:min(n, len(*bp))], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err != nil || k == len(*bp) {
		return n - 1
	}
	return k
}
