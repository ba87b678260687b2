package tcp

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/tcp/seqnum"
	"github.com/netprov/netprov/stack/waiter"
)

// timerKind says what a pending timer is for.
type timerKind uint8

const (
	timerNone timerKind = iota
	timerRetrans
	timerProbe
	timerTLP
	timerKeepalive
	timerFinWait2
	timerTimeWait
)

const (
	synFlag = header.TCPFlagSyn
	ackFlag = header.TCPFlagAck

	waiterAll = waiter.EventIn | waiter.EventOut | waiter.EventErr | waiter.EventHUp | waiter.EventRdHUp
)

// armRTO (re)starts the retransmission timer for the current RTO
// (inet_csk_reset_xmit_timer with ICSK_TIME_RETRANS).
func (e *endpoint) armRTO() {
	e.armRtx(timerRetrans, e.rto)
}

// armRtx sets the deadline of the retransmit/probe timer. Every ACK
// pushes the deadline later; the clock's timer is only moved when the new
// deadline is earlier than when it fires (rtxFire), otherwise it fires
// early and onRtxTimer sleeps again until the deadline. This saves a
// timer reset per ACK on the bulk path.
func (e *endpoint) armRtx(kind timerKind, d time.Duration) {
	e.rtxKind = kind
	e.rtxDeadline = e.stamp().Add(d)
	if !e.rtxFire.IsZero() && !e.rtxDeadline.Before(e.rtxFire) {
		return
	}
	e.rtxFire = e.rtxDeadline
	if e.rtxTimer == nil {
		e.rtxTimer = e.proto.clock.AfterFunc(d, e.onRtxTimer)
	} else {
		e.rtxTimer.Reset(d)
	}
}

func (e *endpoint) stopRtx() {
	if e.rtxKind != timerNone {
		e.rtxKind = timerNone
		if e.rtxTimer != nil {
			e.rtxTimer.Stop()
		}
	}
	e.rtxFire = time.Time{}
}

func (e *endpoint) onRtxTimer() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.beginStamp()
	defer e.endStamp()
	e.rtxFire = time.Time{}
	if e.rtxKind == timerNone {
		return
	}
	if now := e.stamp(); now.Before(e.rtxDeadline) {
		e.rtxFire = e.rtxDeadline
		e.rtxTimer.Reset(e.rtxDeadline.Sub(now))
		return
	}
	kind := e.rtxKind
	e.rtxKind = timerNone
	switch kind {
	case timerRetrans:
		e.retransmitTimer()
	case timerProbe:
		e.probeTimer()
	case timerTLP:
		e.lossProbe()
	}
}

// armXmitTimer arms the tail loss probe (RACK-TLP, RFC 8985) when it
// applies, else the retransmission timer (tcp_schedule_loss_probe).
func (e *endpoint) armXmitTimer() {
	if (e.ca == caOpen || e.ca == caDisorder) && e.srtt > 0 && !e.tlpOut &&
		int(e.sndUna.Size(e.sndNxt)) > e.mss {
		pto := 2*e.srtt + 2*time.Millisecond
		if pto < e.rto {
			e.armRtx(timerTLP, pto)
			return
		}
	}
	e.armRTO()
}

// lossProbe sends the tail loss probe: one new segment if the windows
// allow, else the last segment again, so that a tail loss is repaired by
// SACK recovery instead of a timeout.
func (e *endpoint) lossProbe() {
	if !e.state.synchronized() || e.sndUna == e.sndNxt {
		return
	}
	e.stack.Stats().TCPExt.TCPLossProbes.Add(1)
	e.tlpOut = true
	unsent := int(e.sndNxt.Size(e.writeSeq))
	wndEnd := e.sndUna.Add(seqnum.Size(e.sndWnd))
	if !e.finSent() && unsent > 0 && e.sndNxt.LessThan(wndEnd) {
		n := min(unsent, e.curMSS(), int(e.sndNxt.Size(wndEnd)))
		e.transmit(e.sndNxt, n, header.TCPFlagAck, false)
		e.sndNxt = e.sndNxt.Add(seqnum.Size(n))
	} else {
		end := seqnum.Min(e.sndNxt, e.writeSeq)
		start := e.sndUna
		if m := e.curMSS(); int(start.Size(end)) > m {
			start = end - seqnum.Value(m)
		}
		flags := header.TCPFlagAck
		if e.finSent() {
			flags |= header.TCPFlagFin
		}
		e.transmit(start, int(start.Size(end)), flags, true)
	}
	e.armRTO()
}

