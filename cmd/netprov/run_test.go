package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// `netprov run` tests drive the real binary on real programs (curl,
// python3, nc, sh). The host side (bridge, TAP, NAT) lives in a namespace
// each test makes (--host-netns), which is also the kernel peer: its
// bridge holds the gateway address the sandbox talks to.

const runTestBound = 60 * time.Second

var (
	netprovBinOnce sync.Once
	netprovBin     string
	netprovBinErr  error
)

// buildNetprov builds the binary once per test run.
func buildNetprov(t *testing.T) string {
	t.Helper()
	netprovBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "netprov-run-test-")
		if err != nil {
			netprovBinErr = err
			return
		}
		netprovBin = filepath.Join(dir, "netprov")
		out, err := exec.Command("go", "build", "-o", netprovBin, ".").CombinedOutput()
		if err != nil {
			netprovBinErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if netprovBinErr != nil {
		t.Fatal(netprovBinErr)
	}
	return netprovBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if netprovBin != "" {
		os.RemoveAll(filepath.Dir(netprovBin))
	}
	os.Exit(code)
}

// runEnv is one test's host side.
type runEnv struct {
	t      *testing.T
	bin    string
	ns     string // name under /run/netns
	bridge string
	subnet netip.Prefix
	gw     netip.Addr
}

func requireRunRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netprov run needs root (namespaces, TAP, seccomp listener)")
	}
	for _, tool := range []string{"ip", "nsenter", "iptables", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func newRunEnv(t *testing.T) *runEnv {
	t.Helper()
	requireRunRoot(t)
	bin := buildNetprov(t)
	var b [3]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	e := &runEnv{t: t, bin: bin, ns: "nph" + suffix, bridge: "npbr" + suffix}
	// A random /24 inside 10.213.0.0/16 so parallel runs do not meet.
	e.subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, b[0] | 1, 0}), 24)
	e.gw = e.subnet.Addr().Next()
	if out, err := exec.Command("ip", "netns", "add", e.ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", e.ns).Run() })
	if out, err := exec.Command("ip", "-n", e.ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return e
}

func (e *runEnv) nsPath() string { return "/run/netns/" + e.ns }

// result of one `netprov run`.
type runOutcome struct {
	stdout, stderr string
	code           int
}

// run executes `netprov run [flags] -- cmd...` against the env.
func (e *runEnv) run(ctx context.Context, flags []string, cmd ...string) runOutcome {
	e.t.Helper()
	args := append([]string{"run", "--host-netns", e.nsPath(), "--bridge", e.bridge, "--subnet", e.subnet.String()}, flags...)
	args = append(append(args, "--"), cmd...)
	c := exec.CommandContext(ctx, e.bin, args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	o := runOutcome{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		o.code = ee.ExitCode()
	default:
		e.t.Fatalf("netprov run %q: %v", cmd, err)
	}
	if ctx.Err() != nil {
		e.t.Fatalf("netprov run %q did not finish in time; stdout %s stderr %s", cmd, o.stdout, o.stderr)
	}
	return o
}

// startPeer runs a command in the host-side namespace (the kernel peer)
// and waits until it prints a line containing ready.
func (e *runEnv) startPeer(ctx context.Context, ready string, argv ...string) *exec.Cmd {
	e.t.Helper()
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.ns}, argv...)...)
	out, err := c.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), ready) {
				lines <- sc.Text()
				io.Copy(io.Discard, out)
				return
			}
		}
		close(lines)
	}()
	select {
	case _, ok := <-lines:
		if !ok {
			e.t.Fatalf("peer %q exited before %q", argv, ready)
		}
	case <-time.After(20 * time.Second):
		e.t.Fatalf("peer %q not ready", argv)
	}
	return c
}

// httpServerPy serves dir on port, printing "ready" once listening.
const httpServerPy = `import http.server, os, sys
os.chdir(sys.argv[1])
s = http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[2])), http.server.SimpleHTTPRequestHandler)
print("ready", flush=True)
s.serve_forever()`

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

