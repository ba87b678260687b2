package netstack

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newTestConduitNet makes a conduit namespace, closed at cleanup; it
// skips without root or CAP_SYS_ADMIN.
func newTestConduitNet(t *testing.T) *conduitNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the conduit namespace needs root")
	}
	n, err := newConduitNet()
	if errors.Is(err, unix.EPERM) {
		t.Skip("no CAP_SYS_ADMIN: no conduit namespace")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.close)
	return n
}

// TestInjectedErrorsLikeLinux checks icmpForErrno against the kernel:
// every errno it maps, injected as an ICMP error into a connected pair of
// the conduit namespace, is what the kernel sets on the target end, and
// an unconnected target end ignores it, as Linux's UDP does without
// IP_RECVERR.
func TestInjectedErrorsLikeLinux(t *testing.T) {
	n := newTestConduitNet(t)
	errnos := []unix.Errno{unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENOPROTOOPT, unix.ENETUNREACH,
		unix.EHOSTDOWN, unix.ENONET, unix.EPROTO, unix.EACCES, unix.EMSGSIZE, unix.ETIMEDOUT}
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		if family == unix.AF_INET6 && !n.v6 {
			continue
		}
		for _, errno := range errnos {
			_, _, mapped := icmpForErrno(family == unix.AF_INET6, errno)
			for _, connected := range []bool{true, false} {
				c, err := newUDPConduit(n, family)
				if err != nil {
					t.Fatal(err)
				}
				var tfd int
				withFd(c.target, func(fd int) { tfd = fd })
				target, err := bindLoopback(tfd, c.udp.ours.Addr())
				if err != nil {
					t.Fatal(err)
				}
				if connected {
					if err := unix.Connect(tfd, sockaddrOf(c.udp.ours)); err != nil {
						t.Fatal(err)
					}
				}
				sent := n.injectError(target, c.udp.ours, errno)
				got := sockError(tfd)
				c.close()
				want := unix.Errno(0)
				if mapped && connected {
					want = errno
				}
				if sent != mapped || got != want {
					t.Errorf("family %d, %v, connected %v: injected %v, SO_ERROR %v; want injected %v, SO_ERROR %v",
						family, errno, connected, sent, got, mapped, want)
				}
			}
		}
	}
}

// TestConduitNetCloseLeavesNoFds: the UDP pairs and TCP sockets the
// worker made in advance are closed with the namespace (no descriptor
// leaks per provider); a pooled TCP socket is a fresh one.
func TestConduitNetCloseLeavesNoFds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the conduit namespace needs root")
	}
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := count()
	n, err := newConduitNet()
	if errors.Is(err, unix.EPERM) {
		t.Skip("no CAP_SYS_ADMIN: no conduit namespace")
	}
	if err != nil {
		t.Fatal(err)
	}
	fds, err := n.udpPair(unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	if fds[0] == fds[1] {
		t.Fatalf("udpPair gave one socket twice: %v", fds)
	}
	unix.Close(fds[0])
	unix.Close(fds[1])
	tcp, err := n.tcpSocket(unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	if proto, err := unix.GetsockoptInt(tcp, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || proto != unix.IPPROTO_TCP {
		t.Fatalf("tcpSocket: SO_PROTOCOL %d (%v), want TCP", proto, err)
	}
	if _, err := unix.Getpeername(tcp); err != unix.ENOTCONN {
		t.Fatalf("tcpSocket: getpeername %v, want ENOTCONN (a fresh socket)", err)
	}
	unix.Close(tcp)
	// Let the worker fill both pools, so close has pooled sockets of each
	// kind to close.
	deadline := time.Now().Add(5 * time.Second)
	for len(n.pools[poolUDP4]) < conduitPool || len(n.pools[poolTCP4]) < conduitPool {
		if time.Now().After(deadline) {
			t.Fatalf("pools not refilled: UDP %d, TCP %d of %d", len(n.pools[poolUDP4]), len(n.pools[poolTCP4]), conduitPool)
		}
		time.Sleep(time.Millisecond)
	}
	n.close()
	deadline = time.Now().Add(5 * time.Second)
	for count() > before { // (earlier tests' pools may still be closing)
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open after close, %d before", count(), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
