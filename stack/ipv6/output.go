package ipv6

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
)

// maxPayload is the largest IPv6 payload without a jumbo option.
const maxPayload = 0xffff

// WritePacket implements stack.PacketWriter: it adds the IPv6 header to a
// transport packet, fragments it when it exceeds the path MTU and sends it
// to the route's next hop.
func (e *Endpoint) WritePacket(r *stack.Route, pkt *buffer.Packet, p stack.NetworkParams) error {
	hop := p.TTL
	if hop == 0 {
		hop = e.proto.cfg.HopLimit
		if r.RemoteAddr.IsMulticast() {
			hop = e.proto.cfg.MulticastHopLimit
		}
	}
	f := header.IPv6Fields{
		TrafficClass: p.TOS,
		NextHeader:   p.Protocol,
		HopLimit:     hop,
		Src:          r.LocalAddr,
		Dst:          r.RemoteAddr,
	}
	return e.writeIPv6(r.NextHop, r.MTU, f, pkt, p.DontFragment)
}

// writeIPv6 sends pkt (the upper-layer data) with the header fields f,
// fragmenting to mtu (lowered to the path MTU) unless dontFrag is set, in
// which case an oversized packet fails with EMSGSIZE as with IPV6_DONTFRAG.
// GSO super-segments are never fragmented: the link segments them.
func (e *Endpoint) writeIPv6(nextHop netip.Addr, mtu int, f header.IPv6Fields, pkt *buffer.Packet, dontFrag bool) error {
	st := &e.stats().IPv6
	st.OutRequests.Add(1)
	if pm := e.proto.PathMTU(f.Dst); pm > 0 && pm < mtu {
		mtu = pm
	}
	n := pkt.Len()
	if header.IPv6Len+n > mtu && pkt.Meta.GSO.Type == buffer.GSONone {
		if dontFrag {
			pkt.Release()
			st.FragFails.Add(1)
			return unix.EMSGSIZE
		}
		return e.fragment(nextHop, mtu, f, pkt)
	}
	if n > maxPayload {
		pkt.Release()
		st.OutDiscards.Add(1)
		return unix.EMSGSIZE
	}
	f.PayloadLen = uint16(n)
	f.Emit(pkt.Prepend(header.IPv6Len))
	return e.sendFrame(nextHop, f.Dst, pkt)
}

// fragment splits pkt into fragments that fit mtu, each carrying a copy of
// the header and a fragment header (RFC 8200 §4.5), like ip6_fragment: every
// fragment but the last carries a multiple of 8 bytes, as many as fit.
func (e *Endpoint) fragment(nextHop netip.Addr, mtu int, f header.IPv6Fields, pkt *buffer.Packet) error {
	st := &e.stats().IPv6
	defer pkt.Release()
	data := pkt.Data()
	perFrag := (mtu - header.IPv6Len - header.IPv6FragmentLen) &^ 7
	if perFrag < 8 || len(data) > maxPayload-header.IPv6FragmentLen {
		st.FragFails.Add(1)
		return unix.EMSGSIZE
	}
	id := e.proto.nextFragID()
	for off := 0; off < len(data); {
		n := min(perFrag, len(data)-off)
		fp := buffer.New(buffer.Headroom, n)
		copy(fp.Append(n), data[off:off+n])
		header.IPv6Fragment{NextHeader: f.NextHeader, Offset: uint16(off), More: off+n < len(data), ID: id}.
			Emit(fp.Prepend(header.IPv6FragmentLen))
		ff := f
		ff.NextHeader = header.ProtoFragment
		ff.PayloadLen = uint16(header.IPv6FragmentLen + n)
		ff.Emit(fp.Prepend(header.IPv6Len))
		if err := e.sendFrame(nextHop, f.Dst, fp); err != nil {
			st.FragFails.Add(1)
			return err
		}
		st.FragCreates.Add(1)
		off += n
	}
	st.FragOKs.Add(1)
	return nil
}

// sendFrame hands a complete IPv6 packet to the link: directly on links
// without link addresses (loopback, TUN), to the group's 33:33:xx MAC for
// multicast, else through the neighbour table, which resolves nextHop.
func (e *Endpoint) sendFrame(nextHop, dst netip.Addr, pkt *buffer.Packet) error {
	pkt.Meta.NIC = e.nic.ID()
	if !e.ethernet {
		return e.nic.WriteFrame(header.MAC{}, header.EtherTypeIPv6, pkt)
	}
	if dst.IsMulticast() {
		return e.nic.WriteFrame(header.IPv6MulticastMAC(dst), header.EtherTypeIPv6, pkt)
	}
	return e.neigh.Output(nextHop, pkt)
}
