package netstack

import (
	"context"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/dgram"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

// dgramState carries the source addresses of the datagrams in the
// conduit. The pump appends one entry per datagram before writing it;
// RecvFrom pairs the datagram at the head of the target end's queue with
// its entry by length and hash, skipping entries of datagrams the target
// consumed with a plain read(2) (which does not trap).
type dgramState struct {
	mu   sync.Mutex
	fifo []dgramMeta
	kick chan struct{}

	rmu     sync.Mutex // serialises RecvFrom
	scratch []byte

	// upDone is closed when dgramUp ends (the target end was shut down
	// for writing, or closed, and every datagram before that was sent).
	upDone chan struct{}
	// upMu is held by dgramUp from reading a datagram off our end until
	// the stack took it; upIdle is signalled when it found our end
	// empty (waitUpDrained).
	upMu   sync.Mutex
	upIdle chan struct{}
	// errPending: the stack socket signalled an error that dgramDown
	// has not yet moved to a UDP conduit (moveDgramError).
	errPending atomic.Bool
	// connMu serialises connect (connectDgram).
	connMu sync.Mutex

	// seq is dgramDown's progress for settleLoopback (settle.go).
	seq pumpSeq
}

type dgramMeta struct {
	from netip.AddrPort
	n    int
	hash uint64
	// info is what the datagram carried for recvmsg's control messages
	// (valid when hasInfo: the endpoint is a dgram.ControlReader).
	info    dgram.RecvInfo
	hasInfo bool
}

// maxFIFO bounds the address FIFO (the conduit holds far fewer datagrams;
// entries beyond this can only be stale ones).
const maxFIFO = 1 << 16

func (s *Socket) startDgram() {
	s.dgram = &dgramState{kick: make(chan struct{}, 1), upDone: make(chan struct{}), upIdle: make(chan struct{}, 1)}
	// The receive pump's waiter is registered here, not in the pump
	// goroutine: a datagram that arrives before the goroutine runs is
	// then counted for settleLoopback (settle.go) and not missed.
	var ready chan struct{}
	var entry *waiter.Entry
	if _, ok := s.so.Endpoint().(dgram.ControlReader); ok {
		ready = make(chan struct{}, 1)
		mask := waiter.EventIn | waiter.EventHUp
		if s.c.udp != nil {
			mask |= waiter.EventErr
		}
		entry = &waiter.Entry{Mask: mask, Callback: func(m waiter.EventMask) {
			if m&waiter.EventErr != 0 {
				s.dgram.errPending.Store(true)
			}
			s.notified()
			select {
			case ready <- struct{}{}:
			default:
			}
		}}
		s.so.EventQueue().Register(entry)
	}
	s.wg.Add(2)
	go s.dgramUp()
	go s.dgramDown(entry, ready)
}

// dgramUp sends each datagram the target wrote on the conduit. Errors of
// the send (ENETUNREACH, EDESTADDRREQ on an unconnected socket with a
// SEQPACKET conduit) cannot reach the target: its write already
// succeeded; a pending ICMP error the send took goes to a UDP conduit's
// target end (upSendError).
func (s *Socket) dgramUp() {
	defer s.wg.Done()
	defer close(s.dgram.upDone)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	d := s.dgram
	rc, err := s.c.ours.SyscallConn()
	if err != nil {
		return
	}
	for {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			d.upMu.Lock()
			n, rerr = unix.Read(int(fd), buf)
			if rerr == unix.EAGAIN {
				d.upMu.Unlock()
				select {
				case d.upIdle <- struct{}{}:
				default:
				}
				return false
			}
			return true
		}); err != nil {
			return // closed (abort)
		}
		end := s.sendUp(buf, n, rerr)
		d.upMu.Unlock()
		if end {
			return
		}
	}
}

// sendUp sends the datagram dgramUp read (n bytes, or the read's error
// rerr) to the stack; it reports that the pump must end.
func (s *Socket) sendUp(buf []byte, n int, rerr error) bool {
	if rerr != nil {
		// A UDP conduit's end has no error of its own to end on.
		return s.c.udp == nil
	}
	if n == 0 && s.c.udp == nil {
		var m int16
		withFd(s.c.ours, func(fd int) { m = pollMask(fd, unix.POLLIN|unix.POLLRDHUP) })
		if m&(unix.POLLRDHUP|unix.POLLHUP) != 0 {
			// The target shut down writing (POLLHUP: both ways). It
			// still holds the socket: the provider keeps its copy of a
			// datagram conduit, so the target's close is the shim's
			// Close, never seen here.
			return true
		}
		// else a zero-length datagram
	}
	_, _, err := s.so.Write(s.ctx, buf[:n])
	if socket.IsInterrupt(err) {
		return s.ctx.Err() != nil
	}
	if err != nil {
		s.upSendError(err)
	}
	return false
}

