package icmp

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/dgram"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/socket/sockopt"
	"github.com/netprov/netprov/stack/waiter"
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

	mu        sync.Mutex
	b         binding
	route     *stack.Route
	sk        dgram.Socket
	reuseAddr bool // also read by hashLocked under the table lock
	// ipID is the socket's IPv4 identification counter (inet_id), used
	// for every echo request while connected (spec 32, dgram.SeedIPID).
	ipID atomic.Uint32
}

var _ stack.Endpoint = (*endpoint)(nil)

func newEndpoint(t *Transport, family int) *endpoint {
	e := &endpoint{t: t}
	e.sk.Init(&t.p.cfg.Config)
	e.sk.Clock = t.p.s.Clock()
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
	if e.sk.Closed {
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
		if a.IsUnspecified() || a.IsMulticast() || s.IsLocalAddress(a) || dgram.IsBroadcast(s, a) {
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
	if e.sk.Closed {
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
	dgram.SeedIPID(&e.ipID) // ping connect is ip4_datagram_connect too
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
	if r.Flags&stack.RouteBroadcast != 0 && !e.sk.Broadcast {
		return nil, unix.EACCES
	}
	return r, nil
}

func (e *endpoint) enqueue(pkt *buffer.Packet, ip stack.IPInfo) {
	src, nic := ip.Src, ip.NIC
	if src.Is6() && src.IsLinkLocalUnicast() && nic != 0 {
		src = src.WithZone(strconv.Itoa(nic))
	}
	e.mu.Lock()
	if e.sk.Closed || !e.sk.EnqueueInfo(pkt, netip.AddrPortFrom(src, 0), dgram.PingInfoFromIP(ip)) {
		e.mu.Unlock()
		pkt.Release()
		return
	}
	e.mu.Unlock()
	e.wq.Notify(waiter.EventIn)
}

func (e *endpoint) handleError(ie stack.ICMPError, v4 bool) {
	e.mu.Lock()
	kept := e.sk.RecordError(ie, v4, e.b.connected)
	e.mu.Unlock()
	if kept {
		e.wq.Notify(waiter.EventErr)
	}
}

// Read implements stack.Endpoint (ping_recvmsg): the whole echo reply,
// ICMP header included; the source port is 0.
func (e *endpoint) Read(p []byte, o stack.ReadOptions) (stack.ReadResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	res, _, err := e.sk.Read(p, o.Peek)
	return res, err
}

// ReadControl implements dgram.ControlReader (ping_recvmsg with its
// control messages).
func (e *endpoint) ReadControl(p []byte, o stack.ReadOptions, keepErr bool) (stack.ReadResult, dgram.Control, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	res, ctl, _, err := e.sk.ReadControl(p, o.Peek, keepErr)
	ctl.V6Socket = e.b.family == unix.AF_INET6
	return res, ctl, err
}

// RecvFlags implements dgram.ControlReader.
func (e *endpoint) RecvFlags() dgram.RecvFlags {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sk.Recv
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
	if e.sk.Closed {
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
	if e.sk.SoftErr != 0 {
		err := e.sk.TakeError()
		e.mu.Unlock()
		return 0, err
	}
	if e.sk.Shutdown&dgram.SendShutdown != 0 {
		e.mu.Unlock()
		return 0, unix.EPIPE
	}
	ident := e.b.local.Port()
	params := stack.NetworkParams{Protocol: e.t.number}
	if e.b.connected {
		params.ID = &e.ipID // spec 32: a socket with a destination
	}
	if e.sk.TTL > 0 {
		params.TTL = uint8(e.sk.TTL)
	}
	if e.sk.TOS > 0 {
		params.TOS = uint8(e.sk.TOS)
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
	e.mu.Lock()
	err := e.sk.SetShutdown(how)
	connected := e.b.connected
	e.mu.Unlock()
	if err != nil {
		return err
	}
	e.wq.Notify(waiter.EventIn | waiter.EventOut | waiter.EventHUp | waiter.EventRdHUp)
	if !connected {
		return unix.ENOTCONN
	}
	return nil
}

// Close implements stack.Endpoint.
func (e *endpoint) Close() {
	e.mu.Lock()
	if e.sk.Closed {
		e.mu.Unlock()
		return
	}
	e.sk.Closed = true
	e.t.p.mu.Lock()
	e.t.p.unhashLocked(e)
	e.t.p.mu.Unlock()
	e.sk.Queue.Clear()
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
	return e.sk.Readiness(mask)
}

// EventQueue implements stack.Endpoint.
func (e *endpoint) EventQueue() *waiter.Queue { return &e.wq }

// Info implements stack.Endpoint.
func (e *endpoint) Info() stack.EndpointInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sk.Info(e.t.number, e.b.local, netip.AddrPortFrom(e.b.remote, 0), e.b.connected)
}

// InQueue is SIOCINQ: the length of the first queued reply.
func (e *endpoint) InQueue() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sk.InQueue()
}

// OutQueue is SIOCOUTQ.
func (e *endpoint) OutQueue() int { return 0 }

// SetSockOpt implements stack.Endpoint.
func (e *endpoint) SetSockOpt(level, name int, val []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch level {
	case unix.SOL_SOCKET:
		if ok, err := e.sk.SetSocketOpt(name, val); ok {
			return err
		}
		v, err := sockopt.Int(val)
		if err != nil {
			return err
		}
		if name != unix.SO_REUSEADDR {
			return unix.ENOPROTOOPT
		}
		e.t.p.mu.Lock()
		e.reuseAddr = v != 0
		e.t.p.mu.Unlock()
		return nil
	case unix.SOL_IP:
		if ok, err := e.sk.SetIPOpt(name, val); ok {
			return err
		}
		return unix.ENOPROTOOPT
	case unix.SOL_IPV6:
		if e.b.family != unix.AF_INET6 {
			return unix.ENOPROTOOPT
		}
		if ok, err := e.sk.SetIPv6Opt(name, val); ok {
			return err
		}
		if name != unix.IPV6_V6ONLY {
			return unix.ENOPROTOOPT
		}
		if _, err := sockopt.Int(val); err != nil {
			return err
		}
		// Echo sockets are single-family; Linux accepts the option.
		return nil
	}
	return unix.ENOPROTOOPT
}

// GetSockOpt implements stack.Endpoint.
func (e *endpoint) GetSockOpt(level, name int, buf []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch level {
	case unix.SOL_SOCKET:
		if n, ok := e.sk.GetSocketOpt(name, buf, e.b.family, int(e.t.number)); ok {
			return n, nil
		}
		if name == unix.SO_REUSEADDR {
			return sockopt.PutBool(buf, e.reuseAddr), nil
		}
	case unix.SOL_IP:
		if n, ok := e.sk.GetIPOpt(name, buf); ok {
			return n, nil
		}
	case unix.SOL_IPV6:
		if e.b.family != unix.AF_INET6 {
			return 0, sockopt.UnknownGetLevel(e.b.family)
		}
		if n, ok := e.sk.GetIPv6Opt(name, buf); ok {
			return n, nil
		}
		if name == unix.IPV6_V6ONLY {
			return sockopt.PutBool(buf, true), nil
		}
	default:
		// ping_prot's getsockopt is ip_getsockopt (ipv6_getsockopt for
		// ICMPv6): no level of its own.
		return 0, sockopt.UnknownGetLevel(e.b.family)
	}
	return 0, unix.ENOPROTOOPT
}
