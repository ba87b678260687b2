package tcp

import "github.com/netprov/netprov/stack/header"

// sendResetFor answers a segment that no socket wants with a RST
// (tcp_v4_send_reset; spec 46): RST.seq = SEG.ACK without ACK when the
// segment had ACK, else RST|ACK with seq 0 and ack = SEG.SEQ+SEG.LEN. A
// RST is never answered.
func (p *Protocol) sendResetFor(s *segment) {
	if s.has(header.TCPFlagRst) {
		return
	}
	r, err := p.stack.FindRoute(0, s.dst, s.src)
	if err != nil {
		return
	}
	f := header.TCPFields{SrcPort: s.dport, DstPort: s.sport}
	if s.has(header.TCPFlagAck) {
		f.Seq = uint32(s.ack)
		f.Flags = header.TCPFlagRst
	} else {
		f.Ack = uint32(s.endSeq)
		f.Flags = header.TCPFlagRst | header.TCPFlagAck
	}
	if p.emit(r, f, nil, false, nil, nil, 0, 0, nil, 0) == nil {
		p.stats.TCP.OutSegs.Add(1)
		p.stats.TCP.OutRsts.Add(1)
	}
}
