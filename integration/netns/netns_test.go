package netns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pair builds two namespaces joined by a veth with 10.213.0.1/24 and
// fd00:213::1/64 on a's end, .2 and ::2 on b's end.
func pair(t *testing.T) (a, b *NS) {
	t.Helper()
	a = New(t, "a")
	b = New(t, "b")
	Veth(t, a, "veth0", b, "veth1")
	a.AddAddr(t, "veth0", "10.213.0.1/24")
	b.AddAddr(t, "veth1", "10.213.0.2/24")
	a.AddAddr(t, "veth0", "fd00:213::1/64")
	b.AddAddr(t, "veth1", "fd00:213::2/64")
	return a, b
}

func TestVethPing(t *testing.T) {
	a, b := pair(t)
	a.Run(t, "ping", "-c1", "-W1", "10.213.0.2")
	b.Run(t, "ping", "-c1", "-W1", "10.213.0.1")
	a.Run(t, "ping", "-6", "-c1", "-W1", "fd00:213::2")
	// The far end's address is not reachable from a namespace that has no
	// link to it: proves the namespaces are separate.
	c := New(t, "c")
	if out, err := c.Exec("ping", "-c1", "-W1", "10.213.0.2"); err == nil {
		t.Errorf("ping from unconnected namespace %s succeeded:\n%s", c, out)
	}
}

// TestDoTCPAcrossVeth makes a listener in b and dials it from a, both from
// Go code through Do, and checks bytes arrive both ways.
func TestDoTCPAcrossVeth(t *testing.T) {
	a, b := pair(t)
	var ln net.Listener
	if err := b.Do(func() (err error) {
		ln, err = net.Listen("tcp", "10.213.0.2:0")
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", b, err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		defer conn.Close()
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			accepted <- err
			return
		}
		_, err = io.WriteString(conn, "echo:"+line)
		accepted <- err
	}()

	var conn net.Conn
	if err := a.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("dial from %s: %v", a, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, want := conn.LocalAddr().(*net.TCPAddr).IP.String(), "10.213.0.1"; got != want {
		t.Errorf("local address %s, want %s (a's veth address)", got, want)
	}
	if _, err := io.WriteString(conn, "hello\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	if reply != "echo:hello\n" {
		t.Errorf("reply %q, want %q", reply, "echo:hello\n")
	}
	if err := <-accepted; err != nil {
		t.Errorf("server side: %v", err)
	}
}

// netnsInode is the inode of the network namespace of one thread.
func netnsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// threadsOutside lists the threads of this process that are not in the
// network namespace with inode want.
func threadsOutside(t *testing.T, want uint64) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var wrong []string
	for _, task := range tasks {
		var st syscall.Stat_t
		if err := syscall.Stat(task, &st); err != nil {
			continue // the thread exited meanwhile
		}
		if st.Ino != want {
			wrong = append(wrong, task)
		}
	}
	return wrong
}

func TestDoSwitchesAndRestoresThreadNetns(t *testing.T) {
	ns := New(t, "do")
	orig := netnsInode(t, "/proc/self/ns/net")
	target := netnsInode(t, ns.Path())
	if orig == target {
		t.Fatalf("new namespace has the same inode %d as ours", orig)
	}
	for i := range 20 {
		var inside uint64
		if err := ns.Do(func() error {
			var st syscall.Stat_t
			if err := syscall.Stat("/proc/thread-self/ns/net", &st); err != nil {
				return err
			}
			inside = st.Ino
			return nil
		}); err != nil {
			t.Fatalf("Do #%d: %v", i, err)
		}
		if inside != target {
			t.Fatalf("Do #%d ran in netns inode %d, want %d (%s)", i, inside, target, ns)
		}
	}
	if wrong := threadsOutside(t, orig); len(wrong) > 0 {
		t.Errorf("after Do, threads left in another netns: %v", wrong)
	}
}

func TestDoReturnsErrorsAndPanics(t *testing.T) {
	ns := New(t, "do")
	orig := netnsInode(t, "/proc/self/ns/net")
	sentinel := errors.New("sentinel")
	if err := ns.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do returned %v, want the function's error %v", err, sentinel)
	}

	func() {
		defer func() {
			v := recover()
			if v == nil || !strings.Contains(fmt.Sprint(v), "boom") {
				t.Errorf("recovered %v, want the panic from f (boom)", v)
			}
		}()
		_ = ns.Do(func() error { panic("boom") })
		t.Error("Do returned normally after f panicked")
	}()

	// runtime.Goexit is what t.Fatal calls: misuse inside Do must give an
	// error, not a hang.
	err := ns.Do(func() error {
		runtime.Goexit()
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "Goexit") {
		t.Errorf("Do after Goexit in f returned %v, want an error naming Goexit", err)
	}
	if wrong := threadsOutside(t, orig); len(wrong) > 0 {
		t.Errorf("threads left in another netns: %v", wrong)
	}
}

