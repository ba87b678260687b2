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
	// MaxInFlight bounds the notifications handled at once (each in its
	// own goroutine, so a blocking accept does not stall the others);
	// default 256. When all are busy, receiving waits.
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
}

// Server serves one listener's notifications from one provider.
type Server struct {
	l   *seccomp.Listener
	p   provider.Provider
	cfg Config
	log *slog.Logger

	table socketTable
	ifs   ifaceSockets

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
	return &Server{l: l, p: p, cfg: cfg, log: log, table: socketTable{m: map[uint64]*entry{}}}
}

// Serve receives and handles notifications until the filter has no users
// left (every target exited: it returns nil) or ctx ends (ctx's error).
// It waits for the handlers it started before returning.
func (s *Server) Serve(ctx context.Context) error {
	hctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		s.ifs.close()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sweepLoop(hctx)
	}()
	sem := make(chan struct{}, s.cfg.MaxInFlight)
	for {
		n, err := s.l.Recv(ctx)
		if err != nil {
			if errors.Is(err, seccomp.ErrTargetGone) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("socketshim: %w", err)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.handle(hctx, n)
		}()
	}
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
	// signalled: blocking cancelled the call because a signal is pending
	// for the target thread (killable waits, see signalPending).
	signalled atomic.Bool
}

func (c *call) arg(i int) uint64 { return c.n.Data.Args[i] }
func (c *call) intArg(i int) int { return int(int32(uint32(c.n.Data.Args[i]))) }

// blocking returns a context that is cancelled once the notification is no
// longer pending (signal or death of the target), for provider calls that
// may block.
func (c *call) blocking() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.ctx)
	go func() {
		t := time.NewTicker(c.s.cfg.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if c.s.l.IDValid(c.n.ID) != nil {
					cancel()
					return
				}
				if signalPending(c.n.PID) {
					c.signalled.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// nonblocking reports whether the target's fd has O_NONBLOCK now.
func (c *call) nonblocking(fd int) bool {
	fl, err := fdStatusFlags(c.n.PID, fd)
	if err != nil {
		return false // fd gone meanwhile: the call fails elsewhere
	}
	return fl&unix.O_NONBLOCK != 0
}

func (s *Server) handle(ctx context.Context, n *seccomp.Notif) {
	c := &call{s: s, n: n, mem: notifMemory{l: s.l, pid: n.PID, id: n.ID}, ctx: ctx}
	var val int64
	var err error
	if n.Data.Arch != unix.AUDIT_ARCH_X86_64 {
		err = unix.ENOSYS
	} else if n.Data.Nr == unix.SYS_SOCKET {
		err = c.socket()
	} else {
		val, err = c.onSocket()
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

// onSocket handles a call whose first argument is an fd: ours are served,
// everything else continues to the kernel.
func (c *call) onSocket() (int64, error) {
	fd := c.intArg(0)
	ino, err := fdInode(c.n.PID, fd)
	if err != nil {
		if errors.Is(err, errNotSocket) {
			return 0, errContinue
		}
		return 0, err
	}
	e := c.s.table.get(ino)
	if e == nil {
		return 0, errContinue
	}
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
