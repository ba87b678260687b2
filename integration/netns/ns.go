package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// ExecTimeout bounds every foreground command (Exec, Run, ip calls).
	ExecTimeout = 2 * time.Minute
	// waitDelay bounds how long a killed command may keep its output pipes
	// open (e.g. through grandchildren) before Wait gives up on them.
	waitDelay = 5 * time.Second
	// stopTimeout bounds the wait for a killed background process.
	stopTimeout = 10 * time.Second
	// runDir is where `ip netns add` mounts named namespaces.
	runDir = "/run/netns"
)

// NS is a named network namespace created for one test. It is deleted, and
// the processes started in it are killed, when the test ends.
type NS struct {
	name string

	mu    sync.Mutex
	procs []*exec.Cmd // background processes started with Start/StartCmd
}

// New creates a uniquely named network namespace (see UniqueName) with its
// loopback device up. It skips the test unless RequireRoot is satisfied and
// registers a cleanup that kills the processes in the namespace and deletes
// it, also when the test fails.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	RequireRoot(t)
	ns := &NS{name: UniqueName(prefix)}
	if out, err := ipCommand("netns", "add", ns.name); err != nil {
		t.Fatalf("netns: ip netns add %s: %v\n%s", ns.name, err, out)
	}
	t.Cleanup(func() {
		if err := ns.destroy(); err != nil {
			t.Errorf("netns: cleanup of %s: %v", ns.name, err)
		}
	})
	ns.LinkUp(t, "lo")
	return ns
}

// Name is the namespace's name as `ip netns` knows it.
func (ns *NS) Name() string { return ns.name }

// Path is the namespace's bind mount, usable with setns(2) and nsenter.
func (ns *NS) Path() string { return runDir + "/" + ns.name }

// String returns the name, for log messages.
func (ns *NS) String() string { return ns.name }

// Command returns a command that runs args inside the namespace. It is not
// started; pass it to StartCmd to have it killed when the test ends.
func (ns *NS) Command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
}

// Exec runs args inside the namespace, bounded by ExecTimeout, and returns
// the combined output.
func (ns *NS) Exec(args ...string) ([]byte, error) {
	return ipCommand(append([]string{"netns", "exec", ns.name}, args...)...)
}

// Run is Exec that fails the test when the command fails. Like t.Fatal, it
// must be called from the test's goroutine.
func (ns *NS) Run(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := ns.Exec(args...)
	if err != nil {
		t.Fatalf("netns %s: %s: %v\n%s", ns.name, strings.Join(args, " "), err, out)
	}
	return out
}

// IP runs `ip ARGS...` inside the namespace and fails the test on error.
func (ns *NS) IP(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := ipCommand(append([]string{"-n", ns.name}, args...)...)
	if err != nil {
		t.Fatalf("netns %s: ip %s: %v\n%s", ns.name, strings.Join(args, " "), err, out)
	}
	return out
}

// Start runs args in the background inside the namespace. Its combined
// output is collected and logged if the test fails. The process (and its
// process group) is killed when the test ends.
func (ns *NS) Start(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := ns.Command(args...)
	out := &SyncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	// Registered first so that it runs after the process was stopped and
	// its output is complete.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("netns %s: output of %s:\n%s", ns.name, strings.Join(args, " "), out.String())
		}
	})
	ns.StartCmd(t, cmd)
	return cmd
}

// StartCmd starts cmd (usually from Command, with Stdout/Stderr set by the
// caller) and kills it with its process group when the test ends. The
// caller may Wait for cmd itself, but must have returned from Wait before
// the test ends; cleanup then has nothing left to do.
func (ns *NS) StartCmd(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Own process group, so cleanup reaches the command's children too;
	// SIGKILL on parent death, so a crashed test binary leaves no servers.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		t.Fatalf("netns %s: start %s: %v", ns.name, strings.Join(cmd.Args, " "), err)
	}
	ns.mu.Lock()
	ns.procs = append(ns.procs, cmd)
	ns.mu.Unlock()
	t.Cleanup(func() { ns.stop(cmd) })
}

// stop stops one background process and forgets it.
func (ns *NS) stop(cmd *exec.Cmd) {
	ns.mu.Lock()
	found := false
	for i, c := range ns.procs {
		if c == cmd {
			ns.procs = append(ns.procs[:i], ns.procs[i+1:]...)
			found = true
			break
		}
	}
	ns.mu.Unlock()
	if found {
		stopCmd(cmd)
	}
}

// stopCmd kills cmd's process group and reaps it, bounded by stopTimeout.
func stopCmd(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return // the caller already waited for it
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopTimeout):
	}
}

// destroy kills every process left in the namespace and deletes it.
func (ns *NS) destroy() error {
	ns.mu.Lock()
	procs := ns.procs
	ns.procs = nil
	ns.mu.Unlock()
	for _, cmd := range procs {
		stopCmd(cmd)
	}
	var errs []error
	// Processes started by other means (e.g. daemons that re-parented
	// themselves) would keep the namespace and its devices alive.
	if out, err := ipCommand("netns", "pids", ns.name); err == nil {
		for _, field := range strings.Fields(string(out)) {
			pid, err := strconv.Atoi(field)
			if err != nil || pid == os.Getpid() {
				continue
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
			}
		}
	}
	if out, err := ipCommand("netns", "delete", ns.name); err != nil {
		errs = append(errs, fmt.Errorf("ip netns delete: %w: %s", err, out))
	}
	return errors.Join(errs...)
}

// ipCommand runs the ip tool, bounded by ExecTimeout.
func ipCommand(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ExecTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.WaitDelay = waitDelay
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %v)", err, ExecTimeout)
	}
	return out, err
}

// SyncBuffer is a bytes.Buffer safe for the concurrent writes of a running
// command and the reads of the test.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
