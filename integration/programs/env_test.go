package programs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/integration/netns"
)

// testBound bounds each program's test: every netprov run, peer command
// and wait in it shares one deadline.
const testBound = 30 * time.Second

var netprovBin struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if netprovBin.path != "" {
		os.RemoveAll(filepath.Dir(netprovBin.path))
	}
	os.Exit(code)
}

// buildNetprov builds cmd/netprov once per test binary, or takes the
// binary $NETPROV_BIN names.
func buildNetprov(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NETPROV_BIN"); p != "" {
		return p
	}
	netprovBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "netprov-programs-")
		if err != nil {
			netprovBin.err = err
			return
		}
		path := filepath.Join(dir, "netprov")
		out, err := exec.Command(goTool(), "build", "-o", path, "github.com/netprov/netprov/cmd/netprov").CombinedOutput()
		if err != nil {
			netprovBin.err = fmt.Errorf("go build cmd/netprov: %v: %s", err, out)
			return
		}
		netprovBin.path = path
	})
	if netprovBin.err != nil {
		t.Fatal(netprovBin.err)
	}
	return netprovBin.path
}

// goTool is the go command that runs these tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// setupScript is scripts/setup, relative to this package.
const setupScript = "../../scripts/setup"

// needProgram returns bin's absolute path. A missing binary fails the
// test when scripts/setup installs pkg (the machine is not set up) and
// skips it only when it does not.
func needProgram(t *testing.T, bin, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, bin); isExecutable(p) {
			return p
		}
	}
	script, err := os.ReadFile(setupScript)
	if err != nil {
		t.Fatalf("%s not installed, and %s unreadable: %v", bin, setupScript, err)
	}
	if regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(pkg) + `(\s|$)`).Match(script) {
		t.Fatalf("%s not installed, though scripts/setup installs package %s: run sudo scripts/setup", bin, pkg)
	}
	t.Skipf("%s not installed (package %s is not in scripts/setup)", bin, pkg)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// topology is one test's network: the sandbox's host side H, and the
// kernel peer P routed behind it (see the package comment).
type topology struct {
	bin         string
	host, peer  *netns.NS
	bridge      string
	subnet      netip.Prefix // the bridge's: sandboxes take addresses in it
	gateway     netip.Addr   // the bridge's address in H
	hostLink    netip.Addr   // H's address on the link to P (masquerade source)
	peerAddr    netip.Addr   // P's address
	sandboxAddr netip.Addr   // for --ip: a fixed address P can reach
}

