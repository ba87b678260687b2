package tcp

import (
	"sync/atomic"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/tcp/seqnum"
)

// emit builds one TCP segment and sends it along r (tcp_transmit_skb /
// tcp_v4_send_check): the fixed header from f, options from o (SYN layout
// when syn), then the payload pieces. It owns nothing the caller keeps.
//
// gsoMSS > 0 makes the packet a GSO super-segment to be cut into gsoMSS
// payload pieces by the link (or coalesced-input on the peer stack). id is
// the connection's IP ID counter; nil for segments of no connection
// (SYN-ACKs of a listener, resets), which carry ID 0 like Linux's.
func (p *Protocol) emit(r *stack.Route, f header.TCPFields, o *header.TCPOptions, syn bool, pay1, pay2 []byte, ttl, tos uint8, id *atomic.Uint32, gsoMSS int) error {
	optLen := 0
	if o != nil {
		optLen = header.TCPOptionsLen(*o, syn)
	}
	hdrLen := header.TCPMinLen + optLen
	n := len(pay1) + len(pay2)
	pkt := buffer.New(buffer.Headroom, hdrLen+n)
	b := pkt.Append(hdrLen + n)
	f.DataOffset = uint8(hdrLen)
	f.Checksum = 0
	f.Emit(b)
	if optLen > 0 {
		if syn {
			header.EncodeSYNOptions(b[header.TCPMinLen:], *o)
		} else {
			header.EncodeOptions(b[header.TCPMinLen:], *o)
		}
	}
	copy(b[hdrLen:], pay1)
	copy(b[hdrLen+len(pay1):], pay2)
	h := header.TCP(b)
	if gsoMSS > 0 {
		g := &pkt.Meta.GSO
		g.Type = buffer.GSOTCPv4
		if r.RemoteAddr.Is6() {
			g.Type = buffer.GSOTCPv6
		}
		g.MSS = uint16(gsoMSS)
		g.HeaderLen = uint16(r.MaxHeaderLen() + hdrLen)
	}
	if r.NIC != nil && r.NIC.Capabilities()&link.CapTXChecksumOffload != 0 {
		// The device completes the checksum from the pseudo-header sum.
		h.SetChecksum(header.PseudoHeaderChecksum(header.ProtoTCP, r.LocalAddr, r.RemoteAddr, uint16(len(b))))
		pkt.Meta.GSO.NeedsCsum = true
		pkt.Meta.GSO.CsumOffset = 16
	} else {
		h.SetChecksum(header.TCPChecksum(b, r.LocalAddr, r.RemoteAddr))
	}
	return r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoTCP, TTL: ttl, TOS: tos, DontFragment: true, ID: id})
}

// tsNow is the TCP timestamp clock in milliseconds (tcp_time_stamp_ms),
// before the per-connection offset.
func (e *endpoint) tsNow() uint32 {
	return uint32(e.stamp().UnixMilli())
}

// transmit sends the segment [seq, seq+n) of the send buffer (n may be 0)
// with flags, adding ACK state, window and options. rtx marks a
// retransmission (not counted in OutSegs).
func (e *endpoint) transmit(seq seqnum.Value, n int, flags header.TCPFlags, rtx bool) {
	if e.route == nil {
		return
	}
	piece := e.curMSS()
	o := &e.txOpts
	o.HasMSS, o.SACKPermitted, o.WindowScale = false, false, -1
	o.HasTimestamps, o.NumSACKBlocks = false, 0
	syn := flags&header.TCPFlagSyn != 0
	var wnd uint16
	if syn {
		e.synOptions(o)
		wnd = uint16(min(e.rcvWnd, maxWindow))
	} else {
		if e.tsOK {
			o.HasTimestamps = true
			o.TSVal = e.tsNow() + e.tsOffset
			o.TSEcr = e.tsRecent
		}
		if e.sackOK && flags&header.TCPFlagAck != 0 {
			e.fillSACKBlocks(o)
		}
		wnd = e.selectWindow()
	}
	if flags&header.TCPFlagAck == 0 && !syn {
		wnd = 0
	}
	f := header.TCPFields{
		SrcPort: e.lport, DstPort: e.rport,
		Seq: uint32(seq), Ack: uint32(e.rcvNxt),
		Flags: flags, Window: wnd,
	}
	e.urgentFields(seq, &f)
	var p1, p2 []byte
	if n > 0 {
		p1, p2 = e.sndBuf.slices(int(e.sndUna.Size(seq)), n)
	}
	gso := 0
	segs := uint64(1)
	if n > piece {
		gso = piece
		segs = uint64((n + piece - 1) / piece)
	}
	id := &e.ipID
	if e.state == StateTimeWait {
		// Linux ACKs in TIME_WAIT from the timewait socket through the
		// per-netns control socket (tcp_v4_timewait_ack): no inet_id,
		// DF set, so ID 0 (spec 32).
		id = nil
	}
	_ = e.proto.emit(e.route, f, o, syn, p1, p2, e.ttl, e.tos, id, gso)
	st := e.stack.Stats()
	if rtx {
		st.TCP.RetransSegs.Add(segs)
		e.totalRetrans += uint32(segs)
		e.bytesRetrans += uint64(n)
	} else {
		st.TCP.OutSegs.Add(segs)
	}
	if flags&header.TCPFlagRst != 0 {
		st.TCP.OutRsts.Add(1)
	}
	e.segsOut++
	if n > 0 {
		e.dataSegsOut++
		e.bytesSent += uint64(n)
	}
	now := e.stamp()
	e.lastSend = now
	if flags&header.TCPFlagAck != 0 {
		// An ACK went out: nothing is owed any more (tcp_event_ack_sent).
		e.pendingAck = false
		e.dsackPending = false
		e.stopDelack()
		if e.quickAcks > 0 {
			e.quickAcks--
		}
	}
}

