package netstack

import (
	"context"
	"io"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

// pastDeadline wakes every blocked I/O on our end of a conduit.
var pastDeadline = time.Unix(1, 0)

// bufPool holds pump buffers: pumpBuf bytes plus one for the sentinel.
var bufPool = sync.Pool{New: func() any { b := make([]byte, pumpBuf+1); return &b }}

// Connect implements provider.Socket. A fresh stream socket's target end
// is not connected (TCP_CLOSE: POLLOUT|POLLHUP, as a fresh TCP socket):
// it is connected in place (join) only once the stack's connect started,
// and made non-writable at once (see conduit.fill), so that POLLOUT
// appears only when the handshake is done, as Linux's tcp_poll shows it.
// A blocking connect keeps it unconnected until the handshake's outcome:
// joined on success, left as it is on failure, so that the socket polls
// POLLOUT|POLLHUP and can connect again, as on Linux (spec C.20).
func (s *Socket) Connect(ctx context.Context, sa []byte, nonblocking bool) error {
	if !s.stream {
		return s.connectDgram(ctx, sa)
	}
	defer s.releaseIfWanted()
	s.mu.Lock()
	pending := s.phase == phaseConnecting
	fresh := s.phase == phaseIdle && s.so.Endpoint().Info().State == tcpClose
	s.mu.Unlock()

	call := ctx
	if nonblocking {
		call = cancelled
	}
	lo := s.p.loEndpoint()
	var before uint64
	if lo != nil {
		before = lo.Pushed()
	}
	err := s.so.Connect(call, sa)
	if nonblocking && socket.IsInterrupt(err) {
		err = unix.EINPROGRESS
		if pending {
			err = unix.EALREADY
		}
	}
	settled := false
	if nonblocking && err == unix.EINPROGRESS && lo != nil {
		if after := lo.Pushed(); after != before {
			// The SYN went to this host: the handshake ends before
			// connect returns, as on Linux (settle.go).
			settled = s.settleHandshake(lo, after)
		}
	}
	if !fresh {
		if err == nil {
			s.startStream()
		}
		return err
	}
	switch {
	case err == nil && s.so.Endpoint().Info().State == tcpClose:
		// connect(AF_UNSPEC) on a fresh socket: nothing to connect.
		return nil
	case err == nil:
		if jerr := s.startStream(); jerr != nil {
			return jerr
		}
		if nonblocking {
			// Linux's non-blocking connect reports the handshake's
			// outcome only through poll and SO_ERROR, even when it is
			// already known.
			return unix.EINPROGRESS
		}
		return nil
	case err == unix.EINPROGRESS || err == unix.EALREADY || socket.IsInterrupt(err):
		// The handshake goes on (an interrupted blocking connect too,
		// as on Linux): join and fill now, so the target's poll and
		// writes wait for it as in SYN_SENT.
		if jerr := s.beginConnecting(); jerr != nil {
			// No conduit for the connection (no file descriptors
			// left): reset it rather than leave it unseen.
			s.setLingerZero()
			s.abort()
			return jerr
		}
		if settled {
			s.finishConnecting()
		}
		return err
	case nonblocking && isConnFailure(err) && s.so.Endpoint().Info().State == tcpClose:
		// Failed at once: shown as a reset conduit, with the error kept
		// for SO_ERROR.
		s.setPendingErr(err)
		s.mu.Lock()
		jerr := s.joinLocked()
		s.mu.Unlock()
		if jerr != nil {
			return jerr
		}
		s.reset()
		return unix.EINPROGRESS
	}
	// A blocking connect that failed (refused, timed out), or a connect
	// that did not start (EINVAL, ENETUNREACH, ...): the target end stays
	// unconnected, like Linux's socket after tcp_disconnect.
	return err
}

// joinLocked connects the target end to our end (once); s.mu is held. A
// socket being closed is not joined (abort reads ours after setting
// phaseDead, and the field must not change after that).
func (s *Socket) joinLocked() error {
	if s.c.ours != nil {
		return nil
	}
	if s.phase == phaseDead {
		return unix.EBADF
	}
	if err := s.c.join(streamConduitBuf); err != nil {
		return err
	}
	s.applyTCPBufsLocked()
	return nil
}

// beginConnecting joins a fresh socket's target end, fills it (no POLLOUT
// while the handshake runs) and starts watchConnect.
func (s *Socket) beginConnecting() error {
	s.mu.Lock()
	if s.phase != phaseIdle {
		s.mu.Unlock()
		return nil // another connect got there first
	}
	if err := s.joinLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.filler = s.c.fill()
	s.phase = phaseConnecting
	s.mu.Unlock()
	s.wg.Add(1)
	go s.watchConnect()
	return nil
}

// setPendingErr keeps an error the stack already reported to us for the
// target's SO_ERROR.
func (s *Socket) setPendingErr(err error) {
	if e, ok := err.(unix.Errno); ok {
		s.mu.Lock()
		s.pendingErr = e
		s.mu.Unlock()
	}
}

func isConnFailure(err error) bool {
	switch err {
	case unix.ECONNREFUSED, unix.ETIMEDOUT, unix.ECONNRESET, unix.EHOSTUNREACH:
		return true
	}
	return false
}

func (s *Socket) discardFillerLocked() {
	if s.filler == 0 {
		return
	}
	bp := bufPool.Get().(*[]byte)
	_ = s.c.ours.SetReadDeadline(time.Time{})
	_, _ = io.ReadFull(s.c.ours, (*bp)[:min(s.filler, len(*bp))])
	s.filler = 0
	bufPool.Put(bp)
}

// watchConnect waits for the end of a handshake started by Connect.
func (s *Socket) watchConnect() {
	defer s.wg.Done()
	e, ch := waiter.ChannelEntry(waiter.EventOut | waiter.EventErr | waiter.EventHUp)
	q := s.so.EventQueue()
	q.Register(e)
	defer q.Unregister(e)
	for {
		switch st := s.so.Endpoint().Info().State; st {
		case tcpSynSent:
		case tcpClose:
			s.reset()
			return
		default:
			s.startStream()
			return
		}
		select {
		case <-ch:
		case <-s.ctx.Done():
			return
		}
	}
}

// startStream discards the filler and starts both pumps (once). A target
// end that is not connected yet (blocking connect) is joined first; if
// that fails (no file descriptors left), the connection is reset and the
// error returned.
func (s *Socket) startStream() error {
	if err := s.startStreamLocked(); err != nil {
		s.setLingerZero()
		s.abort()
		return err
	}
	// A release asked for while connecting happens now: the target end's
	// buffer has been restored.
	s.releaseIfWanted()
	return nil
}

func (s *Socket) startStreamLocked() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase == phasePumping || s.phase == phaseDead {
		return nil
	}
	if err := s.joinLocked(); err != nil {
		return err
	}
	if s.c.tcp != nil {
		// A TCP conduit keeps no sentinel: a byte left unread in our end
		// keeps its whole buffer charged to the receive window, which
		// can stay closed; a reset sends RST without it (reset).
		if s.phase == phaseConnecting && s.filler > 0 {
			s.c.restoreSendBuf(streamConduitBuf)
			s.discardFillerLocked()
		}
	} else if s.phase == phaseConnecting && s.filler > 0 {
		// Raise the buffer first: a write the target makes as soon as
		// POLLOUT shows lands after the filler, which is discarded next
		// but for its last byte, which stays as the sentinel.
		s.c.restoreSendBuf(streamConduitBuf)
		s.filler--
		s.discardFillerLocked()
		s.sentinel = true
	} else {
		withFd(s.c.target, func(fd int) {
			var b [1]byte
			n, _ := unix.SendmsgN(fd, b[:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
			s.sentinel = n == 1
		})
	}
	s.phase = phasePumping
	s.upDone = make(chan struct{})
	s.wg.Add(2)
	go s.pumpUp(s.upDone, s.sentinel)
	go s.pumpDown()
	return nil
}

// upRead is the conduit→stack pump's read. It never empties our receive
// queue: when a read would take the last byte, it takes all but that byte
// and copies the last one with MSG_PEEK, leaving it queued as the
// sentinel (already sent; the next read skips it). Closing our end on a
// reset therefore always finds unread data, so the target's next read
// fails with ECONNRESET (unix_release_sock) even when the provider no
// longer holds the target end (ReleaseConduit). It costs one SIOCINQ per
// read and one 1-byte peek when the queue drains; every byte is still
// copied once.
type upRead struct {
	buf      []byte // len(buf) = pumpBuf + 1 (room for the sentinel)
	sentinel bool   // the head of the queue is an already-sent byte
	// keepLast: leave the last byte queued as the sentinel (AF_UNIX
	// conduits only).
	keepLast bool
	// sentinelMark: the sentinel is the target's urgent byte, still
	// marked out of band on our end (POLLPRI, SIOCATMARK) until read.
	sentinelMark bool
	data         []byte // the bytes to send, within buf
	urgent       bool   // data's last byte is the target's urgent byte (MSG_OOB)
	eof          bool
	err          error
}

func (r *upRead) read(fd uintptr) bool {
	r.data, r.urgent, r.eof, r.err = nil, false, false, nil
	q, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil {
		r.err = err
		return true
	}
	if r.urgentQueued(int(fd)) {
		// The target sent an urgent byte (see urgent.go). Without one,
		// a byte sent urgent after this check lies behind the q bytes
		// counted, so the reads below stop before it.
		return r.readToMark(int(fd), q)
	}
	skip := 0
	if r.sentinel {
		skip = 1
	}
	avail := q - skip
	if avail <= 0 {
		// Nothing new. The sentinel stays queued (a later reset must
		// still find unread data); EOF once the target shut down writing.
		m := pollMask(int(fd), unix.POLLIN|unix.POLLRDHUP)
		if m&unix.POLLERR != 0 {
			if e := sockError(int(fd)); e != 0 {
				r.err = e
				return true
			}
		}
		if m&(unix.POLLRDHUP|unix.POLLHUP) == 0 {
			return false
		}
		if q, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil && q > skip {
			return true // a last write raced with the shutdown: read it
		}
		r.eof = true
		return true
	}
	k := min(avail, len(r.buf)-1)
	draining := k == avail && r.keepLast
	want := skip + k
	if draining {
		want-- // keep the last byte queued
	}
	n := 0
	if want > 0 {
		var e error
		if n, e = recvRaw(int(fd), r.buf[:want], unix.MSG_DONTWAIT); e != nil {
			if e == unix.EAGAIN {
				return false
			}
			r.err = e
			return true
		}
	}
	got := r.buf[min(skip, n):n]
	r.sentinel, r.sentinelMark = false, false
	if draining && n == want {
		// Copy the last byte, leaving it as the sentinel.
		if m, e := recvRaw(int(fd), r.buf[n:n+1], unix.MSG_DONTWAIT|unix.MSG_PEEK); e == nil && m == 1 {
			got = r.buf[min(skip, n) : n+1]
			r.sentinel = true
		}
	}
	r.data = got
	if len(got) == 0 && !r.sentinel {
		return false
	}
	return true
}

// recvRaw is recv(2) without allocating a source address.
func recvRaw(fd int, p []byte, flags int) (int, error) {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(flags), 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}

// pumpUp moves the target's bytes into the stack: read our end, write the
// stack socket (blocking while the TCP send buffer is full, which stops
// the reads and so fills the conduit and blocks the target).
func (s *Socket) pumpUp(done chan struct{}, sentinel bool) {
	defer s.wg.Done()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	rc, err := s.c.ours.SyscallConn()
	if err != nil {
		close(done)
		return
	}
	// Urgent bytes of the target stay in their place on our end (see
	// upRead.readToMark).
	_ = rc.Control(func(fd uintptr) { setOursInline(int(fd)) })
	r := &upRead{buf: *bp, sentinel: sentinel, keepLast: s.c.tcp == nil}
	read := func(fd uintptr) bool {
		s.upMu.Lock()
		defer s.upMu.Unlock()
		ready := r.read(fd)
		s.upInFlight = len(r.data)
		return ready
	}
	defer s.upSent()
	for {
		if err := rc.Read(read); err != nil {
			close(done) // deadline or closed: reset or abort
			return
		}
		if r.err != nil {
			close(done)
			if r.err == unix.ECONNRESET {
				// The target end was released with unread data in its
				// receive queue (unix_release_sock): close with RST.
				s.setLingerZero()
				s.closeFromTarget()
			}
			return
		}
		flags := 0
		if r.urgent {
			flags = unix.MSG_OOB
		}
		werr := s.writeStack(r.data, flags)
		s.upSent()
		if werr != nil {
			close(done)
			if !socket.IsInterrupt(werr) {
				s.stackWriteFailed(werr)
			}
			return
		}
		if r.eof {
			break
		}
	}
	// EOF is the target's shutdown(SHUT_WR) unless the target end was
	// released (the target closed its last reference): see targetGone.
	var gone bool
	withFd(s.c.ours, func(fd int) { gone = s.targetGone(fd) })
	if !gone {
		// FIN; the target can still read.
		_ = s.so.Shutdown(unix.SHUT_WR)
		close(done)
		if !s.waitHangup() {
			return
		}
	} else {
		close(done)
	}
	s.closeFromTarget()
}

// upSent records that pumpUp holds no bytes (ioctlOutq).
func (s *Socket) upSent() {
	s.upMu.Lock()
	s.upInFlight = 0
	s.upMu.Unlock()
}

// targetGone reports whether the target closed its last reference to the
// conduit (our end is fd). POLLHUP on our end shows it only when the
// provider holds no copy of the target end, and a target that shut down
// both directions but keeps its fd shows POLLHUP too: closing our end
// then would be wrong (the sentinel left in our receive queue would give
// the target ECONNRESET, and the stack socket must stay open, as a
// shut-down TCP socket does), so sock_diag decides (targetReleased).
// Without sock_diag, POLLHUP of a released conduit counts as the close.
func (s *Socket) targetGone(fd int) bool {
	if s.c.tcp != nil {
		return s.isReleased() && s.c.tcpTargetGone(fd)
	}
	if pollMask(fd, unix.POLLIN)&unix.POLLHUP == 0 || !s.isReleased() {
		return false
	}
	gone, err := targetReleased(fd)
	return gone || err != nil
}

func (s *Socket) isReleased() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.released
}

// closeFromTarget closes the socket when the target end was released
// (the target closed its last reference): as tcp_close, RST if the target
// left unread data (unix_release_sock then set ECONNRESET on our end),
// FIN otherwise.
func (s *Socket) closeFromTarget() {
	s.closeOnce.Do(func() {
		var unread bool
		withFd(s.c.ours, func(fd int) { unread = sockError(fd) == unix.ECONNRESET })
		if unread {
			s.setLingerZero()
		}
		s.abort()
	})
}

// writeStack writes all of p to the stack socket. SO_SNDTIMEO (the
// target's, kept on the stack socket for its blocking calls) may cut a
// write short or time it out: the pump just goes on. With MSG_OOB, p's
// last byte is the urgent byte; a write cut short (full send buffer)
// moves the urgent pointer along, as tcp_push does with MSG_OOB, and the
// last one puts it after p's last byte.
func (s *Socket) writeStack(p []byte, flags int) error {
	for len(p) > 0 {
		k, _, err := s.so.Send(s.ctx, p, flags)
		p = p[k:]
		if err == unix.EAGAIN && s.ctx.Err() == nil {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// waitHangup blocks until the target closed its last reference to the
// conduit (targetGone), or the socket ends.
func (s *Socket) waitHangup() bool {
	if s.c.tcp != nil {
		return s.waitTCPHangup()
	}
	rc, err := s.c.ours.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	_ = rc.Read(func(fd uintptr) bool {
		// unix_release_sock wakes our end (sk_state_change), so the
		// poller calls again when the target closes.
		gone = s.targetGone(int(fd))
		return gone
	})
	return gone
}

// tcpHangupPoll is how often waitTCPHangup asks sock_diag.
const tcpHangupPoll = 20 * time.Millisecond

// waitTCPHangup is waitHangup for a TCP conduit: a target that shut down
// writing and later closes its fd sends nothing more (its FIN went
// already), so our end sees no event; sock_diag is asked at intervals.
func (s *Socket) waitTCPHangup() bool {
	t := time.NewTicker(tcpHangupPoll)
	defer t.Stop()
	for {
		var gone bool
		if s.isReleased() && !withFd(s.c.ours, func(fd int) { gone = s.c.tcpTargetGone(fd) }) {
			return false
		}
		if gone {
			return true
		}
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return false
		}
	}
}

// stackWriteFailed reflects a send error of the stack on the conduit: a
// reset resets the conduit; EPIPE (we or the peer shut down) makes the
// target's writes fail with EPIPE.
func (s *Socket) stackWriteFailed(err error) {
	if err == unix.EPIPE {
		withFd(s.c.ours, func(fd int) { _ = unix.Shutdown(fd, unix.SHUT_RD) })
		return
	}
	s.setPendingErr(err)
	s.reset()
}

// pumpDown moves the stack's bytes to the target: read the stack socket,
// write our end (blocking while the target does not read, so the stack's
// receive buffer fills and TCP advertises a zero window). The peer's
// urgent byte goes out of band (see urgent.go).
func (s *Socket) pumpDown() {
	defer s.wg.Done()
	defer s.down.idle() // nothing more will come: settleReceived stops
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	rc, err := s.c.ours.SyscallConn()
	if err != nil {
		return
	}
	rd := s.newStackReader()
	defer rd.close()
	for {
		n, urgent, err := rd.read(buf)
		if err == errStopped {
			return
		}
		if err != nil {
			// ECONNRESET, ETIMEDOUT, ...: the pump took the stack's
			// error, keep it for SO_ERROR.
			s.setPendingErr(err)
			s.reset()
			return
		}
		if n == 0 {
			// Peer FIN after the last byte: the target reads EOF and can
			// still write (half-close).
			withFd(s.c.ours, func(fd int) { _ = unix.Shutdown(fd, unix.SHUT_WR) })
			if s.c.tcp != nil {
				s.down.idle() // all moved: settleReceived stops now
				s.resetAfterFIN()
			}
			return
		}
		flags := 0
		if urgent {
			// The peer's urgent byte: out of band on the conduit too.
			flags = unix.MSG_OOB
		}
		s.downMu.Lock()
		s.downInFlight += n
		s.downMu.Unlock()
		if err := s.writeConduit(rc, buf[:n], flags); err != nil {
			// The target shut down reading, or the socket ends: the
			// bytes are dropped.
			s.downMu.Lock()
			s.downInFlight = 0
			s.downMu.Unlock()
			return
		}
	}
}

// writeConduit writes all of p to our end of the conduit, waiting in
// Go's poller while it is full. Each write and the matching decrement of
// downInFlight happen under downMu (see Socket.downInFlight). MSG_NOSIGNAL:
// a target gone away is EPIPE, not a SIGPIPE for netprov. flags is 0, or
// MSG_OOB for the peer's urgent byte.
func (s *Socket) writeConduit(rc syscall.RawConn, p []byte, flags int) error {
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			s.downMu.Lock()
			k, e := unix.SendmsgN(int(fd), p, nil, nil, flags|unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
			if k > 0 {
				s.downInFlight -= k
				p = p[k:]
			}
			s.downMu.Unlock()
			switch e {
			case nil, unix.EINTR:
			case unix.EAGAIN:
				return false
			case unix.EOPNOTSUPP:
				if flags&unix.MSG_OOB != 0 {
					// No AF_UNIX MSG_OOB (CONFIG_AF_UNIX_OOB off): the
					// urgent byte goes inline.
					flags &^= unix.MSG_OOB
					continue
				}
				werr = e
				return true
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

// resetAfterFIN waits, once the peer's FIN went through a TCP conduit,
// for a reset of the stack socket (a peer RST in CLOSE_WAIT) and resets
// the conduit then: the target end, in CLOSE_WAIT too, takes the RST as
// Linux's socket does (EPIPE, POLLERR|POLLHUP, reads still give EOF).
func (s *Socket) resetAfterFIN() {
	e, ch := waiter.ChannelEntry(waiter.EventErr)
	q := s.so.EventQueue()
	q.Register(e)
	defer q.Unregister(e)
	for s.so.Readiness(waiter.EventErr)&waiter.EventErr == 0 {
		select {
		case <-ch:
		case <-s.ctx.Done():
			return
		}
	}
	s.reset()
}

// reset makes the conduit look like a reset TCP socket: our end is
// closed with unread data in its receive queue, which sets ECONNRESET on
// the target end (unix_release_sock): its next read returns ECONNRESET
// after the data already delivered, poll shows POLLERR|POLLHUP, and
// writes fail with EPIPE (SIGPIPE unless MSG_NOSIGNAL).
func (s *Socket) reset() {
	s.mu.Lock()
	if s.phase == phaseDead {
		s.mu.Unlock()
		return
	}
	s.phase = phaseDead
	upDone := s.upDone
	s.mu.Unlock()
	// Stop the conduit→stack pump so the byte below stays unread.
	_ = s.c.ours.SetReadDeadline(pastDeadline)
	if upDone != nil {
		<-upDone
	}
	if s.c.tcp != nil {
		// An RST whatever our end has unread.
		withFd(s.c.ours, setLingerZeroFd)
	} else {
		withFd(s.c.target, func(fd int) {
			var b [1]byte
			_, _ = unix.SendmsgN(fd, b[:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		})
	}
	s.c.ours.Close()
}

// setLingerZeroFd makes close(fd) of a TCP socket send RST.
func setLingerZeroFd(fd int) {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}

// Shutdown implements provider.Socket. On an established stream socket
// the shutdown is applied to the conduit from our end, which needs no
// copy of the target end: the target's SHUT_WR is our SHUT_RD (the target
// end gets SEND_SHUTDOWN, so its writes fail with EPIPE; we still read
// the bytes it queued, then EOF, and the pump sends FIN after them); its
// SHUT_RD is our SHUT_WR (it reads EOF after the bytes already queued).
func (s *Socket) Shutdown(how int) error {
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return unix.EINVAL
	}
	s.mu.Lock()
	pumping := s.phase == phasePumping
	s.mu.Unlock()
	if !s.stream {
		return s.shutdownDgram(how)
	}
	if s.c.tcp != nil && s.listener() != nil && !pumping {
		// The listening target end goes to CLOSE too (POLLOUT|POLLHUP),
		// resetting the token connection queued in it.
		err := s.so.Shutdown(how)
		l := s.listener()
		l.mu.Lock()
		withFd(s.c.target, func(fd int) { _ = unix.Shutdown(fd, how) })
		l.dropTokenConn()
		l.mu.Unlock()
		return err
	}
	if !pumping {
		return s.so.Shutdown(how)
	}
	if s.c.tcp != nil {
		// The target end is a TCP socket: shut it down itself (its FIN
		// reaches our end after its last byte, and the pump sends the
		// stack's then). Released, the provider has no copy: the shim
		// shuts the target's own fd down natively.
		var err error
		if withFd(s.c.target, func(fd int) { err = unix.Shutdown(fd, how) }) {
			if err == nil && how != unix.SHUT_WR {
				err = s.so.Shutdown(unix.SHUT_RD)
			}
			return err
		}
	}
	ours := unix.SHUT_RDWR
	switch how {
	case unix.SHUT_RD:
		ours = unix.SHUT_WR
	case unix.SHUT_WR:
		ours = unix.SHUT_RD
	}
	var err error
	if !withFd(s.c.ours, func(fd int) { err = unix.Shutdown(fd, ours) }) {
		return s.so.Shutdown(how) // the conduit was reset
	}
	if err != nil {
		return err
	}
	if how != unix.SHUT_WR {
		return s.so.Shutdown(unix.SHUT_RD)
	}
	return nil
}

// dgramDrainTimeout bounds how long a datagram socket's shutdown waits
// for the pump to send what the target wrote before it.
const dgramDrainTimeout = 2 * time.Second

// shutdownDgram shuts a datagram socket down on the stack and on the
// conduit. Shutting down writing stops the target's writes on the conduit
// first and waits until dgramUp has sent every datagram written before
// (the target's write(2) returned: on Linux they are sent already), so a
// shutdown right after a write loses nothing.
func (s *Socket) shutdownDgram(how int) error {
	if s.c.udp != nil {
		return s.shutdownUDP(how)
	}
	if how != unix.SHUT_RD && s.dgram != nil {
		if _, err := s.so.GetPeerName(); err == nil {
			withFd(s.c.target, func(fd int) { _ = unix.Shutdown(fd, unix.SHUT_WR) })
			t := time.NewTimer(dgramDrainTimeout)
			select {
			case <-s.dgram.upDone:
			case <-s.ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	if err := s.so.Shutdown(how); err != nil {
		return err
	}
	withFd(s.c.target, func(fd int) { _ = unix.Shutdown(fd, how) })
	return nil
}
