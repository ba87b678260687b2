package tcp

import (
	"time"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/tcp/seqnum"
)

// dupThresh is the duplicate ACK threshold of fast retransmit (RFC 5681
// and tp->reordering's initial value).
const dupThresh = 3

// maxScoreboard bounds the SACK scoreboard; older ranges merge.
const maxScoreboard = 64

// addSacked records the peer's SACK block [start, end) in the sorted,
// merged scoreboard. It returns the number of newly sacked bytes.
func (e *endpoint) addSacked(start, end seqnum.Value) int {
	if !start.LessThan(end) {
		return 0
	}
	if start.LessThan(e.sndUna) {
		start = e.sndUna
	}
	if e.sndNxt.LessThan(end) {
		end = e.sndNxt
	}
	if !start.LessThan(end) {
		return 0
	}
	before := e.sackedBytes()
	s := e.sacked
	i := 0
	for i < len(s) && s[i].end.LessThan(start) {
		i++
	}
	j := i
	for j < len(s) && s[j].start.LessThanEq(end) {
		start = seqnum.Min(start, s[j].start)
		end = seqnum.Max(end, s[j].end)
		j++
	}
	if i == j {
		if len(s) >= maxScoreboard {
			return 0
		}
		s = append(s, seqRange{})
		copy(s[i+1:], s[i:])
		s[i] = seqRange{start, end}
	} else {
		s[i] = seqRange{start, end}
		s = append(s[:i+1], s[j:]...)
	}
	e.sacked = s
	if e.highSacked.LessThan(end) {
		e.highSacked = end
	}
	return e.sackedBytes() - before
}

// pruneSacked drops scoreboard ranges below snd_una.
func (e *endpoint) pruneSacked() {
	s := e.sacked
	k := 0
	for _, r := range s {
		if r.end.LessThanEq(e.sndUna) {
			continue
		}
		if r.start.LessThan(e.sndUna) {
			r.start = e.sndUna
		}
		s[k] = r
		k++
	}
	e.sacked = s[:k]
}

func (e *endpoint) sackedBytes() int {
	n := 0
	for _, r := range e.sacked {
		n += int(r.start.Size(r.end))
	}
	return n
}

// sackedIn returns the sacked bytes in [a, b).
func (e *endpoint) sackedIn(a, b seqnum.Value) int {
	n := 0
	for _, r := range e.sacked {
		s, t := seqnum.Max(r.start, a), seqnum.Min(r.end, b)
		if s.LessThan(t) {
			n += int(s.Size(t))
		}
	}
	return n
}

// pipeBytes is RFC 6675's pipe: bytes in flight, leaving out what was
// sacked and what is deemed lost but not yet retransmitted.
func (e *endpoint) pipeBytes() int {
	out := int(e.sndUna.Size(e.sndNxt))
	if out == 0 {
		return 0
	}
	out -= e.sackedBytes()
	if e.ca == caRecovery || e.ca == caLoss {
		from := seqnum.Max(e.highRxt, e.sndUna)
		if from.LessThan(e.lostEnd) {
			out -= int(from.Size(e.lostEnd)) - e.sackedIn(from, e.lostEnd)
		}
	}
	return max(out, 0)
}

// updateLostEnd recomputes how far holes count as lost in fast recovery.
// With SACK this is RACK with a zero reordering window during recovery
// (RFC 8985 §6.2): every hole below sacked data was sent before it and is
// lost. Without SACK only the segment at snd_una is (NewReno).
func (e *endpoint) updateLostEnd() {
	if e.ca != caRecovery || len(e.sacked) == 0 {
		return
	}
	if top := e.sacked[len(e.sacked)-1].start; e.lostEnd.LessThan(top) {
		e.lostEnd = top
	}
}