// dgramDown moves received datagrams into the conduit, recording their
// sources and control data. The stack's pending error (an ICMP error on a
// connected socket) is moved to a UDP conduit's target end
// (moveDgramError); with a SEQPACKET conduit it is left in the stack,
// where SO_ERROR and the served recvfrom/recvmsg report it (see doc.go).
func (s *Socket) dgramDown(entry *waiter.Entry, ready <-chan struct{}) {
	defer s.wg.Done()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	d := s.dgram
	cr, _ := s.so.Endpoint().(dgram.ControlReader)
	if entry != nil {
		defer s.so.EventQueue().Unregister(entry)
		defer s.pumpGone()
	} else {
		cr = nil
	}
	for {
		if d.errPending.Load() && d.errPending.Swap(false) { // (a plain load per datagram)
			s.moveDgramError()
		}
		var m dgramMeta
		if cr != nil {
			seen := d.seq.notified.Load()
			res, ctl, err := cr.ReadControl(buf, stack.ReadOptions{}, true)
			if err == nil && res.Total == 0 && !res.From.IsValid() {
				// Shut down for reading, nothing queued (every datagram
				// has a source). A SEQPACKET conduit's target end was
				// shut down too: nothing more goes through it. Linux's
				// UDP still queues what arrives: a UDP conduit's pump
				// waits for it.
				if s.c.udp == nil {
					return
				}
				err = unix.EAGAIN
			}
			if err == unix.EAGAIN {
				s.pumpIdle(seen)
				select {
				case <-ready:
					continue
				case <-s.ctx.Done():
					return
				}
			}
			if err != nil {
				if s.ctx.Err() != nil || err == unix.EBADF {
					return
				}
				continue
			}
			m = dgramMeta{from: res.From, n: res.N, info: ctl.Info, hasInfo: true}
		} else {
			r, err := s.so.RecvMsg(s.ctx, buf, 0)
			if err != nil {
				if s.ctx.Err() != nil {
					return
				}
				continue // EAGAIN (SO_RCVTIMEO), ECONNREFUSED from ICMP
			}
			m = dgramMeta{from: r.From, n: r.N}
		}
		m.hash = maphash.Bytes(s.p.seed, buf[:m.n])
		s.bindTarget() // (a no-op once bound)
		d.mu.Lock()
		if len(d.fifo) >= maxFIFO {
			d.fifo = append(d.fifo[:0], d.fifo[len(d.fifo)/2:]...)
		}
		d.fifo = append(d.fifo, m)
		d.mu.Unlock()
		if _, err := s.c.ours.Write(buf[:m.n]); err != nil && (s.c.udp == nil || s.ctx.Err() != nil) {
			// (A UDP conduit drops what the target end has no room
			// for, as UDP does, and has no error of its own to end on.)
			return
		}
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
}

// match finds the entry of the datagram of length n and hash h at the
// head of the conduit: older entries are stale (read without trapping)
// and dropped; the entry itself is dropped unless peek. Without a match
// the source is unknown and the FIFO is left alone.
func (d *dgramState) match(n int, h uint64, peek bool) (dgramMeta, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, m := range d.fifo {
		if m.n == n && m.hash == h {
			if peek {
				d.fifo = d.fifo[i:]
			} else {
				d.fifo = d.fifo[i+1:]
			}
			return m, true
		}
	}
	return dgramMeta{}, false
}

// RecvFrom implements provider.Socket. The data comes out of the conduit
// (through the provider's copy of the target end, which shares the
// target's open file description) so it stays in order with the target's
// plain reads; for datagram sockets the source comes from the FIFO.
func (s *Socket) RecvFrom(ctx context.Context, p []byte, flags int, nonblocking bool) (int, []byte, int, error) {
	n, from, _, rflags, err := s.RecvMsg(ctx, p, nil, false, flags, nonblocking)
	return n, from, rflags, err
}

// RecvMsg is RecvFrom for recvmsg(2) with its control messages. With
// withControl, control is the target's control buffer (len(control) is
// msg_controllen, nil for a NULL msg_control) holding its current bytes;
// the control messages Linux would write for the datagram are written
// into it (see dgram.Control.Encode), ctlLen is the new msg_controllen and
// msgFlags has MSG_CTRUNC when they did not fit.
//
// A datagram socket's pending error (an ICMP error on a connected socket)
// is returned first and cleared, as udp_recvmsg and ping_recvmsg do.
func (s *Socket) RecvMsg(ctx context.Context, p, control []byte, withControl bool, flags int, nonblocking bool) (n int, from []byte, ctlLen, msgFlags int, err error) {
	if nonblocking {
		flags |= unix.MSG_DONTWAIT
	}
	timeo := s.rcvTimeout()
	var deadline time.Time
	if timeo > 0 {
		deadline = time.Now().Add(timeo)
	}
	if s.stream || s.dgram == nil {
		n, rflags, err := s.recvConduit(ctx, p, flags, deadline, timeo)
		return n, nil, 0, rflags, err
	}
	if flags&unix.MSG_ERRQUEUE != 0 {
		// The error queue (IP_RECVERR) is not implemented: always empty,
		// and the pending error stays for the next recv or SO_ERROR.
		return 0, nil, 0, 0, unix.EAGAIN
	}
	d := s.dgram
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if d.scratch == nil {
		d.scratch = make([]byte, pumpBuf)
	}
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	var errCh <-chan struct{}
	var expired <-chan time.Time
	for {
		if e := s.takeDgramError(); e != 0 {
			return 0, nil, 0, 0, e
		}
		var full int
		if !withFd(s.c.target, func(fd int) {
			full, _, _, _, err = unix.Recvmsg(fd, d.scratch, nil, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		}) {
			return 0, nil, 0, 0, unix.EBADF
		}
		if err == nil {
			h := maphash.Bytes(s.p.seed, d.scratch[:min(full, len(d.scratch))])
			m, ok := d.match(full, h, flags&unix.MSG_PEEK != 0)
			var rflags int
			withFd(s.c.target, func(fd int) {
				n, _, rflags, _, err = unix.Recvmsg(fd, p, nil, flags|unix.MSG_DONTWAIT)
			})
			if err != nil {
				return 0, nil, 0, 0, err
			}
			if ok {
				from = socket.FormatSockaddr(s.so.Family(), m.from)
			}
			if withControl && ok && m.hasInfo {
				var ctrunc bool
				if ctlLen, ctrunc = s.encodeControl(m.info, control); ctrunc {
					rflags |= unix.MSG_CTRUNC
				}
			}
			return n, from, ctlLen, rflags, nil
		}
		if err != unix.EAGAIN {
			return 0, nil, 0, 0, err
		}
		if flags&unix.MSG_DONTWAIT != 0 || timeo == 0 {
			return 0, nil, 0, 0, unix.EAGAIN
		}
		if errCh == nil {
			// An ICMP error arriving while the call waits ends the
			// wait, as sk_error_report wakes a blocked recvmsg (the
			// loop checks for it again after registering).
			entry, ch := waiter.ChannelEntry(waiter.EventErr)
			q := s.so.EventQueue()
			q.Register(entry)
			defer q.Unregister(entry)
			errCh = ch
			if !deadline.IsZero() {
				t := time.NewTimer(time.Until(deadline))
				expired = t.C
				defer t.Stop()
			}
			continue
		}
		select {
		case <-d.kick:
		case <-errCh:
		case <-expired:
			return 0, nil, 0, 0, unix.EAGAIN
		case <-done:
			return 0, nil, 0, 0, intrErrno(timeo)
		case <-s.ctx.Done():
			return 0, nil, 0, 0, unix.EBADF
		}
	}
}

// recvConduit receives from the target end with the target's flags,
// waiting (bounded polls, so ctx is honoured) when it would block.
func (s *Socket) recvConduit(ctx context.Context, p []byte, flags int, deadline time.Time, timeo time.Duration) (int, int, error) {
	for {
		var n, rflags int
		var err error
		if !withFd(s.c.target, func(fd int) {
			n, _, rflags, _, err = unix.Recvmsg(fd, p, nil, flags|unix.MSG_DONTWAIT)
		}) {
			return 0, 0, unix.EBADF
		}
		if err != unix.EAGAIN || flags&unix.MSG_DONTWAIT != 0 || timeo == 0 {
			return n, rflags, err
		}
		if err := s.waitTarget(ctx, unix.POLLIN, deadline, timeo); err != nil {
			return 0, 0, err
		}
	}
}

// waitTarget waits for events on the target end. The target end must
// stay blocking (its O_NONBLOCK is the target's), so it cannot join Go's
// poller: poll in slices of pollSlice to notice ctx.
func (s *Socket) waitTarget(ctx context.Context, events int16, deadline time.Time, timeo time.Duration) error {
	const pollSlice = 20 * time.Millisecond
	for i := 0; ; i++ {
		if ctx != nil && ctx.Err() != nil {
			return intrErrno(timeo)
		}
		if s.ctx.Err() != nil {
			return unix.EBADF
		}
		wait := pollSlice
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return unix.EAGAIN
			}
			wait = min(wait, left)
		}
		var ready bool
		if !withFd(s.c.target, func(fd int) {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
			n, _ := unix.Poll(pfd, int(wait/time.Millisecond)+1)
			ready = n > 0
		}) {
			return unix.EBADF
		}
		if ready {
			return nil
		}
	}
}