// TestCleanupRemovesNamespaceAndProcesses creates a namespace, a veth and
// a background process in a subtest that ends through runtime.Goexit (as
// t.Fatal does; t.SkipNow takes the same path without failing the suite),
// then checks that cleanup removed all of them.
func TestCleanupRemovesNamespaceAndProcesses(t *testing.T) {
	RequireRoot(t)
	var name, peerName string
	var pid int
	t.Run("exits_via_goexit", func(t *testing.T) {
		a := New(t, "cl")
		b := New(t, "cl")
		name, peerName = a.Name(), b.Name()
		Veth(t, a, "veth0", b, "veth1")
		cmd := a.Start(t, "sleep", "600")
		pid = cmd.Process.Pid
		t.SkipNow()
		t.Error("not reached")
	})
	if name == "" || pid == 0 {
		t.Fatal("subtest did not create the namespace")
	}
	list, err := ipCommand("netns", "list")
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, list)
	}
	for _, n := range []string{name, peerName} {
		if strings.Contains(string(list), n) {
			t.Errorf("namespace %s still listed after cleanup:\n%s", n, list)
		}
		if _, err := os.Stat(filepath.Join(runDir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/%s still exists after cleanup (stat error %v)", runDir, n, err)
		}
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("background process %d still exists after cleanup (kill 0: %v)", pid, err)
	}
}

// TestStartKernelServerAndWaitFor starts a kernel TCP server (nc) in one
// namespace, waits until it listens, sends it a line from the other
// namespace and reads what the server printed.
func TestStartKernelServerAndWaitFor(t *testing.T) {
	a, b := pair(t)
	out := &SyncBuffer{}
	server := b.Command("nc", "-l", "10.213.0.2", "7013")
	server.Stdout = out
	server.Stderr = out
	b.StartCmd(t, server)

	var conn net.Conn
	WaitFor(t, 10*time.Second, func() bool {
		return a.Do(func() (err error) {
			conn, err = net.DialTimeout("tcp", "10.213.0.2:7013", time.Second)
			return err
		}) == nil
	})
	if _, err := io.WriteString(conn, "from-a\n"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	waited := make(chan error, 1)
	go func() { waited <- server.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("nc exited with %v; output:\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nc did not exit after the client closed")
	}
	if got := out.String(); got != "from-a\n" {
		t.Errorf("server printed %q, want %q", got, "from-a\n")
	}
}

func TestLinkRouteAndSysctl(t *testing.T) {
	a, _ := pair(t)
	a.SetMTU(t, "veth0", 1400)
	if got := strings.TrimSpace(string(a.Run(t, "cat", "/sys/class/net/veth0/mtu"))); got != "1400" {
		t.Errorf("mtu of veth0 = %s, want 1400", got)
	}

	a.AddRoute(t, "10.213.9.0/24", "via", "10.213.0.2")
	a.AddRoute(t, "fd00:213:9::/64", "via", "fd00:213::2")
	if got := string(a.IP(t, "route", "get", "10.213.9.5")); !strings.Contains(got, "via 10.213.0.2") {
		t.Errorf("route get 10.213.9.5 = %q, want via 10.213.0.2", got)
	}
	if got := string(a.IP(t, "-6", "route", "get", "fd00:213:9::5")); !strings.Contains(got, "via fd00:213::2") {
		t.Errorf("route get fd00:213:9::5 = %q, want via fd00:213::2", got)
	}

	const key, path = "net.ipv4.tcp_fin_timeout", "/proc/sys/net/ipv4/tcp_fin_timeout"
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	value := "17"
	if strings.TrimSpace(string(before)) == value {
		value = "18"
	}
	a.Sysctl(t, key, value)
	if got := a.GetSysctl(t, key); got != value {
		t.Errorf("%s in %s = %s, want %s", key, a, got, value)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("%s of the test process changed from %q to %q: sysctl leaked out of the namespace", key, before, after)
	}
}

// TestWaitOperUpListeningAndHardwareAddr checks the waits on real kernel
// state: a veth end is operationally up with a real qdisc once WaitOperUp
// returns, a kernel listener is reported by WaitListening (and a closed
// port is not), and HardwareAddr is the address ip link reports.
func TestWaitOperUpListeningAndHardwareAddr(t *testing.T) {
	a, b := pair(t)
	a.WaitOperUp(t, "veth0")
	b.WaitOperUp(t, "veth1")
	out := string(a.IP(t, "-o", "link", "show", "veth0"))
	if !strings.Contains(out, "LOWER_UP") || strings.Contains(out, "qdisc noop") {
		t.Fatalf("veth0 after WaitOperUp:\n%s", out)
	}
	hw := a.HardwareAddr(t, "veth0")
	if len(hw) != 6 || !strings.Contains(out, "link/ether "+hw.String()) {
		t.Errorf("HardwareAddr(veth0) = %v, not the address in:\n%s", hw, out)
	}

	if got, _ := b.Exec("ss", "-Hltn", "sport", "= :7014"); len(strings.TrimSpace(string(got))) != 0 {
		t.Fatalf("port 7014 already listening:\n%s", got)
	}
	b.Start(t, "nc", "-l", "10.213.0.2", "7014")
	b.WaitListening(t, 7014)
	if got := string(b.Run(t, "ss", "-Hltn")); !strings.Contains(got, "10.213.0.2:7014") {
		t.Errorf("ss after WaitListening:\n%s", got)
	}
}
