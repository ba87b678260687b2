package tcp

import (
	"time"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/tcp/seqnum"
	"github.com/netprov/netprov/stack/waiter"
)

const (
	flagSyn = header.TCPFlagSyn
	flagAck = header.TCPFlagAck
	flagRst = header.TCPFlagRst
	flagFin = header.TCPFlagFin
)

// paws24Days is TCP_PAWS_24DAYS: a ts_recent older than this is stale.
const paws24Days = 24 * 24 * time.Hour

// segmentArrived processes a segment for a connection in any state but
// LISTEN and TIME_WAIT (tcp_rcv_state_process / tcp_rcv_established).
func (e *endpoint) segmentArrived(s *segment) {
	e.segsIn++
	if len(s.payload) > 0 {
		e.dataSegsIn++
	}
	switch e.state {
	case StateClose, StateListen:
		e.proto.sendResetFor(s)
		return
	case StateSynSent:
		e.synSentSegment(s)
		return
	}
	now := e.stamp()
	if !s.has(flagAck | flagRst | flagSyn) {
		return // spec 86
	}
	// PAWS (RFC 7323 §5; tcp_paws_discard).
	if e.tsOK && s.opts.HasTimestamps && !s.has(flagRst) && e.tsRecent != 0 &&
		int32(e.tsRecent-s.opts.TSVal) > 0 && now.Sub(e.tsRecentStamp) < paws24Days {
		e.stack.Stats().TCPExt.PAWSEstab.Add(1)
		e.sendDupAck(s)
		return
	}
	// Sequence acceptability (tcp_sequence).
	right := e.rcvNxt.Add(seqnum.Size(e.receiveWindow()))
	if s.endSeq.LessThan(e.rcvWup) || right.LessThan(s.seq) {
		if !s.has(flagRst) {
			if s.has(flagSyn) {
				e.challengeAck(true)
				return
			}
			e.sendDupAck(s)
		}
		return
	}
	// RST (RFC 5961 §3): exact match resets, otherwise challenge.
	if s.has(flagRst) {
		if s.seq == e.rcvNxt {
			e.reset()
		} else {
			e.challengeAck(false)
		}
		return
	}
	// Remember the peer's timestamp (tcp_replace_ts_recent).
	if e.tsOK && s.opts.HasTimestamps && s.seq.LessThanEq(e.rcvWup) {
		e.tsRecent = s.opts.TSVal
		e.tsRecentStamp = now
	}
	// SYN in a synchronized state (RFC 5961 §4): challenge ACK, except the
	// SYN-ACK that completes a simultaneous open.
	if s.has(flagSyn) {
		if !(e.state == StateSynRecv && s.has(flagAck) && s.seq.Add(1) == e.rcvNxt && s.ack == e.sndNxt) {
			e.challengeAck(true)
			return
		}
	}
	if !s.has(flagAck) {
		return
	}
	e.lastRecv = now
	e.probesOut = 0
	if e.keepKind == timerKeepalive {
		e.armKeepalive()
	}
	if !e.processAck(s) {
		return
	}
	if e.state == StateClose || e.state == StateTimeWait {
		return
	}
	e.processData(s)
	if e.state.synchronized() && e.state != StateTimeWait {
		e.checkUrgent(s)
	}
	if e.state != StateClose {
		e.sendPending()
	}
}

// receiveWindow is tcp_receive_window: what is left of the last window
// we advertised.
func (e *endpoint) receiveWindow() uint32 {
	right := e.rcvWup.Add(seqnum.Size(e.rcvWnd))
	if right.LessThan(e.rcvNxt) {
		return 0
	}
	return uint32(e.rcvNxt.Size(right))
}

// sendDupAck answers an unacceptable segment with an ACK, reporting a
// duplicate with D-SACK (tcp_send_dupack).
func (e *endpoint) sendDupAck(s *segment) {
	if s.length() > 0 && s.seq.LessThan(e.rcvNxt) && e.sackOK && e.proto.cfg.DSACK {
		e.dsack = seqRange{s.seq, seqnum.Min(s.endSeq, e.rcvNxt)}
		e.dsackPending = true
		e.stack.Stats().TCPExt.TCPDSACKOldSent.Add(1)
	}
	e.sendAck()
}

// challengeAck sends a rate-limited RFC 5961 challenge ACK.
func (e *endpoint) challengeAck(syn bool) {
	st := e.stack.Stats()
	if syn {
		st.TCPExt.TCPSYNChallenge.Add(1)
	}
	now := e.stamp()
	if !e.proto.challengeAllowed(now) {
		return
	}
	st.TCPExt.TCPChallengeACK.Add(1)
	e.sendAck()
}

