package socket_test

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// Blocking send and receive through the socket layer allocate nothing in
// steady state (waiters are pooled, closures stay on the stack).
func TestDatagramSteadyStateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("skipping: allocation counts are meaningless under the race detector")
	}
	n := newNode(t, nil)
	a := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	b := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err := b.BindAddr(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := a.ConnectAddr(ctx0, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	msg, buf := make([]byte, 256), make([]byte, 2048)
	round := func() {
		if _, _, err := a.Send(ctx0, msg, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Recv(ctx0, buf, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		round()
	}
	if allocs := testing.AllocsPerRun(200, round); allocs > 0 {
		t.Errorf("%.2f allocations per blocking send+recv, want 0", allocs)
	}
}
