package podman

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/agent"
)

// hostListen listens on the host side (the test's netns) at addr.
func (e *env) hostListen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := e.inNetns(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on the host side %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// hostGet fetches http://addr/path from the host side with a plain
// HTTP/1.0 request, retrying while the server in the container starts. It
// returns the body.
func (e *env) hostGet(t *testing.T, addr, path string) string {
	t.Helper()
	var body string
	var last error
	for i := 0; i < 50; i++ {
		last = e.inNetns(func() error {
			var err error
			body, err = httpGet(addr, path)
			return err
		})
		if last == nil {
			return body
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s%s from the host side: %v", addr, path, last)
	return ""
}

// hostServer serves body over HTTP on the host side at addr (a random
// port, returned) until the test ends; peers receives the client address
// of the first request.
func (e *env) hostServer(t *testing.T, addr, body string) (port int, peers <-chan string) {
	t.Helper()
	ln := e.hostListen(t, addr+":0")
	peer := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case peer <- r.RemoteAddr:
		default:
		}
		fmt.Fprintln(w, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, peer
}

// httpGet fetches http://addr/path with a plain HTTP/1.0 request from the
// calling thread's network namespace and returns the body of a 200 answer.
func httpGet(addr, path string) (string, error) {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	head, rest, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok || !strings.Contains(strings.SplitN(head, "\r\n", 2)[0], " 200 ") {
		return "", fmt.Errorf("response %q", b)
	}
	return rest, nil
}

// httpGetScript fetches path from host:port with busybox nc (busybox wget
// crashes in this rootfs: feasibility notes) and prints the body's last
// line.
func httpGetScript(host string, port int, path string) string {
	return fmt.Sprintf(`printf 'GET %s HTTP/1.0\r\nHost: x\r\n\r\n' | nc %s %d | tail -n 1`, path, host, port)
}

// webContainer starts busybox httpd on port 80 serving content.
func (e *env) webContainer(t *testing.T, content string, extra ...string) string {
	t.Helper()
	script := fmt.Sprintf(`mkdir -p /tmp/www && echo %s > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www`, content)
	return e.start(t, extra, "/bin/sh", "-c", script)
}

func TestContainerToHostHTTP(t *testing.T) {
	e := setup(t)
	content := "from-host-" + randHex(4)
	ln := e.hostListen(t, e.gateway+":0")
	var peer string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer = r.RemoteAddr
		fmt.Fprintln(w, content)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	out := e.run(t, "/bin/sh", "-c", httpGetScript(e.gateway, port, "/x"))
	if !strings.Contains(out, content) {
		t.Fatalf("container got %q, want %q", out, content)
	}
	if !strings.HasPrefix(peer, e.subnet+".") {
		t.Errorf("server saw the request from %q, want an address of the network %s.0/24", peer, e.subnet)
	}
}

func TestHostToContainerByIPAndPublishedPort(t *testing.T) {
	e := setup(t)
	content := "from-container-" + randHex(4)
	hostPort := 20000 + int(time.Now().UnixNano()%10000)
	id := e.webContainer(t, content, "-p", fmt.Sprintf("%d:80", hostPort))
	ip := e.containerIP(t, id)
	if got := e.hostGet(t, ip+":80", "/index.html"); strings.TrimSpace(got) != content {
		t.Fatalf("by IP %s: %q, want %q", ip, got, content)
	}
	// portmap's DNAT: the published port on the bridge address.
	if got := e.hostGet(t, fmt.Sprintf("%s:%d", e.gateway, hostPort), "/index.html"); strings.TrimSpace(got) != content {
		t.Fatalf("by published port %d: %q, want %q", hostPort, got, content)
	}
}

func TestContainerToContainer(t *testing.T) {
	e := setup(t)
	content := "c2c-" + randHex(4)
	id := e.webContainer(t, content)
	ip := e.containerIP(t, id)
	e.hostGet(t, ip+":80", "/index.html") // wait until it serves
	out := e.run(t, "/bin/sh", "-c", httpGetScript(ip, 80, "/index.html"))
	if !strings.Contains(out, content) {
		t.Fatalf("client container got %q, want %q", out, content)
	}
}

// TestSsShowsConnectionKernelDoesNot: while the container holds a
// connection open, `netprov ss` lists it, the host side sees it from the
// container's address, and the container's kernel netns has no TCP socket
// for it (/proc/<pid>/net/tcp of the container): the stack serves it.
func TestSsShowsConnectionKernelDoesNot(t *testing.T) {
	e := setup(t)
	ln := e.hostListen(t, e.gateway+":0")
	port := ln.Addr().(*net.TCPAddr).Port
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	id := e.start(t, nil, "/bin/sh", "-c", fmt.Sprintf("sleep 600 | nc %s %d", e.gateway, port))
	var conn net.Conn
	select {
	case conn = <-accepted:
		defer conn.Close()
	case <-time.After(20 * time.Second):
		t.Fatal("the container did not connect")
	}
	ip := e.containerIP(t, id)
	if h, _, _ := net.SplitHostPort(conn.RemoteAddr().String()); h != ip {
		t.Errorf("host side sees the connection from %s, want the container's %s", h, ip)
	}
	out, err := exec.Command(e.bin, "ss", "--state-dir", e.stateDir, id).CombinedOutput()
	if err != nil {
		t.Fatalf("netprov ss: %v: %s", err, out)
	}
	want := fmt.Sprintf("%s:%d", e.gateway, port)
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "ESTAB" && f[4] == want && strings.HasPrefix(f[3], ip+":") {
			found = true
		}
	}
	if !found {
		t.Fatalf("netprov ss does not show ESTAB %s -> %s:\n%s", ip, want, out)
	}
	out, err = exec.Command(e.bin, "ls", "--state-dir", e.stateDir).CombinedOutput()
	if err != nil {
		t.Fatalf("netprov ls: %v: %s", err, out)
	}
	listed := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == id[:12] && f[3] == "running" && strings.HasPrefix(f[4], ip+"/") && f[5] != "0" && f[5] != "-" {
			listed = true
		}
	}
	if !listed {
		t.Errorf("netprov ls does not list %s (%s) as running with connections:\n%s", id[:12], ip, out)
	}
	pid := e.inspect(t, id, "{{.State.Pid}}")
	hexPort := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join("/proc", pid, "net", f))
		if err != nil {
			t.Fatalf("container's /proc/net/%s: %v", f, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 2 && strings.HasSuffix(fields[2], hexPort) {
				t.Errorf("the container's kernel netns has a TCP socket to port %d: %s", port, sc.Text())
			}
		}
	}
}

