package programs

import (
	"fmt"
	"strings"
	"testing"
)

// TestPing: ping in the sandbox (an ICMP echo socket on the stack) to the
// kernel peer and to the sandbox's own loopback, and the kernel peer's
// ping to the sandbox's address, which the stack answers.
func TestPing(t *testing.T) {
	tp := newTopology(t)
	ping := needProgram(t, "ping", "iputils-ping")

	// Replies from the peer cross H: TTL 64 less one hop.
	t.Run("SandboxToKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		o := tp.run(t, ctx, nil, ping, "-n", "-c", "2", "-i", "0.2", "-W", "5", tp.peerAddr.String())
		checkPing(t, o, tp.peerAddr.String())
		t.Run("LinuxOutput", func(t *testing.T) { checkPingLikeLinux(t, o, 63) })
	})

	t.Run("SandboxLoopback", func(t *testing.T) {
		ctx := bound(t)
		o := tp.run(t, ctx, nil, ping, "-n", "-c", "2", "-i", "0.2", "-W", "5", "127.0.0.1")
		checkPing(t, o, "127.0.0.1")
		t.Run("LinuxOutput", func(t *testing.T) { checkPingLikeLinux(t, o, 64) })
	})

	// The stack answers with TTL 64 (Linux's ip_default_ttl); H forwards.
	t.Run("KernelPeerToSandbox", func(t *testing.T) {
		ctx := bound(t)
		s := tp.start(t, ctx, []string{"--ip", tp.sandboxAddr.String()}, "ready", "sh", "-c", "echo ready; exec sleep 25")
		out, err := tp.peerRun(ctx, ping, "-n", "-c", "2", "-i", "0.2", "-W", "5", tp.sandboxAddr.String())
		o := outcome{stdout: out}
		if err != nil {
			o.code = 1
		}
		checkPing(t, o, tp.sandboxAddr.String())
		if !strings.Contains(out, "ttl=63 ") {
			t.Errorf("replies from the sandbox do not have TTL 63 (64 less H's hop):\n%s", out)
		}
		s.stop(t)
	})
}

// checkPing asserts that ping got both replies from addr.
func checkPing(t *testing.T, o outcome, addr string) {
	t.Helper()
	if o.code != 0 || !strings.Contains(o.stdout, "2 packets transmitted, 2 received, 0% packet loss") ||
		strings.Count(o.stdout, "bytes from "+addr+": icmp_seq=") != 2 {
		t.Errorf("ping %s: want 2 replies and exit 0: %v", addr, o)
	}
}

// checkPingLikeLinux asserts what Linux's ping prints beyond the replies:
// no warnings (every setsockopt ping makes succeeds on a Linux ICMP echo
// socket) and each reply's TTL, which ping reads from the IP_TTL control
// message that IP_RECVTTL asks for.
func checkPingLikeLinux(t *testing.T, o outcome, ttl int) {
	t.Helper()
	if strings.Contains(o.stderr, "WARNING") {
		t.Errorf("ping warns: %v", o)
	}
	if want := fmt.Sprintf("ttl=%d ", ttl); strings.Count(o.stdout, want) != 2 {
		t.Errorf("replies do not show %s: %v", want, o)
	}
}
