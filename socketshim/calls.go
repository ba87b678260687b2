package socketshim

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/socketshim/seccomp"
)

// maxOptLen bounds a socket option copied in or out (Linux has no global
// limit, but no option it knows is near this).
const maxOptLen = 64 << 10

// socket serves socket(2) for the families and types the provider handles.
func (c *call) socket() error {
	family, typ, proto := c.intArg(0), c.intArg(1), c.intArg(2)
	flags := typ &^ 0xf // SOCK_TYPE_MASK
	base := typ &^ (unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC)
	if !c.s.p.Handles(family, base, proto) {
		return errContinue
	}
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return unix.EINVAL
	}
	sock, err := c.s.p.Socket(family, base, proto)
	if err != nil {
		return err
	}
	c.s.noteNetns(c.n.PID)
	e := &entry{sock: sock, family: family, sotype: base & 0xf, protocol: proto}
	if err := c.inject(e, flags); err != nil {
		sock.Close()
		return err
	}
	if sock.Passthrough() {
		// The target holds the kernel socket itself now and every later
		// call on it runs natively: keeping our reference would keep the
		// socket open after the target's close(2) (no FIN, no RST).
		sock.Close()
	}
	return errAnswered
}

// inject installs e's conduit in the target as the syscall's result: file
// status O_NONBLOCK per flags (on the shared open file description, before
// the target can see it), close-on-exec per flags, registered by inode
// first so that a call racing the injection already finds it.
func (c *call) inject(e *entry, flags int) error {
	f := e.sock.Conduit()
	if f == nil {
		return fmt.Errorf("provider %s: socket without conduit", c.s.p.Name())
	}
	// Fd() would switch an *os.File to blocking mode: use the raw fd.
	raw, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("conduit: %w", err)
	}
	var ino uint64
	var tfd int
	var ierr error
	cerr := raw.Control(func(fd uintptr) {
		if ierr = unix.SetNonblock(int(fd), flags&unix.SOCK_NONBLOCK != 0); ierr != nil {
			ierr = fmt.Errorf("conduit: set O_NONBLOCK: %w", ierr)
			return
		}
		var st unix.Stat_t
		if ierr = unix.Fstat(int(fd), &st); ierr != nil {
			ierr = fmt.Errorf("conduit: fstat: %w", ierr)
			return
		}
		ino = st.Ino
		passthrough := e.sock.Passthrough()
		if !passthrough {
			c.s.table.add(ino, e)
		}
		fdFlags := 0
		if flags&unix.SOCK_CLOEXEC != 0 {
			fdFlags = unix.O_CLOEXEC
		}
		tfd, ierr = c.s.l.AddFD(c.n.ID, int(fd), fdFlags, true)
		if ierr != nil && !passthrough {
			c.s.table.remove(ino)
		}
		if ierr == nil {
			e.installed.Store(true)
		}
	})
	if cerr != nil {
		return fmt.Errorf("conduit: %w", cerr)
	}
	if ierr != nil {
		return ierr
	}
	c.s.log.Debug("socketshim: injected", "pid", c.n.PID, "fd", tfd, "inode", ino, "family", e.family, "type", e.sotype)
	return nil
}

func (c *call) bind(e *entry) error {
	sa, err := c.sockaddrArg(1, 2)
	if err != nil {
		return err
	}
	return c.s.retryAfterSweep(func() error { return e.sock.Bind(sa) })
}

// listen records the listening port, so that a connect to it can first
// check that the target still holds the listener (see connect).
func (c *call) listen(e *entry) error {
	if err := c.s.retryAfterSweep(func() error { return e.sock.Listen(c.intArg(1)) }); err != nil {
		return err
	}
	if e.sotype == unix.SOCK_STREAM {
		if sa, err := e.sock.GetSockName(); err == nil {
			e.listenPort.Store(uint32(sockaddrPort(sa)))
		}
	}
	return nil
}

func (c *call) connect(e *entry, fd int) error {
	sa, err := c.sockaddrArg(1, 2)
	if err != nil {
		return err
	}
	if e.sotype == unix.SOCK_STREAM {
		// A listener the target closed since the last sweep would
		// still accept: on Linux the connect is refused at once.
		c.s.sweepListeners(sockaddrPort(sa))
	}
	ctx, cancel := c.blocking()
	defer cancel()
	err = c.s.retryAfterSweep(func() error { return e.sock.Connect(ctx, sa, c.nonblocking(fd)) })
	switch {
	case err == nil && c.s.l.IDValid(c.n.ID) != nil:
		// The handshake completed for a call whose target was
		// interrupted meanwhile (its wait ended with ERESTARTSYS): on
		// Linux the socket stays SS_CONNECTING until a connect call
		// sees the result, so the restarted (or repeated) connect
		// returns 0, not EISCONN.
		e.connectUndelivered.Store(true)
	case err == nil:
		e.connectUndelivered.Store(false)
	case errors.Is(err, unix.EISCONN) && e.connectUndelivered.Swap(false):
		return nil
	}
	return err
}

