package tcp

import (
	"github.com/netprov/netprov/stack/tcp/seqnum"
)

// selectWindow is tcp_select_window: the window field of a non-SYN
// segment. It offers the free receive space (rounded to the scale), never
// shrinks what was already offered, and records the offer in rcv_wup /
// rcv_wnd.
func (e *endpoint) selectWindow() uint16 {
	capSpace := e.rcvBuf.capacity()
	free := uint32(max(capSpace-e.rcvBuf.n, 0))
	cur := e.receiveWindow()
	// The offer grows with rcv_ssthresh (tcp_grow_window), not all at once.
	win := min(free, e.rcvSSThresh, e.windowClamp)
	// Receiver-side silly window avoidance (__tcp_select_window).
	if int(free) < min(e.rcvMSS, capSpace/2) {
		win = 0
	}
	ws := e.rcvWscale
	if ws > 0 {
		// Advertise enough that the scaling does not round it away
		// (ALIGN up), as long as the buffer really has the room.
		if up := (win + (1 << ws) - 1) >> ws << ws; up <= free {
			win = up
		}
	}
	// Never move the right edge back, except by the rounding to the scale
	// that RFC 7323 §2.4 allows: rounding up instead would let the edge
	// creep past the buffer. cur never exceeds the free space, because
	// every edge offered was within it.
	win = max(win, cur) >> ws << ws
	win = min(win, uint32(maxWindow)<<ws)
	e.rcvWnd = win
	e.rcvWup = e.rcvNxt
	return uint16(win >> ws)
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
		return
	}
	cur := e.receiveWindow()
	if 2*cur <= e.windowClamp {
		free := uint32(max(e.rcvBuf.capacity()-e.rcvBuf.n, 0))
		free = free >> e.rcvWscale << e.rcvWscale
		if free >= uint32(e.rcvMSS) && free >= 2*cur {
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
	now := e.proto.clock.Now()
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