// SendTo implements provider.Socket. Datagrams go straight to the stack.
// On a stream socket (where Linux ignores the address) the bytes go
// through the conduit, in order with the target's plain writes. EPIPE is
// returned without a signal: the shim raises SIGPIPE unless the flags
// have MSG_NOSIGNAL.
func (s *Socket) SendTo(ctx context.Context, p []byte, flags int, to []byte, nonblocking bool) (int, error) {
	if nonblocking {
		flags |= unix.MSG_DONTWAIT
	}
	s.mu.Lock()
	viaConduit := s.stream && (s.phase == phaseConnecting || s.phase == phasePumping)
	s.mu.Unlock()
	if !viaConduit {
		s.syncAutobind()
		s.drainUp() // in order with the target's writes
		lo := s.p.loEndpoint()
		var before uint64
		if lo != nil {
			before = lo.Pushed()
		}
		n, _, err := s.so.SendTo(ctx, p, flags, to)
		s.bindTarget() // sendto autobinds
		if lo != nil && !s.stream {
			// A datagram to this host: delivered before sendto
			// returns, as on Linux (settle.go).
			if after := lo.Pushed(); after != before {
				s.p.settleLoopback(lo, after)
			}
		}
		return n, err
	}
	sent := 0
	for {
		var n int
		var err error
		if !withFd(s.c.target, func(fd int) {
			n, err = unix.SendmsgN(fd, p[sent:], nil, nil, flags|unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		}) {
			// Released conduit: straight to the stack.
			k, _, err := s.so.SendTo(ctx, p[sent:], flags, to)
			return sent + k, err
		}
		if n > 0 {
			sent += n
		}
		if sent == len(p) || flags&unix.MSG_DONTWAIT != 0 || (err != nil && err != unix.EAGAIN) {
			if sent > 0 {
				return sent, nil
			}
			return 0, err
		}
		if werr := s.waitTarget(ctx, unix.POLLOUT, time.Time{}, -1); werr != nil {
			if sent > 0 {
				return sent, nil
			}
			return 0, werr
		}
	}
}

// flushDgrams waits (bounded) until the up pump sent the datagrams the
// target wrote before its last close: on Linux they left with each
// write(2).
func (s *Socket) flushDgrams() {
	select {
	case <-s.dgram.upDone:
		return // the pump ended (the target shut down writing)
	default:
	}
	s.dgram.waitUpDrained(s.c.ours, dgramDrainTimeout)
}

// connectDgram connects a datagram socket; a UDP conduit's target end
// follows (mirrorConnect). Concurrent connects are serialised, so the
// stack socket and the target end end up with the same association.
func (s *Socket) connectDgram(ctx context.Context, sa []byte) error {
	s.dgram.connMu.Lock()
	defer s.dgram.connMu.Unlock()
	s.syncAutobind()
	s.drainUp() // datagrams written before go to the old peer
	err := s.so.Connect(ctx, sa)
	if err != nil {
		s.bindTarget() // a connect that failed may have autobound
		return err
	}
	s.mirrorConnect(sa)
	return nil
}
