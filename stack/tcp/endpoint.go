package tcp

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/tcp/cc"
	"github.com/netprov/netprov/stack/tcp/seqnum"
	"github.com/netprov/netprov/stack/waiter"
)

// Shutdown bits (sk_shutdown).
const (
	rcvShutdown  = 1
	sendShutdown = 2
)

// caState is the sender's loss-recovery state (icsk_ca_state).
type caState uint8

const (
	caOpen caState = iota
	caDisorder
	caCWR
	caRecovery
	caLoss
)

// seqRange is a sequence range [start, end).
type seqRange struct{ start, end seqnum.Value }

// endpoint is a TCP socket (struct tcp_sock). All fields are guarded by mu
// unless noted; fields shared with the port table (owner, key, hashed,
// ownerBound) are written with both mu and the table lock held.
type endpoint struct {
	proto  *Protocol
	stack  *stack.Stack
	family int
	waitQ  waiter.Queue

	mu sync.Mutex

	state  State
	ss     socketState
	v6only bool

	// Addresses, unmapped (wire form). laddr is unspecified for a wildcard
	// bind; lport 0 when unbound.
	laddr netip.Addr
	lport uint16
	raddr netip.Addr
	rport uint16
	// keptName is what getsockname shows once a connection that was not
	// bound explicitly has ended and given its port back: Linux's
	// inet_put_port clears inet_num but not inet_sport or the source
	// address, so the old name stays visible (wire form).
	keptName netip.AddrPort
	// freebind is IP_FREEBIND: bind accepts an address the host does not
	// have (inet_can_nonlocal_bind).
	freebind   bool
	userBound  bool // port chosen by bind() (SOCK_BINDPORT_LOCK)
	addrBound  bool // address chosen by bind() (SOCK_BINDADDR_LOCK)
	owner      *bindOwner
	ownerBound bool
	// ownerStore is the storage of owner for connect and accept (one
	// allocation less per connection); owner points into it only while
	// it is in no bind bucket or is this socket's own entry.
	ownerStore bindOwner
	key        tupleKey
	hashed     bool
	route      *stack.Route
	// routeStore is the storage of route (one allocation less per
	// connection); route points to it or is nil.
	routeStore stack.Route
	// twStamp and twLoopback describe a TIME_WAIT socket for tcp_tw_reuse;
	// written under the table lock when entering TIME_WAIT.
	twStamp    time.Time
	twLoopback bool

	err      unix.Errno // sk_err
	softErr  unix.Errno // sk_err_soft
	shutdown uint8
	done     bool // SOCK_DONE: FIN received
	orphan   bool // closed by the user
	ever     bool // has been connected (for ENOTCONN vs EOF)

	// Socket options.
	reuseAddr, reusePort bool
	keepaliveOn          bool
	nodelay, cork        bool
	moreHint             bool // MSG_MORE on the last write
	lingerOn             bool
	lingerSecs           int32
	sndbuf, rcvbuf       int // sk_sndbuf / sk_rcvbuf
	sndbufLocked         bool
	rcvbufLocked         bool
	userMSS              int
	keepIdle, keepIntvl  time.Duration
	keepCnt              int
	userTimeout          time.Duration
	deferAccept          int // seconds
	rcvlowat             int
	tos, ttl             uint8
	ccName               string
	quickackOpt          bool
	misc                 [9]int

	// ipID is the connection's IPv4 identification counter (inet_id).
	ipID atomic.Uint32

	// Listener.
	backlog      int
	synQueue     map[tupleKey]*request
	lastOverflow time.Time
	acceptQ      []*endpoint

	// Sequence space.
	iss, irs       seqnum.Value
	sndUna, sndNxt seqnum.Value
	writeSeq       seqnum.Value // end of queued data (FIN not included)
	finQueued      bool         // FIN to send at writeSeq
	sndWnd         uint32
	sndWl1, sndWl2 seqnum.Value
	maxWindow      uint32
	sndSml         seqnum.Value // end of the last sub-MSS segment (Nagle)
	sndWscale      uint8
	rcvWscale      uint8
	wscaleOK       bool
	sackOK         bool
	tsOK           bool
	tsRecent       uint32
	tsRecentStamp  time.Time
	tsOffset       uint32
	mssClamp       int // peer's MSS (mss_clamp)
	advmss         int // MSS we advertise
	mss            int // send MSS: payload bytes per full segment
	rcvMSS         int
	rcvSSThresh    uint32 // rcv_ssthresh: limit of the offered window
	windowClamp    uint32
	sndBuf         ring
	rcvBuf         ring
	rcvNxt, rcvWup seqnum.Value
	copiedSeq      seqnum.Value // application read position
	rcvWnd         uint32       // window advertised at rcvWup
	ooo            []seqRange   // out-of-order ranges held in rcvBuf
	lastOOO        seqRange
	finSeq         seqnum.Value // sequence of a received out-of-order FIN
	urg            urgState
	urgSeq         seqnum.Value
	urgByte        byte
	sndUp          seqnum.Value // snd_up: end of urgent data sent
	finOOO         bool
	dsack          seqRange
	dsackPending   bool
	rcvSpace       int // DRS: bytes copied per RTT target
	rcvSpaceSeq    seqnum.Value
	rcvSpaceTime   time.Time
	rcvRTT         time.Duration
	quickAcks      int
	ato            time.Duration
	pendingAck     bool

	// stampNow is the clock reading of the segment, timer or call being
	// processed while stampSet (see stamp).
	stampNow time.Time
	stampSet bool

	// Loss recovery (sack.go).
	sacked        []seqRange
	ca            caState
	dupAcks       int
	highRxt       seqnum.Value
	lostEnd       seqnum.Value
	recoveryPoint seqnum.Value
	highSacked    seqnum.Value
	rtxMark       seqnum.Value // snd_nxt when the last retransmission was sent
	tlpOut        bool         // a tail loss probe is outstanding
	reoTimer      clock.Timer
	reoOn         bool
	reoDL         time.Time

	// RTT / RTO (rtt.go).
	srtt, rttvar, minRTT time.Duration
	rto                  time.Duration
	backoff              int
	retransmits          int // icsk_retransmits
	retransStamp         time.Time
	rttTiming            bool
	rttSeq               seqnum.Value
	rttStart             time.Time
	totalRetrans         uint32
	probesOut            int

	cw    cc.Window
	ccAlg cc.Controller
	// cubic is the storage of ccAlg when it is CUBIC (the default): one
	// allocation less per connection.
	cubic cc.Cubic

	// Timers: one of each per endpoint, reset rather than recreated.
	rtxTimer     clock.Timer
	rtxKind      timerKind
	rtxDeadline  time.Time
	rtxFire      time.Time // when rtxTimer fires; zero when it is not scheduled
	delackTimer  clock.Timer
	delackOn     bool
	delackDL     time.Time
	delackFire   time.Time // when delackTimer fires; zero when it is not scheduled
	keepTimer    clock.Timer
	keepKind     timerKind
	keepDeadline time.Time
	lastRecv     time.Time
	lastSend     time.Time
	lastAckRecv  time.Time

	// Counters for TCP_INFO.
	segsIn, segsOut, dataSegsIn, dataSegsOut uint32
	bytesAcked, bytesReceived, bytesSent     uint64
	bytesRetrans                             uint64
	dsackDups                                uint32

	// Scratch for building options, kept here so sending does not allocate.
	txOpts header.TCPOptions
}

