package tcp

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"

	"github.com/netprov/netprov/stack/tcp/cc"
	"github.com/netprov/netprov/stack/tcp/seqnum"
	"github.com/netprov/netprov/stack/waiter"
)

// routeBcastMcast are the route kinds connect refuses (spec 16).
const routeBcastMcast = stack.RouteBroadcast | stack.RouteMulticast

// Connect implements stack.Endpoint (__inet_stream_connect and
// tcp_v4_connect; spec 13-24).
func (e *endpoint) Connect(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !addr.IsValid() {
		// AF_UNSPEC: disconnect.
		e.disconnectLocked()
		return nil
	}
	switch e.ss {
	case ssConnected:
		return unix.EISCONN
	case ssConnecting:
		if e.state == StateSynSent || e.state == StateSynRecv {
			return unix.EALREADY
		}
		if e.state == StateClose {
			// sock_error in __inet_stream_connect: the error is taken
			// and tcp_disconnect clears the shutdown flags, so poll
			// then shows POLLOUT|POLLHUP only.
			err := e.sockError()
			e.disconnectLocked()
			if err != 0 {
				return err
			}
			return unix.ECONNABORTED
		}
		e.ss = ssConnected
		return nil
	}
	if e.state != StateClose {
		return unix.EISCONN
	}
	if err := e.startConnect(addr); err != nil {
		return err
	}
	e.ss = ssConnecting
	return unix.EINPROGRESS
}

func (e *endpoint) startConnect(addr netip.AddrPort) error {
	raddr, err := e.toWire(addr.Addr())
	if err != nil {
		return err
	}
	if raddr.IsMulticast() || raddr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return unix.ENETUNREACH
	}
	laddr := netip.Addr{}
	if e.ownerBound && !e.laddr.IsUnspecified() {
		laddr = e.laddr
		if laddr.Is4() != raddr.Is4() && !raddr.IsUnspecified() {
			return unix.EAFNOSUPPORT
		}
	}
	if raddr.IsUnspecified() {
		if e.family == unix.AF_INET || raddr.Is4() {
			raddr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			raddr = netip.IPv6Loopback()
		}
	}
	var r stack.Route
	if err := e.stack.FindRouteInto(&r, 0, laddr, raddr); err != nil {
		return err
	}
	if r.Flags&(routeBcastMcast) != 0 {
		return unix.ENETUNREACH
	}
	e.routeStore = r
	e.route = &e.routeStore
	e.raddr, e.rport = raddr, addr.Port()
	src := r.LocalAddr
	// Bind bookkeeping: a socket with no port gets a fresh owner; a
	// wildcard-bound socket takes the route's source address.
	if !e.ownerBound {
		// Not bound, so the previous owner (if any) is in no bucket and
		// its storage can be reused.
		e.ownerStore = bindOwner{ep: e, addr: src, reuse: e.reuseAddr, reusePort: e.reusePort}
		e.owner = &e.ownerStore
	}
	e.state = StateSynSent // before the port is chosen (spec 24)
	k := tupleKey{laddr: src, raddr: raddr, lport: e.lport, rport: e.rport}
	port, err := e.proto.hashConnect(e, k)
	if err != nil {
		e.state = StateClose
		e.route = nil
		e.raddr, e.rport = netip.Addr{}, 0
		return err
	}
	if !e.ownerBound {
		e.ownerBound = true
		e.userBound = false
	}
	e.laddr, e.lport = src, port
	e.keptName = netip.AddrPort{}

	now := e.proto.clock.Now()
	e.iss = seqnum.Value(e.proto.isn(src, raddr, port, e.rport, now))
	e.ipID.Store(rand.Uint32N(1 << 16)) // spec 32: a random inet_id seed
	if e.proto.cfg.Timestamps {
		e.tsOffset = e.proto.tsOffset(src, raddr)
	}
	e.initConnection()
	e.sndUna, e.sndNxt = e.iss, e.iss.Add(1)
	e.sndUp = e.iss
	e.writeSeq = e.sndNxt
	e.sndSml = e.iss
	e.rcvNxt = 0
	e.transmit(e.iss, 0, synFlag, false)
	e.retransStamp = now
	e.stack.Stats().TCP.ActiveOpens.Add(1)
	e.armRTO()
	return nil
}

// initConnection sets the MSS, buffers and initial receive window of a new
// connection (tcp_connect_init / tcp_openreq_init_rwin).
func (e *endpoint) initConnection() {
	e.advmss = e.route.DefaultMSS()
	if e.userMSS > 0 && e.userMSS < e.advmss {
		e.advmss = e.userMSS
	}
	e.mss = min(mssDefault, e.advmss)
	e.mssClamp = mssDefault
	if e.userMSS > 0 {
		e.mssClamp = e.userMSS
	}
	e.rcvMSS = min(e.advmss, mssDefault)
	e.rto = timeoutInit
	e.srtt, e.rttvar = 0, 0
	e.backoff, e.retransmits = 0, 0
	e.sndWnd = 0
	e.err, e.softErr = 0, 0
	e.done = false
	e.shutdown = 0
	e.ca = caOpen
	e.sacked = e.sacked[:0]
	e.ooo = e.ooo[:0]
	e.finQueued, e.finOOO = false, false

	// Receive space: half of rcvbuf holds data (tcp_adv_win_scale 1).
	space := e.winFromSpace(e.rcvbuf)
	e.windowClamp = uint32(maxWindow) << maxWscale
	if e.rcvbufLocked {
		e.windowClamp = uint32(space)
	}
	e.rcvWnd, e.rcvWscale = e.selectInitialWindow(space, e.advmss)
	e.rcvSSThresh = e.rcvWnd
	e.rcvBuf.resize(space, 0)
	e.rcvSpace = min(int(e.rcvWnd), int(e.proto.cfg.InitCwnd)*e.advmss)
	e.quickAcks = 0
	e.ato = 0
}

