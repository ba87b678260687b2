package ipv4

import (
	"net/netip"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
)

var (
	limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	allHostsGroup    = netip.AddrFrom4([4]byte{224, 0, 0, 1})
)

// IPv4 option types the receive path looks at.
const (
	optEnd  = 0
	optNOP  = 1
	optLSRR = 131
	optSSRR = 137
)

// HandlePacket implements stack.NetworkEndpoint (ip_rcv + ip_local_deliver):
// validate, accept only packets for this host, reassemble, and deliver to
// the transport protocol or ICMP.
func (e *Endpoint) HandlePacket(pkt *buffer.Packet) {
	p := e.p
	p.stats.InReceives.Add(1)
	b := pkt.Data()
	h, err := header.ParseIPv4(b)
	if err != nil {
		p.stats.InHdrErrors.Add(1)
		p.s.Stats().Dropped.MalformedIPv4.Add(1)
		pkt.Release()
		return
	}
	hl := header.IPv4(b).HeaderLen()
	// Drop Ethernet padding and anything else beyond the datagram.
	pkt.Truncate(int(h.TotalLen))

	multicast, ok := e.acceptDestination(h.Src, h.Dst)
	if !ok {
		p.stats.InAddrErrors.Add(1)
		pkt.Release()
		return
	}
	if hl > header.IPv4MinLen {
		if bad, discard := checkOptions(h.Options); bad >= 0 {
			p.stats.InHdrErrors.Add(1)
			p.s.Stats().Dropped.MalformedIPv4.Add(1)
			if !multicast && !pkt.Meta.LinkBroadcast {
				// ip_options_compile answers with a parameter problem
				// pointing at the offending byte.
				p.sendError(pkt.Data(), header.ICMPv4ParamProblem, 0, uint32(header.IPv4MinLen+bad)<<24)
			}
			pkt.Release()
			return
		} else if discard {
			// Source routing is refused (accept_source_route=0).
			p.stats.InDiscards.Add(1)
			pkt.Release()
			return
		}
	}
	if h.Flags&header.IPv4FlagMF != 0 || h.FragmentOffset != 0 {
		pkt = p.reasm.add(pkt, h, hl, multicast)
		if pkt == nil {
			return
		}
		// The reassembled datagram has a fresh, valid header.
		b = pkt.Data()
		if h, err = header.ParseIPv4(b); err != nil {
			pkt.Release()
			return
		}
		hl = header.IPv4(b).HeaderLen()
	}
	e.deliver(pkt, h, hl, multicast)
}

// acceptDestination decides whether a packet is for this host (weak host
// model: any local address on any NIC) and whether it was sent to a
// broadcast or multicast address. Martian sources are refused.
func (e *Endpoint) acceptDestination(src, dst netip.Addr) (multicast, ok bool) {
	if src.IsMulticast() || src == limitedBroadcast {
		return false, false
	}
	if !e.nic.IsLoopback() && (src.IsLoopback() || dst.IsLoopback() || e.nic.HasAddress(src)) {
		// Loopback addresses off lo, and our own address as a source
		// from the wire (accept_local=0), are martians.
		return false, false
	}
	switch {
	case e.nic.HasAddress(dst):
		return false, true
	case dst == limitedBroadcast || e.nic.IsBroadcast(dst):
		return true, true
	case dst.IsMulticast():
		return true, e.joined(dst)
	}
	return false, e.p.s.IsLocalAddress(dst)
}

// checkOptions walks the options area (ip_options_compile, simplified): it
// returns the offset of the first malformed option byte (-1 if the options
// are well formed) and whether the packet must be discarded for carrying a
// source route.
func checkOptions(opts []byte) (bad int, discard bool) {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case optEnd:
			return -1, discard
		case optNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return i, false
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return i, false
		}
		if opts[i] == optLSRR || opts[i] == optSSRR {
			discard = true
		}
		i += l
	}
	return -1, discard
}

// icmpErrorRoom is how much of an offending datagram an ICMP error quotes:
// 576 less the ICMP error's own IP and ICMP headers, as in icmp_send.
const icmpErrorRoom = 576 - header.IPv4MinLen - header.ICMPv4MinLen

// deliver hands a complete datagram to its transport protocol
// (ip_local_deliver_finish).
func (e *Endpoint) deliver(pkt *buffer.Packet, h header.IPv4Fields, hl int, multicast bool) {
	p := e.p
	info := stack.IPInfo{
		Src: h.Src, Dst: h.Dst, NIC: e.nic.ID(), TTL: h.TTL, TOS: h.TOS, Multicast: multicast,
	}
	noErrors := multicast || pkt.Meta.LinkBroadcast
	if h.Protocol == header.ProtoICMP {
		p.stats.InDelivers.Add(1)
		e.handleICMP(pkt, hl, info)
		return
	}
	tp := p.s.TransportProtocol(h.Protocol)
	if tp == nil {
		p.stats.InUnknownProtos.Add(1)
		if !noErrors {
			p.sendError(pkt.Data(), header.ICMPv4DstUnreachable, header.ICMPv4CodeProtoUnreachable, 0)
		}
		pkt.Release()
		return
	}
	pkt.Meta.NetworkHeaderLen = hl
	pkt.TrimFront(hl)
	p.stats.InDelivers.Add(1)
	if tp.HandlePacket(pkt, info) == stack.PortUnreachable {
		// The transport left pkt to us; its IP header is still in the
		// headroom, so the error quotes the datagram without a copy.
		if !noErrors {
			pkt.Prepend(hl)
			p.sendError(pkt.Data(), header.ICMPv4DstUnreachable, header.ICMPv4CodePortUnreachable, 0)
		}
		pkt.Release()
	}
}