var _ stack.Endpoint = (*endpoint)(nil)

func (p *Protocol) newEndpoint(family int) *endpoint {
	e := &endpoint{
		proto:     p,
		stack:     p.stack,
		family:    family,
		state:     StateClose,
		ss:        ssUnconnected,
		sndbuf:    p.cfg.WMem[1],
		rcvbuf:    p.cfg.RMem[1],
		keepIdle:  p.cfg.KeepaliveTime,
		keepIntvl: p.cfg.KeepaliveIntvl,
		keepCnt:   p.cfg.KeepaliveProbes,
		ccName:    p.cfg.CongestionControl,
		rcvlowat:  1,
		rto:       timeoutInit,
		mssClamp:  mssDefault,
		mss:       mssDefault,
		ttl:       0,
	}
	return e
}

// NewEndpoint implements stack.EndpointFactory.
func (p *Protocol) NewEndpoint(family int) (stack.Endpoint, error) {
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return nil, unix.EAFNOSUPPORT
	}
	return p.newEndpoint(family), nil
}

// EventQueue implements stack.Endpoint.
func (e *endpoint) EventQueue() *waiter.Queue { return &e.waitQ }

// notify tells waiters that readiness may have changed.
func (e *endpoint) notify(m waiter.EventMask) { e.waitQ.Notify(m) }

