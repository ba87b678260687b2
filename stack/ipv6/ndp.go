package ipv6

import (
	"net/netip"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/neighbor"
)

// Neighbour discovery (RFC 4861) for a host, after Linux's ndisc.c:
// neighbour solicitations and advertisements drive the NIC's neighbour
// table; router solicitations, advertisements and redirects are checked and
// counted but ignored, because routes are static.

// ndpHopLimit is the hop limit every NDP message is sent with and must
// arrive with (RFC 4861 §7.1): proof that it was not forwarded.
const ndpHopLimit = 255

// Minimum body lengths (after type, code, checksum) of router messages.
const (
	routerSolicitBodyLen = 4
	routerAdvertBodyLen  = 12
	redirectBodyLen      = 36
)

var _ neighbor.Prober = (*Endpoint)(nil)

// newNeighborTable creates the NIC's neighbour table.
func (e *Endpoint) newNeighborTable() *neighbor.Table {
	cfg := e.proto.cfg.Neighbor
	cfg.Stats = &e.stats().NDP
	t := neighbor.NewTable(cfg, e.proto.s.Clock(), e, e.sendResolved)
	t.SetUnreachableHandler(e.resolutionFailed)
	return t
}

// Table returns the NIC's IPv6 neighbour table (nil on links without
// link-layer addresses).
func (e *Endpoint) Table() *neighbor.Table { return e.neigh }

// sendResolved is the table's output function: an IPv6 packet to a
// resolved neighbour.
func (e *Endpoint) sendResolved(mac header.MAC, pkt *buffer.Packet) {
	// A link error is counted by the NIC (TxErrors); nobody is left to
	// tell for a packet that waited for resolution.
	_ = e.nic.WriteFrame(mac, header.EtherTypeIPv6, pkt)
}

// resolutionFailed receives the packets that waited for a neighbour that
// never answered. Linux (ndisc_error_report) answers each with an address
// unreachable to itself, which the sending transport sees as EHOSTUNREACH.
func (e *Endpoint) resolutionFailed(pkt *buffer.Packet) {
	defer pkt.Release()
	b := pkt.Data()
	if len(b) < header.IPv6Len {
		return
	}
	f, err := header.ParseIPv6(b)
	if err != nil || isICMPv6Error(b) {
		return
	}
	m := header.ICMPv6Fields{Type: header.ICMPv6DstUnreachable, Code: header.ICMPv6CodeAddressUnreachable}
	e.notifyTransport(b, m, f)
}

// Probe implements neighbor.Prober: it sends a neighbour solicitation for
// target, to its solicited-node group or, for a unicast probe, to target
// at the cached link address (ndisc_solicit). The source is the NIC's
// address on target's subnet, or its link-local address.
func (e *Endpoint) Probe(target netip.Addr, unicast *header.MAC) {
	src := e.solicitSource(target)
	if !src.IsValid() {
		// Without an address on the link nothing can be asked.
		return
	}
	ns := header.NDPNeighborSolicit{Target: target, SourceLL: e.nic.LinkAddress(), HasSourceLL: true}
	dst, mac := header.SolicitedNodeMulticast(target), header.MAC{}
	if unicast != nil {
		dst, mac = target, *unicast
	} else {
		mac = header.IPv6MulticastMAC(dst)
	}
	pkt := e.buildNDP(src, dst, header.ICMPv6NeighborSolicit, ns.Len(), ns.Emit)
	e.stats().ICMPv6.OutMsgs.Add(1)
	e.stats().NDP.RequestsSent.Add(1)
	if err := e.nic.WriteFrame(mac, header.EtherTypeIPv6, pkt); err != nil {
		e.stats().ICMPv6.OutErrors.Add(1)
	}
}

// solicitSource chooses the source of a solicitation for target.
func (e *Endpoint) solicitSource(target netip.Addr) netip.Addr {
	if !target.IsLinkLocalUnicast() {
		for _, p := range e.nic.Addresses() {
			if p.Addr().Is6() && p.Contains(target) && !e.isTentative(p.Addr()) {
				return p.Addr()
			}
		}
	}
	if ll, ok := e.linkLocalAddress(); ok {
		return ll
	}
	if a, ok := e.nic.PrimaryAddress(target); ok && !e.isTentative(a) {
		return a
	}
	return netip.Addr{}
}

// buildNDP returns an IPv6 packet carrying an NDP message of type typ
// whose body (after type, code and checksum) of bodyLen bytes emit writes.
func (e *Endpoint) buildNDP(src, dst netip.Addr, typ uint8, bodyLen int, emit func([]byte)) *buffer.Packet {
	n := 4 + bodyLen
	pkt := buffer.New(buffer.Headroom, n)
	msg := pkt.Append(n)
	emit(msg[4:])
	msg[2], msg[3] = 0, 0
	header.EmitICMPv6Header(msg, typ, 0, src, dst)
	header.IPv6Fields{
		NextHeader: header.ProtoICMPv6, HopLimit: ndpHopLimit,
		PayloadLen: uint16(n), Src: src, Dst: dst,
	}.Emit(pkt.Prepend(header.IPv6Len))
	pkt.Meta.NIC = e.nic.ID()
	return pkt
}

// ndpValid applies the checks every NDP message gets (ndisc_rcv): it must
// not have crossed a router, code 0, and the NIC must do neighbour
// discovery at all.
func (e *Endpoint) ndpValid(f header.IPv6Fields, m header.ICMPv6Fields) bool {
	if f.HopLimit != ndpHopLimit || m.Code != 0 {
		e.stats().NDP.Malformed.Add(1)
		return false
	}
	return e.neigh != nil
}

