package afpacket

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	lt "github.com/netprov/netprov/stack/link/internal/linktest"
)

// counter is a dispatcher that releases and counts frames of one EtherType.
type counter struct {
	etherType uint16
	n         atomic.Int64
}

func (c *counter) DeliverLinkPacket(p *buffer.Packet) {
	if b := p.Data(); len(b) >= header.EthernetLen && header.Ethernet(b).EtherType() == c.etherType {
		c.n.Add(1)
	}
	p.Release()
}

// newPair puts an endpoint on each end of a veth pair (each end in its own
// namespace, no addresses), so frames go endpoint to endpoint.
func newPair(t testing.TB, cfg Config) (a, b *Endpoint) {
	t.Helper()
	lt.RequireRoot(t)
	nsA, nsB := netns.New(t, ""), netns.New(t, "")
	devA, devB := netns.UniqueName("va"), netns.UniqueName("vb")
	netns.Veth(t, nsA, devA, nsB, devB)
	nsA.WaitOperUp(t, devA)
	nsB.WaitOperUp(t, devB)
	var err error
	ca, cb := cfg, cfg
	ca.Interface, ca.NetNS = devA, nsA.Path()
	cb.Interface, cb.NetNS = devB, nsB.Path()
	if a, err = New(ca); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = New(cb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

const testEtherType = 0x88b5 // IEEE local experimental: the kernels ignore it

func sendBatch(t testing.TB, a, b *Endpoint, pkts []*buffer.Packet, size int) {
	for i := range pkts {
		p := buffer.New(buffer.Headroom, size)
		header.EthernetFields{Dst: b.LinkAddress(), Src: a.LinkAddress(), EtherType: testEtherType}.Emit(p.Append(size))
		pkts[i] = p
	}
	if n, err := a.WritePackets(pkts); n != len(pkts) || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
}

// waitCount waits (bounded) until c has seen n frames.
func waitCount(t testing.TB, c *counter, n int64) {
	deadline := time.Now().Add(5 * time.Second)
	for c.n.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d frames, want %d", c.n.Load(), n)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// TestAFPacketPairSteadyStateDoesNotAllocate sends batches from one
// endpoint to the other and counts allocations in the whole process, the
// receive goroutine included.
func TestAFPacketPairSteadyStateDoesNotAllocate(t *testing.T) {
	if lt.RaceEnabled {
		t.Skip("skipping: allocation counts are meaningless with the race detector")
	}
	a, b := newPair(t, Config{})
	c := &counter{etherType: testEtherType}
	b.Attach(c)
	pkts := make([]*buffer.Packet, 32)
	var want int64
	allocs := lt.AllocsPerRun(50, func() {
		sendBatch(t, a, b, pkts, 1000)
		want += int64(len(pkts))
		waitCount(t, c, want)
	})
	if allocs >= 1 {
		t.Fatalf("%.1f allocations per batch of 32 frames sent and received, want 0", allocs)
	}
	if st := b.Stats(); st.RxDropped != 0 {
		t.Fatalf("receiver dropped %d frames", st.RxDropped)
	}
}

// BenchmarkAFPacketPair measures frames/s from one endpoint to the other
// through a veth pair (1514-byte frames, batches of 64).
func BenchmarkAFPacketPair(b *testing.B) {
	src, dst := newPair(b, Config{SocketBuffer: 4 << 20})
	c := &counter{etherType: testEtherType}
	dst.Attach(c)
	pkts := make([]*buffer.Packet, 64)
	b.ReportAllocs()
	b.SetBytes(1514)
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		sendBatch(b, src, dst, pkts, 1514)
		sent += len(pkts)
		// Flow control: the veth backlog drops what we outrun.
		for int64(sent)-c.n.Load() > 512 {
			time.Sleep(20 * time.Microsecond)
		}
	}
	waitCount(b, c, int64(sent)-512)
	b.ReportMetric(float64(c.n.Load())/b.Elapsed().Seconds(), "frames/s")
}
