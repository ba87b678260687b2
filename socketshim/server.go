package socketshim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/socketshim/seccomp"
	"github.com/netprov/netprov/stack/socket"
)

// Config tunes a Server. The zero value is usable.
type Config struct {
	// MaxInFlight bounds the calls that may block handled at once (each
	// in its own goroutine, so a blocking accept does not stall the
	// others; see Serve); default 256. When all are busy, receiving waits.
	MaxInFlight int
	// PollInterval is how often a blocking call checks that its
	// notification is still alive (a signal interrupted it or the target
	// died); default 50 ms.
	PollInterval time.Duration
	// Logger receives diagnostics; default slog.Default().
	Logger *slog.Logger
	// KeepConduits stops the Server from calling ReleaseConduit on
	// stream sockets that implement provider.ConduitReleaser once they
	// are established (see maybeRelease). Released, the provider sees the
	// target's last close(2) as EOF/HUP and closes the socket like Linux;
	// kept, sockets live until the provider closes.
	KeepConduits bool
	// SweepInterval is how often the Server looks for sockets the target
	// closed (see sweep.go); default 1 s.
	SweepInterval time.Duration
	// NoSyncWakeUp leaves SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP unset. By
	// default the Server sets it (Linux 6.6+; ignored before): the
	// target and the supervisor then hand one CPU to each other, which
	// made an intercepted call 1.5-2x faster under `netprov run` (see
	// bench/shim/RESULTS.md).
	NoSyncWakeUp bool
}

// Server serves one listener's notifications from one provider.
type Server struct {
	l   *seccomp.Listener
	p   provider.Provider
	cfg Config
	log *slog.Logger

	table socketTable
	ifs   ifaceSockets
	tasks taskFiles
	watch *watchdog

	nsMu  sync.Mutex
	netns map[uint64]bool // network namespaces of the sandbox's processes
}

// NewServer makes a Server for listener l and provider p. It does not take
// ownership of either.
func NewServer(l *seccomp.Listener, p provider.Provider, cfg Config) *Server {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{l: l, p: p, cfg: cfg, log: log, table: socketTable{m: map[uint64]*entry{}}, watch: newWatchdog()}
}

// Serve receives and handles notifications until the filter has no users
// left (every target exited: it returns nil) or ctx ends (ctx's error).
// It waits for the handlers it started before returning.
//
// Calls that cannot block are served on the receiving goroutine itself
// (no goroutine per call), as are calls on fds that are not served
// sockets (continued at once); calls that may block (connect, accept, the
// served data calls, a datagram socket's shutdown, and bind/listen, which
// may wait for a sweep) get a goroutine each, so they never hold up the others. The listener is set
// to wake the receiving thread on the trapping target's CPU
// (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, unless Config.NoSyncWakeUp).
func (s *Server) Serve(ctx context.Context) error {
	hctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		s.ifs.close()
		s.tasks.close()
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.sweepLoop(hctx)
	}()
	go func() {
		defer wg.Done()
		s.watch.run(hctx, s.cfg.PollInterval)
	}()
	w, err := s.l.NewWaiter()
	if err != nil {
		return fmt.Errorf("socketshim: %w", err)
	}
	defer w.Close()
	if !s.cfg.NoSyncWakeUp {
		if err := s.l.SetSyncWakeUp(); err != nil {
			s.log.Debug("socketshim: no synchronous wake-up", "err", err)
		}
	}
	stop := context.AfterFunc(ctx, w.Interrupt)
	defer stop()
	sem := make(chan struct{}, s.cfg.MaxInFlight)
	for {
		n := new(seccomp.Notif)
		if err := w.Recv(n); err != nil {
			if errors.Is(err, seccomp.ErrTargetGone) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("socketshim: %w", err)
		}
		c := s.newCall(hctx, n)
		if c.serveInline() {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			c.release()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.serve()
		}()
	}
}

// mayBlock reports whether a served call of syscall nr on socket e may
// wait (for a peer, for data or room, or for retries after a sweep):
// those are served on their own goroutine. shutdown of a datagram socket
// waits for the datagrams still in its conduit to be sent (up to the
// provider's drain bound: 2 s for netstack), so only a stream socket's
// (run on the conduit, or by the provider without waiting) is served
// inline.
func mayBlock(nr int32, e *entry) bool {
	switch nr {
	case unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME, unix.SYS_SETSOCKOPT,
		unix.SYS_GETSOCKOPT, unix.SYS_IOCTL, unix.SYS_SOCKET:
		return false
	case unix.SYS_SHUTDOWN:
		return e.sotype != unix.SOCK_STREAM
	}
	return true
}