// armReorder starts the RACK reordering timer when the first SACK shows a
// hole (Open -> Disorder): if the hole is still there a quarter of the
// minimum RTT later, it is lost and fast recovery starts, even when fewer
// than three duplicate ACKs can arrive (small windows).
func (e *endpoint) armReorder() {
	d := max(e.minRTT/4, time.Millisecond)
	if e.srtt > 0 {
		d = min(d, e.srtt)
	}
	e.reoOn = true
	e.reoDL = e.stamp().Add(d)
	if e.reoTimer == nil {
		e.reoTimer = e.proto.clock.AfterFunc(d, e.onReorder)
	} else {
		e.reoTimer.Reset(d)
	}
}

func (e *endpoint) onReorder() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.beginStamp()
	defer e.endStamp()
	if !e.reoOn {
		return
	}
	if now := e.stamp(); now.Before(e.reoDL) {
		e.reoTimer.Reset(e.reoDL.Sub(now))
		return
	}
	e.reoOn = false
	if e.ca == caDisorder && len(e.sacked) > 0 && e.sndUna != e.sndNxt && e.state.synchronized() {
		e.enterRecovery()
		e.sendPending()
	}
}

func (e *endpoint) stopReorder() {
	if e.reoOn {
		e.reoOn = false
		e.reoTimer.Stop()
	}
}

// retransmitLost resends lost segments while the congestion window
// allows (tcp_xmit_retransmit_queue).
func (e *endpoint) retransmitLost() {
	for e.cwndAllows() {
		seq := seqnum.Max(e.highRxt, e.sndUna)
		// Skip sacked data.
		for _, r := range e.sacked {
			if r.start.LessThanEq(seq) && seq.LessThan(r.end) {
				seq = r.end
			}
		}
		if !seq.LessThan(e.lostEnd) || !seq.LessThan(e.sndNxt) {
			return
		}
		end := seqnum.Min(e.lostEnd, seq.Add(seqnum.Size(e.curMSS())))
		for _, r := range e.sacked {
			if seq.LessThan(r.start) && r.start.LessThan(end) {
				end = r.start
			}
		}
		if e.writeSeq.LessThan(end) {
			end = e.writeSeq
		}
		n := int(seq.Size(end))
		flags := header.TCPFlagAck
		if n == 0 {
			// Only the FIN is left.
			if !e.finSent() || seq != e.writeSeq {
				return
			}
			flags |= header.TCPFlagFin
			end = end.Add(1)
		} else if end == e.writeSeq && e.finSent() && e.writeSeq.LessThan(e.lostEnd) {
			flags |= header.TCPFlagFin
			end = end.Add(1)
		}
		e.transmit(seq, n, flags, true)
		e.highRxt = end
		e.rtxMark = e.sndNxt
		if e.rttTiming && e.rttSeq.LessThanEq(end) {
			e.rttTiming = false // Karn: no sample from retransmitted data
		}
	}
}

// detectLostRetransmit re-marks retransmitted holes as lost once data
// sent after the retransmission has been sacked (RACK, RFC 8985, with the
// zero reordering window it uses during recovery).
func (e *endpoint) detectLostRetransmit() {
	if e.ca != caRecovery && e.ca != caLoss || !e.sndUna.LessThan(e.highRxt) {
		return
	}
	if e.sackedIn(e.rtxMark, e.sndNxt) > 0 {
		e.highRxt = e.sndUna
		e.rtxMark = e.sndNxt
	}
}

// enterRecovery starts fast recovery (tcp_enter_recovery): ssthresh from
// the congestion controller, cwnd set to it (rate halving is left out),
// and the first hole retransmitted at once (fast retransmit).
func (e *endpoint) enterRecovery() {
	st := e.stack.Stats()
	if e.sackOK {
		st.TCPExt.TCPSackRecovery.Add(1)
	} else {
		st.TCPExt.TCPRenoRecovery.Add(1)
	}
	e.cw.SndUna, e.cw.SndNxt = uint32(e.sndUna), uint32(e.sndNxt)
	e.cw.SSThresh = e.ccAlg.SSThresh(&e.cw)
	e.cw.Cwnd = max(e.cw.SSThresh, 2)
	e.cw.CwndCnt = 0
	e.ca = caRecovery
	e.recoveryPoint = e.sndNxt
	e.highRxt = e.sndUna
	e.lostEnd = e.sndUna.Add(seqnum.Size(e.mss))
	if e.sndNxt.LessThan(e.lostEnd) {
		e.lostEnd = e.sndNxt
	}
	e.updateLostEnd()
	e.stopReorder()
	st.TCPExt.TCPFastRetrans.Add(1)
	// The fast retransmission itself is not limited by cwnd.
	cw := e.cw.Cwnd
	e.cw.Cwnd = e.inFlightPackets() + 1
	e.retransmitLost()
	e.cw.Cwnd = cw
}