// synOptions fills the options of our SYN or SYN-ACK (tcp_syn_options).
func (e *endpoint) synOptions(o *header.TCPOptions) {
	o.HasMSS = true
	o.MSS = uint16(e.advmss)
	cfg := &e.proto.cfg
	if e.state == StateSynSent {
		o.HasTimestamps = cfg.Timestamps
		o.SACKPermitted = cfg.SACK
		if cfg.WindowScaling {
			o.WindowScale = int8(e.rcvWscale)
		}
		o.TSEcr = 0
	} else {
		// SYN-ACK of a simultaneous open: echo what the peer offered.
		o.HasTimestamps = e.tsOK
		o.SACKPermitted = e.sackOK
		if e.wscaleOK {
			o.WindowScale = int8(e.rcvWscale)
		}
		o.TSEcr = e.tsRecent
	}
	o.TSVal = e.tsNow() + e.tsOffset
}

// sendAck sends a pure ACK now (tcp_send_ack).
func (e *endpoint) sendAck() {
	if e.state == StateClose || e.state == StateListen || e.state == StateSynSent {
		return
	}
	e.transmit(e.sndNxt, 0, header.TCPFlagAck, false)
}

// sendActiveReset sends RST|ACK from the connection's state
// (tcp_send_active_reset).
func (e *endpoint) sendActiveReset() {
	if e.route == nil || !e.state.synchronized() && e.state != StateSynRecv {
		return
	}
	e.transmit(e.sndNxt, 0, header.TCPFlagRst|header.TCPFlagAck, false)
}

// sndLimit is the send buffer size in payload bytes: SO_SNDBUF when the
// user set it, otherwise grown with the congestion window like
// tcp_sndbuf_expand, up to tcp_wmem[2].
func (e *endpoint) sndLimit() int {
	if e.sndbufLocked {
		return max(e.sndbuf/2, e.mss)
	}
	want := 2 * int(e.cw.Cwnd) * max(e.mss, 1) * 2
	return min(max(e.sndbuf, want), e.proto.cfg.WMem[2])
}

// curMSS is tcp_current_mss: the payload that fits in a segment next to
// the SACK blocks the next ACK will carry.
func (e *endpoint) curMSS() int {
	if !e.sackOK || (len(e.ooo) == 0 && !e.dsackPending) {
		return e.mss
	}
	blocks := len(e.ooo)
	if e.dsackPending {
		blocks++
	}
	maxBlocks := 4
	if e.tsOK {
		maxBlocks = 3
	}
	return e.mss - 4 - 8*min(blocks, maxBlocks)
}

// segmentLimit is the largest segment sendPending may build: one MSS, or
// on a GSO link a super-segment of whole MSS pieces that fits the link's
// 64 KiB limit and the congestion window (tcp_tso_autosize).
func (e *endpoint) segmentLimit(mss int) int {
	if e.route == nil || e.route.NIC == nil || e.route.NIC.Capabilities()&link.CapGSO == 0 {
		return mss
	}
	// Headers plus options: timestamps and the SACK blocks that made
	// mss smaller than e.mss.
	hdr := e.route.MaxHeaderLen() + header.TCPMinLen + (e.mss - mss)
	if e.tsOK {
		hdr += 12
	}
	pieces := (link.GSOMaxSize - hdr) / mss
	if free := int(e.cw.Cwnd) - int(e.inFlightPackets()); free < pieces {
		pieces = free
	}
	return max(pieces, 1) * mss
}

