package ipv6

import (
	"errors"
	"net/netip"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
)

// ICMPv6 (RFC 4443): echo, errors sent and received, and the dispatch to
// neighbour discovery.

// Multicast listener discovery types, ignored by the stack.
const (
	icmpv6MLDQuery    = 130
	icmpv6MLDReport   = 131
	icmpv6MLDDone     = 132
	icmpv6MLDv2Report = 143
	icmpv6Redirect    = 137
)

// maxErrorQuote is how much of the offending packet an ICMPv6 error
// carries: as much as fits in the minimum MTU (RFC 4443 §2.4(c)).
const maxErrorQuote = MinMTU - header.IPv6Len - header.ICMPv6MinLen

// handleICMP processes a received ICMPv6 message at hdrLen in pkt.
func (e *Endpoint) handleICMP(pkt *buffer.Packet, f header.IPv6Fields, hdrLen int, info stack.IPInfo) {
	st := &e.stats().ICMPv6
	st.InMsgs.Add(1)
	msg := pkt.Data()[hdrLen:]
	m, err := header.ParseICMPv6(msg, f.Src, f.Dst)
	if errors.Is(err, header.ErrBadChecksum) && pkt.Meta.ChecksumVerified {
		// Loopback does not checksum (CHECKSUM_UNNECESSARY on lo): a
		// local sender may have left the checksum to offload.
		m, err = icmpFieldsUnchecked(msg), nil
	}
	if err != nil {
		if errors.Is(err, header.ErrBadChecksum) {
			st.InCsumErrors.Add(1)
		}
		st.InErrors.Add(1)
		e.stats().Dropped.MalformedICMP.Add(1)
		pkt.Release()
		return
	}
	switch m.Type {
	case header.ICMPv6EchoRequest:
		st.InEchos.Add(1)
		e.handleEchoRequest(f, msg, info)
		pkt.Release()
	case header.ICMPv6EchoReply:
		st.InEchoReps.Add(1)
		e.deliverEchoReply(pkt, hdrLen, info)
	case header.ICMPv6DstUnreachable, header.ICMPv6PacketTooBig, header.ICMPv6TimeExceeded, header.ICMPv6ParamProblem:
		switch m.Type {
		case header.ICMPv6DstUnreachable:
			st.InDestUnreachs.Add(1)
		case header.ICMPv6TimeExceeded:
			st.InTimeExcds.Add(1)
		}
		e.handleICMPError(msg, m, f)
		pkt.Release()
	case header.ICMPv6NeighborSolicit:
		e.handleNeighborSolicit(f, msg, m)
		pkt.Release()
	case header.ICMPv6NeighborAdvert:
		e.handleNeighborAdvert(f, msg, m)
		pkt.Release()
	case header.ICMPv6RouterSolicit, header.ICMPv6RouterAdvert, icmpv6Redirect:
		e.handleRouterMessage(f, msg, m)
		pkt.Release()
	case icmpv6MLDQuery, icmpv6MLDReport, icmpv6MLDDone, icmpv6MLDv2Report:
		e.proto.Stats.MLDIgnored.Add(1)
		pkt.Release()
	default:
		// Unknown informational messages are discarded (RFC 4443
		// §2.4(b)); unknown errors carry nothing a transport knows.
		pkt.Release()
	}
}

// icmpFieldsUnchecked reads the header of msg, which ParseICMPv6 found
// long enough, without verifying its checksum.
func icmpFieldsUnchecked(msg []byte) header.ICMPv6Fields {
	h := header.ICMPv6(msg)
	m := header.ICMPv6Fields{Type: h.Type(), Code: h.Code(), Ident: h.Ident(), Seq: h.Seq()}
	switch m.Type {
	case header.ICMPv6PacketTooBig:
		m.MTU = h.MTU()
	case header.ICMPv6ParamProblem:
		m.Pointer = h.Pointer()
	}
	return m
}

// handleEchoRequest answers an echo request, also one sent to a multicast
// group (Linux's echo_ignore_multicast is 0). The reply comes from the
// address the request went to, or the route's source for a group, and
// carries the request's traffic class, as icmpv6_echo_reply does.
func (e *Endpoint) handleEchoRequest(f header.IPv6Fields, msg []byte, info stack.IPInfo) {
	cfg := &e.proto.cfg
	if cfg.EchoIgnoreAll || (info.Multicast && cfg.EchoIgnoreMulticast) {
		return
	}
	local := f.Dst
	if local.IsMulticast() {
		local = netip.Addr{}
	}
	out, ok := e.icmpRoute(local, f.Src)
	if !ok {
		e.stats().ICMPv6.OutErrors.Add(1)
		return
	}
	pkt := buffer.New(buffer.Headroom, len(msg))
	b := pkt.Append(len(msg))
	copy(b[4:], msg[4:])
	b[2], b[3] = 0, 0
	header.EmitICMPv6Header(b, header.ICMPv6EchoReply, 0, out.local, out.remote)
	if e.sendICMP(out, pkt, f.TrafficClass, 0) {
		e.stats().ICMPv6.OutEchoReps.Add(1)
	}
}

