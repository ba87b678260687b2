package ipv4

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/arp"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/pipe"
)

// Two stacks on an in-memory cable, each delivery on the pipe's own
// goroutines: ARP resolution between two instances of the stack, queued
// packets released in order, and a fragmented datagram reassembled, under
// the race detector.
func TestTwoStacksOverPipe(t *testing.T) {
	a, b := pipe.New(pipe.Config{})
	newStack := func(ep *pipe.Endpoint, addr string, tp stack.TransportProtocol) (*stack.Stack, *stack.NIC) {
		s := stack.New(stack.Options{})
		arp.Register(s)
		Register(s, DefaultConfig())
		s.RegisterTransportProtocol(tp)
		nic, err := s.AddNIC(ep, stack.NICOptions{Name: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		if err := nic.AddAddress(netip.MustParsePrefix(addr)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, nic
	}
	sa, _ := newStack(a, "10.213.8.1/24", &fakeTransport{num: header.ProtoUDP})
	rx := &fakeTransport{num: header.ProtoUDP}
	newStack(b, "10.213.8.2/24", rx)

	r, err := sa.FindRoute(0, netip.Addr{}, netip.MustParseAddr("10.213.8.2"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := 0; i < n; i++ {
		pkt := buffer.New(buffer.Headroom, 9)
		copy(pkt.Append(9), udpish(string(rune('A'+i%26))))
		if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP}); err != nil {
			t.Fatal(err)
		}
	}
	big := testPayload(6000)
	pkt := buffer.New(buffer.Headroom, len(big))
	copy(pkt.Append(len(big)), big)
	if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP}); err != nil {
		t.Fatal(err)
	}
	got := waitPackets(t, rx, n+1, 10*time.Second)
	for i := 0; i < n; i++ {
		if want := udpish(string(rune('A' + i%26))); !bytes.Equal(got[i].data, want) {
			t.Fatalf("datagram %d = %q, want %q (queued packets out of order?)", i, got[i].data, want)
		}
	}
	if !bytes.Equal(got[n].data, big) {
		t.Fatal("fragmented datagram corrupted")
	}
}