// newTopology builds H and P and registers their removal.
func newTopology(t *testing.T) *topology {
	t.Helper()
	netns.RequireRoot(t)
	for _, p := range [][2]string{{"iptables", "iptables"}, {"nsenter", "util-linux"}, {"sysctl", "procps"}, {"ss", "iproute2"}} {
		needProgram(t, p[0], p[1])
	}
	bin := buildNetprov(t)
	k := byte(1 + rand.IntN(100)) // 10.213.{2k,2k+1}.0/24
	tp := &topology{bin: bin, bridge: netns.UniqueName("br")}
	tp.subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, 2 * k, 0}), 24)
	tp.gateway = netip.AddrFrom4([4]byte{10, 213, 2 * k, 1})
	tp.sandboxAddr = netip.AddrFrom4([4]byte{10, 213, 2 * k, 10})
	tp.hostLink = netip.AddrFrom4([4]byte{10, 213, 2*k + 1, 1})
	tp.peerAddr = netip.AddrFrom4([4]byte{10, 213, 2*k + 1, 2})

	tp.host = netns.New(t, "h")
	tp.peer = netns.New(t, "p")
	// netprov keeps its address leases per (host netns, bridge) under
	// /run/netprov/ipam; a killed netprov leaves its lease behind.
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/run/netprov/ipam/*-" + tp.bridge)
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	})
	tp.host.IP(t, "link", "add", tp.bridge, "type", "bridge")
	tp.host.AddAddr(t, tp.bridge, netip.PrefixFrom(tp.gateway, 24).String())
	tp.host.LinkUp(t, tp.bridge)
	hostVeth := netns.UniqueName("v")
	netns.Veth(t, tp.host, hostVeth, tp.peer, "eth0")
	tp.host.AddAddr(t, hostVeth, netip.PrefixFrom(tp.hostLink, 24).String())
	tp.peer.AddAddr(t, "eth0", netip.PrefixFrom(tp.peerAddr, 24).String())
	tp.peer.AddRoute(t, "default", "via", tp.hostLink.String())
	tp.host.Sysctl(t, "net.ipv4.ip_forward", "1")
	tp.host.WaitOperUp(t, hostVeth)
	tp.peer.WaitOperUp(t, "eth0")
	t.Logf("host side %s (bridge %s, %v), peer %s at %v, sandbox --ip %v",
		tp.host, tp.bridge, tp.subnet, tp.peer, tp.peerAddr, tp.sandboxAddr)
	return tp
}

// bound returns a context that ends testBound from now, or with the test.
func bound(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	t.Cleanup(cancel)
	return ctx
}

// outcome is how one `netprov run` ended.
type outcome struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

func (o outcome) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout:\n%s\nstderr:\n%s", o.code, o.elapsed.Round(time.Millisecond), o.stdout, o.stderr)
}

// command is `netprov run` on H's bridge with flags, running argv. It
// runs in its own process group (the sandbox's processes stay in it), is
// killed with the test binary, and ctx's end kills the whole group.
func (tp *topology) command(ctx context.Context, flags []string, argv ...string) *exec.Cmd {
	args := []string{"run", "--host-netns", tp.host.Path(), "--bridge", tp.bridge, "--subnet", tp.subnet.String()}
	args = append(append(append(args, flags...), "--"), argv...)
	cmd := exec.CommandContext(ctx, tp.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// run runs argv in a sandbox to completion and returns how it ended.
func (tp *topology) run(t *testing.T, ctx context.Context, flags []string, argv ...string) outcome {
	t.Helper()
	cmd := tp.command(ctx, flags, argv...)
	var stdout, stderr netns.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Start()
	if err == nil {
		err = waitKillGroup(cmd) // and sandboxed daemons a failed script left behind
	}
	o := outcome{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("netprov run %q did not end within the test's %v bound; %v", argv, testBound, o)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		o.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.code = 128 + int(ws.Signal())
		}
	default:
		t.Fatalf("netprov run %q: %v", argv, err)
	}
	return o
}

// waitKillGroup waits until cmd's process, the leader of its own process
// group, exits; kills what is left of the group (sandboxed daemons) while
// the leader is still unreaped, so that the group's id cannot have been
// reused for another process's group (pid_max is 32768 on these machines,
// and the stack processes of other tests lead groups of their own); and
// then reaps it.
func waitKillGroup(cmd *exec.Cmd) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return cmd.Wait()
}

// sandbox is a `netprov run` running in the background.
type sandbox struct {
	cmd            *exec.Cmd
	stdout, stderr *netns.SyncBuffer
	start          time.Time
	done           chan struct{}
	err            error
}

// start starts argv in a sandbox and waits until its stdout or stderr
// shows ready. The sandbox is killed when the test ends.
func (tp *topology) start(t *testing.T, ctx context.Context, flags []string, ready string, argv ...string) *sandbox {
	t.Helper()
	s := &sandbox{cmd: tp.command(ctx, flags, argv...), stdout: &netns.SyncBuffer{}, stderr: &netns.SyncBuffer{}, done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	s.start = time.Now()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start netprov run %q: %v", argv, err)
	}
	go func() { s.err = waitKillGroup(s.cmd); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill() // the group goes when it exits (waitKillGroup)
		<-s.done
	})
	for {
		if strings.Contains(s.stdout.String(), ready) || strings.Contains(s.stderr.String(), ready) {
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("netprov run %q ended before it printed %q: %v", argv, ready, s.outcome())
		case <-ctx.Done():
			t.Fatalf("netprov run %q did not print %q in time: %v", argv, ready, s.outcome())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// outcome is the sandbox's result so far (code -1 while it runs).
func (s *sandbox) outcome() outcome {
	o := outcome{stdout: s.stdout.String(), stderr: s.stderr.String(), code: -1, elapsed: time.Since(s.start)}
	select {
	case <-s.done:
		o.code = s.cmd.ProcessState.ExitCode()
		if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.code = 128 + int(ws.Signal())
		}
	default:
	}
	return o
}

// wait waits for the sandbox to end by itself.
func (s *sandbox) wait(t *testing.T) outcome {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(testBound):
		t.Fatalf("sandbox %q did not end: %v", s.cmd.Args, s.outcome())
	}
	return s.outcome()
}

// stop sends SIGTERM to netprov, which passes it on to the sandbox's
// command, and waits for the end.
func (s *sandbox) stop(t *testing.T) outcome {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	return s.wait(t)
}

// startPeer starts argv in the kernel peer's namespace; it is killed when
// the test ends. Its combined output is in the returned buffer.
func (tp *topology) startPeer(t *testing.T, argv ...string) *netns.SyncBuffer {
	t.Helper()
	out := &netns.SyncBuffer{}
	cmd := tp.peer.Command(argv...)
	cmd.Stdout, cmd.Stderr = out, out
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("peer %q output:\n%s", argv, out.String())
		}
	})
	tp.peer.StartCmd(t, cmd)
	return out
}

// peerRun runs argv in the kernel peer's namespace to completion.
func (tp *topology) peerRun(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", tp.peer.Name()}, argv...)...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitUDP waits until a UDP socket is bound to port in ns.
func waitUDP(t *testing.T, ns *netns.NS, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := ns.Exec("ss", "-Hlun", fmt.Sprintf("sport = :%d", port))
		if len(strings.TrimSpace(string(out))) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing bound to UDP port %d in %s", port, ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond (every 20 ms, at most until ctx ends).
func waitFor(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// peerHTTPServer serves dir with python's http.server on P at port and
// returns its log (one line per request, with the client's address).
func (tp *topology) peerHTTPServer(t *testing.T, dir string, port int) *netns.SyncBuffer {
	t.Helper()
	py := needProgram(t, "python3", "python3")
	out := tp.startPeer(t, py, "-u", "-m", "http.server", "--bind", tp.peerAddr.String(), "--directory", dir, fmt.Sprint(port))
	tp.peer.WaitListening(t, port)
	return out
}

// writeFiles writes name → content into a new temporary directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
