package ipv4

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/arp"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/neighbor"
)

// Endpoint is IPv4 on one NIC. It implements stack.NetworkEndpoint and
// stack.PacketWriter.
type Endpoint struct {
	p   *Protocol
	nic *stack.NIC

	// table is the NIC's ARP neighbour table, found on first use (the NIC's
	// ARP endpoint may be created after this one).
	table     atomic.Pointer[neighbor.Table]
	tableOnce sync.Once

	// groups are the joined multicast groups with their join counts,
	// replaced as a whole on change and read without locks per packet.
	groupsMu sync.Mutex
	groups   atomic.Pointer[map[netip.Addr]int]
}

var (
	_ stack.NetworkEndpoint = (*Endpoint)(nil)
	_ stack.PacketWriter    = (*Endpoint)(nil)
)

// Close implements stack.NetworkEndpoint. The neighbour table belongs to
// the ARP endpoint, which closes it.
func (e *Endpoint) Close() {}

// neighbors returns the NIC's ARP table, or nil if ARP is not registered.
func (e *Endpoint) neighbors() *neighbor.Table {
	if t := e.table.Load(); t != nil {
		return t
	}
	e.tableOnce.Do(func() {
		a, ok := e.nic.NetworkEndpoint(header.EtherTypeARP).(*arp.Endpoint)
		if !ok || a.Table() == nil {
			return
		}
		t := a.Table()
		t.SetUnreachableHandler(e.linkFailure)
		e.table.Store(t)
	})
	return e.table.Load()
}

// Neighbors returns the NIC's IPv4 neighbour table (`ip -4 neigh`), or nil
// when the link has no Ethernet addressing or ARP is not registered.
func (e *Endpoint) Neighbors() *neighbor.Table { return e.neighbors() }

// ConfirmNeighbor records that the next hop of r answered (TCP forward
// progress, Linux's dst_confirm_neigh), keeping its neighbour entry
// REACHABLE without ARP probes.
func (p *Protocol) ConfirmNeighbor(r *stack.Route) {
	e, ok := r.NIC.NetworkEndpoint(header.EtherTypeIPv4).(*Endpoint)
	if !ok || r.IsLocal() {
		return
	}
	if t := e.neighbors(); t != nil {
		t.Confirm(r.NextHop)
	}
}

// WritePacket implements stack.PacketWriter (ip_queue_xmit / ip_output):
// it prepends the IPv4 header, fragments when the packet exceeds the path
// MTU and DF is not set, and hands the result to the link, resolving the
// next hop through ARP. It owns pkt.
func (e *Endpoint) WritePacket(r *stack.Route, pkt *buffer.Packet, params stack.NetworkParams) error {
	p := e.p
	p.stats.OutRequests.Add(1)
	ttl := params.TTL
	if ttl == 0 {
		ttl = p.cfg.DefaultTTL
	}
	f := header.IPv4Fields{
		TOS:      params.TOS,
		TTL:      ttl,
		Protocol: params.Protocol,
		Src:      r.LocalAddr,
		Dst:      r.RemoteAddr,
	}
	if params.DontFragment {
		f.Flags = header.IPv4FlagDF
	}
	f.ID = p.selectID(r, pkt, params)
	total := pkt.Len() + header.IPv4MinLen
	if pkt.Meta.GSO.Type == buffer.GSONone {
		mtu := r.MTU
		if !r.IsLocal() {
			if pm := p.pmtu.getFast(r.RemoteAddr, p.s.Clock()); pm > 0 && pm < mtu {
				mtu = pm
			}
		}
		if total > mtu {
			if params.DontFragment || total > 0xffff {
				p.stats.FragFails.Add(1)
				pkt.Release()
				return unix.EMSGSIZE
			}
			return e.fragment(r, pkt, f, mtu)
		}
	} else if total > 0xffff {
		pkt.Release()
		p.stats.OutDiscards.Add(1)
		return unix.EMSGSIZE
	}
	f.TotalLen = uint16(total)
	f.Emit(pkt.Prepend(header.IPv4MinLen))
	return e.output(r, pkt)
}