// toWire converts a socket address to the wire form, checking the family
// (AF_INET: IPv4 only; AF_INET6: v4-mapped means IPv4).
func (e *endpoint) toWire(a netip.Addr) (netip.Addr, error) {
	if e.family == unix.AF_INET {
		if !a.Is4() {
			if a.Is4In6() {
				return a.Unmap(), nil
			}
			return netip.Addr{}, unix.EAFNOSUPPORT
		}
		return a, nil
	}
	if a.Is4() || a.Is4In6() {
		if e.v6only {
			return netip.Addr{}, unix.ENETUNREACH
		}
		return a.Unmap(), nil
	}
	return a, nil
}

// fromWire converts a wire address to what the socket reports.
func (e *endpoint) fromWire(a netip.Addr) netip.Addr {
	if e.family == unix.AF_INET6 && a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

func (e *endpoint) unspecified() netip.Addr {
	if e.family == unix.AF_INET6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// Bind implements stack.Endpoint (inet_bind, spec 6-8).
func (e *endpoint) Bind(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bindLocked(addr)
}

func (e *endpoint) bindLocked(addr netip.AddrPort) error {
	if e.state != StateClose || e.ownerBound {
		return unix.EINVAL
	}
	a := addr.Addr()
	if !a.IsValid() {
		a = e.unspecified()
	}
	if e.family == unix.AF_INET && !a.Is4() {
		if !a.Is4In6() {
			return unix.EAFNOSUPPORT
		}
		a = a.Unmap()
	}
	o := &bindOwner{ep: e, reuse: e.reuseAddr, reusePort: e.reusePort}
	switch {
	case a.Is4In6():
		if e.v6only {
			return unix.EINVAL
		}
		a = a.Unmap()
		if a.IsUnspecified() {
			o.wild4 = true
		}
	case a.Is4() && a.IsUnspecified():
		o.wild4 = true
	case a.Is6() && a.IsUnspecified():
		o.wild6 = true
		o.wild4 = !e.v6only
	}
	if !a.IsUnspecified() && !e.freebind && !e.stack.IsLocalAddress(a) && !a.IsMulticast() {
		return unix.EADDRNOTAVAIL
	}
	o.addr = a
	port, err := e.proto.bind(o, addr.Port())
	if err != nil {
		return err
	}
	e.owner, e.ownerBound = o, true
	e.laddr, e.lport = a, port
	e.keptName = netip.AddrPort{}
	e.addrBound = !a.IsUnspecified()
	e.userBound = addr.Port() != 0
	if !e.userBound {
		// An ephemeral port picked by bind(0) is still kept across close of
		// the connection, like an explicit one (SOCK_BINDPORT_LOCK is set
		// only for a non-zero port, but the bucket stays with the socket).
		e.userBound = true
	}
	return nil
}

// LocalAddress implements stack.Endpoint.
func (e *endpoint) LocalAddress() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.laddr
	if e.lport == 0 && e.keptName.IsValid() {
		return netip.AddrPortFrom(e.fromWire(e.keptName.Addr()), e.keptName.Port())
	}
	if !a.IsValid() {
		a = e.unspecified()
	} else if a.IsUnspecified() {
		if e.family == unix.AF_INET6 && e.owner != nil && e.owner.wild6 {
			a = netip.IPv6Unspecified()
		} else if e.family == unix.AF_INET6 {
			a = netip.AddrFrom16(netip.IPv4Unspecified().As16())
		}
		return netip.AddrPortFrom(a, e.lport)
	}
	return netip.AddrPortFrom(e.fromWire(a), e.lport)
}

// RemoteAddress implements stack.Endpoint.
func (e *endpoint) RemoteAddress() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.raddr.IsValid() || e.state == StateListen {
		return netip.AddrPort{}, unix.ENOTCONN
	}
	if st := e.userState(); st == StateClose {
		// inet_getname: no peer name in CLOSE, even for a socket that
		// was connected and then reset or moved to TIME_WAIT.
		return netip.AddrPort{}, unix.ENOTCONN
	}
	if e.state == StateSynSent || e.state == StateSynRecv {
		// getpeername works only once connected (inet_getname checks
		// TCPF_CLOSE | TCPF_SYN_SENT with peer == 1).
		if e.state == StateSynSent {
			return netip.AddrPort{}, unix.ENOTCONN
		}
	}
	return netip.AddrPortFrom(e.fromWire(e.raddr), e.rport), nil
}