// TestRunCurlKernelHTTPServer: curl in the sandbox fetches a file from
// python's http.server on the kernel peer, through the userspace stack,
// the TAP and the bridge; the sandbox sees its own address.
func TestRunCurlKernelHTTPServer(t *testing.T) {
	needTool(t, "curl")
	needTool(t, "python3")
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	dir := t.TempDir()
	body := "hello from the kernel peer " + e.ns + "\n"
	os.WriteFile(filepath.Join(dir, "index.txt"), []byte(body), 0o644)
	e.startPeer(ctx, "ready", "python3", "-c", httpServerPy, dir, "8080")
	o := e.run(ctx, nil, "sh", "-c", fmt.Sprintf("curl -sS -m 20 http://%s:8080/index.txt && hostname -I && ip -o -4 addr show dev eth0", e.gw))
	if o.code != 0 {
		t.Fatalf("exit %d; stdout %s stderr %s", o.code, o.stdout, o.stderr)
	}
	if !strings.HasPrefix(o.stdout, body) {
		t.Errorf("curl printed %q, want %q first", o.stdout, body)
	}
	want := e.subnet.Addr().Next().Next().String() // first free address
	if !strings.Contains(o.stdout, want+" \n") && !strings.Contains(o.stdout, want+"\n") {
		t.Errorf("hostname -I does not show %s: %q", want, o.stdout)
	}
	if !strings.Contains(o.stdout, "inet "+want+"/24") {
		t.Errorf("ip addr in the sandbox does not show %s/24: %q", want, o.stdout)
	}
}

// TestRunConnectionRefused: a closed port on the peer is refused at once.
func TestRunConnectionRefused(t *testing.T) {
	needTool(t, "curl")
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	start := time.Now()
	o := e.run(ctx, nil, "curl", "-sS", "-v", "-m", "20", fmt.Sprintf("http://%s:9/", e.gw))
	if o.code != 7 {
		t.Errorf("curl exit %d, want 7 (couldn't connect); stderr %s", o.code, o.stderr)
	}
	if !strings.Contains(o.stderr, "Connection refused") {
		t.Errorf("curl -v does not say Connection refused: %s", o.stderr)
	}
	// An RST answers at once; a lost SYN would take curl's 20 s timeout.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("refused connect took %v", d)
	}
}

// serverPy accepts one connection in the sandbox and answers "pong:" + data.
const serverPy = `import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(4)
print("listening", flush=True)
c, addr = s.accept()
data = c.recv(100)
c.sendall(b"pong:" + data)
c.close()
print("served", addr[0], flush=True)`

const clientPy = `import socket, sys, time
for i in range(100):
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        break
    except (ConnectionRefusedError, OSError):
        time.sleep(0.1)
c.sendall(b"ping")
data = b""
while True:  # to EOF: the sandbox's close must reach us as FIN
    d = c.recv(100)
    if not d:
        break
    data += d
print(data.decode(), flush=True)`

// TestRunServerInSandbox: a python TCP server in the sandbox, listening on
// the stack, is reached from the kernel peer.
func TestRunServerInSandbox(t *testing.T) {
	needTool(t, "python3")
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	sandboxIP := e.subnet.Addr().Next().Next()
	done := make(chan runOutcome, 1)
	go func() { done <- e.run(ctx, []string{"--ip", sandboxIP.String()}, "python3", "-c", serverPy, "7000") }()
	// The bridge appears when netprov run has set it up; the client
	// retries until the sandbox listens.
	var out []byte
	var err error
	for i := 0; i < 100; i++ {
		out, err = exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, "python3", "-c", clientPy, sandboxIP.String(), "7000").CombinedOutput()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || strings.TrimSpace(string(out)) != "pong:ping" {
		t.Errorf("client: %v: %q, want pong:ping", err, out)
	}
	o := <-done
	if o.code != 0 || !strings.Contains(o.stdout, "served "+e.gw.String()) {
		t.Errorf("server: exit %d stdout %q stderr %q; want served from %v", o.code, o.stdout, o.stderr, e.gw)
	}
}