// sockaddrArg reads the (address, length) argument pair; a non-NULL
// address with length 0 gives a non-nil empty slice, as the kernel passes
// its (empty) copy on.
func (c *call) sockaddrArg(addrIdx, lenIdx int) ([]byte, error) {
	addr, l := c.arg(addrIdx), c.arg(lenIdx)
	sa, err := readSockaddr(c.mem, addr, l)
	if err != nil {
		return nil, err
	}
	if sa == nil && addr != 0 {
		sa = []byte{}
	}
	return sa, nil
}

// accept serves accept and accept4 in Linux's order: take a connection,
// copy its address out (EFAULT loses the connection, as on Linux), then
// install the fd.
func (c *call) accept(e *entry, fd int, flags int) error {
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return unix.EINVAL
	}
	a, ok := e.popAccepted()
	if !ok {
		ctx, cancel := c.blocking()
		sock, peer, err := e.sock.Accept(ctx, c.nonblocking(fd))
		cancel()
		if err != nil {
			return err
		}
		a = acceptedConn{sock: sock, peer: peer}
	}
	if err := writeSockaddr(c.mem, c.arg(1), c.arg(2), a.peer, false); err != nil {
		e.undelivered(a, err)
		return err
	}
	ne := &entry{sock: a.sock, family: e.family, sotype: e.sotype, protocol: e.protocol}
	if err := c.inject(ne, flags); err != nil {
		e.undelivered(a, err)
		return err
	}
	c.maybeRelease(ne)
	return errAnswered
}

// undelivered keeps a connection the target could not receive because it
// went away (the restarted accept gets it: the provider's Requeue, or the
// entry's own queue); after other errors it is closed, as Linux does.
func (e *entry) undelivered(a acceptedConn, err error) {
	if !errors.Is(err, seccomp.ErrTargetGone) {
		a.sock.Close()
		return
	}
	if rq, ok := e.sock.(provider.Requeuer); ok {
		rq.Requeue(a.sock, a.peer)
		return
	}
	e.pushAccepted(a)
}

// getName serves getsockname/getpeername: the provider's error first (e.g.
// ENOTCONN), then the address copied out with truncation.
func (c *call) getName(get func() ([]byte, error)) error {
	sa, err := get()
	if err != nil {
		return err
	}
	return writeSockaddr(c.mem, c.arg(1), c.arg(2), sa, true)
}

func (c *call) setsockopt(e *entry) error {
	level, name, optval := c.intArg(1), c.intArg(2), c.arg(3)
	optlen := c.intArg(4)
	if optlen < 0 {
		return unix.EINVAL
	}
	if optlen > maxOptLen {
		return unix.ENOBUFS
	}
	val := make([]byte, optlen)
	if err := c.mem.read(optval, val); err != nil {
		return err
	}
	return c.setSockOpt(e, level, name, val)
}

// conduitOptSetter is a provider socket that applies the options its
// conduit needs to the target end itself, given lookup's copy of the
// target's fd (it may no longer hold one): netstack.Socket, whose TCP
// conduits also take the buffer sizes.
type conduitOptSetter interface {
	SetSockOptWithConduit(level, name int, val []byte, conduit int) error
}

// setSockOpt asks the provider. A conduitOptSetter gets lookup's copy of
// the target's fd; for other conduit providers the shim sets the
// options of the native data path (isConduitOpt) on that fd itself.
func (c *call) setSockOpt(e *entry, level, name int, val []byte) error {
	if e.sock.Passthrough() {
		return e.sock.SetSockOpt(level, name, val)
	}
	tfd, ok := c.targetFile(c.intArg(0))
	if !ok {
		tfd = -1
	}
	if cs, ok := e.sock.(conduitOptSetter); ok {
		return cs.SetSockOptWithConduit(level, name, val, tfd)
	}
	if err := e.sock.SetSockOpt(level, name, val); err != nil {
		return err
	}
	if level == unix.SOL_SOCKET && isConduitOpt(name) {
		c.setOnTargetFd(c.intArg(0), level, name, val)
	}
	return nil
}

// isConduitOpt: SO_RCVTIMEO and SO_SNDTIMEO (both layouts) also rule the
// native data path, and SO_OOBINLINE how a native recv treats the urgent
// byte the provider sends out of band on the conduit, so they must reach
// the conduit the target holds.
func isConduitOpt(name int) bool {
	switch name {
	case unix.SO_RCVTIMEO, unix.SO_RCVTIMEO_NEW, unix.SO_SNDTIMEO, unix.SO_SNDTIMEO_NEW, unix.SO_OOBINLINE:
		return true
	}
	return false
}

