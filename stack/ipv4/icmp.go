package ipv4

import (
	"encoding/binary"
	"net/netip"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
)

// ICMP TOS handling of icmp_send: errors keep the TOS bits of the offending
// packet with the precedence set to internetwork control.
const (
	iptosTOSMask             = 0x1e
	iptosPrecInternetControl = 0xc0
)

// icmpMaxType is NR_ICMP_TYPES.
const icmpMaxType = 18

// ICMP timestamp messages (RFC 792), which Linux answers.
const (
	icmpTimestamp      = 13
	icmpTimestampReply = 14
	icmpTimestampLen   = header.ICMPv4MinLen + 12
)

// isICMPError reports whether an ICMP type is an error message (the
// icmp_pointers[].error flag).
func isICMPError(t uint8) bool {
	switch t {
	case header.ICMPv4DstUnreachable, 4 /* source quench */, header.ICMPv4Redirect,
		header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
		return true
	}
	return false
}

// handleICMP is icmp_rcv. pkt's data starts at the IP header.
func (e *Endpoint) handleICMP(pkt *buffer.Packet, hl int, info stack.IPInfo) {
	p := e.p
	p.icmp.InMsgs.Add(1)
	pkt.Meta.NetworkHeaderLen = hl
	pkt.TrimFront(hl)
	b := pkt.Data()
	if len(b) < header.ICMPv4MinLen {
		p.icmp.InErrors.Add(1)
		p.s.Stats().Dropped.MalformedICMP.Add(1)
		pkt.Release()
		return
	}
	if !pkt.Meta.ChecksumVerified && header.Checksum(b, 0) != 0xffff {
		p.icmp.InCsumErrors.Add(1)
		p.icmp.InErrors.Add(1)
		pkt.Release()
		return
	}
	m := header.ICMPv4(b)
	typ := m.Type()
	switch typ {
	case header.ICMPv4Echo:
		p.icmp.InEchos.Add(1)
	case header.ICMPv4EchoReply:
		p.icmp.InEchoReps.Add(1)
	case header.ICMPv4DstUnreachable:
		p.icmp.InDestUnreachs.Add(1)
	case header.ICMPv4TimeExceeded:
		p.icmp.InTimeExcds.Add(1)
	}
	if typ > icmpMaxType {
		p.icmp.InErrors.Add(1)
		pkt.Release()
		return
	}
	if info.Multicast {
		// RFC 1122 3.2.2.6: echo to broadcast may be ignored
		// (icmp_echo_ignore_broadcasts); errors sent to a broadcast are
		// bogus. Either way Linux counts an input error.
		if ((typ == header.ICMPv4Echo || typ == icmpTimestamp) && p.cfg.ICMPEchoIgnoreBroadcasts) ||
			(typ != header.ICMPv4Echo && typ != icmpTimestamp && typ != 17 && typ != 18) {
			p.icmp.InErrors.Add(1)
			pkt.Release()
			return
		}
	}
	switch typ {
	case header.ICMPv4Echo:
		e.handleEcho(pkt, info)
	case header.ICMPv4EchoReply:
		if tp := p.s.TransportProtocol(header.ProtoICMP); tp != nil {
			tp.HandlePacket(pkt, info)
			return
		}
		pkt.Release()
	case icmpTimestamp:
		e.handleTimestamp(pkt, info)
	case header.ICMPv4DstUnreachable, header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
		e.handleICMPError(m)
		pkt.Release()
	default:
		// Source quench, redirects (we are a host that ignores them,
		// accept_redirects only matters for routers' peers), timestamps.
		pkt.Release()
	}
}

// handleEcho is icmp_echo: the reply carries the request's identifier,
// sequence number and data, from the address the request was sent to.
func (e *Endpoint) handleEcho(pkt *buffer.Packet, info stack.IPInfo) {
	p := e.p
	if p.cfg.ICMPEchoIgnoreAll {
		pkt.Release()
		return
	}
	req := pkt.Data()
	reply := buffer.New(buffer.Headroom, len(req))
	rb := reply.Append(len(req))
	copy(rb, req)
	pkt.Release()
	rb[0] = header.ICMPv4EchoReply
	header.ICMPv4(rb).SetChecksum(header.ICMPv4Checksum(rb))
	e.sendReply(reply, info)
}