// TestRunNetcatBothWays: nc in the sandbox connects out to a listening nc
// on the peer, and a listening nc in the sandbox gets the peer's data.
func TestRunNetcatBothWays(t *testing.T) {
	needTool(t, "nc")
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	// Outbound: peer listens (nc -l prints what it gets), sandbox sends.
	peerOut := &bytes.Buffer{}
	peer := exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, "nc", "-l", "-N", "7001")
	peer.Stdout = peerOut
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Process.Kill(); peer.Wait() })
	o := e.run(ctx, nil, "sh", "-c", fmt.Sprintf("for i in 1 2 3 4 5 6 7 8 9 10; do echo out-bound | nc -N %s 7001 && exit 0; sleep 0.2; done; exit 1", e.gw))
	if o.code != 0 {
		t.Errorf("sandbox nc: exit %d, stderr %s", o.code, o.stderr)
	}
	peer.Wait()
	if got := strings.TrimSpace(peerOut.String()); got != "out-bound" {
		t.Errorf("peer nc got %q, want out-bound", got)
	}

	// Inbound: sandbox listens and prints, peer sends.
	sandboxIP := e.subnet.Addr().Next().Next()
	done := make(chan runOutcome, 1)
	go func() { done <- e.run(ctx, []string{"--ip", sandboxIP.String()}, "nc", "-l", "-N", "7002") }()
	var err error
	for i := 0; i < 100; i++ {
		c := exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, "nc", "-N", sandboxIP.String(), "7002")
		c.Stdin = strings.NewReader("in-bound\n")
		if err = c.Run(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("peer nc to sandbox: %v", err)
	}
	o = <-done
	if strings.TrimSpace(o.stdout) != "in-bound" || o.code != 0 {
		t.Errorf("sandbox nc -l: exit %d stdout %q stderr %q, want in-bound", o.code, o.stdout, o.stderr)
	}
}

// TestRunExitStatus: CMD's exit status is netprov's; death by signal N
// gives 128+N.
func TestRunExitStatus(t *testing.T) {
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	for _, c := range []struct {
		script string
		want   int
	}{{"exit 7", 7}, {"kill -9 $$", 137}, {"kill -TERM $$", 143}, {"true", 0}} {
		o := e.run(ctx, []string{"--provider", "none"}, "sh", "-c", c.script)
		if o.code != c.want {
			t.Errorf("sh -c %q: netprov exit %d, want %d (stderr %s)", c.script, o.code, c.want, o.stderr)
		}
	}
	o := e.run(ctx, []string{"--provider", "none"}, "no-such-command-np")
	if o.code != 127 || !strings.Contains(o.stderr, "command not found") {
		t.Errorf("missing command: exit %d stderr %q, want 127 and command not found", o.code, o.stderr)
	}
}

// sandboxChecksPy: AF_UNIX socketpair works (not trapped), io_uring_setup
// fails with ENOSYS, and a listening socket shared by fork + dup keeps
// working in the child (sockets are identified by inode, not pid/fd).
const sandboxChecksPy = `import socket, os, ctypes
a, b = socket.socketpair()
a.send(b"unix-ok")
print("socketpair", b.recv(16).decode(), flush=True)
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
r = libc.syscall(425, 1, params, 0)
print("io_uring_setup", r, ctypes.get_errno(), flush=True)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
port = s.getsockname()[1]
pid = os.fork()
if pid == 0:
    d = socket.socket(fileno=os.dup(s.fileno()))
    c, _ = d.accept()
    c.sendall(b"from-child:" + str(d.getsockname()[1] == port).encode())
    c.close()
    os._exit(0)
c = socket.create_connection(("127.0.0.1", port), timeout=10)
print("fork", c.recv(64).decode(), flush=True)
os.waitpid(pid, 0)`

