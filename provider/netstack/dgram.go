package netstack

import (
	"context"
	"hash/maphash"
	"io"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket"
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
}

type dgramMeta struct {
	from netip.AddrPort
	n    int
	hash uint64
}

// maxFIFO bounds the address FIFO (the conduit holds far fewer datagrams;
// entries beyond this can only be stale ones).
const maxFIFO = 1 << 16

func (s *Socket) startDgram() {
	s.dgram = &dgramState{kick: make(chan struct{}, 1), upDone: make(chan struct{})}
	s.wg.Add(2)
	go s.dgramUp()
	go s.dgramDown()
}

// dgramUp sends each datagram the target wrote on the conduit. Errors of
// the send (EDESTADDRREQ on an unconnected socket, ENETUNREACH) cannot
// reach the target: its write already succeeded (see doc.go).
func (s *Socket) dgramUp() {
	defer s.wg.Done()
	defer close(s.dgram.upDone)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := s.c.ours.Read(buf)
		if err == io.EOF {
			var m int16
			withFd(s.c.ours, func(fd int) { m = pollMask(fd, unix.POLLIN|unix.POLLRDHUP) })
			if m&(unix.POLLRDHUP|unix.POLLHUP) != 0 {
				// The target shut down writing (POLLHUP: both ways).
				// It still holds the socket: the provider keeps its
				// copy of a datagram conduit, so the target's close is
				// the shim's Close, never seen here.
				return
			}
			err = nil // a zero-length datagram
		}
		if err != nil {
			return
		}
		if _, _, err := s.so.Write(s.ctx, buf[:n]); socket.IsInterrupt(err) && s.ctx.Err() != nil {
			return
		}
	}
}

// dgramDown moves received datagrams into the conduit, recording their
// sources.
func (s *Socket) dgramDown() {
	defer s.wg.Done()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	d := s.dgram
	for {
		r, err := s.so.RecvMsg(s.ctx, buf, 0)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			continue // EAGAIN (SO_RCVTIMEO), ECONNREFUSED from ICMP: see doc.go
		}
		m := dgramMeta{from: r.From, n: r.N, hash: maphash.Bytes(s.p.seed, buf[:r.N])}
		d.mu.Lock()
		if len(d.fifo) >= maxFIFO {
			d.fifo = append(d.fifo[:0], d.fifo[len(d.fifo)/2:]...)
		}
		d.fifo = append(d.fifo, m)
		d.mu.Unlock()
		if _, err := s.c.ours.Write(buf[:r.N]); err != nil {
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
func (d *dgramState) match(n int, h uint64, peek bool) (netip.AddrPort, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, m := range d.fifo {
		if m.n == n && m.hash == h {
			from := m.from
			if peek {
				d.fifo = d.fifo[i:]
			} else {
				d.fifo = d.fifo[i+1:]
			}
			return from, true
		}
	}
	return netip.AddrPort{}, false
}

// RecvFrom implements provider.Socket. The data comes out of the conduit
// (through the provider's copy of the target end, which shares the
// target's open file description) so it stays in order with the target's
// plain reads; for datagram sockets the source comes from the FIFO.
func (s *Socket) RecvFrom(ctx context.Context, p []byte, flags int, nonblocking bool) (int, []byte, int, error) {
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
		return n, nil, rflags, err
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
	for {
		var full int
		var err error
		if !withFd(s.c.target, func(fd int) {
			full, _, _, _, err = unix.Recvmsg(fd, d.scratch, nil, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		}) {
			return 0, nil, 0, unix.EBADF
		}
		if err == nil {
			h := maphash.Bytes(s.p.seed, d.scratch[:min(full, len(d.scratch))])
			from, ok := d.match(full, h, flags&unix.MSG_PEEK != 0)
			var n, rflags int
			withFd(s.c.target, func(fd int) {
				n, _, rflags, _, err = unix.Recvmsg(fd, p, nil, flags|unix.MSG_DONTWAIT)
			})
			if err != nil {
				return 0, nil, 0, err
			}
			var sa []byte
			if ok {
				sa = socket.FormatSockaddr(s.so.Family(), from)
			}
			return n, sa, rflags, nil
		}
		if err != unix.EAGAIN {
			return 0, nil, 0, err
		}
		if flags&unix.MSG_DONTWAIT != 0 || timeo == 0 {
			return 0, nil, 0, unix.EAGAIN
		}
		var expired <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			expired = t.C
			defer t.Stop()
		}
		select {
		case <-d.kick:
		case <-expired:
			return 0, nil, 0, unix.EAGAIN
		case <-done:
			return 0, nil, 0, intrErrno(timeo)
		case <-s.ctx.Done():
			return 0, nil, 0, unix.EBADF
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
		n, _, err := s.so.SendTo(ctx, p, flags, to)
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
