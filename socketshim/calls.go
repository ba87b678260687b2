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
	return e.sock.Bind(sa)
}

func (c *call) connect(e *entry, fd int) error {
	sa, err := c.sockaddrArg(1, 2)
	if err != nil {
		return err
	}
	ctx, cancel := c.blocking()
	defer cancel()
	return e.sock.Connect(ctx, sa, c.nonblocking(fd))
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
	return e.sock.SetSockOpt(level, name, val)
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
	n, err := e.sock.GetSockOpt(level, name, buf)
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
