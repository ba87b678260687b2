package cc

import (
	"math"
	"time"
)

// CUBIC parameters: Linux's module parameter defaults.
const (
	cubicBetaScale  = 1024
	cubicBeta       = 717 // 717/1024 ≈ 0.7: multiplicative decrease
	cubicHZShift    = 10  // time is kept in units of 2^-10 s
	cubicBicScale   = 41
	cubeRTTScale    = cubicBicScale * 10
	cubicBetaScale8 = 8 * (cubicBetaScale + cubicBeta) / 3 / (cubicBetaScale - cubicBeta)
	// cubeFactor is 2^(10+3*HZ)/cube_rtt_scale: it turns a cwnd distance
	// into K^3 in 2^-10 s units.
	cubeFactor = (uint64(1) << (10 + 3*cubicHZShift)) / cubeRTTScale

	hystartLowWindow  = 16
	hystartAckDelta   = 2 * time.Millisecond
	hystartMinSamples = 8
	hystartDelayMin   = 4 * time.Millisecond
	hystartDelayMax   = 16 * time.Millisecond
)

// Cubic is CUBIC (RFC 9438) as Linux implements it, with HyStart's ACK-train
// and delay-increase detection ending slow start early.
type Cubic struct {
	cnt         uint32 // packets acked per +1 of cwnd
	lastMaxCwnd uint32 // W_max before the last reduction
	lastCwnd    uint32
	lastTime    time.Time
	originPoint uint32 // W_max of the current epoch
	k           uint32 // time to reach originPoint, in 2^-10 s
	delayMin    time.Duration
	epochStart  time.Time // zero: no epoch
	ackCnt      uint32
	tcpCwnd     uint32 // the Reno-equivalent window (TCP friendliness)
	sampleCnt   uint32
	found       bool
	roundStart  time.Time
	lastAck     time.Time
	endSeq      uint32
	currRTT     time.Duration
}

// CubicName is CUBIC's name for TCP_CONGESTION.
const CubicName = "cubic"

func newCubic(now time.Time) *Cubic { return InitCubic(new(Cubic), now) }

// InitCubic (re)initialises c as a fresh CUBIC instance starting at now and
// returns it, so that an owner can embed the state instead of allocating it.
func InitCubic(c *Cubic, now time.Time) *Cubic {
	c.reset()
	c.roundStart, c.lastAck = now, now
	return c
}

func (c *Cubic) reset() {
	*c = Cubic{}
	c.currRTT = math.MaxInt64
}

// Name implements Controller.
func (*Cubic) Name() string { return "cubic" }

// Init implements Controller.
func (c *Cubic) Init(w *Window) {
	c.reset()
	c.hystartReset(w, time.Time{})
}

func (c *Cubic) hystartReset(w *Window, now time.Time) {
	c.roundStart, c.lastAck = now, now
	c.endSeq = w.SndNxt
	c.currRTT = math.MaxInt64
	c.sampleCnt = 0
}

// CongAvoid implements Controller (cubictcp_cong_avoid).
func (c *Cubic) CongAvoid(w *Window, acked, inFlight uint32, now time.Time) {
	if !isCwndLimited(w, inFlight) {
		return
	}
	if w.InSlowStart() {
		if acked = SlowStart(w, acked); acked == 0 {
			return
		}
	}
	c.update(w.Cwnd, acked, now)
	CongAvoidAI(w, c.cnt, acked)
}

