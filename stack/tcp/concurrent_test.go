package tcp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/waiter"
	"golang.org/x/sys/unix"
)

// 1,000 concurrent connections between two stacks: all complete, each
// carries its own message to the right accepted socket, all close.
func TestThousandConnections(t *testing.T) {
	const n = 1000
	pp := newPipePair(t, 1500, pipe.Impairments{}, DefaultConfig())
	l, _ := pp.pb.NewEndpoint(unix.AF_INET)
	if err := l.Bind(netip.AddrPortFrom(pp.addrB, 6000)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(n + 24); err != nil {
		t.Fatal(err)
	}
	clients := make([]stack.Endpoint, n)
	for i := range clients {
		c, _ := pp.pa.NewEndpoint(unix.AF_INET)
		if err := c.Connect(netip.AddrPortFrom(pp.addrB, 6000)); err != unix.EINPROGRESS {
			t.Fatalf("connect %d = %v", i, err)
		}
		clients[i] = c
	}
	byPort := map[uint16]int{}
	for i, c := range clients {
		if err := waitReady(c, waiter.EventOut, 10*time.Second); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if err := c.Connect(netip.AddrPortFrom(pp.addrB, 6000)); err != nil {
			t.Fatalf("client %d connect = %v", i, err)
		}
		byPort[c.LocalAddress().Port()] = i
		msg := fmt.Sprintf("client-%04d", i)
		if _, err := c.Write([]byte(msg), stack.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(byPort) != n {
		t.Fatalf("%d distinct local ports, want %d", len(byPort), n)
	}
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]byte, 64)
	for accepted := 0; accepted < n; {
		a, ra, err := l.Accept()
		if err == unix.EAGAIN {
			if time.Now().After(deadline) {
				t.Fatalf("accepted %d of %d", accepted, n)
			}
			_ = waitReady(l, waiter.EventIn, time.Second)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted++
		if err := waitReady(a, waiter.EventIn, 5*time.Second); err != nil {
			t.Fatalf("accepted socket never readable")
		}
		r, err := a.Read(buf, stack.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("client-%04d", byPort[ra.Port()])
		if string(buf[:r.N]) != want {
			t.Fatalf("socket from %v read %q, want %q", ra, buf[:r.N], want)
		}
		a.Close()
	}
	for _, c := range clients {
		c.Close()
	}
	l.Close()
	if e := pp.b.Stats().TCP.PassiveOpens.Load(); e != n {
		t.Fatalf("PassiveOpens = %d", e)
	}
}
