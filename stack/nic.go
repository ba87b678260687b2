package stack

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
)

// NIC is a network interface of the stack: a link endpoint plus the
// addresses assigned to it and the per-NIC state of each network protocol.
type NIC struct {
	stack *Stack
	id    int
	name  string
	ep    link.Endpoint
	caps  link.Capabilities
	mac   header.MAC

	// netEPs is fixed when the NIC is created: read without locks per packet.
	netEPs []netEntry

	mu    sync.Mutex // serialises address changes
	addrs atomic.Pointer[[]netip.Prefix]

	Stats NICStats
}

type netEntry struct {
	etherType uint16
	ep        NetworkEndpoint
}

// NICStats are the per-interface counters of frames the NIC itself handled.
type NICStats struct {
	// MalformedFrames counts frames too short for their link header.
	MalformedFrames atomic.Uint64
	// UnknownEtherType counts frames of a protocol nobody registered.
	UnknownEtherType atomic.Uint64
	// NotForUs counts unicast frames addressed to another MAC.
	NotForUs atomic.Uint64
	// TxErrors counts frames the link endpoint refused.
	TxErrors atomic.Uint64
}

var writeBatchPool = sync.Pool{New: func() any { return new([1]*buffer.Packet) }}

func newNIC(s *Stack, id int, name string, ep link.Endpoint) *NIC {
	n := &NIC{stack: s, id: id, name: name, ep: ep, caps: ep.Capabilities(), mac: ep.LinkAddress()}
	empty := []netip.Prefix{}
	n.addrs.Store(&empty)
	for _, p := range s.netProtos {
		n.netEPs = append(n.netEPs, netEntry{etherType: p.EtherType(), ep: p.NewEndpoint(n)})
	}
	return n
}

// ID is the interface index.
func (n *NIC) ID() int { return n.id }

// Name is the interface name.
func (n *NIC) Name() string { return n.name }

// Stack returns the stack the NIC belongs to.
func (n *NIC) Stack() *Stack { return n.stack }

// MTU is the link MTU (largest IP packet).
func (n *NIC) MTU() int { return n.ep.MTU() }

// LinkAddress is the NIC's MAC.
func (n *NIC) LinkAddress() header.MAC { return n.mac }

// Capabilities are the link endpoint's capabilities.
func (n *NIC) Capabilities() link.Capabilities { return n.caps }

// IsLoopback reports whether the NIC is a loopback device.
func (n *NIC) IsLoopback() bool { return n.caps&link.CapLoopback != 0 }

// LinkEndpoint returns the underlying link endpoint.
func (n *NIC) LinkEndpoint() link.Endpoint { return n.ep }

// NetworkEndpoint returns the NIC's endpoint of the protocol with the given
// EtherType, or nil.
func (n *NIC) NetworkEndpoint(etherType uint16) NetworkEndpoint {
	for _, e := range n.netEPs {
		if e.etherType == etherType {
			return e.ep
		}
	}
	return nil
}

// DeliverLinkPacket implements link.Dispatcher: it strips the link header
// and hands the packet to the network protocol.
func (n *NIC) DeliverLinkPacket(pkt *buffer.Packet) {
	pkt.Meta.NIC = n.id
	if n.caps&link.CapEthernet != 0 {
		b := pkt.Data()
		if len(b) < header.EthernetLen {
			n.Stats.MalformedFrames.Add(1)
			pkt.Release()
			return
		}
		eth := header.Ethernet(b)
		dst := eth.Dst()
		if dst.IsMulticast() {
			pkt.Meta.LinkBroadcast = true
		} else if dst != n.mac {
			n.Stats.NotForUs.Add(1)
			pkt.Release()
			return
		}
		pkt.Meta.EtherType = eth.EtherType()
		pkt.TrimFront(header.EthernetLen)
	} else {
		b := pkt.Data()
		if len(b) == 0 {
			n.Stats.MalformedFrames.Add(1)
			pkt.Release()
			return
		}
		switch b[0] >> 4 {
		case 4:
			pkt.Meta.EtherType = header.EtherTypeIPv4
		case 6:
			pkt.Meta.EtherType = header.EtherTypeIPv6
		}
		if n.caps&link.CapRXChecksumOffload != 0 {
			pkt.Meta.ChecksumVerified = true
		}
	}
	for _, e := range n.netEPs {
		if e.etherType == pkt.Meta.EtherType {
			e.ep.HandlePacket(pkt)
			return
		}
	}
	n.Stats.UnknownEtherType.Add(1)
	pkt.Release()
}

// WriteFrame adds the link header (for Ethernet links) and sends pkt to
// dst. It owns pkt.
func (n *NIC) WriteFrame(dst header.MAC, etherType uint16, pkt *buffer.Packet) error {
	if n.caps&link.CapEthernet != 0 {
		header.EthernetFields{Dst: dst, Src: n.mac, EtherType: etherType}.Emit(pkt.Prepend(header.EthernetLen))
	}
	batch := writeBatchPool.Get().(*[1]*buffer.Packet)
	batch[0] = pkt
	_, err := n.ep.WritePackets(batch[:])
	batch[0] = nil
	writeBatchPool.Put(batch)
	if err != nil {
		n.Stats.TxErrors.Add(1)
		return fmt.Errorf("write frame on %s: %w", n.name, err)
	}
	return nil
}

func (n *NIC) close() error {
	for _, e := range n.netEPs {
		e.ep.Close()
	}
	n.ep.Attach(nil)
	return n.ep.Close()
}