// armProbe starts the zero-window probe timer (ICSK_TIME_PROBE0).
func (e *endpoint) armProbe() {
	if e.rtxKind == timerProbe {
		return
	}
	d := min(e.rto<<min(e.backoff, 20), rtoMax)
	e.armRtx(timerProbe, d)
}

// probeTimer is tcp_probe_timer + tcp_send_probe0: send a window probe
// (an old sequence number with no data) and back off; give up after
// tcp_retries2 unanswered probes.
func (e *endpoint) probeTimer() {
	if !e.state.synchronized() || e.sndWnd != 0 || e.sndNxt != e.sndUna || e.sndNxt == e.writeSeq {
		e.backoff = 0
		e.probesOut = 0
		e.sendPending()
		return
	}
	max := e.proto.cfg.Retries2
	if e.orphan {
		max = e.proto.cfg.OrphanRetries
		if max == 0 {
			max = 8
		}
	}
	if e.probesOut >= max {
		e.stack.Stats().TCPExt.TCPAbortOnTimeout.Add(1)
		e.abort(unix.ETIMEDOUT)
		return
	}
	e.stack.Stats().TCPExt.TCPWinProbe.Add(1)
	e.transmit(e.sndUna-1, 0, ackFlag, false)
	e.probesOut++
	e.backoff++
	e.armRtx(timerProbe, min(e.rto<<min(e.backoff, 20), rtoMax))
}

// scheduleAck sends an ACK now or arms the delayed-ACK timer
// (__tcp_ack_snd_check): immediately in quick-ack mode, for out-of-order
// data, or once more than one full segment is unacknowledged.
func (e *endpoint) scheduleAck(immediate bool) {
	if e.state == StateClose {
		return
	}
	unacked := int(e.rcvWup.Size(e.rcvNxt))
	if immediate || e.quickAcks > 0 || e.quickackOpt || len(e.ooo) > 0 || unacked > e.rcvMSS {
		e.sendAck()
		return
	}
	e.pendingAck = true
	if e.delackOn {
		return
	}
	ato := e.ato
	if ato == 0 {
		ato = atoMin
	}
	// The delay never exceeds the RTT (or 200 ms) (tcp_send_delayed_ack).
	if e.srtt > 0 {
		ato = min(ato, max(e.srtt, delackMin))
	}
	ato = min(ato, delackMax)
	e.armDelack(ato)
}

// armDelack sets the delayed-ACK deadline. Like armRtx it moves the
// clock's timer only when the deadline is earlier than when the timer
// fires (delackFire); stopDelack leaves the timer running, and a callback
// that finds no ACK owed or an early time does nothing or sleeps again.
// The data path sends an ACK every second segment, so this saves a timer
// stop and reset per two segments.
func (e *endpoint) armDelack(d time.Duration) {
	e.delackOn = true
	e.delackDL = e.stamp().Add(d)
	if !e.delackFire.IsZero() && !e.delackDL.Before(e.delackFire) {
		return
	}
	e.delackFire = e.delackDL
	if e.delackTimer == nil {
		e.delackTimer = e.proto.clock.AfterFunc(d, e.onDelack)
	} else {
		e.delackTimer.Reset(d)
	}
}

func (e *endpoint) stopDelack() {
	e.delackOn = false
}