// processAck is tcp_ack plus the ACK-driven state changes of
// tcp_rcv_state_process. It returns false when the segment must be
// dropped.
func (e *endpoint) processAck(s *segment) bool {
	ack := s.ack
	if e.sndNxt.LessThan(ack) {
		if e.state == StateSynRecv {
			e.proto.sendResetFor(s)
			return false
		}
		e.challengeAck(false)
		return false
	}
	if ack.LessThan(e.sndUna) {
		if ack.LessThan(e.sndUna - seqnum.Value(e.maxWindow)) {
			e.challengeAck(false)
			return false
		}
		return true // old duplicate ACK: ignore it, keep the data
	}
	if e.state == StateSynRecv {
		if ack == e.sndUna {
			e.proto.sendResetFor(s)
			return false
		}
		// Simultaneous open completes (spec 66/79): the window is scaled.
		e.sndUna = ack
		e.sndWnd = uint32(s.window) << e.sndWscale
		e.sndWl1, e.sndWl2 = s.seq, ack
		e.growMaxWindow(e.sndWnd)
		e.stopRtx()
		e.retransmits, e.backoff = 0, 0
		e.finishConnect()
		return true
	}
	nwin := uint32(s.window) << e.sndWscale
	prevUna := e.sndUna
	// tcp_may_update_window: an ACK that may update the window is a
	// window update (FLAG_WIN_UPDATE), never a duplicate ACK.
	winUpdate := e.sndUna.LessThan(ack) || e.sndWl1.LessThan(s.seq) || (s.seq == e.sndWl1 && (nwin > e.sndWnd || nwin == 0))
	if winUpdate {
		opened := e.sndWnd == 0 && nwin > 0
		e.sndWnd = nwin
		e.sndWl1, e.sndWl2 = s.seq, ack
		e.growMaxWindow(nwin)
		if opened && e.rtxKind == timerProbe {
			e.stopRtx()
			e.backoff = 0
			e.probesOut = 0
		}
	}
	newlySacked := e.processSACK(s)
	now := e.stamp()
	e.lastAckRecv = now
	if prevUna.LessThan(ack) {
		acked := int(prevUna.Size(ack))
		dataEnd := seqnum.Min(ack, e.writeSeq)
		if prevUna.LessThan(dataEnd) {
			e.sndBuf.discard(int(prevUna.Size(dataEnd)))
		}
		inFlight := e.inFlightPackets()
		e.sndUna = ack
		if e.sndUp.LessThan(ack) {
			e.sndUp = ack // urgent mode over
		}
		e.pruneSacked()
		e.bytesAcked += uint64(acked)
		rtt := e.ackRTT(s, ack)
		e.retransmits, e.backoff = 0, 0
		e.retransStamp = time.Time{}
		e.probesOut = 0
		ackedPkts := uint32((acked + e.mss - 1) / max(e.mss, 1))
		e.cw.SndUna, e.cw.SndNxt = uint32(e.sndUna), uint32(e.sndNxt)
		e.ccAlg.PktsAcked(&e.cw, ackedPkts, rtt, now)
		switch e.ca {
		case caRecovery:
			if !ack.LessThan(e.recoveryPoint) {
				e.cw.Cwnd = max(e.cw.SSThresh, 2)
				e.ca = caOpen
			} else if !e.sackOK {
				// NewReno partial ACK: the next segment is lost too.
				e.highRxt = e.sndUna
				e.lostEnd = seqnum.Min(e.sndNxt, e.sndUna.Add(seqnum.Size(e.mss)))
			} else {
				e.updateLostEnd()
			}
		case caLoss:
			if !ack.LessThan(e.recoveryPoint) {
				e.ca = caOpen
			}
			e.ccAlg.CongAvoid(&e.cw, ackedPkts, inFlight, now)
		default:
			e.ccAlg.CongAvoid(&e.cw, ackedPkts, inFlight, now)
			if len(e.sacked) == 0 {
				e.ca = caOpen
				e.stopReorder()
			} else if e.sackOK {
				e.ca = caDisorder
				e.armReorder()
			}
		}
		e.dupAcks = 0
		e.tlpOut = false
		if newlySacked > 0 {
			e.detectLostRetransmit()
		}
		if e.sndUna == e.sndNxt {
			if e.rtxKind == timerRetrans || e.rtxKind == timerTLP {
				e.stopRtx()
			}
		} else if e.rtxKind != timerProbe {
			e.armXmitTimer()
		}
		e.ackStateChanges(s)
		if e.writable() {
			e.notify(waiter.EventOut)
		}
		return true
	}
	// ack == snd_una. With SACK, only an ACK that sacks new data counts
	// towards recovery (Linux's RACK/sacked_out heuristics ignore pure
	// duplicates). Without SACK it is a duplicate ACK in RFC 5681's sense
	// (and tcp_ack's: not FLAG_NOT_DUP): data outstanding, no data, SYN or
	// FIN, and no window update.
	dup := newlySacked > 0
	if !e.sackOK {
		dup = len(s.payload) == 0 && !s.has(flagSyn|flagFin) && !winUpdate
	}
	if e.sndUna != e.sndNxt && dup {
		e.dupAcks++
		switch e.ca {
		case caOpen, caDisorder:
			lost := e.dupAcks >= dupThresh
			if e.sackOK && e.sackedBytes() > (dupThresh-1)*e.mss {
				lost = true
			}
			if lost {
				e.enterRecovery()
			} else {
				if e.ca == caOpen && e.sackOK && len(e.sacked) > 0 {
					e.armReorder()
				}
				e.ca = caDisorder
			}
		case caRecovery:
			e.updateLostEnd()
		}
	}
	if newlySacked > 0 {
		e.detectLostRetransmit()
	}
	return true
}