// snapshot is what a sandbox leaves behind on the host.
type snapshot struct {
	stateDirs, leases, taps, stacks int
}

func (e *env) snapshot(t *testing.T) snapshot {
	t.Helper()
	var s snapshot
	ents, _ := os.ReadDir(e.stateDir)
	for _, d := range ents {
		if d.IsDir() {
			s.stateDirs++
		}
	}
	leases, _ := os.ReadDir(filepath.Join("/var/lib/cni/networks", e.netName))
	for _, l := range leases {
		if net.ParseIP(l.Name()) != nil {
			s.leases++
		}
	}
	out, err := exec.Command("ip", "-n", e.nsName, "-o", "link", "show", "master", e.netName).Output()
	if err != nil {
		t.Fatalf("ip link show master: %v", err)
	}
	if o := strings.TrimSpace(string(out)); o != "" {
		s.taps = len(strings.Split(o, "\n"))
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		args := strings.Split(string(cmd), "\x00")
		if len(args) >= 3 && args[1] == "stack" && strings.HasPrefix(args[2], e.stateDir+"/") {
			s.stacks++
		}
	}
	return s
}

// TestRemoveLeavesNothing runs N containers (NETPROV_PODMAN_LOOP, default
// 50) with --rm: afterwards no state directory, IPAM lease, TAP or stack
// process is left over.
func TestRemoveLeavesNothing(t *testing.T) {
	e := setup(t)
	n := 50
	if s := os.Getenv("NETPROV_PODMAN_LOOP"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 && v <= 500 {
			n = v
		}
	}
	before := e.snapshot(t)
	deadline := time.Now().Add(5 * time.Minute)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		out := e.run(t, "/bin/sh", "-c", "echo round-"+strconv.Itoa(i))
		if !strings.Contains(out, "round-"+strconv.Itoa(i)) {
			t.Fatalf("round %d: output %q", i, out)
		}
	}
	after := e.snapshot(t)
	if after != before {
		t.Fatalf("after %d containers: %+v, before: %+v", n, after, before)
	}
	// A container that is removed with rm -f while running, too.
	id := e.start(t, nil, "sleep", "600")
	if mid := e.snapshot(t); mid.stateDirs != before.stateDirs+1 || mid.stacks != before.stacks+1 || mid.taps != before.taps+1 || mid.leases != before.leases+1 {
		t.Fatalf("running container: %+v, before %+v (want one more of each)", mid, before)
	}
	if _, err := e.podman(context.Background(), "rm", "-f", "-t", "0", id); err != nil {
		t.Fatal(err)
	}
	if got := e.snapshot(t); got != before {
		t.Fatalf("after rm -f: %+v, before: %+v", got, before)
	}
}

