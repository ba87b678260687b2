package netstack

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

// listenState is a listener's readiness token and pending connections.
//
// Readiness: the target polls the listener's conduit, so it must be
// readable exactly while a connection can be accepted. One token byte is
// written from our end into the target end's receive queue when the
// accept queue (or the pending slot) becomes non-empty and read back
// through the provider's copy of the target end when it drains. The
// target end was filled at listen (as for connect), so it shows no
// POLLOUT either: inet_csk_listen_poll reports POLLIN only.
type listenState struct {
	mu    sync.Mutex
	token bool
	// tokenConn is the token of a TCP conduit's listener: a connection
	// to the listening target end (tcplisten.go), -1 when none.
	tokenConn int
	pending   []acceptedConn
	kick      chan struct{}
}

type acceptedConn struct {
	s    *Socket
	peer []byte
}

// listener is the listen state (nil unless listening).
func (s *Socket) listener() *listenState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lst
}

// startListening runs with s.mu held. Besides the filler (no POLLOUT),
// our end stops reading: the target end gets SEND_SHUTDOWN, so its
// writes fail with EPIPE (and SIGPIPE without MSG_NOSIGNAL) at once, as
// tcp_sendmsg fails them on a listener, instead of blocking for ever on
// the full buffer. Poll is unchanged: POLLHUP and POLLRDHUP need the
// target end's own receive side shut down.
func (s *Socket) startListening() {
	if s.c.tcp == nil {
		s.filler = s.c.fill()
		withFd(s.c.ours, func(fd int) { _ = unix.Shutdown(fd, unix.SHUT_RD) })
	}
	s.phase = phaseListening
	s.lst = &listenState{kick: make(chan struct{}, 1), tokenConn: -1}
	s.wg.Add(1)
	go s.watchListen()
}

func (s *Socket) watchListen() {
	defer s.wg.Done()
	e, ch := waiter.ChannelEntry(waiter.EventIn)
	q := s.so.EventQueue()
	q.Register(e)
	defer q.Unregister(e)
	for {
		s.syncToken()
		select {
		case <-ch:
		case <-s.ctx.Done():
			return
		}
	}
}

// syncToken puts the token in the target end's receive queue or takes it
// out, after the accept queue's state.
func (s *Socket) syncToken() {
	l := s.listener()
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	want := len(l.pending) > 0 || s.so.Readiness(waiter.EventIn)&waiter.EventIn != 0
	if s.c.tcp != nil {
		s.syncTokenConn(l, want)
		return
	}
	var b [1]byte
	switch {
	case want && !l.token:
		withFd(s.c.ours, func(fd int) {
			if n, err := unix.Write(fd, b[:]); n == 1 && err == nil {
				l.token = true
			}
		})
	case !want && l.token:
		// EAGAIN means the target read the token itself (read on a
		// listening socket; Linux would have said ENOTCONN).
		withFd(s.c.target, func(fd int) { _, _, _ = unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT) })
		l.token = false
	}
}

// Accept implements provider.Socket. A connection taken from the stack
// while ctx was cancelled is kept in the pending slot (returned first by
// the next Accept) and the call returns ERESTARTSYS.
func (s *Socket) Accept(ctx context.Context, nonblocking bool) (provider.Socket, []byte, error) {
	l := s.listener()
	if l == nil {
		// Not listening: the stack gives Linux's errno (EINVAL,
		// EOPNOTSUPP).
		_, _, err := s.so.Accept4(cancelled, 0)
		if err == nil || socket.IsInterrupt(err) {
			err = unix.EINVAL
		}
		return nil, nil, err
	}
	e, ch := waiter.ChannelEntry(waiter.EventIn)
	registered := false
	defer func() {
		if registered {
			s.so.EventQueue().Unregister(e)
		}
	}()
	timeo := s.rcvTimeout()
	var expired <-chan time.Time
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	for {
		l.mu.Lock()
		if len(l.pending) > 0 {
			a := l.pending[0]
			l.pending = l.pending[1:]
			l.mu.Unlock()
			s.syncToken()
			return a.s, a.peer, nil
		}
		l.mu.Unlock()
		ns, peer, err := s.so.Accept4(cancelled, 0)
		if err == nil {
			child, werr := s.p.wrap(ns, true)
			if werr != nil {
				ns.Close()
				s.syncToken()
				return nil, nil, unix.ENFILE
			}
			s.inheritOOBInline(child)
			s.inheritTCPBufs(child)
			if ctx != nil && ctx.Err() != nil && !nonblocking {
				s.Requeue(child, peer)
				return nil, nil, intrErrno(timeo)
			}
			child.settleReceived()
			s.syncToken()
			return child, peer, nil
		}
		if !socket.IsInterrupt(err) && err != unix.EAGAIN {
			return nil, nil, err
		}
		if nonblocking || timeo == 0 {
			return nil, nil, unix.EAGAIN
		}
		if !registered {
			s.so.EventQueue().Register(e)
			registered = true
			if timeo > 0 {
				t := time.NewTimer(timeo)
				defer t.Stop()
				expired = t.C
			}
			continue // recheck after registering: no lost wakeup
		}
		select {
		case <-ch:
		case <-l.kick:
		case <-expired:
			return nil, nil, unix.EAGAIN
		case <-done:
			return nil, nil, intrErrno(timeo)
		case <-s.ctx.Done():
			return nil, nil, unix.EBADF
		}
	}
}

// Requeue gives back a connection Accept returned that the shim could
// not hand to the target (the notification died before injection): the
// next Accept returns it first. It implements provider.Requeuer.
func (s *Socket) Requeue(conn provider.Socket, peer []byte) {
	c, ok := conn.(*Socket)
	l := s.listener()
	if !ok || l == nil {
		_ = conn.Close()
		return
	}
	l.mu.Lock()
	l.pending = append(l.pending, acceptedConn{s: c, peer: peer})
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	s.syncToken()
}

// rcvTimeout is SO_RCVTIMEO: -1 for none (wait forever), 0 for do not
// wait.
func (s *Socket) rcvTimeout() time.Duration {
	var b [16]byte
	n, err := s.so.GetSockOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, b[:])
	if err != nil || n < 16 {
		return -1
	}
	d := time.Duration(binary.NativeEndian.Uint64(b[0:8]))*time.Second +
		time.Duration(binary.NativeEndian.Uint64(b[8:16]))*time.Microsecond
	if d == 0 {
		return -1
	}
	return d
}

// intrErrno is sock_intr_errno: restartable only without a timeout.
func intrErrno(timeo time.Duration) error {
	if timeo < 0 {
		return socket.ERESTARTSYS
	}
	return unix.EINTR
}

// abortPending closes connections nobody accepted (closing a listener
// resets them, as inet_csk_listen_stop does).
func (s *Socket) abortPending() {
	l := s.listener()
	if l == nil {
		return
	}
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, a := range pending {
		a.s.setLingerZero()
		a.s.abort()
	}
	l.mu.Lock()
	l.dropTokenConn()
	l.mu.Unlock()
}