// winFromSpace is tcp_win_from_space with tcp_adv_win_scale: the part of
// a buffer that can hold payload.
func (e *endpoint) winFromSpace(space int) int {
	s := e.proto.cfg.AdvWinScale
	if s <= 0 {
		return space - (space >> uint(-s))
	}
	return space - (space >> uint(s))
}

// selectInitialWindow is tcp_select_initial_window: the window of our SYN
// (rounded down to the MSS) and the scale chosen for the largest buffer
// the socket may grow to (spec 37).
func (e *endpoint) selectInitialWindow(space, mss int) (uint32, uint8) {
	clamp := e.windowClamp
	sp := uint32(space)
	if sp > clamp {
		sp = clamp
	}
	if int(sp) > mss && mss > 0 {
		sp = sp / uint32(mss) * uint32(mss)
	}
	wnd := sp
	var ws uint8
	if e.proto.cfg.WindowScaling {
		big := max(sp, uint32(e.proto.cfg.RMem[2]), uint32(e.proto.cfg.RmemMax))
		big = min(big, clamp)
		l := bits.Len32(big) - 1 - 15
		ws = uint8(max(0, min(l, maxWscale)))
	}
	e.windowClamp = min(e.windowClamp, uint32(maxWindow)<<ws)
	return wnd, ws
}

// initSender starts congestion control when the connection is established
// (tcp_init_transfer).
func (e *endpoint) initSender() {
	var alg cc.Controller
	if e.ccName == cc.CubicName {
		alg = cc.InitCubic(&e.cubic, e.proto.clock.Now())
	} else {
		var err error
		if alg, err = cc.New(e.ccName, e.proto.clock.Now()); err != nil {
			alg, _ = cc.New("reno", e.proto.clock.Now())
		}
	}
	e.ccAlg = alg
	e.cw = cc.NewWindow(e.proto.cfg.InitCwnd, uint32(e.mss))
	e.ccAlg.Init(&e.cw)
	e.lastRecv = e.proto.clock.Now()
	e.rcvSpaceSeq = e.copiedSeq
	e.rcvSpaceTime = e.lastRecv
	e.sndWl1 = e.irs
	e.armKeepalive()
}

// syncMSS computes the send MSS from the peer's MSS, the path MTU and the
// option space (tcp_sync_mss).
func (e *endpoint) syncMSS() {
	mtuMSS := e.route.MTU - e.route.MaxHeaderLen() - 20
	m := min(e.mssClamp, mtuMSS)
	if e.userMSS > 0 {
		m = min(m, e.userMSS)
	}
	if e.tsOK {
		m -= 12
	}
	m = max(m, minMSS-12)
	e.mss = e.boundToHalfWindow(m)
	e.cw.MSS = uint32(e.mss)
}

// boundToHalfWindow is tcp_bound_to_half_wnd: a segment is at most half
// the largest window the peer has offered (once that is above 536), so
// that a small window still holds two segments. On loopback this makes
// the MSS 32741 right after the handshake (the SYN-ACK offers 65483),
// which TCP_MAXSEG and tcpi_snd_mss show.
func (e *endpoint) boundToHalfWindow(size int) int {
	cutoff := int(e.maxWindow)
	if cutoff > mssDefault {
		cutoff >>= 1
	}
	if cutoff > 0 && size > cutoff {
		hdr := 20
		if e.tsOK {
			hdr += 12
		}
		return max(cutoff, 68-hdr)
	}
	return size
}

// mtuReduced applies a smaller path MTU (tcp_v4_mtu_reduced) and resends
// what no longer fits.
func (e *endpoint) mtuReduced(mtu int) {
	if mtu < 68 {
		return
	}
	e.route.MTU = mtu
	old := e.mss
	e.syncMSS()
	if e.mss < old && e.sndUna != e.sndNxt {
		// tcp_simple_retransmit: resend everything in flight.
		e.highRxt = e.sndUna
		e.lostEnd = e.sndNxt
		if e.ca != caLoss && e.ca != caRecovery {
			e.ca = caLoss
		}
		e.retransmitLost()
	}
}

// finishConnect is tcp_finish_connect: ESTABLISHED, congestion control
// started, writers and connect() woken.
func (e *endpoint) finishConnect() {
	e.setState(StateEstablished)
	e.initSender()
	e.notify(waiter.EventOut | waiter.EventIn)
}
