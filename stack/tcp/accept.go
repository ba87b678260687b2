package tcp

import (
	"math/rand/v2"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/tcp/seqnum"
	"github.com/netprov/netprov/stack/waiter"
)

// request is a half-open connection in a listener's SYN queue
// (struct tcp_request_sock; spec 53).
type request struct {
	l        *endpoint
	key      tupleKey
	iss, irs seqnum.Value
	route    *stack.Route
	// routeStore is the storage of route.
	routeStore stack.Route

	peerMSS   int
	sndWscale int8 // -1: the peer sent no window scale
	rcvWscale uint8
	sackOK    bool
	tsOK      bool
	tsRecent  uint32
	tsOffset  uint32
	advmss    int
	rcvWnd    uint32
	peerWnd   uint16

	timer    clock.Timer
	retrans  int
	acked    bool
	sentAt   time.Time
	rtxDelay time.Duration
}

// listenSegment handles a segment that reached a listener (LISTEN state
// input, spec 47-57, 67-78). isn is non-zero for a SYN that took over a
// TIME_WAIT socket.
func (l *endpoint) listenSegment(s *segment, isn seqnum.Value) {
	st := l.stack.Stats()
	k := tupleKey{laddr: s.dst, raddr: s.src, lport: s.dport, rport: s.sport}
	if r := l.synQueue[k]; r != nil {
		l.checkRequest(r, s)
		return
	}
	switch {
	case s.has(flagRst):
		return
	case s.has(flagAck):
		if !s.has(flagSyn) && l.cookieAck(s, k) {
			return
		}
		l.proto.sendResetFor(s)
		return
	case !s.has(flagSyn):
		return
	case s.has(flagFin):
		return // SYN|FIN: dropped silently (spec 47)
	}
	l.connRequest(s, k, isn)
	_ = st
}

// connRequest is tcp_conn_request: answer a SYN with a SYN-ACK and keep a
// request, or a SYN cookie when the SYN queue is full (spec 49-56).
func (l *endpoint) connRequest(s *segment, k tupleKey, isn seqnum.Value) {
	p := l.proto
	st := l.stack.Stats()
	wantCookie := false
	if (p.cfg.Syncookies == 2 || len(l.synQueue) >= l.backlog) && isn == 0 {
		if p.cfg.Syncookies == 0 {
			st.TCPExt.TCPReqQFullDrop.Add(1)
			st.TCPExt.ListenDrops.Add(1)
			return
		}
		wantCookie = true
		l.lastOverflow = p.clock.Now()
	}
	if len(l.acceptQ) > l.backlog {
		st.TCPExt.ListenOverflows.Add(1)
		st.TCPExt.ListenDrops.Add(1)
		return
	}
	if !wantCookie && p.cfg.Syncookies == 0 && isn == 0 &&
		p.cfg.MaxSynBacklog-len(l.synQueue) < p.cfg.MaxSynBacklog>>2 {
		st.TCPExt.ListenDrops.Add(1)
		return
	}
	var route stack.Route
	if err := p.stack.FindRouteInto(&route, 0, s.dst, s.src); err != nil {
		st.TCPExt.ListenDrops.Add(1)
		return
	}
	if route.Flags&routeBcastMcast != 0 {
		st.TCPExt.ListenDrops.Add(1)
		return
	}
	now := p.clock.Now()
	req := &request{l: l, key: k, irs: s.seq, routeStore: route, peerWnd: s.window, sndWscale: -1}
	req.route = &req.routeStore
	r := req.route
	req.peerMSS = mssDefault
	if s.opts.HasMSS {
		req.peerMSS = int(s.opts.MSS)
	}
	if l.userMSS > 0 && l.userMSS < req.peerMSS {
		req.peerMSS = l.userMSS
	}
	req.tsOK = p.cfg.Timestamps && s.opts.HasTimestamps
	req.sackOK = p.cfg.SACK && s.opts.SACKPermitted
	if p.cfg.WindowScaling && s.opts.WindowScale >= 0 {
		req.sndWscale = s.opts.WindowScale
	}
	if wantCookie && !req.tsOK {
		// Without timestamps a cookie cannot carry the options (spec 52).
		req.sackOK, req.sndWscale = false, -1
	}
	req.tsRecent = s.opts.TSVal
	if req.tsOK {
		req.tsOffset = p.tsOffset(s.dst, s.src)
	}
	req.advmss = r.DefaultMSS()
	if l.userMSS > 0 && l.userMSS < req.advmss {
		req.advmss = l.userMSS
	}
	l.requestWindow(req)
	switch {
	case isn != 0:
		req.iss = isn
	case wantCookie:
		var mssInd uint32
		req.iss, mssInd = p.cookieInitSeq(k, s.seq, req.peerMSS, now)
		req.peerMSS = int(cookieMSSTable[mssInd])
	default:
		req.iss = seqnum.Value(p.isn(s.dst, s.src, s.dport, s.sport, now))
	}
	req.sentAt = now
	l.sendSynAck(req, wantCookie, false)
	if wantCookie {
		st.TCPExt.SyncookiesSent.Add(1)
		return
	}
	l.synQueue[k] = req
	req.rtxDelay = timeoutInit
	req.timer = p.clock.AfterFunc(timeoutInit, func() { l.requestTimer(req) })
}

