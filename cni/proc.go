package cni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/control"
)

// StackCommand is the subcommand that runs a stack process: the plugin
// starts `<its own executable> stack <dir>`.
const StackCommand = "stack"

// startStack starts the stack process for dir detached (own session,
// stdio to the log file) and returns its pid.
func startStack(dir string) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find netprov binary: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, control.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(self, StackCommand, dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = stackEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start stack process: %w", err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(dir, control.PIDFile), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	cmd.Process.Release()
	return pid, nil
}

// stackEnv is the stack process's environment: ours without the CNI_*
// variables (else it would run as a plugin).
func stackEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CNI_") {
			env = append(env, kv)
		}
	}
	if os.Getenv("NETPROV_LOG") == "" {
		env = append(env, "NETPROV_LOG=info")
	}
	return env
}

// waitReady polls the control socket until the stack process reports
// ready, the process dies (its log's tail is the error) or ctx ends.
func waitReady(ctx context.Context, dir string, pid int) (*control.Status, error) {
	sock := filepath.Join(dir, control.SocketFile)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := control.GetStatus(cctx, sock)
		cancel()
		if err == nil && st.Ready {
			return st, nil
		}
		if !stackAlive(pid, dir) {
			return nil, &stackExitedError{reason: exitReason(pid), log: logTail(dir)}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stack process not ready: %w (log: %s)", ctx.Err(), logTail(dir))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// emptyLog is logTail of a log with nothing in it.
const emptyLog = "(empty log)"

// noteInLog appends a line of the plugin's to dir's stack log.
func noteInLog(dir, line string) {
	f, err := os.OpenFile(filepath.Join(dir, control.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

func logTail(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, control.LogFile))
	b = bytes.TrimSpace(b)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	if len(b) == 0 {
		return emptyLog
	}
	return string(b)
}

// stackExitedError: the stack process ended before it was ready.
type stackExitedError struct{ reason, log string }

func (e *stackExitedError) Error() string {
	return "stack process exited" + e.reason + ": " + e.log
}

// exitReason says how the process pid ended, while it is a zombie child
// of ours (exit_code, the 52nd field of /proc/PID/stat): " (exit status
// N)" or " (killed by signal S)", else "".
func exitReason(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(stat, ')')
	if err != nil || i < 0 {
		return ""
	}
	// Fields after the command: state is field 3, exit_code field 52.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 50 {
		return ""
	}
	code, err := strconv.Atoi(f[49])
	if err != nil {
		return ""
	}
	ws := syscall.WaitStatus(code)
	if f[0] != "Z" {
		return " (state " + f[0] + ")"
	}
	switch {
	case ws.Signaled():
		return " (killed by signal " + ws.Signal().String() + ")"
	case ws.Exited():
		return " (exit status " + strconv.Itoa(ws.ExitStatus()) + ")"
	}
	return ""
}

// readPID reads dir's pid file (0 when missing).
func readPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, control.PIDFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// stackAlive reports whether pid is a live (not zombie) stack process of
// dir: the pid may have been reused since.
func stackAlive(pid int, dir string) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	return len(args) >= 3 && string(args[len(args)-2]) == StackCommand && string(args[len(args)-1]) == dir
}

// stopStack ends the stack process: SIGTERM, then SIGKILL after grace.
// A process already gone is fine.
func stopStack(dir string, grace time.Duration) error {
	pid := readPID(dir)
	if !stackAlive(pid, dir) {
		return nil
	}
	unix.Kill(pid, unix.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !stackAlive(pid, dir) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	unix.Kill(pid, unix.SIGKILL)
	for range 200 {
		if !stackAlive(pid, dir) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("stack process " + strconv.Itoa(pid) + " does not exit")
}
