package ipv6

import (
	"testing"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/internal/testlink"
)

// sink is a transport that takes and releases packets.
type sink struct{ num uint8 }

func (s sink) Number() uint8 { return s.num }
func (s sink) HandlePacket(pkt *buffer.Packet, _ stack.IPInfo) stack.Verdict {
	pkt.Release()
	return stack.Delivered
}
func (s sink) HandleError(stack.ICMPError, stack.IPInfo, []byte) {}

func newAllocEnv(tb testing.TB) (*stack.Stack, *stack.NIC, *Protocol) {
	s := stack.New(stack.Options{})
	p := Register(s, DefaultConfig())
	s.RegisterTransportProtocol(sink{num: udpNumber})
	l := testlink.NewEthernet(ourMAC, 1500)
	l.SetDiscard(true)
	nic, err := s.AddNIC(l, stack.NICOptions{Name: "eth0"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := nic.AddAddress(prefix64(ourAddr)); err != nil {
		tb.Fatal(err)
	}
	p.Table(nic.ID()).AddStatic(peerAddr, peerMAC)
	tb.Cleanup(func() { _ = s.Close() })
	return s, nic, p
}

// The steady-state data path allocates nothing: receiving a datagram for
// a transport and sending one to a resolved neighbour.
func TestDataPathDoesNotAllocate(t *testing.T) {
	s, nic, _ := newAllocEnv(t)
	frame := ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(512)))
	rx := testing.AllocsPerRun(200, func() {
		pkt := buffer.New(buffer.Headroom, len(frame))
		copy(pkt.Append(len(frame)), frame)
		nic.DeliverLinkPacket(pkt)
	})
	r, err := s.FindRoute(0, ourAddr, peerAddr)
	if err != nil {
		t.Fatal(err)
	}
	payload := udpLike(512)
	tx := testing.AllocsPerRun(200, func() {
		pkt := buffer.New(buffer.Headroom, len(payload))
		copy(pkt.Append(len(payload)), payload)
		_ = r.WritePacket(pkt, stack.NetworkParams{Protocol: udpNumber})
	})
	if rx != 0 || tx != 0 {
		t.Errorf("allocations per packet: receive %v, send %v; want 0", rx, tx)
	}
	if s.Stats().IPv6.InDelivers.Load() == 0 {
		t.Fatal("nothing delivered")
	}
}

func BenchmarkReceive(b *testing.B) {
	_, nic, _ := newAllocEnv(b)
	frame := ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(1200)))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		pkt := buffer.New(buffer.Headroom, len(frame))
		copy(pkt.Append(len(frame)), frame)
		nic.DeliverLinkPacket(pkt)
	}
}

func BenchmarkSend(b *testing.B) {
	s, _, _ := newAllocEnv(b)
	r, err := s.FindRoute(0, ourAddr, peerAddr)
	if err != nil {
		b.Fatal(err)
	}
	payload := udpLike(1200)
	b.SetBytes(int64(len(payload) + header.IPv6Len))
	b.ReportAllocs()
	for b.Loop() {
		pkt := buffer.New(buffer.Headroom, len(payload))
		copy(pkt.Append(len(payload)), payload)
		_ = r.WritePacket(pkt, stack.NetworkParams{Protocol: udpNumber})
	}
}