func (e *endpoint) onDelack() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.beginStamp()
	defer e.endStamp()
	e.delackFire = time.Time{}
	if !e.delackOn {
		return
	}
	if now := e.stamp(); now.Before(e.delackDL) {
		e.delackFire = e.delackDL
		e.delackTimer.Reset(e.delackDL.Sub(now))
		return
	}
	e.delackOn = false
	if e.pendingAck {
		e.stack.Stats().TCPExt.DelayedACKs.Add(1)
		e.sendAck()
	}
}

// armKeep starts the socket's second timer (sk_timer in Linux): keepalive,
// the orphaned FIN_WAIT2 timeout or the TIME_WAIT period.
func (e *endpoint) armKeep(kind timerKind, d time.Duration) {
	e.keepKind = kind
	e.keepDeadline = e.stamp().Add(d)
	if e.keepTimer == nil {
		e.keepTimer = e.proto.clock.AfterFunc(d, e.onKeepTimer)
	} else {
		e.keepTimer.Reset(d)
	}
}

func (e *endpoint) stopKeep() {
	if e.keepKind != timerNone {
		e.keepKind = timerNone
		e.keepTimer.Stop()
	}
}

// armKeepalive starts keepalive after the idle time when SO_KEEPALIVE is
// on in a synchronized state.
func (e *endpoint) armKeepalive() {
	if !e.keepaliveOn || e.state != StateEstablished && e.state != StateCloseWait && e.state != StateFinWait1 && e.state != StateFinWait2 {
		if e.keepKind == timerKeepalive {
			e.stopKeep()
		}
		return
	}
	if e.keepKind == timerFinWait2 || e.keepKind == timerTimeWait {
		return
	}
	e.armKeep(timerKeepalive, e.keepIdle)
}

func (e *endpoint) armFinWait2() {
	if e.orphan && e.state == StateFinWait2 {
		e.armKeep(timerFinWait2, e.proto.cfg.FinTimeout)
	}
}

func (e *endpoint) onKeepTimer() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.beginStamp()
	defer e.endStamp()
	if e.keepKind == timerNone {
		return
	}
	now := e.stamp()
	if now.Before(e.keepDeadline) {
		e.keepTimer.Reset(e.keepDeadline.Sub(now))
		return
	}
	kind := e.keepKind
	e.keepKind = timerNone
	switch kind {
	case timerTimeWait:
		e.setState(StateClose)
	case timerFinWait2:
		if e.state == StateFinWait2 {
			e.setState(StateClose)
		}
	case timerKeepalive:
		e.keepaliveTimer(now)
	}
}

// keepaliveTimer is the keepalive part of tcp_keepalive_timer.
func (e *endpoint) keepaliveTimer(now time.Time) {
	if !e.keepaliveOn || !e.state.synchronized() || e.state == StateTimeWait {
		return
	}
	if e.sndUna != e.sndNxt || e.sndNxt != e.writeSeq && !e.finSent() {
		// Data in flight: the retransmission timer is in charge.
		e.armKeep(timerKeepalive, e.keepIdle)
		return
	}
	idle := now.Sub(e.lastRecv)
	if idle >= e.keepIdle {
		if e.userTimeout > 0 && idle >= e.userTimeout && e.probesOut > 0 || e.userTimeout == 0 && e.probesOut >= e.keepCnt {
			e.sendActiveReset()
			e.abort(unix.ETIMEDOUT)
			return
		}
		e.stack.Stats().TCPExt.TCPKeepAlive.Add(1)
		e.transmit(e.sndUna-1, 0, ackFlag, false)
		e.probesOut++
		e.armKeep(timerKeepalive, e.keepIntvl)
		return
	}
	e.armKeep(timerKeepalive, e.keepIdle-idle)
}

// stopTimers cancels every timer (tcp_clear_xmit_timers).
func (e *endpoint) stopTimers() {
	e.stopReorder()
	e.stopRtx()
	e.stopDelack()
	e.stopKeep()
}
