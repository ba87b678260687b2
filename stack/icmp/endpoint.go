package icmp

import (
	"net/netip"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/socket/dgram"
	"github.com/netprov/netprov/stack/socket/sockopt"
	"github.com/netprov/netprov/stack/waiter"
)

const (
	stateEstablished = 1
	stateClose       = 7
	rcvShutdown      = 1
	sendShutdown     = 2
)

// binding is what lookups read; written with both locks held.
type binding struct {
	family int
	// local is the bound address and the identifier (as the port).
	local     netip.AddrPort
	remote    netip.Addr
	connected bool
	nic       int
}

// endpoint is an echo socket (Linux's ping_sock).
type endpoint struct {
	t  *Transport
	wq waiter.Queue

	mu             sync.Mutex
	b              binding
	route          *stack.Route
	closed         bool
	shutdown       uint8
	softErr        unix.Errno
	rq             dgram.Queue
	rcvbuf, sndbuf int
	reuseAddr      bool // also read by hashLocked under the table lock
	broadcast      bool
	recvErr        bool
	ttl, tos       int
	generic        sockopt.Generic
}

var _ stack.Endpoint = (*endpoint)(nil)

func newEndpoint(t *Transport, family int) *endpoint {
	e := &endpoint{t: t, rcvbuf: t.p.cfg.RmemDefault, sndbuf: t.p.cfg.WmemDefault, ttl: -1, tos: -1}
	e.b.family = family
	e.b.local = netip.AddrPortFrom(e.unspecified(), 0)
	return e
}

func (e *endpoint) unspecified() netip.Addr {
	if e.b.family == unix.AF_INET6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func (e *endpoint) stack() *stack.Stack { return e.t.p.s }

// Bind implements stack.Endpoint (ping_bind): the port is the identifier.
func (e *endpoint) Bind(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return unix.EBADF
	}
	a, nic, err := e.checkAddr(addr.Addr())
	if err != nil {
		return err
	}
	if e.b.local.Port() != 0 {
		return unix.EINVAL
	}
	p := e.t.p
	p.mu.Lock()
	defer p.mu.Unlock()
	old := e.b
	e.b.local = netip.AddrPortFrom(a, 0)
	if nic != 0 {
		e.b.nic = nic
	}
	if err := p.hashLocked(e, addr.Port()); err != nil {
		e.b = old
		return err
	}
	return nil
}

// checkAddr is ping_check_bind_addr.
func (e *endpoint) checkAddr(a netip.Addr) (netip.Addr, int, error) {
	s := e.stack()
	if !a.IsValid() {
		return e.unspecified(), 0, nil
	}
	if e.b.family == unix.AF_INET {
		if !a.Is4() {
			return netip.Addr{}, 0, unix.EAFNOSUPPORT
		}
		if a.IsUnspecified() || a.IsMulticast() || s.IsLocalAddress(a) || isBroadcast(s, a) {
			return a, 0, nil
		}
		return netip.Addr{}, 0, unix.EADDRNOTAVAIL
	}
	if a.Is4() || a.Is4In6() || (a.IsMulticast() && !a.IsUnspecified()) {
		return netip.Addr{}, 0, unix.EINVAL
	}
	nic := e.b.nic
	if z := a.Zone(); z != "" {
		id, err := strconv.Atoi(z)
		if err != nil || s.NIC(id) == nil {
			return netip.Addr{}, 0, unix.ENODEV
		}
		nic = id
	}
	if a.IsUnspecified() {
		return a.WithZone(""), nic, nil
	}
	if a.IsLinkLocalUnicast() {
		if nic == 0 {
			return netip.Addr{}, 0, unix.EINVAL
		}
		if n := s.NIC(nic); n == nil || !n.HasAddress(a.WithZone("")) {
			return netip.Addr{}, 0, unix.EADDRNOTAVAIL
		}
		return a, nic, nil
	}
	if !s.IsLocalAddress(a.WithZone("")) {
		return netip.Addr{}, 0, unix.EADDRNOTAVAIL
	}
	return a.WithZone(""), nic, nil
}

