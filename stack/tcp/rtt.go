package tcp

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/tcp/seqnum"
)

// rttSample feeds one RTT measurement into the estimator (tcp_rtt_estimator
// and tcp_set_rto; RFC 6298): RTO = SRTT + max(4*RTTVAR, tcp_rto_min),
// at most 120 s.
func (e *endpoint) rttSample(rtt time.Duration) {
	if rtt <= 0 {
		rtt = time.Microsecond
	}
	if e.minRTT == 0 || rtt < e.minRTT {
		e.minRTT = rtt
	}
	if e.srtt == 0 {
		e.srtt = rtt
		e.rttvar = rtt / 2
	} else {
		d := e.srtt - rtt
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + rtt) / 8
	}
	e.setRTO()
}

func (e *endpoint) setRTO() {
	minRTO := e.proto.cfg.MinRTO
	if minRTO <= 0 {
		minRTO = rtoMin
	}
	e.rto = min(e.srtt+max(4*e.rttvar, minRTO), rtoMax)
}

// ackRTT takes an RTT sample from an ACK that advanced snd_una: from the
// echoed timestamp when timestamps are on, else from the timed segment
// (Karn's rule: never from a retransmission).
func (e *endpoint) ackRTT(s *segment, ack seqnum.Value) time.Duration {
	var rtt time.Duration
	if e.tsOK && s.opts.HasTimestamps && s.opts.TSEcr != 0 {
		ms := int32(e.tsNow() + e.tsOffset - s.opts.TSEcr)
		if ms >= 0 {
			rtt = time.Duration(ms) * time.Millisecond
			if rtt == 0 {
				// Sub-millisecond: the timestamp clock cannot tell;
				// use the timed segment if there is one.
				if e.rttTiming && e.rttSeq.LessThanEq(ack) {
					rtt = e.stamp().Sub(e.rttStart)
				} else {
					rtt = 500 * time.Microsecond
				}
			}
		}
	} else if e.rttTiming && e.rttSeq.LessThanEq(ack) {
		rtt = e.stamp().Sub(e.rttStart)
	}
	if e.rttTiming && e.rttSeq.LessThanEq(ack) {
		e.rttTiming = false
	}
	if rtt > 0 {
		e.rttSample(rtt)
	}
	return rtt
}

// modelTimeout is tcp_model_timeout: how long `boundary` retransmissions
// take with exponential backoff from rtoBase, capped at TCP_RTO_MAX.
func modelTimeout(boundary int, rtoBase time.Duration) time.Duration {
	thresh := 0
	for (rtoBase << (thresh + 1)) <= rtoMax {
		thresh++
	}
	if boundary <= thresh {
		return time.Duration((2<<boundary)-1) * rtoBase
	}
	return time.Duration((2<<thresh)-1)*rtoBase + time.Duration(boundary-thresh)*rtoMax
}

// retriesTimedOut is retransmits_timed_out: the connection has been
// retransmitting for longer than `boundary` backed-off RTOs (or the user
// timeout).
func (e *endpoint) retriesTimedOut(boundary int, rtoBase time.Duration) bool {
	if e.retransmits == 0 || e.retransStamp.IsZero() {
		return false
	}
	elapsed := e.stamp().Sub(e.retransStamp)
	if e.userTimeout > 0 {
		return elapsed >= e.userTimeout
	}
	return elapsed >= modelTimeout(boundary, rtoBase)
}

// retransmitTimer is tcp_retransmit_timer (and tcp_write_timeout).
func (e *endpoint) retransmitTimer() {
	st := e.stack.Stats()
	switch e.state {
	case StateSynSent, StateSynRecv:
		if e.retransmits >= e.proto.cfg.SynRetries && e.retriesTimedOut(e.proto.cfg.SynRetries, timeoutInit) {
			e.abort(unix.ETIMEDOUT)
			st.TCP.AttemptFails.Add(1)
			return
		}
		e.retransmits++
		e.backoff++
		e.rto = min(e.rto*2, rtoMax)
		st.TCPExt.TCPTimeouts.Add(1)
		if e.state == StateSynSent {
			e.transmit(e.iss, 0, synFlag, true)
		} else {
			e.transmit(e.iss, 0, synFlag|ackFlag, true)
		}
		e.armRTO()
		return
	case StateClose, StateListen, StateTimeWait:
		return
	}
	if e.sndUna == e.sndNxt {
		return
	}
	retries := e.proto.cfg.Retries2
	if e.orphan {
		retries = e.proto.cfg.OrphanRetries
		if retries == 0 {
			retries = 8
		}
	}
	if e.retriesTimedOut(retries, rtoMin) {
		st.TCPExt.TCPAbortOnTimeout.Add(1)
		e.sendActiveReset()
		err := unix.ETIMEDOUT
		if e.softErr != 0 {
			err = e.softErr
		}
		e.abort(err)
		return
	}
	if e.retransmits == 0 {
		e.retransStamp = e.rtxSentTime()
	}
	st.TCPExt.TCPTimeouts.Add(1)
	e.enterLoss()
	e.retransmits++
	e.backoff++
	e.rttTiming = false
	e.retransmitLost()
	e.rto = min(e.rto*2, rtoMax)
	e.armRTO()
}

// rtxSentTime approximates the send time of the head segment.
func (e *endpoint) rtxSentTime() time.Time {
	return e.stamp().Add(-e.rto)
}