// TestStackKilledDuringTransfer kills a container's stack process in the
// middle of a transfer. Download: the container's read ends (EOF: the
// stack's end of the TCP conduit is closed with nothing unread: FIN)
// instead of hanging. Upload: the stack process dies with the
// container's unread bytes in its end of the conduit, so the kernel
// resets the connection (tcp_close with unread data): the container's
// blocked write fails with ECONNRESET, as when a peer resets, and its
// read then sees EOF. Either way removing the container cleans up
// everything.
//
// The stack is stopped before it is killed, and for the upload killed only
// once its end of a conduit holds unread bytes: a stack that happened to
// have drained the conduit at the instant of death would give the
// container an orderly EOF instead, which is the download case again. The
// upload client is testdata/uploader, not nc: busybox nc exits 0 when its
// read fails, and whether it reads or writes first after the reset is
// chance.
func TestStackKilledDuringTransfer(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		name, script string
		hostSends    bool
		// want is the container's output; "" for an orderly EOF of nc.
		want string
	}{
		{"download", "nc %s %d >/dev/null; echo nc-exit=$?", true, ""},
		{"upload", "uploader %s:%d; echo uploader-exit=$?", false, "write: ECONNRESET\nread: EOF\nuploader-exit=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot(t)
			ln := e.hostListen(t, e.gateway+":0")
			port := ln.Addr().(*net.TCPAddr).Port
			streaming := make(chan struct{})
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 4096)
				for i := 0; i < 100000; i++ { // bounded: at most ~400 MB
					c.SetDeadline(time.Now().Add(30 * time.Second))
					var err error
					if tc.hostSends {
						_, err = c.Write(buf)
						time.Sleep(time.Millisecond)
					} else {
						_, err = c.Read(buf)
					}
					if err != nil {
						return
					}
					if i == 10 {
						close(streaming)
					}
				}
			}()
			id := e.start(t, nil, "/bin/sh", "-c", fmt.Sprintf(tc.script, e.gateway, port))
			select {
			case <-streaming:
			case <-time.After(20 * time.Second):
				t.Fatal("no transfer started")
			}
			b, err := os.ReadFile(filepath.Join(e.stateDir, id, "pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if pid <= 0 {
				t.Fatalf("bad stack pid %q", b)
			}
			if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			if !tc.hostSends {
				waitUnreadConduit(t, pid)
			}
			if err := unix.Kill(pid, unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := e.podman(ctx, "wait", id); err != nil {
				t.Fatalf("container did not end after its stack process was killed (hang): %v", err)
			}
			logs, _ := e.podman(context.Background(), "logs", id)
			t.Logf("container after the stack process died: %q", logs)
			want := tc.want
			if want == "" {
				want = "nc-exit=0"
			}
			if got := strings.TrimSpace(logs); got != want {
				t.Errorf("container output %q, want %q", got, want)
			}
			if _, err := e.podman(context.Background(), "rm", "-f", "-t", "0", id); err != nil {
				t.Fatalf("podman rm after the stack died: %v", err)
			}
			if got := e.snapshot(t); got != before {
				t.Fatalf("after rm: %+v, before: %+v", got, before)
			}
		})
	}
}