// inFlightPackets is tcp_packets_in_flight in MSS-sized packets.
func (e *endpoint) inFlightPackets() uint32 {
	pipe := e.pipeBytes()
	m := max(e.mss, 1)
	return uint32((pipe + m - 1) / m)
}

// cwndAllows reports whether one more packet may be sent (tcp_cwnd_test).
func (e *endpoint) cwndAllows() bool {
	return e.inFlightPackets() < e.cw.Cwnd
}

// finSent reports whether our FIN has been sent (it occupies writeSeq).
func (e *endpoint) finSent() bool {
	return e.finQueued && e.sndNxt == e.writeSeq.Add(1)
}

// sendPending transmits what the windows allow: lost segments first, then
// new data and a pending FIN (tcp_write_xmit).
func (e *endpoint) sendPending() {
	switch e.state {
	case StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck:
	default:
		return
	}
	if e.ca == caRecovery || e.ca == caLoss {
		e.retransmitLost()
	}
	sent := false
	for {
		unsent := int(e.sndNxt.Size(e.writeSeq))
		if e.finSent() {
			unsent = 0
		}
		finPending := e.finQueued && !e.finSent()
		if unsent <= 0 && !finPending {
			break
		}
		if !e.cwndAllows() {
			break
		}
		mss := e.curMSS()
		n := min(unsent, e.segmentLimit(mss))
		wndEnd := e.sndUna.Add(seqnum.Size(e.sndWnd))
		room := 0
		if e.sndNxt.LessThan(wndEnd) {
			room = int(e.sndNxt.Size(wndEnd))
		}
		if n > room {
			n = room
		}
		if n == 0 && unsent > 0 {
			// Window closed: probe it when nothing is in flight.
			if e.sndUna == e.sndNxt {
				e.armProbe()
			}
			break
		}
		if n > 0 && n < mss && e.nagleHolds(n, unsent) {
			break
		}
		fin := finPending && n == unsent
		flags := header.TCPFlagAck
		if fin {
			flags |= header.TCPFlagFin
		}
		if n > 0 && n == unsent {
			flags |= header.TCPFlagPsh
		}
		seq := e.sndNxt
		e.transmit(seq, n, flags, false)
		if e.retransStamp.IsZero() || e.sndUna == e.sndNxt {
			e.retransStamp = e.lastSend
		}
		e.sndNxt = e.sndNxt.Add(seqnum.Size(n))
		if fin {
			e.sndNxt = e.sndNxt.Add(1)
		}
		if n < mss {
			e.sndSml = e.sndNxt
		}
		if !e.rttTiming && !e.tsOK {
			e.rttTiming, e.rttSeq, e.rttStart = true, e.sndNxt, e.lastSend
		}
		sent = true
		if fin {
			break
		}
	}
	if sent && e.rtxKind == timerNone {
		e.armXmitTimer()
	}
}

// nagleHolds is tcp_nagle_test for a sub-MSS segment: hold it while corked
// (TCP_CORK, MSG_MORE) or, without TCP_NODELAY, while an earlier small
// segment is unacknowledged (Minshall's variant).
func (e *endpoint) nagleHolds(n, unsent int) bool {
	if n < unsent {
		return false // window-limited piece of a larger write
	}
	if e.finQueued {
		return false
	}
	if e.cork || e.moreHint {
		return true
	}
	if e.nodelay {
		return false
	}
	return e.sndUna != e.sndNxt && e.sndUna.LessThan(e.sndSml) && e.sndSml.LessThanEq(e.sndNxt)
}

// sendFinLocked queues our FIN (tcp_send_fin) and moves the state.
func (e *endpoint) sendFinLocked() {
	switch e.state {
	case StateEstablished, StateSynRecv:
		e.setState(StateFinWait1)
	case StateCloseWait:
		e.setState(StateLastAck)
	default:
		return
	}
	e.finQueued = true
	e.sendPending()
}

// stamp is the time of the work in progress (Linux's tcp_mstamp): the
// clock read once when the current segment, timer or call began
// (beginStamp), so that processing one segment or sending one burst
// reads the clock once instead of at every step. Outside such a scope it
// reads the clock.
func (e *endpoint) stamp() time.Time {
	if e.stampSet {
		return e.stampNow
	}
	return e.proto.clock.Now()
}

// beginStamp reads the clock for the work that follows, until endStamp.
func (e *endpoint) beginStamp() time.Time {
	e.stampNow = e.proto.clock.Now()
	e.stampSet = true
	return e.stampNow
}

func (e *endpoint) endStamp() { e.stampSet = false }