// deliverEchoReply passes an echo reply to the ICMP echo sockets, if a
// transport registered protocol number 58.
func (e *Endpoint) deliverEchoReply(pkt *buffer.Packet, hdrLen int, info stack.IPInfo) {
	tp := e.proto.s.TransportProtocol(header.ProtoICMPv6)
	if tp == nil {
		pkt.Release()
		return
	}
	pkt.TrimFront(hdrLen)
	if tp.HandlePacket(pkt, info) == stack.PortUnreachable {
		pkt.Release()
	}
}

// handleICMPError passes a received error to the transport of the packet
// it quotes, as icmpv6_notify does.
func (e *Endpoint) handleICMPError(msg []byte, m header.ICMPv6Fields, f header.IPv6Fields) {
	e.notifyTransport(msg[header.ICMPv6MinLen:], m, f)
}

// notifyTransport hands the error m about the quoted datagram inner to the
// transport that sent it, and lowers the path MTU on a packet too big. f
// describes the packet that carried the error.
func (e *Endpoint) notifyTransport(inner []byte, m header.ICMPv6Fields, f header.IPv6Fields) {
	st := &e.stats().ICMPv6
	if len(inner) < header.IPv6Len || inner[0]>>4 != 6 {
		st.InErrors.Add(1)
		e.stats().Dropped.MalformedICMP.Add(1)
		return
	}
	// The quote is usually truncated, so the quoted header's payload
	// length is not checked against it.
	ih := header.IPv6(inner)
	ext, err := header.WalkIPv6Extensions(ih.NextHeader(), inner[header.IPv6Len:])
	if err != nil || (ext.HasFragment && ext.Fragment.Offset != 0) {
		// Nothing identifies the transport of a non-first fragment.
		st.InErrors.Add(1)
		return
	}
	off := header.IPv6Len + ext.Offset
	if len(inner) < off+8 {
		st.InErrors.Add(1)
		e.stats().Dropped.MalformedICMP.Add(1)
		return
	}
	if m.Type == header.ICMPv6PacketTooBig {
		e.proto.pmtu.update(ih.Dst(), int(m.MTU), e.nic.MTU(), e.proto.s.Clock().Now(), e.proto.cfg.PMTUExpires)
	}
	tp := e.proto.s.TransportProtocol(ext.Proto)
	if tp == nil {
		return
	}
	ie := stack.ICMPError{Kind: errorKind(m.Type, m.Code), MTU: m.MTU, Type: m.Type, Code: m.Code}
	ip := stack.IPInfo{
		Src: ih.Src(), Dst: ih.Dst(), NIC: e.nic.ID(),
		TTL: f.HopLimit, TOS: f.TrafficClass, Multicast: ih.Dst().IsMulticast(),
	}
	tp.HandleError(ie, ip, inner[off:])
}

// errorKind maps an ICMPv6 error to its kind as icmpv6_err_convert does.
func errorKind(typ, code uint8) stack.ICMPErrorKind {
	switch typ {
	case header.ICMPv6DstUnreachable:
		switch code {
		case header.ICMPv6CodeNoRoute:
			return stack.ICMPNetUnreachable
		case header.ICMPv6CodeAdminProhibited, 5, 6: // + policy fail, reject route: EACCES
			return stack.ICMPAdminProhibited
		case header.ICMPv6CodeBeyondScope, header.ICMPv6CodeAddressUnreachable:
			return stack.ICMPHostUnreachable
		case header.ICMPv6CodePortUnreachable:
			return stack.ICMPPortUnreachable
		}
		return stack.ICMPParamProblem // unknown code: EPROTO
	case header.ICMPv6PacketTooBig:
		return stack.ICMPFragNeeded
	case header.ICMPv6TimeExceeded:
		return stack.ICMPTimeExceeded
	}
	return stack.ICMPParamProblem
}