// Listen implements stack.Endpoint (inet_listen, spec 9-11).
func (e *endpoint) Listen(backlog int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ss != ssUnconnected || (e.state != StateClose && e.state != StateListen) {
		return unix.EINVAL
	}
	somax := e.proto.cfg.Somaxconn
	if backlog < 0 || backlog > somax {
		backlog = somax
	}
	if e.state == StateListen {
		e.backlog = backlog
		return nil
	}
	if !e.ownerBound {
		if err := e.bindLocked(netip.AddrPortFrom(e.unspecified(), 0)); err != nil {
			return err
		}
	}
	if err := e.proto.startListen(e); err != nil {
		return err
	}
	e.backlog = backlog
	e.state = StateListen
	e.synQueue = make(map[tupleKey]*request)
	return nil
}

// Accept implements stack.Endpoint (inet_csk_accept, spec 82-84).
func (e *endpoint) Accept() (stack.Endpoint, netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != StateListen {
		return nil, netip.AddrPort{}, unix.EINVAL
	}
	if len(e.acceptQ) == 0 {
		return nil, netip.AddrPort{}, unix.EAGAIN
	}
	c := e.acceptQ[0]
	copy(e.acceptQ, e.acceptQ[1:])
	e.acceptQ[len(e.acceptQ)-1] = nil
	e.acceptQ = e.acceptQ[:len(e.acceptQ)-1]
	c.mu.Lock()
	c.ss = ssConnected
	ra := netip.AddrPortFrom(c.fromWire(c.raddr), c.rport)
	c.mu.Unlock()
	return c, ra, nil
}

// Readiness implements stack.Endpoint (tcp_poll).
func (e *endpoint) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.readinessLocked() & mask
}

func (e *endpoint) readinessLocked() waiter.EventMask {
	var m waiter.EventMask
	if e.state == StateListen {
		if len(e.acceptQ) > 0 {
			m |= waiter.EventIn
		}
		return m
	}
	if e.shutdown == rcvShutdown|sendShutdown || e.state == StateClose {
		m |= waiter.EventHUp
	}
	if e.shutdown&rcvShutdown != 0 {
		m |= waiter.EventIn | waiter.EventRdHUp
	}
	if e.state != StateSynSent && e.state != StateSynRecv {
		target := max(e.rcvlowat, 1)
		if e.urg != urgNone && e.urgSeq == e.copiedSeq && !e.oobInline() {
			// tcp_poll: the urgent byte next in line is not stream
			// data, so it alone does not make the socket readable.
			target++
		}
		if e.rcvBuf.n >= target || (e.rcvBuf.n > 0 && e.done) {
			m |= waiter.EventIn
		}
		if e.shutdown&sendShutdown == 0 {
			if e.writable() {
				m |= waiter.EventOut
			}
			if e.urg == urgValid && !e.oobInline() {
				m |= waiter.EventPri
			}
		} else {
			m |= waiter.EventOut
		}
	}
	if e.err != 0 {
		m |= waiter.EventErr
	}
	return m
}