func isBroadcast(s *stack.Stack, a netip.Addr) bool {
	for _, n := range s.NICs() {
		if n.IsBroadcast(a) {
			return true
		}
	}
	return a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func (e *endpoint) autobindLocked() error {
	if e.b.local.Port() != 0 {
		return nil
	}
	p := e.t.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.hashLocked(e, 0); err != nil {
		return unix.EAGAIN
	}
	return nil
}

// Listen implements stack.Endpoint.
func (e *endpoint) Listen(int) error { return unix.EOPNOTSUPP }

// Accept implements stack.Endpoint.
func (e *endpoint) Accept() (stack.Endpoint, netip.AddrPort, error) {
	return nil, netip.AddrPort{}, unix.EOPNOTSUPP
}

// Connect implements stack.Endpoint (ip4_datagram_connect /
// ip6_datagram_connect; the port is ignored).
func (e *endpoint) Connect(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return unix.EBADF
	}
	p := e.t.p
	if !addr.IsValid() {
		p.mu.Lock()
		e.b.connected = false
		e.b.remote = netip.Addr{}
		p.mu.Unlock()
		e.route = nil
		return nil
	}
	if err := e.autobindLocked(); err != nil {
		return err
	}
	r, err := e.routeTo(addr.Addr())
	if err != nil {
		return err
	}
	p.mu.Lock()
	if e.b.local.Addr().IsUnspecified() {
		e.b.local = netip.AddrPortFrom(r.LocalAddr, e.b.local.Port())
	}
	e.b.remote = r.RemoteAddr
	e.b.connected = true
	p.mu.Unlock()
	e.route = r
	return nil
}

// routeTo finds the route to dst and applies the broadcast rule.
func (e *endpoint) routeTo(dst netip.Addr) (*stack.Route, error) {
	nic := e.b.nic
	if e.b.family == unix.AF_INET6 {
		if dst.Is4() || dst.Is4In6() {
			return nil, unix.EINVAL
		}
		if z := dst.Zone(); z != "" {
			if id, err := strconv.Atoi(z); err == nil {
				nic = id
			}
		}
		if dst.IsLinkLocalUnicast() && nic == 0 {
			return nil, unix.EINVAL
		}
	} else if !dst.Is4() {
		return nil, unix.EAFNOSUPPORT
	}
	local := e.b.local.Addr().WithZone("")
	if local.IsUnspecified() {
		local = netip.Addr{}
	}
	r, err := e.stack().FindRoute(nic, local, dst.WithZone(""))
	if err != nil {
		return nil, err
	}
	if r.Flags&stack.RouteBroadcast != 0 && !e.broadcast {
		return nil, unix.EACCES
	}
	return r, nil
}

func (e *endpoint) enqueue(pkt *buffer.Packet, src netip.Addr, nic int) {
	if src.Is6() && src.IsLinkLocalUnicast() && nic != 0 {
		src = src.WithZone(strconv.Itoa(nic))
	}
	ts := dgram.Truesize(pkt.Len())
	e.mu.Lock()
	if e.closed || e.rq.Bytes() > e.rcvbuf {
		e.mu.Unlock()
		pkt.Release()
		return
	}
	e.rq.Push(dgram.Datagram{Pkt: pkt, From: netip.AddrPortFrom(src, 0), Truesize: ts})
	e.mu.Unlock()
	e.wq.Notify(waiter.EventIn)
}

func (e *endpoint) handleError(ie stack.ICMPError, v4 bool) {
	errno, hard := dgram.ICMPErrno(ie, v4)
	e.mu.Lock()
	if !e.recvErr && (!hard || !e.b.connected) {
		e.mu.Unlock()
		return
	}
	e.softErr = errno
	e.mu.Unlock()
	e.wq.Notify(waiter.EventErr)
}

// Read implements stack.Endpoint (ping_recvmsg): the whole echo reply,
// ICMP header included; the source port is 0.
func (e *endpoint) Read(p []byte, o stack.ReadOptions) (stack.ReadResult, error) {
	e.mu.Lock()
	if e.softErr != 0 {
		err := e.softErr
		e.softErr = 0
		e.mu.Unlock()
		return stack.ReadResult{}, err
	}
	d := e.rq.Front()
	if d == nil {
		sd := e.shutdown&rcvShutdown != 0
		e.mu.Unlock()
		if sd {
			return stack.ReadResult{}, nil
		}
		return stack.ReadResult{}, unix.EAGAIN
	}
	data := d.Pkt.Data()
	n := copy(p, data)
	res := stack.ReadResult{N: n, Total: len(data), From: d.From, Truncated: n < len(data)}
	if o.Peek {
		e.mu.Unlock()
		return res, nil
	}
	dd := e.rq.Pop()
	e.mu.Unlock()
	dd.Pkt.Release()
	return res, nil
}

