package cc

import "time"

// Reno is NewReno congestion avoidance (tcp_reno_cong_avoid / tcp_reno_ssthresh).
type Reno struct{}

// Name implements Controller.
func (*Reno) Name() string { return "reno" }

// Init implements Controller.
func (*Reno) Init(*Window) {}

// CongAvoid implements Controller: slow start, then +1 packet per window.
func (*Reno) CongAvoid(w *Window, acked, inFlight uint32, _ time.Time) {
	if !isCwndLimited(w, inFlight) {
		return
	}
	if w.InSlowStart() {
		if acked = SlowStart(w, acked); acked == 0 {
			return
		}
	}
	CongAvoidAI(w, w.Cwnd, acked)
}

// SSThresh implements Controller: half the window, at least 2.
func (*Reno) SSThresh(w *Window) uint32 { return max(w.Cwnd>>1, 2) }

// PktsAcked implements Controller.
func (*Reno) PktsAcked(*Window, uint32, time.Duration, time.Time) {}

// Loss implements Controller.
func (*Reno) Loss(*Window) {}