// requestWindow is tcp_openreq_init_rwin: the SYN-ACK's window and scale.
func (l *endpoint) requestWindow(req *request) {
	space := l.winFromSpace(l.rcvbuf)
	saved := l.windowClamp
	l.windowClamp = uint32(maxWindow) << maxWscale
	if l.rcvbufLocked {
		l.windowClamp = uint32(space)
	}
	mss := req.advmss
	if req.tsOK {
		mss -= 12
	}
	wnd, ws := l.selectInitialWindow(space, mss)
	l.windowClamp = saved
	if req.sndWscale < 0 {
		ws = 0
	}
	req.rcvWnd, req.rcvWscale = wnd, ws
}

// sendSynAck builds the SYN-ACK of a request (tcp_make_synack, spec 55-56).
func (l *endpoint) sendSynAck(req *request, cookie, rtx bool) {
	p := l.proto
	o := header.TCPOptions{WindowScale: -1, HasMSS: true, MSS: uint16(req.advmss)}
	o.SACKPermitted = req.sackOK
	if req.sndWscale >= 0 {
		o.WindowScale = int8(req.rcvWscale)
	}
	if req.tsOK {
		o.HasTimestamps = true
		ts := uint32(p.clock.Now().UnixMilli())
		if cookie {
			ts = cookieTimestamp(ts, req)
		}
		o.TSVal = ts + req.tsOffset
		o.TSEcr = req.tsRecent
	}
	f := header.TCPFields{
		SrcPort: req.key.lport, DstPort: req.key.rport,
		Seq: uint32(req.iss), Ack: uint32(req.irs + 1),
		Flags:  header.TCPFlagSyn | header.TCPFlagAck,
		Window: uint16(min(req.rcvWnd, maxWindow)),
	}
	_ = p.emit(req.route, f, &o, true, nil, nil, l.ttl, l.tos, nil, 0)
	if rtx {
		p.stats.TCP.RetransSegs.Add(1)
	} else {
		p.stats.TCP.OutSegs.Add(1)
	}
}

// requestTimer retransmits the SYN-ACK with exponential backoff from 1 s
// and drops the request after tcp_synack_retries (spec 57).
func (l *endpoint) requestTimer(req *request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != StateListen || l.synQueue[req.key] != req {
		return
	}
	maxRetries := l.proto.cfg.SynAckRetries
	if d := secsToRetrans(l.deferAccept); d > maxRetries {
		maxRetries = d
	}
	if req.retrans >= maxRetries {
		l.dropRequest(req)
		return
	}
	req.retrans++
	l.sendSynAck(req, false, true)
	req.rtxDelay = min(timeoutInit<<req.retrans, rtoMax)
	req.timer.Reset(req.rtxDelay)
}

// secsToRetrans converts TCP_DEFER_ACCEPT seconds to a number of SYN-ACK
// retransmissions (secs_to_retrans).
func secsToRetrans(secs int) int {
	if secs <= 0 {
		return 0
	}
	res := 1
	timeout := 1
	period := 1
	for secs > timeout && res < 255 {
		res++
		period = min(period*2, int(rtoMax/time.Second))
		timeout += period
	}
	return res
}