// Sentinel outcomes of a handler besides a value or an errno.
var (
	// errContinue: let the kernel run the call (not ours).
	errContinue = errors.New("continue")
	// errAnswered: the handler completed the syscall itself (ADDFD SEND).
	errAnswered = errors.New("answered")
)

// call is one notification being handled.
type call struct {
	s   *Server
	n   *seccomp.Notif
	mem notifMemory
	ctx context.Context // the Server's; see blocking
	e   *entry          // the served socket behind argument 0 (lookup)
	// tfd is a copy of the target's fd tfdOf (argument 0), from lookup,
	// closed by release; -1 if none.
	tfd, tfdOf int
	// signalled: blocking cancelled the call because a signal is pending
	// for the target thread (killable waits, see signalPending).
	signalled atomic.Bool
}

func (c *call) arg(i int) uint64 { return c.n.Data.Args[i] }
func (c *call) intArg(i int) int { return int(int32(uint32(c.n.Data.Args[i]))) }

// pending is nil while the notification is pending.
func (c *call) pending() error { return c.s.l.IDValid(c.n.ID) }

// blocking returns a context that is cancelled once the notification is no
// longer pending (signal or death of the target), for provider calls that
// may block. The Server's watchdog checks it every PollInterval.
func (c *call) blocking() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.ctx)
	c.s.watch.add(c, cancel)
	return ctx, func() {
		c.s.watch.remove(c)
		cancel()
	}
}

// nonblocking reports whether the target's fd has O_NONBLOCK now.
func (c *call) nonblocking(fd int) bool {
	if c.tfd >= 0 && fd == c.tfdOf {
		// The copy shares the target's open file description.
		if fl, err := unix.FcntlInt(uintptr(c.tfd), unix.F_GETFL, 0); err == nil {
			return fl&unix.O_NONBLOCK != 0
		}
	}
	fl, err := fdStatusFlags(c.n.PID, fd)
	if err != nil {
		return false // fd gone meanwhile: the call fails elsewhere
	}
	return fl&unix.O_NONBLOCK != 0
}

func (s *Server) newCall(ctx context.Context, n *seccomp.Notif) *call {
	return &call{s: s, n: n, mem: notifMemory{l: s.l, pid: n.PID, id: n.ID}, ctx: ctx, tfd: -1}
}

// release closes what the call holds.
func (c *call) release() {
	if c.tfd >= 0 {
		unix.Close(c.tfd)
		c.tfd = -1
	}
}

// serveInline serves the call on the receiving goroutine unless it may
// block; it reports whether it did. A call on an fd that is not a served
// socket is continued here whatever its syscall.
func (c *call) serveInline() bool {
	d := &c.n.Data
	if d.Arch != unix.AUDIT_ARCH_X86_64 || d.Nr == unix.SYS_SOCKET {
		c.serve()
		return true
	}
	e, err := c.lookup()
	if err != nil {
		c.s.finish(c.n, 0, err)
		c.release()
		return true
	}
	c.e = e
	if mayBlock(d.Nr, e) {
		return false
	}
	c.serve()
	return true
}

// serve handles the call (after lookup for calls on an fd) and answers.
func (c *call) serve() {
	defer c.release()
	n, s := c.n, c.s
	var val int64
	var err error
	if n.Data.Arch != unix.AUDIT_ARCH_X86_64 {
		err = unix.ENOSYS
	} else if n.Data.Nr == unix.SYS_SOCKET {
		err = c.socket()
	} else {
		val, err = c.onSocket(c.e)
	}
	if c.signalled.Load() && errors.Is(err, socket.ERESTARTSYS) {
		// A signal is pending for the target thread, which waits
		// killably: ERESTARTSYS makes the kernel's signal code restart
		// the call (SA_RESTART, or a stop) or fail it with EINTR, as for
		// a native blocking call.
		if serr := s.l.Respond(n.ID, 0, socket.ERESTARTSYS); serr != nil && !errors.Is(serr, seccomp.ErrTargetGone) {
			s.log.Debug("socketshim: answer", "syscall", n.Data.Nr, "pid", n.PID, "err", serr)
		}
		return
	}
	s.finish(n, val, err)
}