// enterLoss is tcp_enter_loss on a retransmission timeout: everything not
// sacked is lost, cwnd drops to one packet.
func (e *endpoint) enterLoss() {
	if e.ca != caLoss || e.backoff == 0 {
		e.cw.SndUna, e.cw.SndNxt = uint32(e.sndUna), uint32(e.sndNxt)
		if e.ca != caRecovery && e.ca != caLoss {
			e.cw.SSThresh = e.ccAlg.SSThresh(&e.cw)
		}
		e.ccAlg.Loss(&e.cw)
	}
	e.cw.Cwnd = 1
	e.cw.CwndCnt = 0
	e.ca = caLoss
	e.dupAcks = 0
	e.recoveryPoint = e.sndNxt
	e.highRxt = e.sndUna
	e.lostEnd = e.sndNxt
}

// processSACK applies the SACK blocks of an ACK; D-SACK blocks (below the
// ACK or inside the first block) are counted and ignored.
func (e *endpoint) processSACK(s *segment) int {
	if !e.sackOK || s.opts.NumSACKBlocks == 0 {
		return 0
	}
	newly := 0
	for i := 0; i < s.opts.NumSACKBlocks; i++ {
		b := s.opts.SACKBlocks[i]
		start, end := seqnum.Value(b.Start), seqnum.Value(b.End)
		if i == 0 && (start.LessThan(s.ack) || (s.opts.NumSACKBlocks > 1 &&
			seqnum.Value(s.opts.SACKBlocks[1].Start).LessThanEq(start) && end.LessThanEq(seqnum.Value(s.opts.SACKBlocks[1].End)))) {
			e.stack.Stats().TCPExt.TCPDSACKRecv.Add(1)
			e.dsackDups++
			continue
		}
		if !start.LessThan(end) || e.sndNxt.LessThan(end) || end.LessThanEq(e.sndUna) {
			continue // invalid or stale block
		}
		newly += e.addSacked(start, end)
	}
	return newly
}

// fillSACKBlocks puts our receive-side SACK information into an outgoing
// ACK: a D-SACK block first, then the most recent out-of-order range, then
// the others from the highest down (tcp_build_sack).
func (e *endpoint) fillSACKBlocks(o *header.TCPOptions) {
	n := 0
	if e.dsackPending && e.proto.cfg.DSACK {
		o.SACKBlocks[n] = header.SACKBlock{Start: uint32(e.dsack.start), End: uint32(e.dsack.end)}
		n++
	}
	if len(e.ooo) > 0 {
		for _, r := range e.ooo {
			if r.start.LessThanEq(e.lastOOO.start) && e.lastOOO.start.LessThan(r.end) {
				o.SACKBlocks[n] = header.SACKBlock{Start: uint32(r.start), End: uint32(r.end)}
				n++
				break
			}
		}
		for i := len(e.ooo) - 1; i >= 0 && n < header.TCPMaxSACKBlocks; i-- {
			r := e.ooo[i]
			if r.start.LessThanEq(e.lastOOO.start) && e.lastOOO.start.LessThan(r.end) {
				continue
			}
			o.SACKBlocks[n] = header.SACKBlock{Start: uint32(r.start), End: uint32(r.end)}
			n++
		}
	}
	o.NumSACKBlocks = n
}