// handleTimestamp is icmp_timestamp: the reply copies the originate
// timestamp and stamps receive and transmit with the milliseconds since
// midnight UT.
func (e *Endpoint) handleTimestamp(pkt *buffer.Packet, info stack.IPInfo) {
	p := e.p
	req := pkt.Data()
	if len(req) < header.ICMPv4MinLen+4 {
		p.icmp.InErrors.Add(1)
		pkt.Release()
		return
	}
	reply := buffer.New(buffer.Headroom, icmpTimestampLen)
	rb := reply.Append(icmpTimestampLen)
	clear(rb)
	copy(rb[4:12], req[4:12]) // identifier, sequence number, originate
	pkt.Release()
	now := p.s.Clock().Now().UTC()
	ms := uint32(now.Unix()%86400)*1000 + uint32(now.Nanosecond()/1e6)
	binary.BigEndian.PutUint32(rb[12:16], ms)
	binary.BigEndian.PutUint32(rb[16:20], ms)
	rb[0] = icmpTimestampReply
	header.ICMPv4(rb).SetChecksum(header.ICMPv4Checksum(rb))
	e.sendReply(reply, info)
}

// sendReply sends an echo or timestamp reply back to the requester.
func (e *Endpoint) sendReply(reply *buffer.Packet, info stack.IPInfo) {
	p := e.p
	src := info.Dst
	if info.Multicast {
		src = netip.Addr{}
	}
	r, err := p.s.FindRoute(0, src, info.Src)
	if err != nil {
		p.icmp.OutErrors.Add(1)
		reply.Release()
		return
	}
	p.icmp.OutMsgs.Add(1)
	if reply.Data()[0] == header.ICMPv4EchoReply {
		p.icmp.OutEchoReps.Add(1)
	}
	// ICMP's own socket uses IP_PMTUDISC_DONT: replies are fragmented
	// rather than refused, and keep the request's TOS.
	if err := r.WritePacket(reply, stack.NetworkParams{Protocol: header.ProtoICMP, TOS: info.TOS}); err != nil {
		p.icmp.OutErrors.Add(1)
	}
}

// handleICMPError is icmp_unreach: it parses the quoted datagram, learns
// a path MTU from fragmentation-needed, and tells the transport.
func (e *Endpoint) handleICMPError(m header.ICMPv4) {
	p := e.p
	inner := m.Payload()
	if len(inner) < header.IPv4MinLen || inner[0]>>4 != 4 {
		p.icmp.InErrors.Add(1)
		return
	}
	ihl := int(inner[0]&0x0f) * 4
	if ihl < header.IPv4MinLen || len(inner) < ihl+8 {
		p.icmp.InErrors.Add(1)
		return
	}
	ie := stack.ICMPError{Type: m.Type(), Code: m.Code()}
	switch m.Type() {
	case header.ICMPv4DstUnreachable:
		kind, ok := unreachKind(m.Code())
		if !ok {
			return
		}
		ie.Kind = kind
		if m.Code() == header.ICMPv4CodeFragmentationNeeded {
			if !p.cfg.NoPMTUDisc {
				ie.MTU = uint32(p.updatePMTU(header.IPv4(inner), int(m.MTU())))
			}
		}
	case header.ICMPv4TimeExceeded:
		ie.Kind = stack.ICMPTimeExceeded
	case header.ICMPv4ParamProblem:
		ie.Kind = stack.ICMPParamProblem
	}
	p.deliverError(ie, inner, ihl, e.nic.ID())
}