func (l *endpoint) dropRequest(req *request) {
	if req.timer != nil {
		req.timer.Stop()
	}
	delete(l.synQueue, req.key)
}

// checkRequest is tcp_check_req: a segment for a half-open connection.
func (l *endpoint) checkRequest(req *request, s *segment) {
	p := l.proto
	st := l.stack.Stats()
	// A retransmitted SYN: answer with the SYN-ACK again (spec 57).
	if s.flags&(flagSyn|flagAck|flagRst|flagFin) == flagSyn && s.seq == req.irs {
		l.sendSynAck(req, false, true)
		req.rtxDelay = min(timeoutInit<<req.retrans, rtoMax)
		req.timer.Reset(req.rtxDelay)
		return
	}
	// Wrong ACK number: the listener answers with RST (spec 69).
	if s.has(flagAck) && s.ack != req.iss+1 {
		if !s.has(flagRst) {
			p.sendResetFor(s)
		}
		return
	}
	rcvNxt := req.irs + 1
	// Out of window: ACK and drop (spec 70).
	if !(s.seq == rcvNxt || s.seq.InRange(rcvNxt, rcvNxt.Add(seqnum.Size(req.rcvWnd)+1)) ||
		s.endSeq.InRange(rcvNxt.Add(1), rcvNxt.Add(seqnum.Size(req.rcvWnd)+1))) {
		if !s.has(flagRst) {
			l.requestAck(req)
		}
		return
	}
	if req.tsOK && s.opts.HasTimestamps && !s.seq.LessThan(rcvNxt) && s.seq.LessThanEq(rcvNxt) {
		req.tsRecent = s.opts.TSVal
	}
	// In-window RST or SYN: embryonic reset (spec 73).
	if s.has(flagRst | flagSyn) {
		st.TCP.AttemptFails.Add(1)
		if !s.has(flagRst) {
			p.sendResetFor(s)
		}
		l.dropRequest(req)
		st.TCPExt.EmbryonicRsts.Add(1)
		return
	}
	if !s.has(flagAck) {
		return
	}
	// TCP_DEFER_ACCEPT: a bare ACK does not create the child (spec 75).
	if l.deferAccept > 0 && req.retrans < secsToRetrans(l.deferAccept) && s.endSeq == rcvNxt {
		req.acked = true
		return
	}
	if len(l.acceptQ) > l.backlog {
		// Accept queue overflow at ACK time (spec 77).
		st.TCPExt.ListenOverflows.Add(1)
		st.TCPExt.ListenDrops.Add(1)
		if p.cfg.AbortOnOverflow {
			p.sendResetFor(s)
			l.dropRequest(req)
			return
		}
		req.acked = true
		return
	}
	l.dropRequest(req)
	c := l.createChild(req, s)
	if c == nil {
		return
	}
	c.mu.Lock()
	c.segmentArrived(s)
	c.mu.Unlock()
}

// requestAck sends the ACK of a request (tcp_v4_reqsk_send_ack).
func (l *endpoint) requestAck(req *request) {
	var o *header.TCPOptions
	if req.tsOK {
		o = &header.TCPOptions{WindowScale: -1, HasTimestamps: true,
			TSVal: uint32(l.proto.clock.Now().UnixMilli()) + req.tsOffset, TSEcr: req.tsRecent}
	}
	f := header.TCPFields{
		SrcPort: req.key.lport, DstPort: req.key.rport,
		Seq: uint32(req.iss + 1), Ack: uint32(req.irs + 1),
		Flags: header.TCPFlagAck, Window: uint16(min(req.rcvWnd>>req.rcvWscale, maxWindow)),
	}
	_ = l.proto.emit(req.route, f, o, false, nil, nil, l.ttl, l.tos, nil, 0)
	l.proto.stats.TCP.OutSegs.Add(1)
}