// update computes c.cnt from the cubic function (bictcp_update).
func (c *Cubic) update(cwnd, acked uint32, now time.Time) {
	c.ackCnt += acked
	if c.lastCwnd == cwnd && now.Sub(c.lastTime) <= time.Second/32 {
		return
	}
	if c.epochStart.IsZero() || !now.Equal(c.lastTime) {
		c.lastCwnd, c.lastTime = cwnd, now
		if c.epochStart.IsZero() {
			c.epochStart = now
			c.ackCnt = acked
			c.tcpCwnd = cwnd
			if c.lastMaxCwnd <= cwnd {
				c.k = 0
				c.originPoint = cwnd
			} else {
				c.k = cubicRoot(cubeFactor * uint64(c.lastMaxCwnd-cwnd))
				c.originPoint = c.lastMaxCwnd
			}
		}
		// t is the time since the epoch started plus the minimum delay, in
		// 2^-10 s: where on the curve the window should be one RTT from now.
		elapsed := now.Sub(c.epochStart) + c.delayMin
		t := uint64(elapsed) << cubicHZShift / uint64(time.Second)
		var offs uint64
		if t < uint64(c.k) {
			offs = uint64(c.k) - t
		} else {
			offs = t - uint64(c.k)
		}
		delta := uint32((cubeRTTScale * offs * offs * offs) >> (10 + 3*cubicHZShift))
		var target uint32
		if t < uint64(c.k) {
			target = c.originPoint - delta
		} else {
			target = c.originPoint + delta
		}
		if target > cwnd {
			c.cnt = cwnd / (target - cwnd)
		} else {
			c.cnt = 100 * cwnd // very small increment
		}
		// The initial growth of cubic should be no slower than Reno's.
		if c.lastMaxCwnd == 0 && c.cnt > 20 {
			c.cnt = 20
		}
	}
	// TCP friendliness: never grow slower than Reno would.
	delta := (cwnd * cubicBetaScale8) >> 3
	for delta > 0 && c.ackCnt > delta {
		c.ackCnt -= delta
		c.tcpCwnd++
	}
	if c.tcpCwnd > cwnd {
		maxCnt := cwnd / (c.tcpCwnd - cwnd)
		if c.cnt > maxCnt {
			c.cnt = maxCnt
		}
	}
	c.cnt = max(c.cnt, 2)
}

// SSThresh implements Controller (cubictcp_recalc_ssthresh): remember the
// window at the loss, with fast convergence, and reduce by beta.
func (c *Cubic) SSThresh(w *Window) uint32 {
	c.epochStart = time.Time{}
	if w.Cwnd < c.lastMaxCwnd {
		c.lastMaxCwnd = w.Cwnd * (cubicBetaScale + cubicBeta) / (2 * cubicBetaScale)
	} else {
		c.lastMaxCwnd = w.Cwnd
	}
	return max(w.Cwnd*cubicBeta/cubicBetaScale, 2)
}

// Loss implements Controller (cubictcp_state on TCP_CA_Loss).
func (c *Cubic) Loss(w *Window) {
	// bictcp_reset clears everything, W_max and delay_min included: after
	// an RTO the next epoch starts from the current window.
	now := c.lastAck
	c.reset()
	c.hystartReset(w, now)
}

// PktsAcked implements Controller (cubictcp_acked): track the minimum RTT
// and run HyStart while in slow start.
func (c *Cubic) PktsAcked(w *Window, _ uint32, rtt time.Duration, now time.Time) {
	if rtt <= 0 {
		return
	}
	// Discard delay samples right after fast recovery.
	if !c.epochStart.IsZero() && now.Sub(c.epochStart) < time.Second {
		return
	}
	if c.delayMin == 0 || c.delayMin > rtt {
		c.delayMin = rtt
	}
	if !c.found && w.InSlowStart() && w.Cwnd >= hystartLowWindow {
		c.hystartUpdate(w, rtt, now)
	}
}

func (c *Cubic) hystartUpdate(w *Window, delay time.Duration, now time.Time) {
	if int32(w.SndUna-c.endSeq) > 0 {
		c.hystartReset(w, now)
	}
	// ACK train: ACKs arriving closely spaced for longer than the minimum
	// delay mean the pipe is full.
	if now.Sub(c.lastAck) <= hystartAckDelta {
		c.lastAck = now
		if now.Sub(c.roundStart) > c.delayMin {
			c.found = true
			w.SSThresh = w.Cwnd
		}
	}
	// Delay increase: the RTT of this round grew by more than delay_min/8.
	if c.currRTT > delay {
		c.currRTT = delay
	}
	if c.sampleCnt < hystartMinSamples {
		c.sampleCnt++
		return
	}
	thresh := min(max(c.delayMin>>3, hystartDelayMin), hystartDelayMax)
	if c.currRTT > c.delayMin+thresh {
		c.found = true
		w.SSThresh = w.Cwnd
	}
}

// cubicRoot returns the integer cube root of a.
func cubicRoot(a uint64) uint32 {
	if a == 0 {
		return 0
	}
	x := uint64(math.Cbrt(float64(a)))
	// Correct floating-point rounding at the edges.
	for x*x*x > a {
		x--
	}
	for (x+1)*(x+1)*(x+1) <= a {
		x++
	}
	return uint32(x)
}