// ackStateChanges moves the closing states once our FIN is acknowledged
// (spec 87-88).
func (e *endpoint) ackStateChanges(s *segment) {
	if !e.finQueued || e.sndUna != e.writeSeq.Add(1) {
		return
	}
	switch e.state {
	case StateFinWait1:
		e.setState(StateFinWait2)
		e.shutdown |= sendShutdown
		if e.orphan {
			// New data after our close: abort (spec 87).
			if len(s.payload) > 0 && e.rcvNxt.LessThan(s.endSeq) {
				e.stack.Stats().TCPExt.TCPAbortOnData.Add(1)
				e.sendActiveReset()
				e.setState(StateClose)
				return
			}
			e.armFinWait2()
		}
		e.notify(waiterAll)
	case StateClosing:
		e.enterTimeWait()
	case StateLastAck:
		e.setState(StateClose)
		e.notify(waiterAll)
	}
}

// processData queues the payload and FIN of an acceptable segment
// (tcp_data_queue, tcp_fin; spec 89).
func (e *endpoint) processData(s *segment) {
	fin := s.has(flagFin)
	if len(s.payload) == 0 && !fin {
		return
	}
	switch e.state {
	case StateEstablished, StateFinWait1, StateFinWait2, StateSynRecv:
	default:
		// CLOSE_WAIT, CLOSING, LAST_ACK: the peer already sent FIN.
		return
	}
	if (e.state == StateFinWait1 || e.state == StateFinWait2) && e.shutdown&rcvShutdown != 0 && e.orphan &&
		len(s.payload) > 0 && e.rcvNxt.LessThan(s.endSeq-seqnum.Value(b2u(fin))) {
		e.stack.Stats().TCPExt.TCPAbortOnData.Add(1)
		e.proto.sendResetFor(s)
		e.reset()
		return
	}
	seq := s.seq
	data := s.payload
	if s.has(flagSyn) {
		seq++
	}
	e.rcvRTTMeasure(s)
	if seq.LessThan(e.rcvNxt) {
		dup := int(seq.Size(e.rcvNxt))
		if dup >= len(data) {
			// Entirely old: report it with D-SACK and ACK at once.
			if len(data) > 0 && e.sackOK && e.proto.cfg.DSACK {
				e.dsack = seqRange{seq, seq.Add(seqnum.Size(len(data)))}
				e.dsackPending = true
				e.stack.Stats().TCPExt.TCPDSACKOldSent.Add(1)
			}
			if !(fin && seq.Add(seqnum.Size(len(data))) == e.rcvNxt && !e.done) {
				e.sendAck()
				return
			}
			data = nil
			seq = e.rcvNxt
		} else {
			if e.sackOK && e.proto.cfg.DSACK {
				e.dsack = seqRange{seq, e.rcvNxt}
				e.dsackPending = true
			}
			data = data[dup:]
			seq = e.rcvNxt
		}
	}
	off := int(e.copiedSeq.Size(seq))
	room := e.rcvBuf.capacity() - off
	if room < 0 {
		room = 0
	}
	if len(data) > room {
		data = data[:room]
		fin = false
		e.stack.Stats().TCPExt.TCPRcvQDrop.Add(1)
	}
	if len(data) == 0 && !fin {
		e.sendAck()
		return
	}
	e.bytesReceived += uint64(len(data))
	if len(data) > 0 {
		e.growWindow()
	}
	if e.ato == 0 {
		// First data: quick-ACK mode (tcp_event_data_recv).
		e.ato = atoMin
		e.quickAcks = min(int(e.rcvWnd)/max(2*e.rcvMSS, 1), 16)
	}
	if len(data) > e.rcvMSS {
		e.rcvMSS = min(len(data), e.advmss)
	}
	if seq != e.rcvNxt {
		e.queueOutOfOrder(seq, data, fin)
		return
	}
	hadOOO := len(e.ooo) > 0
	e.rcvBuf.writeAt(e.rcvBuf.n, data)
	e.rcvBuf.extend(len(data))
	e.rcvNxt = e.rcvNxt.Add(seqnum.Size(len(data)))
	for len(e.ooo) > 0 && e.ooo[0].start.LessThanEq(e.rcvNxt) {
		if e.rcvNxt.LessThan(e.ooo[0].end) {
			e.rcvBuf.extend(int(e.rcvNxt.Size(e.ooo[0].end)))
			e.rcvNxt = e.ooo[0].end
		}
		e.ooo = append(e.ooo[:0], e.ooo[1:]...)
	}
	if e.finOOO && e.finSeq == e.rcvNxt {
		fin = true
	}
	if len(data) > 0 || hadOOO {
		e.notify(waiter.EventIn)
	}
	if fin {
		e.receiveFin()
		return
	}
	e.scheduleAck(hadOOO || e.dsackPending)
}

