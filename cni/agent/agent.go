package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/socketshim/seccomp"
)

// DefaultSocket is the listenerPath `netprov install` writes into the
// seccomp profile.
const DefaultSocket = "/run/netprov/agent.sock"

// Unmatched policies.
const (
	UnmatchedPassthrough = "passthrough"
	UnmatchedClose       = "close"
)

// Config configures an Agent. The zero value is usable.
type Config struct {
	// StateDir holds the sandboxes (default control.DefaultStateDir).
	StateDir string
	// Unmatched is what happens to the fd of a container without a
	// sandbox: UnmatchedPassthrough (default) or UnmatchedClose.
	Unmatched string
	// HandoffTimeout bounds one handoff to a stack process (default 5 s).
	HandoffTimeout time.Duration
	// Logger receives diagnostics (default slog.Default()).
	Logger *slog.Logger
}

// Agent routes containers' seccomp fds to their sandboxes.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	passthrough int // containers served in passthrough mode now
	handoffs    int
}

// New makes an Agent.
func New(cfg Config) (*Agent, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = control.DefaultStateDir
	}
	switch cfg.Unmatched {
	case "":
		cfg.Unmatched = UnmatchedPassthrough
	case UnmatchedPassthrough, UnmatchedClose:
	default:
		return nil, fmt.Errorf("agent: unmatched policy %q: want %s or %s", cfg.Unmatched, UnmatchedPassthrough, UnmatchedClose)
	}
	if cfg.HandoffTimeout <= 0 {
		cfg.HandoffTimeout = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Agent{cfg: cfg, log: log}, nil
}

// Listen creates the agent's socket at path (mode 0600, directory made if
// missing). A stale socket file is replaced; a socket another process
// still accepts on is an error.
func Listen(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("agent socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("agent socket %s: another agent is listening", path)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("agent socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent socket: %w", err)
	}
	return ln, nil
}

// Serve accepts runtime connections on ln until ctx ends, then closes ln.
// Passthrough containers keep being served until they exit or ctx ends.
func (a *Agent) Serve(ctx context.Context, ln *net.UnixListener) error {
	control.AcceptLoop(ctx, ln, a.log, "agent", func(c *net.UnixConn) { a.serveConn(ctx, c) })
	return nil
}

// serveConn handles one runtime connection. It never panics the agent:
// every failure ends in a log line and a closed fd.
func (a *Agent) serveConn(ctx context.Context, c *net.UnixConn) {
	st, fds, err := readState(c)
	c.Close()
	if err != nil {
		for _, f := range fds {
			unix.Close(f)
		}
		if errors.Is(err, errProbe) {
			a.log.Debug("agent: probe")
			return
		}
		a.log.Warn("agent: bad message from runtime", "err", err)
		return
	}
	fd := seccompFD(st, fds)
	log := a.log.With("container", st.State.ID, "pid", st.PID)
	if fd < 0 {
		log.Warn("agent: runtime sent no seccompFd", "fds", st.FDs)
		return
	}
	a.Route(ctx, st, fd)
}

// Route hands fd (owned by Route from here on) to st's sandbox, or applies
// the Unmatched policy.
func (a *Agent) Route(ctx context.Context, st *ContainerProcessState, fd int) {
	log := a.log.With("container", st.State.ID, "pid", st.PID)
	pid := st.PID
	if pid == 0 {
		pid = st.State.PID
	}
	m, err := FindSandbox(a.cfg.StateDir, pid, st.State.ID)
	if err != nil {
		if a.cfg.Unmatched == UnmatchedClose {
			log.Warn("agent: no sandbox for container: closing its seccomp fd (its socket calls fail with ENOSYS)", "why", err)
			unix.Close(fd)
			return
		}
		log.Info("agent: no sandbox for container: passthrough (the kernel serves its calls)", "why", err)
		a.servePassthrough(ctx, fd, log)
		return
	}
	hctx, cancel := context.WithTimeout(ctx, a.cfg.HandoffTimeout)
	defer cancel()
	sock := filepath.Join(m.Dir, control.SocketFile)
	err = control.Handoff(hctx, sock, st.State.ID, pid, st.Metadata, fd)
	unix.Close(fd) // the stack process has its own copy now (or none)
	if err != nil {
		log.Error("agent: handoff to the sandbox's stack process failed: the container's socket calls fail with ENOSYS",
			"sandbox", m.Dir, "matched_by", m.By, "err", err)
		return
	}
	a.mu.Lock()
	a.handoffs++
	a.mu.Unlock()
	log.Info("agent: handed off", "sandbox", m.Dir, "matched_by", m.By)
}

// servePassthrough answers every notification of fd with CONTINUE until
// the container exits or ctx ends, in its own goroutine.
func (a *Agent) servePassthrough(ctx context.Context, fd int, log *slog.Logger) {
	l, err := seccomp.NewListener(fd)
	if err != nil {
		log.Error("agent: passthrough", "err", err)
		return
	}
	a.mu.Lock()
	a.passthrough++
	a.mu.Unlock()
	go func() {
		defer func() {
			l.Close()
			a.mu.Lock()
			a.passthrough--
			a.mu.Unlock()
		}()
		for {
			n, err := l.Recv(ctx)
			if err != nil {
				if !errors.Is(err, seccomp.ErrTargetGone) && ctx.Err() == nil {
					log.Warn("agent: passthrough ended", "err", err)
				}
				return
			}
			if err := l.Continue(n.ID); err != nil && !errors.Is(err, seccomp.ErrTargetGone) {
				log.Warn("agent: passthrough continue", "err", err)
			}
		}
	}()
}

// Stats reports the handoffs done and the containers in passthrough now.
func (a *Agent) Stats() (handoffs, passthrough int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.handoffs, a.passthrough
}
