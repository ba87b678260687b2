package linkbase

import (
	"testing"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/internal/counters"
)

type countingDispatcher struct{ n int }

func (d *countingDispatcher) DeliverLinkPacket(p *buffer.Packet) {
	d.n++
	p.Release()
}

func frame(n int) *buffer.Packet {
	p := buffer.New(0, n)
	p.Append(n)
	return p
}

// TestDispatchDeliverCounts checks that a batch goes to the attached
// dispatcher and is counted, and is dropped and counted without one.
func TestDispatchDeliverCounts(t *testing.T) {
	var x Dispatch
	var c counters.Counters
	x.Deliver([]*buffer.Packet{frame(60), frame(70)}, &c)
	if st := c.Snapshot(); st.RxDropped != 2 || st.RxPackets != 0 {
		t.Fatalf("without dispatcher: %+v", st)
	}
	d := &countingDispatcher{}
	x.Attach(d)
	x.Deliver([]*buffer.Packet{frame(60), frame(70)}, &c)
	if st := c.Snapshot(); d.n != 2 || st.RxPackets != 2 || st.RxBytes != 130 {
		t.Fatalf("delivered %d, stats %+v", d.n, st)
	}
	x.Attach(nil)
	x.Deliver([]*buffer.Packet{frame(60)}, &c)
	if st := c.Snapshot(); d.n != 2 || st.RxDropped != 3 {
		t.Fatalf("after detach: delivered %d, stats %+v", d.n, st)
	}
	DropWrites([]*buffer.Packet{frame(60), frame(60)}, &c)
	if st := c.Snapshot(); st.TxDropped != 2 {
		t.Fatalf("DropWrites: %+v", st)
	}
}

// TestFrameFits checks the send-size rule of the fd-based endpoints.
func TestFrameFits(t *testing.T) {
	const mtu = 1500
	gsoFrame := func(n int) *buffer.Packet {
		p := frame(n)
		p.Meta.GSO.Type = buffer.GSOTCPv4
		return p
	}
	for _, tc := range []struct {
		name string
		p    *buffer.Packet
		gso  bool
		want bool
	}{
		{"runt", frame(header.EthernetLen - 1), false, false},
		{"header only", frame(header.EthernetLen), false, true},
		{"MTU", frame(mtu + header.EthernetLen), false, true},
		{"over MTU", frame(mtu + header.EthernetLen + 1), false, false},
		{"over MTU without GSO request", frame(mtu + header.EthernetLen + 1), true, false},
		{"super-frame", gsoFrame(link.GSOMaxSize + header.EthernetLen), true, true},
		{"super-frame on non-GSO link", gsoFrame(mtu + header.EthernetLen + 1), false, false},
		{"over GSO max", gsoFrame(link.GSOMaxSize + header.EthernetLen + 1), true, false},
	} {
		if got := FrameFits(tc.p, tc.gso, mtu); got != tc.want {
			t.Errorf("%s: FrameFits = %v, want %v", tc.name, got, tc.want)
		}
		tc.p.Release()
	}
}