// queueOutOfOrder stores data beyond rcv_nxt at its place in the receive
// buffer and records its range for SACK.
func (e *endpoint) queueOutOfOrder(seq seqnum.Value, data []byte, fin bool) {
	e.stack.Stats().TCPExt.TCPOFOQueue.Add(1)
	end := seq.Add(seqnum.Size(len(data)))
	if fin {
		e.finOOO, e.finSeq = true, end
	}
	if len(data) > 0 {
		e.rcvBuf.writeAt(int(e.copiedSeq.Size(seq)), data)
		start := seq
		o := e.ooo
		i := 0
		for i < len(o) && o[i].end.LessThan(start) {
			i++
		}
		j := i
		for j < len(o) && o[j].start.LessThanEq(end) {
			start = seqnum.Min(start, o[j].start)
			end = seqnum.Max(end, o[j].end)
			j++
		}
		if i == j {
			o = append(o, seqRange{})
			copy(o[i+1:], o[i:])
			o[i] = seqRange{start, end}
		} else {
			o[i] = seqRange{start, end}
			o = append(o[:i+1], o[j:]...)
		}
		e.ooo = o
		e.lastOOO = seqRange{seq, seq.Add(seqnum.Size(len(data)))}
	}
	e.sendAck()
}

// receiveFin is tcp_fin: the peer finished sending.
func (e *endpoint) receiveFin() {
	e.rcvNxt++
	e.done = true
	e.shutdown |= rcvShutdown
	e.ooo = e.ooo[:0]
	e.finOOO = false
	switch e.state {
	case StateSynRecv, StateEstablished:
		e.setState(StateCloseWait)
		e.sendAck()
	case StateFinWait1:
		// Our FIN is not acknowledged yet: simultaneous close.
		e.sendAck()
		e.setState(StateClosing)
	case StateFinWait2:
		e.sendAck()
		e.enterTimeWait()
	default:
		e.sendAck()
	}
	e.notify(waiter.EventIn | waiter.EventRdHUp)
}