// fragment is ip_do_fragment's slow path: the payload is cut into pieces
// of the largest multiple of 8 bytes that fits the MTU, each sent with a
// copy of the header, the same ID and MF on all but the last.
func (e *Endpoint) fragment(r *stack.Route, pkt *buffer.Packet, f header.IPv4Fields, mtu int) error {
	p := e.p
	defer pkt.Release()
	payload := pkt.Data()
	chunk := (mtu - header.IPv4MinLen) &^ 7
	if chunk <= 0 {
		p.stats.FragFails.Add(1)
		return unix.EMSGSIZE
	}
	var firstErr error
	for off := 0; off < len(payload); off += chunk {
		end := min(off+chunk, len(payload))
		frag := buffer.New(buffer.Headroom, end-off)
		copy(frag.Append(end-off), payload[off:end])
		ff := f
		ff.TotalLen = uint16(header.IPv4MinLen + end - off)
		ff.FragmentOffset = uint16(off)
		if end < len(payload) {
			ff.Flags |= header.IPv4FlagMF
		}
		ff.Emit(frag.Prepend(header.IPv4MinLen))
		p.stats.FragCreates.Add(1)
		if err := e.output(r, frag); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		p.stats.FragFails.Add(1)
		return firstErr
	}
	p.stats.FragOKs.Add(1)
	return nil
}

// output sends a complete IPv4 packet (ip_finish_output2): loopback and
// other links without Ethernet addressing take it as is; broadcast and
// multicast destinations map to their link addresses; unicast goes
// through the neighbour table.
func (e *Endpoint) output(r *stack.Route, pkt *buffer.Packet) error {
	switch {
	case e.nic.Capabilities()&link.CapEthernet == 0:
		return e.nic.WriteFrame(header.MAC{}, header.EtherTypeIPv4, pkt)
	case r.Flags&stack.RouteBroadcast != 0:
		return e.nic.WriteFrame(header.BroadcastMAC, header.EtherTypeIPv4, pkt)
	case r.Flags&stack.RouteMulticast != 0:
		return e.nic.WriteFrame(multicastMAC(r.RemoteAddr), header.EtherTypeIPv4, pkt)
	}
	t := e.neighbors()
	if t == nil {
		pkt.Release()
		e.p.stats.OutDiscards.Add(1)
		return unix.EHOSTUNREACH
	}
	return t.Output(r.NextHop, pkt)
}

// multicastMAC maps an IPv4 group to its Ethernet address (RFC 1112:
// 01:00:5e and the low 23 bits of the group).
func multicastMAC(a netip.Addr) header.MAC {
	b := a.As4()
	return header.MAC{0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]}
}

// linkFailure receives the packets that were waiting for a neighbour that
// did not answer. Like Linux's arp_error_report → ipv4_link_failure, which
// sends an ICMP host unreachable to the local sender, it reports
// ICMPHostUnreachable (EHOSTUNREACH) to the packet's transport protocol.
func (e *Endpoint) linkFailure(pkt *buffer.Packet) {
	defer pkt.Release()
	b := pkt.Data()
	h, err := header.ParseIPv4(b)
	if err != nil || h.FragmentOffset != 0 {
		return
	}
	hl := header.IPv4(b).HeaderLen()
	e.p.icmp.OutMsgs.Add(1)
	e.p.icmp.OutDestUnreachs.Add(1)
	e.p.icmp.InMsgs.Add(1)
	e.p.icmp.InDestUnreachs.Add(1)
	e.p.deliverError(stack.ICMPError{
		Kind: stack.ICMPHostUnreachable,
		Type: header.ICMPv4DstUnreachable,
		Code: header.ICMPv4CodeHostUnreachable,
	}, b[:h.TotalLen], hl, e.nic.ID())
}
