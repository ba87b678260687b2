// Package linktest helps the link endpoint tests that need real devices:
// it creates uniquely named network namespaces and veth pairs, runs
// commands in them, and removes everything with t.Cleanup, even when the
// test fails.
package linktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RequireRoot skips the test unless it runs as root with /dev/net/tun and
// the ip command available.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and devices (run the tests as root)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipping: /dev/net/tun not available: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: the ip command (iproute2) is not installed")
	}
}

// UniqueName returns "np" + prefix + a random hex suffix, at most 15
// characters (the interface name limit).
func UniqueName(prefix string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	n := "np" + prefix + hex.EncodeToString(b[:])
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// Run runs a command with a bounded time and fails the test if it fails.
// It returns the combined output.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Netns is a network namespace made for one test.
type Netns struct {
	Name string
}

// Path is the namespace's file, for the NetNS field of endpoint configs.
func (n Netns) Path() string { return "/run/netns/" + n.Name }

// Exec runs a command inside the namespace and fails the test if it fails.
func (n Netns) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// IP runs "ip -n NAME args...".
func (n Netns) IP(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"-n", n.Name}, args...)...)
}

// NewNetns creates a namespace with lo up, deleted at cleanup.
func NewNetns(t testing.TB) Netns {
	t.Helper()
	n := Netns{Name: UniqueName("")}
	Run(t, "ip", "netns", "add", n.Name)
	t.Cleanup(func() {
		if out, err := run("ip", "netns", "del", n.Name); err != nil {
			t.Logf("cleanup: ip netns del %s: %v\n%s", n.Name, err, out)
		}
	})
	n.IP(t, "link", "set", "lo", "up")
	return n
}

// NewVeth creates a veth pair with one end (named a) in ns and the other
// (named b) in peer; both are returned. Deleting the namespaces removes
// the pair; the cleanup also deletes it explicitly.
func NewVeth(t testing.TB, ns, peer Netns) (a, b string) {
	t.Helper()
	a, b = UniqueName("va"), UniqueName("vb")
	ns.IP(t, "link", "add", a, "type", "veth", "peer", "name", b, "netns", peer.Name)
	t.Cleanup(func() { run("ip", "-n", ns.Name, "link", "del", a) })
	return a, b
}

// Start starts a long-running command inside the namespace; it is killed
// at cleanup.
func (n Netns) Start(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", name, n.Name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// WaitListening waits (at most 5 s) until a TCP socket listens on port in
// the namespace.
func (n Netns) WaitListening(t testing.TB, port string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := run("ip", "netns", "exec", n.Name, "ss", "-Hltn")
		if strings.Contains(out, ":"+port+" ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %s in %s:\n%s", port, n.Name, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitOperUp waits (at most 5 s) until dev in the namespace has carrier
// and a real qdisc. Right after "ip link set up" the kernel may still have
// the no-op qdisc attached, which drops every frame, until its link
// watcher runs (up to a second later).
func (n Netns) WaitOperUp(t testing.TB, dev string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := run("ip", "-n", n.Name, "-o", "link", "show", dev)
		if strings.Contains(out, "LOWER_UP") && !strings.Contains(out, "qdisc noop") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s not operationally up:\n%s", dev, n.Name, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
