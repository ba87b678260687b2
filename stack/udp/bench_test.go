package udp_test

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/waiter"
)

// roundTrip sends one datagram on a connected socket over lo and reads it
// on the other end.
func roundTrip(tb testing.TB, a, b stack.Endpoint, ch <-chan struct{}, msg, buf []byte) {
	if _, err := a.Write(msg, stack.WriteOptions{}); err != nil {
		tb.Fatal(err)
	}
	for {
		_, err := b.Read(buf, stack.ReadOptions{})
		if err == nil {
			return
		}
		if err != unix.EAGAIN {
			tb.Fatal(err)
		}
		<-ch
	}
}

// connectedPair returns a socket connected to another over lo, and a
// channel signalled when the second becomes readable.
func connectedPair(tb testing.TB, ts *testStack) (a, b stack.Endpoint, ch <-chan struct{}) {
	var err error
	if a, err = ts.udp.NewEndpoint(unix.AF_INET); err != nil {
		tb.Fatal(err)
	}
	if b, err = ts.udp.NewEndpoint(unix.AF_INET); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	tb.Cleanup(b.Close)
	if err := b.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		tb.Fatal(err)
	}
	if err := a.Connect(b.LocalAddress()); err != nil {
		tb.Fatal(err)
	}
	e, c := waiter.ChannelEntry(waiter.EventIn)
	b.EventQueue().Register(e)
	return a, b, c
}

// TestSteadyStateAllocations: a connected send and a receive over lo
// allocate nothing once the pools are warm (the received packet itself is
// queued, not copied).
func TestSteadyStateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("skipping: allocation counts are meaningless under the race detector")
	}
	ts := newTestStack(t, nil)
	a, b, ch := connectedPair(t, ts)
	msg, buf := make([]byte, 512), make([]byte, 2048)
	for i := 0; i < 100; i++ {
		roundTrip(t, a, b, ch, msg, buf)
	}
	allocs := testing.AllocsPerRun(200, func() { roundTrip(t, a, b, ch, msg, buf) })
	if allocs > 0 {
		t.Errorf("%.2f allocations per datagram round trip, want 0", allocs)
	}
}

func BenchmarkLoopbackConnected(b *testing.B) {
	ts := newTestStack(b, nil)
	x, y, ch := connectedPair(b, ts)
	msg, buf := make([]byte, 512), make([]byte, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		roundTrip(b, x, y, ch, msg, buf)
	}
}