// TestRunSandboxChecks runs the checks above under --provider none.
func TestRunSandboxChecks(t *testing.T) {
	needTool(t, "python3")
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	o := e.run(ctx, []string{"--provider", "none"}, "python3", "-c", sandboxChecksPy)
	if o.code != 0 {
		t.Fatalf("exit %d; stdout %s stderr %s", o.code, o.stdout, o.stderr)
	}
	for _, want := range []string{"socketpair unix-ok", "io_uring_setup -1 38", "fork from-child:True"} {
		if !strings.Contains(o.stdout, want+"\n") {
			t.Errorf("output lacks %q: %s", want, o.stdout)
		}
	}
}

// TestRunPrintConfig: --print-config describes address, gateway and routes.
func TestRunPrintConfig(t *testing.T) {
	var out bytes.Buffer
	o, _, err := parseRunFlags([]string{"--subnet", "10.213.7.0/24", "--ip", "10.213.7.9", "--ipv6-subnet", "fd00:213:7::/64", "--dns", "10.213.7.1", "--print-config"})
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(&out)
	if err := enc.Encode(buildSandboxConfig(o, o.ip)); err != nil {
		t.Fatal(err)
	}
	var c sandboxConfig
	if err := json.Unmarshal(out.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	if c.Address != "10.213.7.9/24" || c.Gateway != "10.213.7.1" || c.Bridge != "netprov0" || c.Address6 != "fd00:213:7::9/64" ||
		c.Gateway6 != "fd00:213:7::1" || len(c.Routes) != 4 || c.Routes[0].Dst != "0.0.0.0/0" || c.Routes[0].Via != "10.213.7.1" {
		t.Errorf("config %+v", c)
	}
	for _, bad := range [][]string{{"--subnet", "10.213.7.0/31"}, {"--ip", "192.0.2.1"}, {"--provider", "x"}, {"--publish", "80"}, {"--mtu", "100"}, {}} {
		if _, _, err := parseRunFlags(bad); !errors.As(err, new(usageError)) {
			t.Errorf("run %q: %v, want a usage error", bad, err)
		}
	}
}

// TestRunHostProvider: with --provider host the sandbox's sockets are
// kernel sockets in the host namespace (passed through): curl reaches the
// peer's server directly.
func TestRunHostProvider(t *testing.T) {
	needTool(t, "curl")
	needTool(t, "python3")
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "h.txt"), []byte("via-host-provider\n"), 0o644)
	e.startPeer(ctx, "ready", "python3", "-c", httpServerPy, dir, "8081")
	o := e.run(ctx, []string{"--provider", "host"}, "curl", "-sS", "-m", "20", "http://127.0.0.1:8081/h.txt")
	if o.code != 0 || o.stdout != "via-host-provider\n" {
		t.Errorf("exit %d stdout %q stderr %q", o.code, o.stdout, o.stderr)
	}
}

// echoPeerPy answers each connection with the address it came from.
const echoPeerPy = `import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(4)
print("ready", flush=True)
while True:
    c, a = s.accept()
    c.sendall(("from " + a[0]).encode())
    c.close()`