// createChild is tcp_v4_syn_recv_sock + inet_csk_complete_hashdance: a
// new socket for the completed handshake, hashed and put on the accept
// queue (spec 76-80).
func (l *endpoint) createChild(req *request, s *segment) *endpoint {
	p := l.proto
	c := p.newEndpoint(l.family)
	c.v6only = l.v6only
	c.reuseAddr, c.reusePort = l.reuseAddr, l.reusePort
	c.keepaliveOn, c.nodelay, c.cork = l.keepaliveOn, l.nodelay, l.cork
	c.lingerOn, c.lingerSecs = l.lingerOn, l.lingerSecs
	c.sndbuf, c.rcvbuf = l.sndbuf, l.rcvbuf
	c.sndbufLocked, c.rcvbufLocked = l.sndbufLocked, l.rcvbufLocked
	c.userMSS = l.userMSS
	c.keepIdle, c.keepIntvl, c.keepCnt = l.keepIdle, l.keepIntvl, l.keepCnt
	c.userTimeout = l.userTimeout
	c.tos, c.ttl = l.tos, l.ttl
	c.ccName = l.ccName
	c.rcvlowat = l.rcvlowat

	c.laddr, c.lport = req.key.laddr, req.key.lport
	c.raddr, c.rport = req.key.raddr, req.key.rport
	c.routeStore = *req.route
	c.route = &c.routeStore
	c.addrBound, c.userBound = true, true
	c.ownerStore = bindOwner{ep: c, addr: c.laddr, reuse: c.reuseAddr, reusePort: c.reusePort}
	c.owner = &c.ownerStore
	t := p.ports
	t.mu.Lock()
	if !t.insertLocked(c, req.key) {
		t.mu.Unlock()
		return nil
	}
	t.addOwnerLocked(c.owner, c.lport, false)
	c.ownerBound = true
	t.mu.Unlock()

	c.mu.Lock()
	c.state = StateSynRecv
	c.iss, c.irs = req.iss, req.irs
	c.ipID.Store(rand.Uint32N(1 << 16)) // spec 32: the child's own random inet_id
	c.advmss = req.advmss
	c.mssClamp = req.peerMSS
	c.tsOK, c.sackOK = req.tsOK, req.sackOK
	c.tsRecent, c.tsRecentStamp, c.tsOffset = req.tsRecent, p.clock.Now(), req.tsOffset
	if req.sndWscale >= 0 {
		c.wscaleOK = true
		c.sndWscale, c.rcvWscale = uint8(req.sndWscale), req.rcvWscale
	}
	space := c.winFromSpace(c.rcvbuf)
	c.windowClamp = uint32(maxWindow) << c.rcvWscale
	if c.rcvbufLocked {
		c.windowClamp = min(c.windowClamp, uint32(space))
	}
	c.rcvBuf.resize(space, 0)
	c.rcvWnd = req.rcvWnd
	c.rcvSSThresh = req.rcvWnd
	c.rcvNxt = req.irs + 1
	c.rcvWup, c.copiedSeq = c.rcvNxt, c.rcvNxt
	c.sndUna, c.sndNxt = req.iss+1, req.iss+1
	c.sndUp = c.sndUna
	c.writeSeq, c.sndSml = c.sndNxt, c.sndNxt
	if c.tsOK {
		c.advmss -= 12
	}
	// The window of the third ACK is scaled (spec 79); it is the largest
	// window seen when the MSS is computed (tcp_create_openreq_child
	// before tcp_sync_mss).
	c.sndWnd = uint32(s.window) << c.sndWscale
	c.sndWl1, c.sndWl2 = s.seq, s.ack
	c.maxWindow = c.sndWnd
	c.syncMSS()
	c.initRcvMSS()
	c.rcvSpace = min(int(c.rcvWnd), int(p.cfg.InitCwnd)*c.advmss)
	c.setState(StateEstablished)
	c.initSender()
	if !req.sentAt.IsZero() && req.retrans == 0 {
		c.rttSample(p.clock.Now().Sub(req.sentAt))
	}
	c.ss = ssConnected
	c.mu.Unlock()
	p.stats.TCP.PassiveOpens.Add(1)
	l.acceptQ = append(l.acceptQ, c)
	l.notify(waiter.EventIn)
	return c
}

// stopListenLocked is inet_csk_listen_stop: drop requests, reset and
// destroy the connections nobody accepted.
func (l *endpoint) stopListenLocked() {
	for _, r := range l.synQueue {
		l.dropRequest(r)
	}
	for _, c := range l.acceptQ {
		c.mu.Lock()
		c.orphan = true
		c.disconnectLocked()
		c.mu.Unlock()
	}
	l.acceptQ = nil
	t := l.proto.ports
	t.mu.Lock()
	t.unlistenLocked(l)
	t.mu.Unlock()
}