// sendError sends an ICMPv6 error about the received datagram orig (from
// its IPv6 header on; f are its parsed fields) under the rules of RFC 4443
// §2.4(e) and icmp6_send: no error about a multicast or link-multicast
// packet (except packet too big and unknown options whose type asks for
// one), about a packet from an unspecified or multicast source, or about
// an ICMPv6 error; at most one error per ratelimit interval per
// destination after a burst.
func (e *Endpoint) sendError(orig []byte, f header.IPv6Fields, linkMulticast bool, typ, code uint8, param uint32) {
	st := &e.stats().ICMPv6
	multicastOK := typ == header.ICMPv6PacketTooBig ||
		(typ == header.ICMPv6ParamProblem && code == header.ICMPv6CodeUnrecognizedOption)
	if (f.Dst.IsMulticast() || linkMulticast) && !multicastOK {
		return
	}
	if !f.Src.IsValid() || f.Src.IsUnspecified() || f.Src.IsMulticast() || isICMPv6Error(orig) {
		return
	}
	if typ != header.ICMPv6PacketTooBig && !e.loopback &&
		!e.proto.ratelim.allow(f.Src, e.proto.cfg.ErrorRateLimit, e.proto.s.Clock().Now()) {
		e.proto.Stats.ErrorsRateLimited.Add(1)
		return
	}
	var local netip.Addr
	if !f.Dst.IsMulticast() && e.proto.s.IsLocalAddress(f.Dst) {
		local = f.Dst
	}
	out, ok := e.icmpRoute(local, f.Src)
	if !ok {
		st.OutErrors.Add(1)
		return
	}
	n := min(len(orig), maxErrorQuote)
	pkt := buffer.New(buffer.Headroom, header.ICMPv6MinLen+n)
	b := pkt.Append(header.ICMPv6MinLen + n)
	copy(b[header.ICMPv6MinLen:], orig[:n])
	m := header.ICMPv6Fields{Type: typ, Code: code}
	switch typ {
	case header.ICMPv6PacketTooBig:
		m.MTU = param
	case header.ICMPv6ParamProblem:
		m.Pointer = param
	}
	m.Emit(b[:header.ICMPv6MinLen], b[header.ICMPv6MinLen:], out.local, out.remote)
	if e.sendICMP(out, pkt, 0, 0) && typ == header.ICMPv6DstUnreachable {
		st.OutDestUnreachs.Add(1)
	}
}

// isICMPv6Error reports whether the datagram orig carries an ICMPv6 error
// message, or whether that cannot be told (is_ineligible): no error is
// ever sent about one.
func isICMPv6Error(orig []byte) bool {
	if len(orig) < header.IPv6Len {
		return true
	}
	ext, err := header.WalkIPv6Extensions(orig[6], orig[header.IPv6Len:])
	if err != nil {
		return true
	}
	if ext.Proto != header.ProtoICMPv6 || (ext.HasFragment && ext.Fragment.Offset != 0) {
		return false
	}
	off := header.IPv6Len + ext.Offset
	if off >= len(orig) {
		return true
	}
	return orig[off] < 128
}

// icmpOut is where an ICMPv6 message the stack originates goes.
type icmpOut struct {
	ep                     *Endpoint
	local, remote, nextHop netip.Addr
	mtu                    int
}

// icmpRoute finds the way to remote, from local if it is valid. Replies to
// link-scoped addresses leave by this NIC, directly to remote, without a
// route lookup; anything else is routed.
func (e *Endpoint) icmpRoute(local, remote netip.Addr) (icmpOut, bool) {
	if (remote.IsLinkLocalUnicast() || remote.IsLinkLocalMulticast()) && !e.loopback {
		if !local.IsValid() {
			var ok bool
			if local, ok = e.linkLocalAddress(); !ok {
				return icmpOut{}, false
			}
		}
		return icmpOut{ep: e, local: local, remote: remote, nextHop: remote, mtu: e.nic.MTU()}, true
	}
	r, err := e.proto.s.FindRoute(0, local, remote)
	if err != nil {
		return icmpOut{}, false
	}
	ep, ok := r.NIC.NetworkEndpoint(header.EtherTypeIPv6).(*Endpoint)
	if !ok {
		return icmpOut{}, false
	}
	return icmpOut{ep: ep, local: r.LocalAddr, remote: r.RemoteAddr, nextHop: r.NextHop, mtu: r.MTU}, true
}

// linkLocalAddress returns the NIC's first link-local address.
func (e *Endpoint) linkLocalAddress() (netip.Addr, bool) {
	for _, p := range e.nic.Addresses() {
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() && !e.isTentative(p.Addr()) {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// sendICMP sends the complete ICMPv6 message pkt along out with traffic
// class tc and hop limit hop (0: the default for the destination). It
// counts the message and reports whether it was sent.
func (e *Endpoint) sendICMP(out icmpOut, pkt *buffer.Packet, tc, hop uint8) bool {
	st := &e.stats().ICMPv6
	if hop == 0 {
		hop = e.proto.cfg.HopLimit
		if out.remote.IsMulticast() {
			hop = e.proto.cfg.MulticastHopLimit
		}
	}
	f := header.IPv6Fields{
		TrafficClass: tc, NextHeader: header.ProtoICMPv6, HopLimit: hop,
		Src: out.local, Dst: out.remote,
	}
	st.OutMsgs.Add(1)
	if err := out.ep.writeIPv6(out.nextHop, out.mtu, f, pkt, false); err != nil {
		st.OutErrors.Add(1)
		return false
	}
	return true
}