// waitUnreadConduit waits until one of the conduit sockets of the stack
// process pid (its end: a kernel TCP socket in the conduit namespace one
// of its threads made, or an AF_UNIX one in its own namespace) has unread
// bytes (Recv-Q > 0), bounded.
func waitUnreadConduit(t *testing.T, pid int) {
	t.Helper()
	owner := "pid=" + strconv.Itoa(pid) + ","
	var last string
	for i := 0; i < 500; i++ { // bounded: 500 × 20 ms
		last = ""
		for _, ns := range threadNetns(t, pid) {
			out, err := exec.Command("nsenter", "--net="+ns, "ss", "-txpH").CombinedOutput()
			if err != nil {
				t.Fatalf("ss -txp in %s: %v: %s", ns, err, out)
			}
			last += string(out)
		}
		for _, line := range strings.Split(last, "\n") {
			f := strings.Fields(line) // Netid State Recv-Q ...
			if len(f) > 2 && strings.Contains(line, owner) && f[2] != "0" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no conduit of the stopped stack process %d has unread bytes; ss -txp:\n%s", pid, last)
}

// threadNetns lists the network namespaces of pid's threads, one path
// each: its own and the conduit namespace.
func threadNetns(t *testing.T, pid int) []string {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var paths []string
	for _, task := range tasks {
		path := fmt.Sprintf("/proc/%d/task/%s/ns/net", pid, task.Name())
		id, err := os.Readlink(path)
		if err != nil || seen[id] {
			continue
		}
		seen[id] = true
		paths = append(paths, path)
	}
	return paths
}

// TestAgentRestart: the agent crashes while containers run. Running
// containers keep working (their fd is with their stack process), and the
// next container's CNI ADD starts a new agent, so new containers work.
func TestAgentRestart(t *testing.T) {
	e := setup(t)
	content := "survives-" + randHex(4)
	id := e.webContainer(t, content)
	ip := e.containerIP(t, id)
	if got := e.hostGet(t, ip+":80", "/index.html"); strings.TrimSpace(got) != content {
		t.Fatalf("before the agent died: %q", got)
	}
	oldPID, _ := agent.PID(e.agentSock)

	e.killAgent()
	os.Remove(e.agentSock) // a crashed agent leaves its socket behind
	t.Cleanup(func() {
		e.killAgent() // the one ADD started
		e.startAgent()
	})
	if got := e.hostGet(t, ip+":80", "/index.html"); strings.TrimSpace(got) != content {
		t.Fatalf("running container after the agent died: %q", got)
	}
	ln := e.hostListen(t, e.gateway+":0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, content) })}
	go srv.Serve(ln)
	defer srv.Close()
	got := e.run(t, "/bin/sh", "-c", httpGetScript(e.gateway, ln.Addr().(*net.TCPAddr).Port, "/"))
	if !strings.Contains(got, content) {
		t.Fatalf("new container after the agent died: %q\nagent log:\n%s", got, e.agentLog())
	}
	if pid, err := agent.PID(e.agentSock); err != nil || pid == oldPID || unix.Kill(pid, 0) != nil {
		t.Fatalf("agent after the new container: pid %d (old %d), %v; want a new live agent", pid, oldPID, err)
	}
}

// TestAddStartsAgent: with no agent running, CNI ADD starts one
// (agent.EnsureRunning with the conflist's agentSocket and stateDir), so
// the runtime finds the listener and the container works.
func TestAddStartsAgent(t *testing.T) {
	e := setup(t)
	e.killAgent()
	os.Remove(e.agentSock) // the stale socket of the killed agent
	t.Cleanup(func() {
		e.killAgent() // the one ADD started (by its pid file)
		e.startAgent()
	})
	out, err := e.podman(context.Background(), "run", "--rm", "--rootfs", e.rootfs, "echo", "started-by-add")
	if err != nil {
		t.Fatalf("podman run with no agent running: %v\n%s", err, out)
	}
	if !strings.Contains(out, "started-by-add") {
		t.Fatalf("output %q", out)
	}
	pid, err := agent.PID(e.agentSock)
	if err != nil || unix.Kill(pid, 0) != nil {
		t.Fatalf("no live agent after ADD: pid %d, %v", pid, err)
	}
}

// TestBadRequestShowsCNIError: an address outside the network's subnet is
// refused by ADD; podman shows the plugin's error, and the failed ADD
// (followed by DEL) leaves nothing behind.
func TestBadRequestShowsCNIError(t *testing.T) {
	e := setup(t)
	before := e.snapshot(t)
	out, err := e.podman(context.Background(), "run", "--rm", "--ip", "10.213.250.9", "--rootfs", e.rootfs, "echo", "must-not-run")
	if err == nil {
		t.Fatalf("container with an address outside %s.0/24 started: %q", e.subnet, out)
	}
	if !strings.Contains(out, "netprov") {
		t.Errorf("podman's error does not name the plugin: %q", out)
	}
	t.Logf("podman: %s", strings.TrimSpace(out))
	if got := e.snapshot(t); got != before {
		t.Fatalf("after the failed ADD: %+v, before: %+v", got, before)
	}
}