// setOnTargetFd applies a socket option to the file behind the target's
// fd itself (the conduit's target end), through the copy lookup took
// (pidfd_getfd; see targetFile): the provider may no longer hold that
// end (ReleaseConduit), and a native recv/send on it must time out (and
// fail with EINTR on a signal even under SA_RESTART, sock_intr_errno) as
// on the kernel socket. AF_UNIX validates the value like every socket
// (sock_set_timeout), and the provider accepted it already, so a failure
// here is only logged.
func (c *call) setOnTargetFd(fd, level, name int, val []byte) {
	tfd, ok := c.targetFile(fd)
	if !ok {
		c.s.log.Debug("socketshim: no copy of target fd", "pid", c.n.PID, "fd", fd)
		return
	}
	if err := unix.SetsockoptString(tfd, level, name, string(val)); err != nil {
		c.s.log.Debug("socketshim: option on target fd", "pid", c.n.PID, "fd", fd, "name", name, "err", err)
	}
}

// targetFile returns the copy of the target's fd that lookup took: the
// very file the call's socket was found by. Looking fd up again would race
// with the target's other threads (a dup2 or close in between would make
// the call act on another file), so without that copy there is none.
func (c *call) targetFile(fd int) (int, bool) {
	if c.tfd < 0 || fd != c.tfdOf {
		return -1, false
	}
	return c.tfd, true
}

func (c *call) getsockopt(e *entry) error {
	level, name, optval, optlenPtr := c.intArg(1), c.intArg(2), c.arg(3), c.arg(4)
	optlen, err := readInt32(c.mem, optlenPtr)
	if err != nil {
		return err
	}
	if optlen < 0 {
		return unix.EINVAL
	}
	buf := make([]byte, min(int(optlen), maxOptLen))
	n, err := c.getSockOpt(e, level, name, buf)
	if err != nil {
		return err
	}
	n = min(n, len(buf))
	if n > 0 {
		if err := c.mem.write(optval, buf[:n]); err != nil {
			return err
		}
	}
	return writeInt32(c.mem, optlenPtr, int32(n))
}

// conduitErrorer is a provider socket whose SO_ERROR includes its
// conduit's error, read and cleared on the target's own fd (which the
// provider may no longer hold): netstack.Socket.
type conduitErrorer interface {
	SockErrorWithConduit(buf []byte, conduit int) (int, error)
}

// getSockOpt asks the provider; SO_ERROR of a conduit socket is read with
// lookup's copy of the target's fd (targetFile), so an error the target already took with a
// native read (a reset's ECONNRESET) is not reported again.
func (c *call) getSockOpt(e *entry, level, name int, buf []byte) (int, error) {
	ce, ok := e.sock.(conduitErrorer)
	if !ok || level != unix.SOL_SOCKET || name != unix.SO_ERROR || e.sock.Passthrough() {
		return e.sock.GetSockOpt(level, name, buf)
	}
	tfd, ok := c.targetFile(c.intArg(0))
	if !ok {
		return e.sock.GetSockOpt(level, name, buf)
	}
	return ce.SockErrorWithConduit(buf, tfd)
}

// shutdown on a connected stream socket runs on the conduit itself (the
// kernel's shutdown of the target's fd): the provider then reads the bytes
// still queued in the conduit and only after them the EOF that becomes
// its FIN, so no data written before shutdown is lost. Other sockets
// (unconnected: ENOTCONN, listening, datagram) go to the provider.
func (c *call) shutdown(e *entry) error {
	how := c.intArg(1)
	if e.sotype == unix.SOCK_STREAM && how >= unix.SHUT_RD && how <= unix.SHUT_RDWR {
		if _, err := e.sock.GetPeerName(); err == nil {
			return errContinue
		}
	}
	return e.sock.Shutdown(how)
}

// maybeRelease drops the provider's copy of a stream socket's conduit once
// the socket is established (getpeername succeeds), so the target's last
// close(2) becomes the provider's EOF/HUP and closes the socket (FIN, or
// RST with unread data) like Linux. Before that the provider needs the
// copy (connect readiness, SO_ERROR of a refused connect, listener
// readiness, datagram sources), so listeners and datagram sockets keep it
// until the provider closes (see provider/netstack's doc).
func (c *call) maybeRelease(e *entry) {
	if c.s.cfg.KeepConduits || e.sotype != unix.SOCK_STREAM || e.released.Load() {
		return
	}
	cr, ok := e.sock.(provider.ConduitReleaser)
	if !ok {
		return
	}
	if _, err := e.sock.GetPeerName(); err != nil {
		return
	}
	if e.released.CompareAndSwap(false, true) {
		cr.ReleaseConduit()
	}
}