// TestRunMasqueradeAndPublish: traffic leaving the bridge is masqueraded
// to the host side's address (CNI ipMasq), --publish maps a host port to
// the sandbox (also from 127.0.0.1), and --dns writes the sandbox's
// resolv.conf without touching the host's.
func TestRunMasqueradeAndPublish(t *testing.T) {
	needTool(t, "python3")
	needTool(t, "curl")
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	// A third namespace behind the host side, on its own link.
	far := "npf" + e.ns[3:]
	for _, c := range [][]string{
		{"netns", "add", far},
		{"link", "add", "npva" + e.ns[3:], "netns", e.ns, "type", "veth", "peer", "name", "npvb" + e.ns[3:], "netns", far},
		{"-n", e.ns, "addr", "add", "10.213.250.1/24", "dev", "npva" + e.ns[3:]},
		{"-n", e.ns, "link", "set", "npva" + e.ns[3:], "up"},
		{"-n", far, "addr", "add", "10.213.250.2/24", "dev", "npvb" + e.ns[3:]},
		{"-n", far, "link", "set", "npvb" + e.ns[3:], "up"},
		{"-n", far, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", c, err, out)
		}
		if c[0] == "netns" {
			t.Cleanup(func() { exec.Command("ip", "netns", "del", far).Run() })
		}
	}
	peer := exec.CommandContext(ctx, "ip", "netns", "exec", far, "python3", "-c", echoPeerPy, "10.213.250.2", "7100")
	pout, _ := peer.StdoutPipe()
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Process.Kill(); peer.Wait() })
	if line, _ := bufio.NewReader(pout).ReadString('\n'); !strings.Contains(line, "ready") {
		t.Fatalf("far peer: %q", line)
	}
	o := e.run(ctx, []string{"--dns", "10.213.250.2"}, "sh", "-c",
		"cat /etc/resolv.conf; python3 -c 'import socket; c=socket.create_connection((\"10.213.250.2\",7100),timeout=10); print(c.recv(64).decode())'")
	if o.code != 0 {
		t.Fatalf("exit %d stdout %q stderr %q", o.code, o.stdout, o.stderr)
	}
	if !strings.Contains(o.stdout, "nameserver 10.213.250.2\n") {
		t.Errorf("sandbox resolv.conf: %q", o.stdout)
	}
	if !strings.Contains(o.stdout, "from 10.213.250.1\n") {
		t.Errorf("far peer saw %q, want the host side's masqueraded 10.213.250.1", o.stdout)
	}
	if b, _ := os.ReadFile("/etc/resolv.conf"); strings.Contains(string(b), "10.213.250.2") {
		t.Errorf("host resolv.conf changed: %s", b)
	}

	// --publish: a server in the sandbox reached through host ports.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.txt"), []byte("published\n"), 0o644)
	done := make(chan runOutcome, 1)
	go func() {
		done <- e.run(ctx, []string{"--publish", "18080:8000"}, "timeout", "8", "python3", "-c", httpServerPy, dir, "8000")
	}()
	for _, host := range []string{e.gw.String(), "127.0.0.1"} {
		var out []byte
		var err error
		for i := 0; i < 100; i++ {
			out, err = exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, "curl", "-sS", "-m", "5", "http://"+host+":18080/p.txt").CombinedOutput()
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || string(out) != "published\n" {
			t.Errorf("curl %s:18080: %v %q", host, err, out)
		}
	}
	<-done
	out, _ := exec.Command("ip", "netns", "exec", e.ns, "iptables", "-t", "nat", "-S").CombinedOutput()
	if strings.Contains(string(out), "netprov") {
		t.Errorf("NAT rules left behind:\n%s", out)
	}
}

// interruptPy blocks in accept (and then in recv) while SIGALRM handlers
// run (PEP 475 retries after EINTR), then gets the connection and data a
// forked child sends later: nothing is lost to the interruptions.
const interruptPy = `import socket, signal, os, time
hits = []
signal.signal(signal.SIGALRM, lambda *a: hits.append(1))
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
port = s.getsockname()[1]
if os.fork() == 0:
    time.sleep(1.2)
    c = socket.create_connection(("127.0.0.1", port))
    time.sleep(1.2)
    c.sendall(b"late-data")
    c.close()
    os._exit(0)
signal.setitimer(signal.ITIMER_REAL, 0.3, 0.3)
a, _ = s.accept()
d = a.recv(64)
signal.setitimer(signal.ITIMER_REAL, 0)
print("accepted", d.decode(), "signals", len(hits) >= 4, flush=True)
os.wait()`

// TestRunInterruptedCallsLoseNothing: blocking accept and recv served by
// the userspace stack survive repeated signals.
func TestRunInterruptedCallsLoseNothing(t *testing.T) {
	needTool(t, "python3")
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	o := e.run(ctx, []string{"--provider", "none"}, "python3", "-c", interruptPy)
	if o.code != 0 || !strings.Contains(o.stdout, "accepted late-data signals True\n") {
		t.Errorf("exit %d stdout %q stderr %q", o.code, o.stdout, o.stderr)
	}
}

