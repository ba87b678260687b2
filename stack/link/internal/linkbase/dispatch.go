// Package linkbase is the plumbing the link endpoints of this module share:
// the attached dispatcher and batch delivery with its counters (every
// endpoint), the largest frame an Ethernet endpoint carries, and the
// non-blocking file with its reader goroutine of the fd-based endpoints
// (tap, afpacket).
package linkbase

import (
	"sync/atomic"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/internal/counters"
)

// Dispatch holds the dispatcher attached to an endpoint. The zero value
// has none.
type Dispatch struct {
	d atomic.Pointer[link.Dispatcher]
}

// Attach implements link.Endpoint's Attach (nil detaches).
func (x *Dispatch) Attach(d link.Dispatcher) {
	if d == nil {
		x.d.Store(nil)
		return
	}
	x.d.Store(&d)
}

// Deliver hands a received batch to the attached dispatcher and counts it
// in c; without a dispatcher the packets are released and counted as
// dropped.
func (x *Dispatch) Deliver(batch []*buffer.Packet, c *counters.Counters) {
	dp := x.d.Load()
	if dp == nil {
		for _, p := range batch {
			p.Release()
		}
		c.RxDropped.Add(uint64(len(batch)))
		return
	}
	var bytes uint64
	for _, p := range batch {
		bytes += uint64(p.Len())
	}
	c.RxPackets.Add(uint64(len(batch)))
	c.RxBytes.Add(bytes)
	d := *dp
	for _, p := range batch {
		d.DeliverLinkPacket(p)
	}
}

// DropWrites releases packets written to a closed endpoint and counts
// them as dropped in c.
func DropWrites(pkts []*buffer.Packet, c *counters.Counters) {
	for _, p := range pkts {
		p.Release()
	}
	c.TxDropped.Add(uint64(len(pkts)))
}

// MaxFrame is the largest Ethernet frame an endpoint with the given MTU
// takes from the stack: a GSO super-frame when it offloads segmentation.
func MaxFrame(gso bool, mtu int) int {
	if gso {
		return link.GSOMaxSize + header.EthernetLen
	}
	return mtu + header.EthernetLen
}

// FrameFits reports whether an Ethernet endpoint with the given MTU (and
// segmentation offload if gso) may send p: it holds an Ethernet header
// and fits the MTU, or, with gso, is a super-frame up to MaxFrame that
// carries a segmentation request.
func FrameFits(p *buffer.Packet, gso bool, mtu int) bool {
	n := p.Len()
	if n < header.EthernetLen || n > MaxFrame(gso, mtu) {
		return false
	}
	return n <= mtu+header.EthernetLen || p.Meta.GSO.Type != buffer.GSONone
}
