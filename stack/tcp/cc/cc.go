// Package cc holds TCP congestion control algorithms, written after Linux's
// tcp_cong.c (Reno) and tcp_cubic.c (CUBIC with HyStart). As in Linux the
// congestion window is counted in packets (segments of one MSS), so the
// values match what TCP_INFO reports on a kernel.
package cc

import (
	"fmt"
	"time"
)

// Window is the congestion state a Controller works on; the TCP sender owns
// it and updates SndUna/SndNxt before each call.
type Window struct {
	// Cwnd is the congestion window in packets (snd_cwnd).
	Cwnd uint32
	// SSThresh is the slow start threshold in packets (snd_ssthresh).
	SSThresh uint32
	// CwndCnt counts ACKed packets towards the next +1 in congestion
	// avoidance (snd_cwnd_cnt).
	CwndCnt uint32
	// CwndClamp is the largest allowed Cwnd (snd_cwnd_clamp).
	CwndClamp uint32
	// MSS is the sender's current segment size in bytes.
	MSS uint32
	// SndUna and SndNxt are the sender's sequence numbers, used by HyStart
	// to find round boundaries.
	SndUna, SndNxt uint32
}

// InfiniteSSThresh is the initial slow start threshold (TCP_INFINITE_SSTHRESH).
const InfiniteSSThresh = 0x7fffffff

// NewWindow returns the window of a new connection: initial cwnd (Linux
// TCP_INIT_CWND is 10), infinite ssthresh.
func NewWindow(initCwnd uint32, mss uint32) Window {
	return Window{Cwnd: initCwnd, SSThresh: InfiniteSSThresh, CwndClamp: ^uint32(0) >> 16, MSS: mss}
}

// InSlowStart reports whether cwnd is below ssthresh (tcp_in_slow_start).
func (w *Window) InSlowStart() bool { return w.Cwnd < w.SSThresh }

// Controller is a congestion control algorithm (struct tcp_congestion_ops).
type Controller interface {
	// Name is the algorithm's name for TCP_CONGESTION.
	Name() string
	// Init is called when the connection starts sending data.
	Init(w *Window)
	// CongAvoid grows the window for ackedPackets newly acknowledged
	// packets (cong_avoid). inFlight is the number of packets that were in
	// flight before this ACK: the window grows only when it limited the
	// sender (tcp_is_cwnd_limited).
	CongAvoid(w *Window, ackedPackets, inFlight uint32, now time.Time)
	// SSThresh returns the slow start threshold after a loss (ssthresh);
	// the sender then sets Cwnd per its recovery algorithm.
	SSThresh(w *Window) uint32
	// PktsAcked reports an RTT sample for acked packets (pkts_acked);
	// rtt is 0 when the ACK gave no valid sample.
	PktsAcked(w *Window, acked uint32, rtt time.Duration, now time.Time)
	// Loss is called when the sender enters the Loss state (RTO).
	Loss(w *Window)
}

// Names lists the available algorithms (tcp_available_congestion_control).
var Names = []string{"cubic", "reno"}

// New returns a new instance of the named algorithm, or an error naming the
// available ones.
func New(name string, now time.Time) (Controller, error) {
	switch name {
	case "cubic":
		return newCubic(now), nil
	case "reno":
		return &Reno{}, nil
	}
	return nil, fmt.Errorf("congestion control %q not available (have %v)", name, Names)
}

// isCwndLimited mirrors tcp_is_cwnd_limited: in slow start the window grows
// while it is less than twice what is in flight; afterwards only when the
// flight filled it.
func isCwndLimited(w *Window, inFlight uint32) bool {
	if w.InSlowStart() {
		return w.Cwnd < 2*inFlight
	}
	return inFlight >= w.Cwnd
}

// SlowStart grows Cwnd by acked packets up to SSThresh and returns the
// acked packets left over for congestion avoidance (tcp_slow_start).
func SlowStart(w *Window, acked uint32) uint32 {
	cwnd := min(w.Cwnd+acked, w.SSThresh)
	acked -= cwnd - w.Cwnd
	w.Cwnd = min(cwnd, w.CwndClamp)
	return acked
}

// CongAvoidAI grows Cwnd by one packet per aw packets acked (additive
// increase, tcp_cong_avoid_ai).
func CongAvoidAI(w *Window, aw, acked uint32) {
	if aw == 0 {
		aw = 1
	}
	// Credits accumulated at a higher aw are applied gently now.
	if w.CwndCnt >= aw {
		w.CwndCnt = 0
		w.Cwnd++
	}
	w.CwndCnt += acked
	if w.CwndCnt >= aw {
		delta := w.CwndCnt / aw
		w.CwndCnt -= delta * aw
		w.Cwnd += delta
	}
	w.Cwnd = min(w.Cwnd, w.CwndClamp)
}
