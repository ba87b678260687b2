package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sleeperIn starts a process inside netns and returns its pid.
func sleeperIn(t *testing.T, netns string) int {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", filepath.Base(netns), "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// ip netns exec setns()es and then execs sleep: wait for the switch.
	want, err := statNS(netns)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if got, err := statNS(filepath.Join("/proc", itoa(cmd.Process.Pid), "ns/net")); err == nil && got == want {
			return cmd.Process.Pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("process did not enter the netns")
	return 0
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestFindSandbox(t *testing.T) {
	needRoot(t)
	stateDir := t.TempDir()
	nsA, nsB := newNetns(t), newNetns(t)
	newSandbox(t, stateDir, "sandboxa", nsA, false)
	newSandbox(t, stateDir, "sandboxb", nsB, false)
	pidB := sleeperIn(t, nsB)

	// By netns: the container id the runtime reports need not match.
	m, err := FindSandbox(stateDir, pidB, "some-other-id")
	if err != nil || m.Dir != filepath.Join(stateDir, "sandboxb") || m.By != "netns" {
		t.Fatalf("by netns: %+v, %v", m, err)
	}
	// By container id when the pid's netns is nobody's (our own).
	m, err = FindSandbox(stateDir, os.Getpid(), "sandboxa")
	if err != nil || m.Dir != filepath.Join(stateDir, "sandboxa") || m.By != "container id" {
		t.Fatalf("by id: %+v, %v", m, err)
	}
	// Neither: an error that says why.
	if m, err := FindSandbox(stateDir, os.Getpid(), "unknown"); err == nil {
		t.Fatalf("unknown container matched %+v", m)
	} else if !strings.Contains(err.Error(), "no sandbox") {
		t.Fatalf("error does not say why: %v", err)
	}
	// A path as container id never escapes the state directory.
	if _, err := FindSandbox(stateDir, 0, "../"+filepath.Base(stateDir)+"/sandboxa"); err == nil {
		t.Fatal("container id with a path was accepted")
	}
}

// TestRuncHandoffByNetns runs a real runc container whose profile points at
// the agent: the agent must receive runc's state and fd, match the sandbox
// by the container's netns and hand the fd to that sandbox's control
// socket; the container then works (the test stack continues its calls).
func TestRuncHandoffByNetns(t *testing.T) {
	needRoot(t)
	rootfs := busyboxRootfs(t)
	stateDir := t.TempDir()
	ns, other := newNetns(t), newNetns(t)
	st := newSandbox(t, stateDir, "sandbox-of-ns", ns, true)
	stOther := newSandbox(t, stateDir, "sandbox-other", other, true)
	a, sock := startAgent(t, stateDir, UnmatchedClose)

	res := runcRun(t, rootfs, ns, sock, loopbackScript)
	if res.err != nil || !strings.Contains(res.output, "served-line") {
		t.Fatalf("container: err %v, output %q", res.err, res.output)
	}
	select {
	case req := <-st.got:
		if req.Op != "handoff" || req.ContainerID != res.id || req.PID <= 0 || req.Metadata != "netprov-test" {
			t.Fatalf("handoff request %+v (container %s)", req, res.id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sandbox's stack process got no handoff")
	}
	if len(stOther.got) != 0 {
		t.Fatal("another sandbox got the container's fd")
	}
	if h, _ := a.Stats(); h != 1 {
		t.Fatalf("handoffs = %d, want 1", h)
	}
}

// TestRuncUnmatched: a container without a sandbox is served by the kernel
// in passthrough mode, and fails with ENOSYS under the "close" policy.
func TestRuncUnmatched(t *testing.T) {
	needRoot(t)
	rootfs := busyboxRootfs(t)
	ns := newNetns(t)

	_, sock := startAgent(t, t.TempDir(), UnmatchedPassthrough)
	res := runcRun(t, rootfs, ns, sock, loopbackScript)
	if res.err != nil || !strings.Contains(res.output, "served-line") {
		t.Fatalf("passthrough: err %v, output %q", res.err, res.output)
	}

	_, sock = startAgent(t, t.TempDir(), UnmatchedClose)
	res = runcRun(t, rootfs, ns, sock, `nc 127.0.0.1 7070 </dev/null; echo rc=$?`)
	if !strings.Contains(res.output, "Function not implemented") {
		t.Fatalf("close policy: err %v, output %q; want ENOSYS", res.err, res.output)
	}
}

// TestRuncDeadStackDoesNotStopAgent: the first container's sandbox has a
// dead stack process (socket file, nobody listening); its socket calls
// fail with ENOSYS, and the agent still serves the next container.
func TestRuncDeadStackDoesNotStopAgent(t *testing.T) {
	needRoot(t)
	rootfs := busyboxRootfs(t)
	stateDir := t.TempDir()
	nsDead, nsLive := newNetns(t), newNetns(t)
	newSandbox(t, stateDir, "dead", nsDead, false)
	live := newSandbox(t, stateDir, "live", nsLive, true)
	_, sock := startAgent(t, stateDir, UnmatchedPassthrough)

	res := runcRun(t, rootfs, nsDead, sock, `nc 127.0.0.1 7070 </dev/null; echo rc=$?`)
	if !strings.Contains(res.output, "Function not implemented") {
		t.Fatalf("dead stack: err %v, output %q; want ENOSYS (not passthrough)", res.err, res.output)
	}
	res = runcRun(t, rootfs, nsLive, sock, loopbackScript)
	if res.err != nil || !strings.Contains(res.output, "served-line") {
		t.Fatalf("next container: err %v, output %q", res.err, res.output)
	}
	select {
	case <-live.got:
	case <-time.After(5 * time.Second):
		t.Fatal("live sandbox got no handoff")
	}
}
