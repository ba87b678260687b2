package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrRunning means another agent holds the socket's lock.
var ErrRunning = errors.New("another netprov agent is running for this socket")

// Lock takes the agent lock of socket (socket + ".lock", flock exclusive,
// non-blocking) and writes the agent's pid into socket + ".pid". The lock
// is held until release or process exit, so a crashed agent never blocks
// its successor.
func Lock(socket string) (release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		return nil, fmt.Errorf("agent lock: %w", err)
	}
	f, err := os.OpenFile(socket+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, ErrRunning
		}
		return nil, fmt.Errorf("agent lock: %w", err)
	}
	os.WriteFile(socket+".pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	return func() {
		os.Remove(socket + ".pid")
		f.Close()
	}, nil
}

// PID returns the pid of the agent serving socket, from socket + ".pid".
func PID(socket string) (int, error) {
	b, err := os.ReadFile(socket + ".pid")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// LivePID returns the pid of the agent serving socket if that process
// still runs: the pid file of an agent that was killed stays behind, and
// its pid may belong to another process by now (pid_max can be as low as
// 32768), so the process's command line must name the socket.
func LivePID(socket string) (int, bool) {
	pid, err := PID(socket)
	if err != nil || pid <= 0 {
		return 0, false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return 0, false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.Contains(string(cmdline), "\x00agent\x00--socket\x00"+socket+"\x00") {
		return 0, false
	}
	return pid, true
}

// EnsureConfig says which agent EnsureRunning starts.
type EnsureConfig struct {
	// Socket is the agent's socket (default DefaultSocket).
	Socket string
	// StateDir is passed as --state-dir ("" = the default).
	StateDir string
	// Binary is the netprov executable (default: this process's).
	Binary string
	// LogFile receives the agent's stderr (default Socket's directory
	// + "/agent.log").
	LogFile string
	// Timeout bounds the wait for the socket to answer (default 5 s).
	Timeout time.Duration
}

// Alive reports whether an agent accepts connections on socket.
func Alive(socket string) bool {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	c.Close() // the agent logs an empty connection as a probe
	return true
}

// EnsureRunning starts `netprov agent` detached (own session, stdio to the
// log file) unless an agent already answers on the socket, and waits until
// one does. Concurrent callers are safe: at most one agent wins the lock,
// the others exit, and every caller waits for the socket.
func EnsureRunning(ctx context.Context, cfg EnsureConfig) error {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if Alive(cfg.Socket) {
		return nil
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("start agent: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.LogFile == "" {
		cfg.LogFile = filepath.Join(filepath.Dir(cfg.Socket), "agent.log")
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o755); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	logf, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	defer logf.Close()
	args := []string{"agent", "--socket", cfg.Socket}
	if cfg.StateDir != "" {
		args = append(args, "--state-dir", cfg.StateDir)
	}
	cmd := exec.Command(cfg.Binary, args...)
	cmd.Stdin = nil
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = "/"
	// Started from CNI ADD, this process carries CNI_COMMAND and friends:
	// the agent must not see them, or the binary would run as a plugin.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CNI_") })
	if os.Getenv("NETPROV_LOG") == "" {
		cmd.Env = append(cmd.Env, "NETPROV_LOG=info") // handoffs in the log
	}
	// Its own session: no signal for the CNI caller's process group
	// reaches it, and it outlives the plugin process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start agent %s: %w", cfg.Binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(cfg.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if Alive(cfg.Socket) {
			return nil
		}
		select {
		case err := <-exited:
			// Lost the race to a concurrent start: that agent will
			// answer. Any other exit is a failure.
			exited = nil
			if Alive(cfg.Socket) {
				return nil
			}
			if err != nil && !strings.Contains(readTail(cfg.LogFile), ErrRunning.Error()) {
				return fmt.Errorf("agent exited at start (%v); see %s", err, cfg.LogFile)
			}
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("agent did not answer on %s within %v; see %s", cfg.Socket, cfg.Timeout, cfg.LogFile)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}