// rcvRTTMeasure estimates the RTT as seen by the receiver from echoed
// timestamps (tcp_rcv_rtt_measure_ts), for receive-buffer autotuning.
func (e *endpoint) rcvRTTMeasure(s *segment) {
	if !e.tsOK || !s.opts.HasTimestamps || s.opts.TSEcr == 0 || len(s.payload) == 0 {
		return
	}
	d := int32(e.tsNow() + e.tsOffset - s.opts.TSEcr)
	if d < 0 {
		return
	}
	if d == 0 {
		d = 1
	}
	sample := time.Duration(d) * time.Millisecond
	if e.rcvRTT == 0 || sample < e.rcvRTT {
		e.rcvRTT = sample
	} else {
		e.rcvRTT = (7*e.rcvRTT + sample) / 8
	}
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// synSentSegment is tcp_rcv_synsent_state_process (spec 58-66).
func (e *endpoint) synSentSegment(s *segment) {
	now := e.stamp()
	if s.has(flagAck) {
		if s.ack.LessThanEq(e.iss) || e.sndNxt.LessThan(s.ack) {
			if !s.has(flagRst) {
				e.proto.sendResetFor(s)
			}
			return
		}
		if e.proto.cfg.Timestamps && s.opts.HasTimestamps && s.opts.TSEcr != 0 {
			echo := s.opts.TSEcr - e.tsOffset
			start := uint32(e.retransStamp.UnixMilli())
			if int32(echo-start) < 0 || int32(e.tsNow()-echo) < 0 {
				// Active PAWS (spec 60).
				e.proto.sendResetFor(s)
				return
			}
		}
		if s.has(flagRst) {
			e.reset()
			return
		}
		if !s.has(flagSyn) {
			return
		}
		// SYN-ACK windows are never scaled; the window is the largest
		// seen when applyPeerSYN computes the MSS (tcp_ack runs before
		// tcp_sync_mss in tcp_rcv_synsent_state_process).
		e.sndWnd = uint32(s.window)
		e.maxWindow = e.sndWnd
		e.applyPeerSYN(s, now)
		e.sndUna = s.ack
		e.sndWl1, e.sndWl2 = s.seq, s.ack
		if e.retransmits == 0 {
			e.rttSample(now.Sub(e.retransStamp))
		}
		e.retransmits, e.backoff = 0, 0
		e.retransStamp = time.Time{}
		e.stopRtx()
		e.finishConnect()
		if e.deferAccept > 0 {
			e.pendingAck = true
			e.quickAcks = 0
			e.scheduleDelayedAckMax()
		} else {
			e.sendAck()
		}
		e.sendPending()
		return
	}
	if s.has(flagRst) {
		return
	}
	if s.has(flagSyn) {
		// Simultaneous open (spec 66), including connect to self.
		e.sndWnd = uint32(s.window)
		e.maxWindow = e.sndWnd
		e.applyPeerSYN(s, now)
		e.sndWl1 = s.seq
		e.setState(StateSynRecv)
		e.transmit(e.iss, 0, flagSyn|flagAck, false)
		e.armRTO()
	}
}

// scheduleDelayedAckMax arms the delayed ACK for TCP_DELACK_MAX (spec 64).
func (e *endpoint) scheduleDelayedAckMax() {
	e.armDelack(delackMax)
}

// applyPeerSYN takes the peer's ISN and negotiated options from its SYN
// or SYN-ACK (spec 63).
func (e *endpoint) applyPeerSYN(s *segment, now time.Time) {
	cfg := &e.proto.cfg
	e.irs = s.seq
	e.rcvNxt = s.seq.Add(1)
	e.rcvWup = e.rcvNxt
	e.copiedSeq = e.rcvNxt
	if cfg.WindowScaling && s.opts.WindowScale >= 0 {
		e.wscaleOK = true
		e.sndWscale = uint8(s.opts.WindowScale)
	} else {
		e.wscaleOK = false
		e.sndWscale, e.rcvWscale = 0, 0
		e.windowClamp = min(e.windowClamp, maxWindow)
	}
	e.tsOK = cfg.Timestamps && s.opts.HasTimestamps
	if e.tsOK {
		e.tsRecent = s.opts.TSVal
		e.tsRecentStamp = now
		e.advmss -= 12
	}
	e.sackOK = cfg.SACK && s.opts.SACKPermitted
	if s.opts.HasMSS {
		m := int(s.opts.MSS)
		if e.userMSS > 0 && e.userMSS < m {
			m = e.userMSS
		}
		e.mssClamp = m
	}
	e.syncMSS()
	e.initRcvMSS()
}

// growMaxWindow records a window offer; a new largest one recomputes the
// MSS, which is bounded by half of it (tcp_ack_update_window).
func (e *endpoint) growMaxWindow(wnd uint32) {
	if wnd > e.maxWindow {
		e.maxWindow = wnd
		e.syncMSS()
	}
}

// initRcvMSS is tcp_initialize_rcv_mss: a conservative guess of the
// peer's segment size.
func (e *endpoint) initRcvMSS() {
	h := min(e.advmss, e.mss, int(e.rcvWnd/2), mssDefault)
	e.rcvMSS = max(h, minMSS)
}
