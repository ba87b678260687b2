package ipv6

import (
	"net/netip"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
)

// HandlePacket implements stack.NetworkEndpoint: it validates a received
// IPv6 packet, reassembles fragments and delivers the upper-layer data.
func (e *Endpoint) HandlePacket(pkt *buffer.Packet) {
	e.stats().IPv6.InReceives.Add(1)
	e.receive(pkt)
}

// dropMalformed counts a packet whose IPv6 headers do not parse.
func (e *Endpoint) dropMalformed(pkt *buffer.Packet) {
	st := e.stats()
	st.IPv6.InHdrErrors.Add(1)
	st.Dropped.MalformedIPv6.Add(1)
	pkt.Release()
}

// receive processes a packet whose data starts at the IPv6 header: a packet
// from the link or a datagram the reassembler put back together.
func (e *Endpoint) receive(pkt *buffer.Packet) {
	st := &e.stats().IPv6
	f, err := header.ParseIPv6(pkt.Data())
	if err != nil {
		e.dropMalformed(pkt)
		return
	}
	// Link padding and anything past the payload length is not ours.
	pkt.Truncate(header.IPv6Len + int(f.PayloadLen))

	// Address checks of ipv6_rcv: a multicast source, loopback addresses
	// off the loopback device and multicast with reserved or
	// interface-local scope on a real link are header errors.
	if f.Src.IsMulticast() || (!e.loopback && (f.Src.IsLoopback() || f.Dst.IsLoopback())) {
		st.InHdrErrors.Add(1)
		pkt.Release()
		return
	}
	multicast := f.Dst.IsMulticast()
	if multicast {
		scope := f.Dst.As16()[1] & 0x0f
		if scope == 0 || (scope == 1 && !e.loopback) {
			st.InHdrErrors.Add(1)
			pkt.Release()
			return
		}
		if !e.isJoined(f.Dst) {
			st.InDiscards.Add(1)
			pkt.Release()
			return
		}
	} else if !e.isLocal(f.Dst) || e.isTentative(f.Dst) {
		// The stack is a host: packets for other hosts are not forwarded.
		st.InAddrErrors.Add(1)
		pkt.Release()
		return
	}

	payload := pkt.Data()[header.IPv6Len:]
	ext, err := header.WalkIPv6Extensions(f.NextHeader, payload)
	if err != nil {
		e.dropMalformed(pkt)
		return
	}
	if ext.HasFragment {
		frag := ext.Fragment
		if frag.Offset != 0 || frag.More {
			e.proto.reasm.add(e, pkt, f, ext)
			return
		}
		// An atomic fragment (offset 0, no more fragments) is processed
		// as an unfragmented packet (RFC 6946), as Linux does.
		if frag.NextHeader == header.ProtoHopByHop {
			e.dropMalformed(pkt)
			return
		}
		rest, err := header.WalkIPv6Extensions(frag.NextHeader, payload[ext.Offset:])
		if err != nil || rest.HasFragment {
			e.dropMalformed(pkt)
			return
		}
		ext.Proto, ext.Offset = rest.Proto, ext.Offset+rest.Offset
	}
	if ext.Offset > 0 && e.checkOptions(f, pkt.Data(), ext.Offset, pkt.Meta.LinkBroadcast) != optionsOK {
		// Discarded for an option, with a parameter problem sent when the
		// option's type asks for one.
		st.InHdrErrors.Add(1)
		pkt.Release()
		return
	}
	e.deliver(pkt, f, ext.Proto, header.IPv6Len+ext.Offset, multicast)
}

// isLocal reports whether dst is one of this host's unicast addresses as
// seen from this NIC: any address of the host (Linux's weak host model),
// except link-local ones, which belong to their own link. Everything looped
// back is local.
func (e *Endpoint) isLocal(dst netip.Addr) bool {
	if e.nic.HasAddress(dst) {
		return true
	}
	if dst.IsLinkLocalUnicast() && !e.loopback {
		return false
	}
	return e.proto.s.IsLocalAddress(dst)
}

// deliver hands the upper-layer data (at hdrLen in pkt) to its protocol.
func (e *Endpoint) deliver(pkt *buffer.Packet, f header.IPv6Fields, proto uint8, hdrLen int, multicast bool) {
	st := &e.stats().IPv6
	pkt.Meta.NetworkHeaderLen = hdrLen
	info := stack.IPInfo{
		Src: f.Src, Dst: f.Dst, NIC: e.nic.ID(),
		TTL: f.HopLimit, TOS: f.TrafficClass, Multicast: multicast,
	}
	switch proto {
	case header.ProtoICMPv6:
		st.InDelivers.Add(1)
		e.handleICMP(pkt, f, hdrLen, info)
		return
	case header.ProtoNoNext:
		st.InDelivers.Add(1)
		pkt.Release()
		return
	}
	tp := e.proto.s.TransportProtocol(proto)
	if tp == nil {
		st.InUnknownProtos.Add(1)
		ptr := nextHeaderFieldOffset(f.NextHeader, pkt.Data()[header.IPv6Len:], hdrLen-header.IPv6Len)
		e.sendError(pkt.Data(), f, pkt.Meta.LinkBroadcast, header.ICMPv6ParamProblem, header.ICMPv6CodeUnknownNextHeader, uint32(ptr))
		pkt.Release()
		return
	}
	st.InDelivers.Add(1)
	orig := pkt.Data()
	linkMulticast := pkt.Meta.LinkBroadcast
	pkt.TrimFront(hdrLen)
	if tp.HandlePacket(pkt, info) == stack.PortUnreachable {
		// With this verdict the transport left pkt to us (see the package
		// documentation): it still holds the whole datagram.
		e.sendError(orig, f, linkMulticast, header.ICMPv6DstUnreachable, header.ICMPv6CodePortUnreachable, 0)
		pkt.Release()
	}
}

// nextHeaderFieldOffset returns the offset, from the start of the IPv6
// header, of the next-header field that names the upper-layer protocol at
// upperOff in payload: the pointer of a parameter problem for an unknown
// next header. The extension headers were validated by the caller.
func nextHeaderFieldOffset(first uint8, payload []byte, upperOff int) int {
	field := 6 // the fixed header's next header
	nh, off := first, 0
	for off < upperOff && off+2 <= len(payload) {
		field = header.IPv6Len + off
		switch nh {
		case header.ProtoFragment:
			nh, off = payload[off], off+header.IPv6FragmentLen
		case header.ProtoHopByHop, header.ProtoRouting, header.ProtoDestOpts:
			nh, off = payload[off], off+(int(payload[off+1])+1)*8
		default:
			return field
		}
	}
	return field
}