// writable is sk_stream_is_writeable: free space at least half of what
// is queued.
func (e *endpoint) writable() bool {
	limit := e.sndLimit()
	used := int(e.sndUna.Size(e.writeSeq))
	free := limit - used
	return free > 0 && free >= used/2
}

// Info implements stack.Endpoint.
func (e *endpoint) Info() stack.EndpointInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := stack.EndpointInfo{Protocol: header.ProtoTCP, State: uint8(e.state)}
	i.Local = netip.AddrPortFrom(e.laddr, e.lport)
	if e.raddr.IsValid() {
		i.Remote = netip.AddrPortFrom(e.raddr, e.rport)
	}
	if e.state == StateListen {
		i.RecvQ, i.SendQ = len(e.acceptQ), e.backlog
	} else {
		i.RecvQ = e.rcvBuf.n
		// Linux counts the FIN in write_seq; ours is acked past writeSeq
		// once the FIN is, so clamp: nothing is queued then.
		i.SendQ = max(0, int(int32(e.writeSeq-e.sndUna)))
	}
	return i
}

// sockError reads and clears sk_err (sock_error).
func (e *endpoint) sockError() unix.Errno {
	err := e.err
	e.err = 0
	return err
}

// Read implements stack.Endpoint (tcp_recvmsg).
func (e *endpoint) Read(p []byte, o stack.ReadOptions) (stack.ReadResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateListen {
		return stack.ReadResult{}, unix.ENOTCONN
	}
	if o.OOB {
		return e.readUrgent(p, o.Peek)
	}
	e.beginStamp()
	defer e.endStamp()
	if e.rcvBuf.n > 0 && len(p) > 0 {
		n, skip := e.urgentReadLimit(min(len(p), e.rcvBuf.n))
		if skip > 0 {
			// The urgent byte is next: it is not part of the stream.
			if o.Peek {
				return stack.ReadResult{}, unix.EAGAIN
			}
			e.consumeLocked(skip)
			e.urg = urgNone
			if e.rcvBuf.n == 0 {
				return e.readEmptyLocked()
			}
			n, _ = e.urgentReadLimit(min(len(p), e.rcvBuf.n))
		}
		if !o.Trunc {
			e.rcvBuf.read(0, p[:n])
		}
		if !o.Peek {
			e.consumeLocked(n)
		}
		return stack.ReadResult{N: n, Total: n}, nil
	}
	if len(p) == 0 && e.rcvBuf.n > 0 {
		return stack.ReadResult{}, nil
	}
	return e.readEmptyLocked()
}

// readEmptyLocked is what a read returns when no data is queued.
func (e *endpoint) readEmptyLocked() (stack.ReadResult, error) {
	switch {
	case e.done:
		return stack.ReadResult{}, nil
	case e.err != 0:
		return stack.ReadResult{}, e.sockError()
	case e.shutdown&rcvShutdown != 0:
		return stack.ReadResult{}, nil
	case e.state == StateClose:
		return stack.ReadResult{}, unix.ENOTCONN
	}
	return stack.ReadResult{}, unix.EAGAIN
}

// Write implements stack.Endpoint (tcp_sendmsg_locked).
func (e *endpoint) Write(p []byte, o stack.WriteOptions) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != StateEstablished && e.state != StateCloseWait {
		if e.err != 0 {
			return 0, e.sockError()
		}
		if e.state != StateSynSent && e.state != StateSynRecv {
			return 0, unix.EPIPE
		}
		return 0, unix.EAGAIN
	}
	if e.err != 0 {
		return 0, e.sockError()
	}
	if e.shutdown&sendShutdown != 0 {
		return 0, unix.EPIPE
	}
	if len(p) == 0 {
		return 0, nil
	}
	e.beginStamp()
	defer e.endStamp()
	limit := e.sndLimit()
	used := int(e.sndUna.Size(e.writeSeq))
	if used >= limit {
		return 0, unix.EAGAIN
	}
	room := limit - used
	if e.sndBuf.capacity() < limit {
		e.sndBuf.resize(limit, 0)
	}
	n := e.sndBuf.write(p[:min(len(p), room)])
	e.writeSeq = e.writeSeq.Add(seqnum.Size(n))
	if o.OOB && n > 0 {
		// MSG_OOB: the last byte written is urgent (tcp_mark_urg).
		e.sndUp = e.writeSeq
	}
	e.moreHint = o.More
	e.sendPending()
	return n, nil
}