// Write implements stack.Endpoint (ping_v4_sendmsg / ping_v6_sendmsg):
// p must start with an echo request header (type 8 or 128, code 0).
func (e *endpoint) Write(p []byte, o stack.WriteOptions) (int, error) {
	if len(p) > 0xffff {
		return 0, unix.EMSGSIZE
	}
	if len(p) < header.ICMPv4MinLen {
		return 0, unix.EINVAL
	}
	if o.OOB {
		return 0, unix.EOPNOTSUPP
	}
	want := header.ICMPv4Echo
	if e.b.family == unix.AF_INET6 {
		want = header.ICMPv6EchoRequest
	}
	if p[0] != want || p[1] != 0 {
		return 0, unix.EINVAL
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return 0, unix.EBADF
	}
	var r *stack.Route
	if o.To.IsValid() {
		var err error
		if r, err = e.routeTo(o.To.Addr()); err != nil {
			e.mu.Unlock()
			return 0, err
		}
	} else {
		if !e.b.connected {
			e.mu.Unlock()
			return 0, unix.EDESTADDRREQ
		}
		r = e.route
	}
	if err := e.autobindLocked(); err != nil {
		e.mu.Unlock()
		return 0, err
	}
	if e.softErr != 0 {
		err := e.softErr
		e.softErr = 0
		e.mu.Unlock()
		return 0, err
	}
	if e.shutdown&sendShutdown != 0 {
		e.mu.Unlock()
		return 0, unix.EPIPE
	}
	ident := e.b.local.Port()
	params := stack.NetworkParams{Protocol: e.t.number}
	if e.ttl > 0 {
		params.TTL = uint8(e.ttl)
	}
	if e.tos > 0 {
		params.TOS = uint8(e.tos)
	}
	e.mu.Unlock()

	max := 65535 - header.IPv6Len
	if r.RemoteAddr.Is4() {
		max = 65535 - header.IPv4MinLen
	}
	if len(p) > max {
		return 0, unix.EMSGSIZE
	}
	pkt := buffer.New(buffer.Headroom, len(p))
	b := pkt.Append(len(p))
	copy(b, p)
	h := header.ICMPv4(b)
	h.SetIdent(ident)
	h.SetChecksum(0)
	if e.b.family == unix.AF_INET {
		h.SetChecksum(header.ICMPv4Checksum(b))
	} else {
		header.ICMPv6(b).SetChecksum(header.ICMPv6Checksum(b, r.LocalAddr, r.RemoteAddr))
	}
	if err := r.WritePacket(pkt, params); err != nil {
		return 0, err
	}
	st := &e.stack().Stats().ICMP
	if e.b.family == unix.AF_INET6 {
		st = &e.stack().Stats().ICMPv6
	}
	st.OutMsgs.Add(1)
	st.OutEchos.Add(1)
	return len(p), nil
}

// Shutdown implements stack.Endpoint.
func (e *endpoint) Shutdown(how int) error {
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return unix.EINVAL
	}
	e.mu.Lock()
	e.shutdown |= uint8(how + 1)
	connected := e.b.connected
	e.mu.Unlock()
	e.wq.Notify(waiter.EventIn | waiter.EventOut | waiter.EventHUp | waiter.EventRdHUp)
	if !connected {
		return unix.ENOTCONN
	}
	return nil
}

// Close implements stack.Endpoint.
func (e *endpoint) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.t.p.mu.Lock()
	e.t.p.unhashLocked(e)
	e.t.p.mu.Unlock()
	e.rq.Clear()
	e.mu.Unlock()
	e.wq.Notify(waiter.EventHUp)
}

// LocalAddress implements stack.Endpoint.
func (e *endpoint) LocalAddress() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.b.local
}

// RemoteAddress implements stack.Endpoint (the port is 0).
func (e *endpoint) RemoteAddress() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.b.connected {
		return netip.AddrPort{}, unix.ENOTCONN
	}
	return netip.AddrPortFrom(e.b.remote, 0), nil
}

// Readiness implements stack.Endpoint (datagram_poll).
func (e *endpoint) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := waiter.EventOut
	if e.softErr != 0 {
		m |= waiter.EventErr
	}
	if e.shutdown&rcvShutdown != 0 {
		m |= waiter.EventRdHUp | waiter.EventIn
	}
	if e.shutdown == rcvShutdown|sendShutdown {
		m |= waiter.EventHUp
	}
	if e.rq.Len() > 0 {
		m |= waiter.EventIn
	}
	return m & (mask | waiter.EventErr | waiter.EventHUp)
}

// EventQueue implements stack.Endpoint.
func (e *endpoint) EventQueue() *waiter.Queue { return &e.wq }

// Info implements stack.Endpoint.
func (e *endpoint) Info() stack.EndpointInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	info := stack.EndpointInfo{Protocol: e.t.number, State: stateClose, Local: e.b.local, RecvQ: e.rq.Bytes()}
	if e.b.connected {
		info.State = stateEstablished
		info.Remote = netip.AddrPortFrom(e.b.remote, 0)
	}
	return info
}

// InQueue is SIOCINQ: the length of the first queued reply.
func (e *endpoint) InQueue() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d := e.rq.Front(); d != nil {
		return d.Pkt.Len()
	}
	return 0
}