// unreachKind maps a destination-unreachable code to the error class
// (icmp_err_convert); codes above 15 are ignored as Linux does.
func unreachKind(code uint8) (stack.ICMPErrorKind, bool) {
	switch code {
	case header.ICMPv4CodeNetUnreachable, header.ICMPv4CodeNetUnknown,
		header.ICMPv4CodeNetProhibited, header.ICMPv4CodeNetTOSUnreachable:
		return stack.ICMPNetUnreachable, true
	case header.ICMPv4CodeProtoUnreachable:
		return stack.ICMPProtoUnreachable, true
	case header.ICMPv4CodePortUnreachable:
		return stack.ICMPPortUnreachable, true
	case header.ICMPv4CodeFragmentationNeeded:
		return stack.ICMPFragNeeded, true
	case header.ICMPv4CodeAdminProhibited:
		return stack.ICMPAdminProhibited, true
	}
	if code <= 15 {
		return stack.ICMPHostUnreachable, true
	}
	return 0, false
}

// deliverError passes an ICMP error about the datagram quoted in inner
// (its IP header is ihl bytes) to the transport that sent it. Errors about
// ICMP messages go to the ICMP socket protocol only for echo requests.
func (p *Protocol) deliverError(ie stack.ICMPError, inner []byte, ihl int, nic int) {
	if len(inner) < ihl+8 {
		p.icmp.InErrors.Add(1)
		return
	}
	ih := header.IPv4(inner)
	proto := ih.Protocol()
	payload := inner[ihl:]
	if proto == header.ProtoICMP && payload[0] != header.ICMPv4Echo {
		return
	}
	tp := p.s.TransportProtocol(proto)
	if tp == nil {
		return
	}
	tp.HandleError(ie, stack.IPInfo{Src: ih.Src(), Dst: ih.Dst(), NIC: nic, TTL: ih.TTL(), TOS: ih.TOS()}, payload)
}

// sendError is icmp_send: it answers the datagram orig (IP header first,
// already validated) with an ICMP error of the given type and code; rest
// is the 32-bit field after the checksum (the MTU of fragmentation needed
// in its low 16 bits). The caller has checked that orig was not sent to a
// broadcast or multicast address.
func (p *Protocol) sendError(orig []byte, typ, code uint8, rest uint32) {
	h := header.IPv4(orig)
	if len(orig) < header.IPv4MinLen || h.FragmentOffset() != 0 {
		return
	}
	hl := h.HeaderLen()
	src, dst := h.Src(), h.Dst()
	if src.IsUnspecified() || src.IsMulticast() || src == limitedBroadcast {
		return
	}
	if h.Protocol() == header.ProtoICMP {
		// Never an error about an ICMP error (RFC 1122 3.2.2).
		if len(orig) <= hl || orig[hl] > icmpMaxType || isICMPError(orig[hl]) {
			return
		}
	}
	toSelf := p.s.IsLocalAddress(src)
	if !toSelf && !p.limiter.allow(typ, src, p.s.Clock().Now()) {
		return
	}
	n := min(len(orig), icmpErrorRoom)
	pkt := buffer.New(buffer.Headroom, header.ICMPv4MinLen+n)
	body := pkt.Append(header.ICMPv4MinLen + n)
	copy(body[header.ICMPv4MinLen:], orig[:n])
	body[0], body[1], body[2], body[3] = typ, code, 0, 0
	binary.BigEndian.PutUint32(body[4:8], rest)
	header.ICMPv4(body).SetChecksum(header.ICMPv4Checksum(body))

	local := dst
	if !p.s.IsLocalAddress(local) {
		local = netip.Addr{}
	}
	r, err := p.s.FindRoute(0, local, src)
	if err != nil {
		p.icmp.OutErrors.Add(1)
		pkt.Release()
		return
	}
	p.icmp.OutMsgs.Add(1)
	if typ == header.ICMPv4DstUnreachable {
		p.icmp.OutDestUnreachs.Add(1)
	}
	tos := h.TOS()&iptosTOSMask | iptosPrecInternetControl
	if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoICMP, TOS: tos}); err != nil {
		p.icmp.OutErrors.Add(1)
	}
}