// handleNeighborSolicit answers a solicitation for one of the NIC's
// addresses (ndisc_recv_ns) and records the solicitor's link address.
func (e *Endpoint) handleNeighborSolicit(f header.IPv6Fields, msg []byte, m header.ICMPv6Fields) {
	if !e.ndpValid(f, m) {
		return
	}
	st := &e.stats().NDP
	ns, err := header.ParseNDPNeighborSolicit(msg[4:])
	if err != nil || ns.Target.IsMulticast() {
		st.Malformed.Add(1)
		e.stats().ICMPv6.InErrors.Add(1)
		return
	}
	dad := f.Src.IsUnspecified()
	// A DAD probe goes to the solicited-node group and has no source
	// link-layer address option (RFC 4861 §7.1.1).
	if dad && (!isSolicitedNodeMulticast(f.Dst) || ns.HasSourceLL) {
		st.Malformed.Add(1)
		return
	}
	st.RequestsReceived.Add(1)
	if e.isTentative(ns.Target) {
		// Another node probing the address we are probing is a
		// conflict; other solicitations for it are not answered yet.
		if dad {
			e.dadConflict(ns.Target, f.Src)
		}
		return
	}
	if !e.nic.HasAddress(ns.Target) {
		// Not ours: no proxy NDP, no anycast.
		return
	}
	if dad {
		// Someone else wants our address: defend it with an unsolicited
		// advertisement to all nodes.
		e.proto.Stats.DADConflicts.Add(1)
		e.sendNeighborAdvert(ns.Target, allNodesLinkLocal, false)
		return
	}
	if ns.HasSourceLL {
		e.neigh.HandleProbe(f.Src, ns.SourceLL)
	}
	e.sendNeighborAdvert(ns.Target, f.Src, true)
}

// sendNeighborAdvert advertises our target address to dst, with the
// override flag and our link-layer address (ndisc_send_na).
func (e *Endpoint) sendNeighborAdvert(target, dst netip.Addr, solicited bool) {
	na := header.NDPNeighborAdvert{
		Solicited: solicited, Override: true,
		Target: target, TargetLL: e.nic.LinkAddress(), HasTargetLL: true,
	}
	pkt := e.buildNDP(target, dst, header.ICMPv6NeighborAdvert, na.Len(), na.Emit)
	e.stats().ICMPv6.OutMsgs.Add(1)
	e.stats().NDP.RepliesSent.Add(1)
	if err := e.sendFrame(dst, dst, pkt); err != nil {
		e.stats().ICMPv6.OutErrors.Add(1)
	}
}

// handleNeighborAdvert applies an advertisement to the neighbour table
// (ndisc_recv_na, RFC 4861 §7.2.5).
func (e *Endpoint) handleNeighborAdvert(f header.IPv6Fields, msg []byte, m header.ICMPv6Fields) {
	if !e.ndpValid(f, m) {
		return
	}
	st := &e.stats().NDP
	na, err := header.ParseNDPNeighborAdvert(msg[4:])
	if err != nil || na.Target.IsMulticast() || (f.Dst.IsMulticast() && na.Solicited) {
		st.Malformed.Add(1)
		e.stats().ICMPv6.InErrors.Add(1)
		return
	}
	st.RepliesReceived.Add(1)
	if e.dadConflict(na.Target, f.Src) {
		return
	}
	if e.nic.HasAddress(na.Target) {
		// Another host claims one of our addresses. Linux logs it and
		// keeps the address; so does the stack.
		e.proto.Stats.DADConflicts.Add(1)
		e.proto.s.Logger().Warn("ipv6: neighbour advertised our address",
			"nic", e.nic.Name(), "addr", na.Target, "mac", na.TargetLL)
		return
	}
	mac := na.TargetLL
	if !na.HasTargetLL {
		// Without the option the advertisement can only confirm the
		// address already cached; an incomplete entry ignores it.
		cur, ok := e.neigh.Lookup(na.Target)
		if !ok || !cur.State.Valid() {
			return
		}
		mac = cur.MAC
	}
	e.neigh.HandleConfirmation(na.Target, mac, na.Solicited, na.Override)
}

// handleRouterMessage checks and counts router solicitations,
// advertisements and redirects. A host without router discovery ignores
// them: routes are static.
func (e *Endpoint) handleRouterMessage(f header.IPv6Fields, msg []byte, m header.ICMPv6Fields) {
	if f.HopLimit != ndpHopLimit || m.Code != 0 {
		e.stats().NDP.Malformed.Add(1)
		return
	}
	need := routerSolicitBodyLen
	switch m.Type {
	case header.ICMPv6RouterAdvert:
		need = routerAdvertBodyLen
		// RFC 4861 §6.1.2: the source must be link-local.
		if !f.Src.IsLinkLocalUnicast() {
			e.stats().NDP.Malformed.Add(1)
			return
		}
	case icmpv6Redirect:
		need = redirectBodyLen
	}
	if len(msg)-4 < need || !ndpOptionsValid(msg[4+need:]) {
		e.stats().NDP.Malformed.Add(1)
		e.stats().ICMPv6.InErrors.Add(1)
		return
	}
	e.proto.Stats.RouterMessagesIgnored.Add(1)
}

// ndpOptionsValid checks the option framing of an NDP message: every
// option has a non-zero length that stays inside the message.
//
// TODO(header): belongs with the NDP parsers in stack/header.
func ndpOptionsValid(opts []byte) bool {
	for len(opts) > 0 {
		if len(opts) < 2 {
			return false
		}
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			return false
		}
		opts = opts[n:]
	}
	return true
}

// isSolicitedNodeMulticast reports whether a is in ff02::1:ff00:0/104.
func isSolicitedNodeMulticast(a netip.Addr) bool {
	return header.SolicitedNodeMulticast(a) == a
}