// OutQueue is SIOCOUTQ.
func (e *endpoint) OutQueue() int { return 0 }

// SetSockOpt implements stack.Endpoint.
func (e *endpoint) SetSockOpt(level, name int, val []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch level {
	case unix.SOL_SOCKET:
		if ok, err := e.generic.Set(name, val); ok {
			return err
		}
		v, err := sockopt.Int(val)
		if err != nil {
			return err
		}
		switch name {
		case unix.SO_REUSEADDR:
			e.t.p.mu.Lock()
			e.reuseAddr = v != 0
			e.t.p.mu.Unlock()
		case unix.SO_BROADCAST:
			e.broadcast = v != 0
		case unix.SO_RCVBUF:
			e.rcvbuf = sockopt.RcvBuf(v, e.t.p.cfg.RmemMax)
		case unix.SO_SNDBUF:
			e.sndbuf = sockopt.SndBuf(v, e.t.p.cfg.WmemMax)
		default:
			return unix.ENOPROTOOPT
		}
		return nil
	case unix.SOL_IP:
		v, err := sockopt.IntOrByte(val)
		if err != nil {
			return err
		}
		switch name {
		case unix.IP_TTL:
			if v != -1 && (v < 1 || v > 255) {
				return unix.EINVAL
			}
			e.ttl = v
		case unix.IP_TOS:
			e.tos = v & 0xff
		case unix.IP_RECVERR:
			e.recvErr = v != 0
		default:
			return unix.ENOPROTOOPT
		}
		return nil
	case unix.SOL_IPV6:
		if e.b.family != unix.AF_INET6 {
			return unix.ENOPROTOOPT
		}
		v, err := sockopt.Int(val)
		if err != nil {
			return err
		}
		switch name {
		case unix.IPV6_UNICAST_HOPS:
			if v < -1 || v > 255 {
				return unix.EINVAL
			}
			e.ttl = v
		case unix.IPV6_TCLASS:
			if v < -1 || v > 255 {
				return unix.EINVAL
			}
			e.tos = v
		case unix.IPV6_RECVERR:
			e.recvErr = v != 0
		case unix.IPV6_V6ONLY:
			// Echo sockets are single-family; Linux accepts the option.
		default:
			return unix.ENOPROTOOPT
		}
		return nil
	}
	return unix.ENOPROTOOPT
}

// GetSockOpt implements stack.Endpoint.
func (e *endpoint) GetSockOpt(level, name int, buf []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ttl := e.ttl
	if ttl <= 0 {
		ttl = e.t.p.cfg.DefaultTTL
	}
	tos := e.tos
	if tos < 0 {
		tos = 0
	}
	switch level {
	case unix.SOL_SOCKET:
		if n, ok := e.generic.Get(name, buf); ok {
			return n, nil
		}
		switch name {
		case unix.SO_TYPE:
			return sockopt.PutInt(buf, unix.SOCK_DGRAM), nil
		case unix.SO_PROTOCOL:
			return sockopt.PutInt(buf, int(e.t.number)), nil
		case unix.SO_DOMAIN:
			return sockopt.PutInt(buf, e.b.family), nil
		case unix.SO_ERROR:
			v := int(e.softErr)
			e.softErr = 0
			return sockopt.PutInt(buf, v), nil
		case unix.SO_REUSEADDR:
			return sockopt.PutBool(buf, e.reuseAddr), nil
		case unix.SO_BROADCAST:
			return sockopt.PutBool(buf, e.broadcast), nil
		case unix.SO_RCVBUF:
			return sockopt.PutInt(buf, e.rcvbuf), nil
		case unix.SO_SNDBUF:
			return sockopt.PutInt(buf, e.sndbuf), nil
		}
	case unix.SOL_IP:
		switch name {
		case unix.IP_TTL:
			return sockopt.PutInt(buf, ttl), nil
		case unix.IP_TOS:
			return sockopt.PutInt(buf, tos), nil
		case unix.IP_RECVERR:
			return sockopt.PutBool(buf, e.recvErr), nil
		}
	case unix.SOL_IPV6:
		if e.b.family != unix.AF_INET6 {
			return 0, unix.ENOPROTOOPT
		}
		switch name {
		case unix.IPV6_UNICAST_HOPS:
			return sockopt.PutInt(buf, ttl), nil
		case unix.IPV6_TCLASS:
			return sockopt.PutInt(buf, tos), nil
		case unix.IPV6_RECVERR:
			return sockopt.PutBool(buf, e.recvErr), nil
		case unix.IPV6_V6ONLY:
			return sockopt.PutBool(buf, true), nil
		}
	}
	return 0, unix.ENOPROTOOPT
}
