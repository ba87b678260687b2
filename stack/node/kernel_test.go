package node_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/link/afpacket"
)

// netns is a network namespace made for one test.
type netns string

func uniqueName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	n := "np" + prefix + hex.EncodeToString(b[:])
	return n[:min(len(n), 15)]
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newNetns(t *testing.T) netns {
	t.Helper()
	n := netns(uniqueName(""))
	run(t, "ip", "netns", "add", string(n))
	t.Cleanup(func() { exec.Command("ip", "netns", "del", string(n)).Run() })
	run(t, "ip", "-n", string(n), "link", "set", "lo", "up")
	return n
}

// waitUp waits (at most 5 s) until dev has carrier and a real qdisc.
func (n netns) waitUp(t *testing.T, dev string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		out, _ := exec.Command("ip", "-n", string(n), "-o", "link", "show", dev).CombinedOutput()
		if strings.Contains(string(out), "LOWER_UP") && !strings.Contains(string(out), "qdisc noop") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not up: %s", dev, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start runs a long-lived command in the namespace, killed at cleanup.
func (n netns) start(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", string(n), name}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// tcpEchoServer echoes every connection on 10.213.7.2:7778.
const tcpEchoServer = `
import socket, threading
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("10.213.7.2", 7778))
l.listen(16)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = l.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
`

// kernelSS lists the kernel peer's TCP sockets, for failure reports.
func kernelSS(n netns) string {
	out, _ := exec.Command("ip", "netns", "exec", string(n), "ss", "-tni").CombinedOutput()
	return string(out)
}

// TestKernelPeer exchanges UDP datagrams, pings and a TCP echo between a
// Node on one end of a veth pair (through an AF_PACKET endpoint) and the
// Linux kernel on the other end, in namespaces the test creates.
func TestKernelPeer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and a veth pair")
	}
	for _, tool := range []string{"ip", "socat", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed", tool)
		}
	}
	nsStack, nsKernel := newNetns(t), newNetns(t)
	devStack, devKernel := uniqueName("va"), uniqueName("vb")
	run(t, "ip", "-n", string(nsStack), "link", "add", devStack, "type", "veth", "peer", "name", devKernel, "netns", string(nsKernel))
	run(t, "ip", "-n", string(nsKernel), "addr", "add", "10.213.7.2/24", "dev", devKernel)
	run(t, "ip", "-n", string(nsStack), "link", "set", devStack, "up")
	run(t, "ip", "-n", string(nsKernel), "link", "set", devKernel, "up")
	nsStack.waitUp(t, devStack)
	nsKernel.waitUp(t, devKernel)

	ep, err := afpacket.New(afpacket.Config{Interface: devStack, NetNS: "/run/netns/" + string(nsStack), VnetHdr: true})
	if err != nil {
		t.Fatalf("afpacket endpoint: %v", err)
	}
	n := newNode(t)
	if _, err := n.AddNIC(ep, "eth0", netip.MustParsePrefix("10.213.7.1/24")); err != nil {
		t.Fatal(err)
	}
	nsKernel.start(t, "socat", "UDP4-RECVFROM:7777,bind=10.213.7.2,fork", "PIPE")
	// A plain blocking echo loop: socat's PIPE echo can stall once more
	// than a pipe's worth of data is in flight.
	nsKernel.start(t, "python3", "-c", tcpEchoServer)

	t.Run("UDP", func(t *testing.T) {
		c, err := n.Dial("udp4", "10.213.7.2:7777")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 2048)
		// socat may not be bound yet: retry a bounded number of times
		// (a datagram to a closed port gives ECONNREFUSED).
		for i := 0; ; i++ {
			msg := []byte("datagram to the kernel")
			if _, err := c.Write(msg); err != nil && !errors.Is(err, unix.ECONNREFUSED) {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			k, err := c.Read(buf)
			if err == nil {
				if string(buf[:k]) != string(msg) {
					t.Fatalf("echo %q", buf[:k])
				}
				break
			}
			if i == 25 {
				t.Fatalf("no UDP echo from the kernel peer: %v", err)
			}
		}
		// A large datagram is fragmented by the stack and reassembled by
		// the kernel (and back).
		big := make([]byte, 8000)
		for i := range big {
			big[i] = byte(i)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(big); err != nil {
			t.Fatal(err)
		}
		big2 := make([]byte, 9000)
		k, err := c.Read(big2)
		if err != nil || k != len(big) || string(big2[:k]) != string(big) {
			t.Fatalf("fragmented echo: %d bytes, %v", k, err)
		}
	})
	t.Run("Ping", func(t *testing.T) {
		ping(t, n, unix.AF_INET, netip.MustParseAddr("10.213.7.2"))
	})
	t.Run("TCP", func(t *testing.T) {
		var c interface {
			io.ReadWriteCloser
			SetDeadline(time.Time) error
		}
		for i := 0; ; i++ {
			conn, err := n.Dial("tcp4", "10.213.7.2:7778")
			if err == nil {
				c = conn
				break
			}
			if i == 50 || !errors.Is(err, unix.ECONNREFUSED) {
				t.Fatalf("dial the kernel: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := make([]byte, 256<<10)
		for i := range msg {
			msg[i] = byte(i * 13)
		}
		go c.Write(msg)
		got := make([]byte, len(msg))
		if k, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			var snmp strings.Builder
			n.Stack.Stats().WriteSNMP(&snmp)
			t.Fatalf("TCP echo through the kernel: read %d of %d: %v\nconnections: %+v\nkernel: %s\n%s", k, len(msg), err,
				n.Connections(), kernelSS(nsKernel), snmp.String())
		}
	})
}