// Shutdown implements stack.Endpoint (inet_shutdown + tcp_shutdown).
func (e *endpoint) Shutdown(how int) error {
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return unix.EINVAL
	}
	bits := uint8(how + 1) // SHUT_RD=0 -> RCV_SHUTDOWN(1), WR=1 -> 2, RDWR=2 -> 3
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ss == ssConnecting {
		if e.state == StateSynSent || e.state == StateSynRecv || e.state == StateClose {
			e.ss = ssUnconnected // SS_DISCONNECTING then unconnected after disconnect
		} else {
			e.ss = ssConnected
		}
	}
	var err error
	switch e.state {
	case StateClose:
		err = unix.ENOTCONN
		e.shutdown |= bits
	case StateListen:
		if bits&rcvShutdown != 0 {
			e.disconnectLocked()
		}
	case StateSynSent:
		e.disconnectLocked()
	default:
		e.shutdown |= bits
		if bits&sendShutdown != 0 {
			e.sendFinLocked()
		}
	}
	e.notify(waiter.EventIn | waiter.EventOut | waiter.EventHUp | waiter.EventRdHUp)
	return err
}

// Close implements stack.Endpoint (tcp_close).
func (e *endpoint) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closeLocked()
}

func (e *endpoint) closeLocked() {
	if e.orphan {
		return
	}
	e.orphan = true
	e.shutdown = rcvShutdown | sendShutdown
	st := e.stack.Stats()
	switch {
	case e.state == StateListen:
		e.stopListenLocked()
		e.setState(StateClose)
	case e.state == StateClose:
		e.releaseLocked()
	case e.state == StateSynSent:
		e.setState(StateClose)
	case e.rcvBuf.n > 0:
		// Unread data: abort with RST (RFC 2525 2.17).
		st.TCPExt.TCPAbortOnClose.Add(1)
		e.sendActiveReset()
		e.setState(StateClose)
	case e.lingerOn && e.lingerSecs == 0:
		st.TCPExt.TCPAbortOnLinger.Add(1)
		e.sendActiveReset()
		e.setState(StateClose)
	default:
		e.sendFinLocked()
		if e.state == StateFinWait2 {
			e.armFinWait2()
		}
	}
	e.notify(waiter.EventIn | waiter.EventOut | waiter.EventHUp)
}

// disconnectLocked is tcp_disconnect: abort whatever is in progress and
// return to CLOSE, ready for a new connect (connect(AF_UNSPEC)).
func (e *endpoint) disconnectLocked() {
	switch {
	case e.state == StateListen:
		e.stopListenLocked()
	case e.state == StateSynSent:
	case e.state.synchronized() && e.state != StateTimeWait || e.state == StateSynRecv:
		e.sendActiveReset()
		e.err = unix.ECONNRESET
	}
	e.setState(StateClose)
	e.keptName = netip.AddrPort{}
	e.err = 0
	e.shutdown = 0
	e.done = false
	e.ss = ssUnconnected
	e.resetConnState()
}

// resetConnState clears per-connection variables so the socket can
// connect again.
func (e *endpoint) resetConnState() {
	e.sndBuf.release()
	e.rcvBuf.release()
	e.ooo = e.ooo[:0]
	e.sacked = e.sacked[:0]
	e.finQueued, e.finOOO = false, false
	e.ca = caOpen
	e.dupAcks = 0
	e.backoff, e.retransmits = 0, 0
	e.rto = timeoutInit
	e.srtt, e.rttvar = 0, 0
	e.raddr, e.rport = netip.Addr{}, 0
}
