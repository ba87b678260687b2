package programs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetcat: OpenBSD nc in the sandbox, over TCP and UDP: to a listening
// nc on the kernel peer, from the peer to a listening nc in the sandbox,
// between two nc processes on the sandbox's loopback, and a scan of a
// closed port that the peer refuses.
func TestNetcat(t *testing.T) {
	tp := newTopology(t)
	nc := needProgram(t, "nc", "netcat-openbsd")

	t.Run("TCPToKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		got := tp.startPeer(t, nc, "-n", "-l", tp.peerAddr.String(), "7001")
		tp.peer.WaitListening(t, 7001)
		o := tp.run(t, ctx, nil, "sh", "-c", fmt.Sprintf("printf 'to-kernel\\n' | %s -n -N -w 10 %s 7001", nc, tp.peerAddr))
		if o.code != 0 {
			t.Errorf("sandbox nc: %v", o)
		}
		if !waitFor(ctx, func() bool { return got.String() == "to-kernel\n" }) {
			t.Errorf("peer nc got %q, want to-kernel", got)
		}
	})

	t.Run("TCPFromKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		s := tp.start(t, ctx, []string{"--ip", tp.sandboxAddr.String()}, "Listening", nc, "-n", "-v", "-l", "7002")
		out, err := tp.peerRun(ctx, "sh", "-c", fmt.Sprintf("printf 'to-sandbox\\n' | %s -n -N -w 10 %s 7002", nc, tp.sandboxAddr))
		if err != nil {
			t.Errorf("peer nc: %v: %s", err, out)
		}
		o := s.wait(t)
		if o.code != 0 || o.stdout != "to-sandbox\n" {
			t.Errorf("sandbox nc -l: want exit 0 and to-sandbox: %v", o)
		}
		if want := "Connection received on " + tp.peerAddr.String(); !strings.Contains(o.stderr, want) {
			t.Errorf("sandbox nc -v -l does not say %q: %v", want, o)
		}
	})

	t.Run("UDPToKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		got := tp.startPeer(t, nc, "-n", "-u", "-l", tp.peerAddr.String(), "7004")
		waitUDP(t, tp.peer, 7004)
		o := tp.run(t, ctx, nil, "sh", "-c", fmt.Sprintf("printf 'udp-to-kernel\\n' | %s -n -u -w 1 %s 7004", nc, tp.peerAddr))
		if o.code != 0 {
			t.Errorf("sandbox nc -u: %v", o)
		}
		if !waitFor(ctx, func() bool { return got.String() == "udp-to-kernel\n" }) {
			t.Errorf("peer nc -u got %q, want udp-to-kernel", got)
		}
	})

	t.Run("Loopback", func(t *testing.T) {
		ctx := bound(t)
		got := filepath.Join(t.TempDir(), "got")
		o := tp.run(t, ctx, nil, "sh", "-c", fmt.Sprintf(
			"%[1]s -n -l 127.0.0.1 7003 >%[2]s & L=$!; i=0; until printf 'over-loopback\\n' | %[1]s -n -N 127.0.0.1 7003 2>/dev/null; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done; wait $L",
			nc, got))
		if o.code != 0 {
			t.Errorf("nc pair on loopback: %v", o)
		}
		if b, _ := os.ReadFile(got); string(b) != "over-loopback\n" {
			t.Errorf("listening nc got %q, want over-loopback", b)
		}
	})

	t.Run("RefusedByKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		o := tp.run(t, ctx, nil, nc, "-n", "-z", "-v", "-w", "10", tp.peerAddr.String(), "7009")
		if o.code != 1 || !strings.Contains(o.stderr, "Connection refused") {
			t.Errorf("nc -z to a closed port: want exit 1 and Connection refused: %v", o)
		}
		if o.elapsed > refusedBound {
			t.Errorf("refused connect took %v, want < %v", o.elapsed, refusedBound)
		}
	})
}
