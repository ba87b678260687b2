package tcp

import (
	"github.com/netprov/netprov/stack/tcp/seqnum"
)

// selectWindow is tcp_select_window: the window field of a non-SYN
// segment. It offers the free receive space (rounded to the scale), never
// shrinks what was already offered, and records the offer in rcv_wup /
// rcv_wnd.
func (e *endpoint) selectWindow() uint16 {
	cur := e.receiveWindow()
	ws := e.rcvWscale
	// Never move the right edge back, except by the rounding to the scale
	// that RFC 7323 §2.4 allows: rounding up instead would let the edge
	// creep past the buffer. cur never exceeds the free space, because
	// every edge offered was within it.
	win := max(e.newWindow(), cur) >> ws << ws
	win = min(win, uint32(maxWindow)<<ws)
	e.rcvWnd = win
	e.rcvWup = e.rcvNxt
	return uint16(win >> ws)
}

// newWindow is __tcp_select_window: the window the free receive space
// allows now, before the never-shrink rule of selectWindow, in bytes. It
// is what a window update would offer.
func (e *endpoint) newWindow() uint32 {
	capSpace := e.rcvBuf.capacity()
	free := uint32(max(capSpace-e.rcvBuf.n, 0))
	// The offer grows with rcv_ssthresh (tcp_grow_window), not all at once.
	win := min(free, e.rcvSSThresh, e.windowClamp)
	// Receiver-side silly window avoidance (__tcp_select_window).
	if int(free) < min(e.rcvMSS, capSpace/2) {
		return 0
	}
	if ws := e.rcvWscale; ws > 0 {
		// Advertise enough that the scaling does not round it away
		// (ALIGN up), as long as the buffer really has the room.
		if up := (win + (1 << ws) - 1) >> ws << ws; up <= free {
			win = up
		}
	}
	return win
}

// growWindow is tcp_grow_window: each received segment lets the offered
// window grow by two advertised MSS, up to the free space and the clamp.
func (e *endpoint) growWindow() {
	free := uint32(max(e.rcvBuf.capacity()-e.rcvBuf.n, 0))
	if e.rcvSSThresh < e.windowClamp && e.rcvSSThresh < free {
		e.rcvSSThresh = min(e.rcvSSThresh+uint32(2*e.advmss), e.windowClamp)
	}
}

// consumeLocked removes n bytes the application read (tcp_recvmsg +
// tcp_cleanup_rbuf): autotune the buffer and send a window update when
// the window opened a lot.
func (e *endpoint) consumeLocked(n int) {
	e.rcvBuf.discard(n)
	e.copiedSeq = e.copiedSeq.Add(seqnum.Size(n))
	e.rcvSpaceAdjust()
	if !e.state.synchronized() || e.state == StateTimeWait || e.shutdown&rcvShutdown != 0 {
		if e.rcvBuf.n == 0 && (e.state == StateClose || e.state == StateTimeWait) {
			e.rcvBuf.release() // the last unread byte is gone
		}
		return
	}
	// Send a window update when the read lets the window at least
	// double (__tcp_cleanup_rbuf). The test is on the window transmit
	// would really offer (__tcp_select_window, capped by rcv_ssthresh and
	// the clamp, as advertised after scaling), not on the raw free space:
	// an update that repeats the last ACK would reach the sender as a
	// duplicate ACK.
	cur := e.receiveWindow()
	if 2*cur <= e.windowClamp {
		win := e.newWindow() >> e.rcvWscale << e.rcvWscale
		if win != 0 && win >= 2*cur && win != cur {
			e.sendAck()
			return
		}
	}
	if e.pendingAck && e.quickAcks > 0 {
		e.sendAck()
	}
}

// rcvSpaceAdjust is tcp_rcv_space_adjust (dynamic right-sizing): once per
// receiver RTT, grow the receive buffer to twice what the application
// consumed, plus room for the sender's growth, up to tcp_rmem[2].
func (e *endpoint) rcvSpaceAdjust() {
	rtt := e.rcvRTT
	if rtt == 0 {
		rtt = e.srtt
	}
	if rtt == 0 {
		return
	}
	now := e.stamp()
	if now.Sub(e.rcvSpaceTime) < rtt {
		return
	}
	copied := int(e.rcvSpaceSeq.Size(e.copiedSeq))
	if copied > e.rcvSpace && e.rcvSpace > 0 {
		if e.proto.cfg.ModerateRcvbuf && !e.rcvbufLocked {
			rcvwin := 2*copied + 16*e.advmss
			grow := rcvwin * (copied - e.rcvSpace) / e.rcvSpace
			rcvwin += 2 * grow
			rcvbuf := min(e.spaceFromWin(rcvwin), e.proto.cfg.RMem[2])
			if rcvbuf > e.rcvbuf {
				e.rcvbuf = rcvbuf
				keep := e.rcvBuf.n
				for _, r := range e.ooo {
					keep = max(keep, int(e.copiedSeq.Size(r.end)))
				}
				e.rcvBuf.resize(e.winFromSpace(rcvbuf), keep)
			}
		}
		e.rcvSpace = copied
	}
	e.rcvSpaceSeq = e.copiedSeq
	e.rcvSpaceTime = now
}

// spaceFromWin is tcp_space_from_win: the buffer that holds win bytes.
func (e *endpoint) spaceFromWin(win int) int {
	s := e.proto.cfg.AdvWinScale
	if s <= 0 {
		return win << uint(-s)
	}
	return win + win/((1<<uint(s))-1)
}