// lookup finds the served socket behind the call's fd (argument 0), by the
// inode of the file the target's fd table holds there: errContinue if it
// is not one (closed, not a socket, not ours, a passthrough socket).
func (c *call) lookup() (*entry, error) {
	if c.s.table.empty() {
		return nil, errContinue
	}
	fd := c.intArg(0)
	tfd, err := c.s.tasks.fdCopy(c.pending, c.n.PID, fd)
	var ino uint64
	switch {
	case err == nil:
		c.tfd, c.tfdOf = tfd, fd
		ino, err = socketInode(tfd)
	case err == unix.EBADF:
		return nil, errContinue // the kernel fails it with EBADF
	case errors.Is(err, seccomp.ErrTargetGone):
		return nil, err
	default:
		// pidfd_getfd unavailable or refused: read the fd's link.
		ino, err = fdInode(c.n.PID, fd)
	}
	if err != nil {
		if errors.Is(err, errNotSocket) {
			return nil, errContinue
		}
		return nil, err
	}
	e := c.s.table.get(ino)
	if e == nil {
		return nil, errContinue
	}
	return e, nil
}

// finish answers the kernel for a handler's outcome.
func (s *Server) finish(n *seccomp.Notif, val int64, err error) {
	var serr error
	switch {
	case err == nil:
		serr = s.l.Respond(n.ID, val, 0)
	case errors.Is(err, errAnswered):
		return
	case errors.Is(err, errContinue):
		serr = s.l.Continue(n.ID)
	case errors.Is(err, seccomp.ErrTargetGone):
		return
	default:
		e, ok := errnoOf(err)
		if !ok {
			s.log.Warn("socketshim: internal error", "syscall", n.Data.Nr, "pid", n.PID, "err", err)
			e = unix.EIO
		}
		if e == socket.ERESTARTSYS {
			// Only reaches here while the notification is still live,
			// i.e. no signal for the target: see the package doc.
			e = unix.EINTR
		}
		serr = s.l.Respond(n.ID, 0, e)
	}
	if serr != nil && !errors.Is(serr, seccomp.ErrTargetGone) && !errors.Is(serr, seccomp.ErrListenerClosed) {
		s.log.Warn("socketshim: answer", "syscall", n.Data.Nr, "pid", n.PID, "err", serr)
	}
}

// onSocket serves a call on served socket e (found by lookup; argument 0
// is the target's fd for it).
func (c *call) onSocket(e *entry) (int64, error) {
	fd := c.intArg(0)
	if e.sotype == unix.SOCK_STREAM && !e.released.Load() {
		defer c.maybeRelease(e)
	}
	switch c.n.Data.Nr {
	case unix.SYS_BIND:
		return 0, c.bind(e)
	case unix.SYS_CONNECT:
		return 0, c.connect(e, fd)
	case unix.SYS_LISTEN:
		return 0, c.listen(e)
	case unix.SYS_ACCEPT:
		return 0, c.accept(e, fd, 0)
	case unix.SYS_ACCEPT4:
		return 0, c.accept(e, fd, c.intArg(3))
	case unix.SYS_GETSOCKNAME:
		return 0, c.getName(e.sock.GetSockName)
	case unix.SYS_GETPEERNAME:
		return 0, c.getName(e.sock.GetPeerName)
	case unix.SYS_SETSOCKOPT:
		return 0, c.setsockopt(e)
	case unix.SYS_GETSOCKOPT:
		return 0, c.getsockopt(e)
	case unix.SYS_SHUTDOWN:
		return 0, c.shutdown(e)
	case unix.SYS_SENDTO:
		return c.sendto(e, fd)
	case unix.SYS_RECVFROM:
		return c.recvfrom(e, fd)
	case unix.SYS_SENDMSG:
		return c.sendmsg(e, fd)
	case unix.SYS_RECVMSG:
		return c.recvmsg(e, fd)
	case unix.SYS_SENDMMSG:
		return c.sendmmsg(e, fd)
	case unix.SYS_RECVMMSG:
		return c.recvmmsg(e, fd)
	case unix.SYS_IOCTL:
		return c.ioctl(e)
	}
	return 0, errContinue
}