// dnsResponderPy answers every A query with the address in argv[1] and
// every other query with no answer.
const dnsResponderPy = `import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 53))
print("ready", flush=True)
while True:
    q, a = s.recvfrom(512)
    tid = q[:2]; qd = q[12:]
    end = qd.index(b"\0") + 5
    question = qd[:end]
    qtype = struct.unpack("!H", question[-4:-2])[0]
    if qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(sys.argv[1])
        hdr = tid + b"\x81\x80" + struct.pack("!HHHH", 1, 1, 0, 0)
    else:
        ans = b""
        hdr = tid + b"\x81\x80" + struct.pack("!HHHH", 1, 0, 0, 0)
    s.sendto(hdr + question + ans, a)
`

// TestRunDNSResolution: glibc's resolver in the sandbox (UDP through the
// stack: sendmmsg, recvfrom with the source address) asks the --dns
// server, and curl reaches the name it resolved.
func TestRunDNSResolution(t *testing.T) {
	needTool(t, "python3")
	needTool(t, "curl")
	needTool(t, "getent")
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	e.startPeer(ctx, "ready", "python3", "-c", dnsResponderPy, e.gw.String())
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "n.txt"), []byte("by-name\n"), 0o644)
	e.startPeer(ctx, "ready", "python3", "-c", httpServerPy, dir, "8082")
	o := e.run(ctx, []string{"--dns", e.gw.String()}, "sh", "-c", "getent ahostsv4 web.netprov.test; curl -sS -m 20 http://web.netprov.test:8082/n.txt")
	if o.code != 0 || !strings.Contains(o.stdout, "STREAM web.netprov.test") || !strings.HasPrefix(o.stdout, e.gw.String()+" ") || !strings.HasSuffix(o.stdout, "by-name\n") {
		t.Errorf("exit %d stdout %q stderr %q", o.code, o.stdout, o.stderr)
	}
}

// TestRunAnnouncesAddress: a host that still holds a neighbour entry for
// the sandbox's (reused) address with an old MAC learns the new one when
// `netprov run` starts, before any traffic (gratuitous ARP once the TAP is
// on the bridge).
func TestRunAnnouncesAddress(t *testing.T) {
	e := newRunEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	sandboxIP := e.subnet.Addr().Next().Next()
	if o := e.run(ctx, []string{"--ip", sandboxIP.String()}, "true"); o.code != 0 {
		t.Fatalf("first run: %+v", o)
	}
	// A bridge whose MAC is set keeps it when a port joins (else it takes
	// the lowest port MAC, and a changed address flushes its neighbours).
	// A spare port (a veth, both ends up) keeps the bridge's carrier up
	// between the runs: when its last port goes, the carrier drops and
	// linkwatch flushes its neighbours a moment later, which could empty
	// the entry checked below.
	const oldMAC = "02:00:00:00:de:ad"
	spare := "npv" + strings.TrimPrefix(e.bridge, "npbr")
	for _, args := range [][]string{
		{"link", "add", spare, "type", "veth", "peer", "name", spare + "p"},
		{"link", "set", spare + "p", "up"},
		{"link", "set", spare, "master", e.bridge, "up"},
		{"link", "set", e.bridge, "address", "02:00:00:00:be:ef"},
		{"neigh", "replace", sandboxIP.String(), "lladdr", oldMAC, "dev", e.bridge, "nud", "stale"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", e.ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	if o := e.run(ctx, []string{"--ip", sandboxIP.String()}, "true"); o.code != 0 {
		t.Fatalf("second run: %+v", o)
	}
	out, err := exec.Command("ip", "-n", e.ns, "neigh", "show", sandboxIP.String(), "dev", e.bridge).CombinedOutput()
	if err != nil || strings.Contains(string(out), oldMAC) || !strings.Contains(string(out), "lladdr") {
		t.Fatalf("host neighbour entry after the second run: %q (%v), want the sandbox's new MAC", out, err)
	}
	t.Logf("host neighbour entry: %s", strings.TrimSpace(string(out)))
}
