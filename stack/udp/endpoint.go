package udp

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/dgram"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/waiter"
)

// Largest payloads: the IPv4 total length (65535) less the IP and UDP
// headers, and the IPv6 payload length (65535) less the UDP header.
const (
	maxPayloadV4 = 65535 - 20 - header.UDPLen
	maxPayloadV6 = 65535 - header.UDPLen
)

// endpoint is a UDP socket's protocol state (Linux's udp_sock).
type endpoint struct {
	p  *Protocol
	wq waiter.Queue

	mu sync.Mutex
	b  binding // see binding: also written under p.mu
	// bindAddrLocked and bindPortLocked are SOCK_BINDADDR_LOCK and
	// SOCK_BINDPORT_LOCK: bind chose them, so disconnect keeps them.
	bindAddrLocked, bindPortLocked bool
	route                          *stack.Route // cached for the connected peer
	sk                             dgram.Socket
	// ipID is the socket's IPv4 identification counter (inet_id), used
	// for every datagram while connected (spec 32, dgram.SeedIPID).
	ipID atomic.Uint32

	noCheck   bool
	mcastTTL  int
	mcastLoop bool
	pmtudisc  int
	groups    []membership
}

var _ stack.Endpoint = (*endpoint)(nil)

func newEndpoint(p *Protocol, family int) *endpoint {
	e := &endpoint{
		p:        p,
		mcastTTL: 1, mcastLoop: true,
		pmtudisc: unix.IP_PMTUDISC_WANT,
	}
	e.sk.Init(&p.cfg)
	e.sk.Clock = p.s.Clock()
	e.b.family = family
	if family == unix.AF_INET6 {
		e.b.local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	} else {
		e.b.local = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	return e
}

func (e *endpoint) unspecified() netip.Addr {
	if e.b.family == unix.AF_INET6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// Bind implements stack.Endpoint (inet_bind / inet6_bind, udp_v4_get_port).
func (e *endpoint) Bind(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sk.Closed {
		return unix.EBADF
	}
	if e.b.local.Port() != 0 {
		return unix.EINVAL
	}
	a, nic, err := e.checkBindAddr(addr.Addr())
	if err != nil {
		return err
	}
	nb := e.b
	nb.local = netip.AddrPortFrom(a, 0)
	if nic != 0 {
		nb.nic = nic
	}
	p := e.p
	p.mu.Lock()
	err = p.hashLocked(e, nb, addr.Port())
	p.mu.Unlock()
	if err != nil {
		return err
	}
	e.bindAddrLocked = !a.IsUnspecified() && !(a.Is4In6() && a.Unmap().IsUnspecified())
	e.bindPortLocked = addr.Port() != 0
	return nil
}

// checkBindAddr validates a bind address: it must be local, a wildcard,
// multicast or (IPv4) broadcast, else EADDRNOTAVAIL. IPv6 link-local
// addresses need a scope id (EINVAL without one). It returns the address
// in the endpoint's family and the device a scope id binds to.
func (e *endpoint) checkBindAddr(a netip.Addr) (netip.Addr, int, error) {
	if !a.IsValid() {
		return e.unspecified(), 0, nil
	}
	if e.b.family == unix.AF_INET {
		if !a.Is4() {
			return netip.Addr{}, 0, unix.EAFNOSUPPORT
		}
		return a, 0, e.checkBindV4(a)
	}
	if a.Is4() {
		a = netip.AddrFrom16(a.As16())
	}
	if a.Is4In6() {
		if e.b.v6only {
			return netip.Addr{}, 0, unix.EINVAL
		}
		return a, 0, e.checkBindV4(a.Unmap())
	}
	nic, err := e.scopeNIC(a)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return a, nic, nil
	}
	if a.IsLinkLocalUnicast() {
		n := e.p.s.NIC(nic)
		if n == nil || !n.HasAddress(a.WithZone("")) {
			return netip.Addr{}, 0, unix.EADDRNOTAVAIL
		}
		return a, nic, nil
	}
	if !e.p.s.IsLocalAddress(a.WithZone("")) {
		return netip.Addr{}, 0, unix.EADDRNOTAVAIL
	}
	return a.WithZone(""), nic, nil
}

// scopeNIC resolves an IPv6 address's zone (the sin6_scope_id, as a
// decimal interface index) and requires one for link-local addresses.
func (e *endpoint) scopeNIC(a netip.Addr) (int, error) {
	nic := e.b.nic
	if z := a.Zone(); z != "" {
		id, err := strconv.Atoi(z)
		if err != nil || e.p.s.NIC(id) == nil {
			return 0, unix.ENODEV
		}
		if nic != 0 && nic != id {
			return 0, unix.EINVAL
		}
		nic = id
	}
	if (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) && nic == 0 {
		return 0, unix.EINVAL
	}
	return nic, nil
}

func (e *endpoint) checkBindV4(a netip.Addr) error {
	if a.IsUnspecified() || a.IsMulticast() || e.p.s.IsLocalAddress(a) || dgram.IsBroadcast(e.p.s, a) {
		return nil
	}
	return unix.EADDRNOTAVAIL
}

// hashLocked assigns port (0: an ephemeral one from ip_local_port_range,
// as udp_lib_get_port) to e with binding nb and adds e to the table. The
// caller holds e.mu and p.mu.
func (p *Protocol) hashLocked(e *endpoint, nb binding, port uint16) error {
	if port != 0 {
		if p.inUseLocked(e, &nb, port) {
			return unix.EADDRINUSE
		}
	} else {
		cfg := p.s.Config()
		lo, hi := int(cfg.LocalPortRange[0]), int(cfg.LocalPortRange[1])
		if hi < lo {
			lo, hi = hi, lo
		}
		n := hi - lo + 1
		start := rand.IntN(n)
		for i := 0; i < n; i++ {
			cand := uint16(lo + (start+i)%n)
			if cand == 0 || cfg.IsReservedPort(cand) || p.inUseLocked(e, &nb, cand) {
				continue
			}
			port = cand
			break
		}
		if port == 0 {
			return unix.EADDRINUSE
		}
	}
	nb.local = netip.AddrPortFrom(nb.local.Addr(), port)
	e.b = nb
	p.ports[port] = append(p.ports[port], e)
	return nil
}

func (p *Protocol) inUseLocked(e *endpoint, nb *binding, port uint16) bool {
	for _, o := range p.ports[port] {
		if o != e && conflicts(nb, &o.b) {
			return true
		}
	}
	return false
}

// unhashLocked removes e from the table; the caller holds e.mu and p.mu.
func (p *Protocol) unhashLocked(e *endpoint) {
	port := e.b.local.Port()
	if port == 0 {
		return
	}
	// Bind order is kept: the most recent wins ties.
	dgram.Unhash(p.ports, port, e)
	e.b.local = netip.AddrPortFrom(e.b.local.Addr(), 0)
}

// autobindLocked picks an ephemeral port for an unbound endpoint
// (inet_autobind). The caller holds e.mu.
func (e *endpoint) autobindLocked() error {
	if e.b.local.Port() != 0 {
		return nil
	}
	e.p.mu.Lock()
	err := e.p.hashLocked(e, e.b, 0)
	e.p.mu.Unlock()
	if err != nil {
		return unix.EAGAIN
	}
	return nil
}

// Listen implements stack.Endpoint: UDP sockets cannot listen.
func (e *endpoint) Listen(int) error { return unix.EOPNOTSUPP }

// Accept implements stack.Endpoint.
func (e *endpoint) Accept() (stack.Endpoint, netip.AddrPort, error) {
	return nil, netip.AddrPort{}, unix.EOPNOTSUPP
}

// Connect implements stack.Endpoint (ip4_datagram_connect,
// ip6_datagram_connect): it sets the default peer, choosing the source
// address by route; an invalid addr disconnects (AF_UNSPEC).
func (e *endpoint) Connect(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sk.Closed {
		return unix.EBADF
	}
	if !addr.IsValid() {
		e.disconnectLocked()
		return nil
	}
	ra := addr.Addr()
	nic := e.b.nic
	if e.b.family == unix.AF_INET6 {
		if ra.Is4() {
			ra = netip.AddrFrom16(ra.As16())
		}
		if ra.Is4In6() {
			if e.b.v6only {
				return unix.ENETUNREACH
			}
			if la := e.b.local.Addr(); !la.IsUnspecified() && !la.Is4In6() {
				return unix.ENETUNREACH
			}
		} else {
			if ra.IsUnspecified() {
				ra = netip.IPv6Loopback()
			}
			n, err := e.scopeNIC(ra)
			if err != nil {
				return err
			}
			nic = n
		}
	} else if !ra.Is4() {
		return unix.EAFNOSUPPORT
	}
	if err := e.autobindLocked(); err != nil {
		return err
	}
	local := e.b.local.Addr()
	if local.IsUnspecified() || (local.Is4In6() && local.Unmap().IsUnspecified()) {
		local = netip.Addr{}
	}
	r, err := e.p.s.FindRoute(nic, local.Unmap().WithZone(""), ra.Unmap().WithZone(""))
	if err != nil {
		return err
	}
	if r.Flags&stack.RouteBroadcast != 0 && !e.sk.Broadcast {
		return unix.EACCES
	}
	nb := e.b
	if !local.IsValid() {
		l := r.LocalAddr
		if e.b.family == unix.AF_INET6 {
			l = netip.AddrFrom16(l.As16())
			if l.IsLinkLocalUnicast() {
				l = l.WithZone(strconv.Itoa(r.NIC.ID()))
			}
		}
		nb.local = netip.AddrPortFrom(l, e.b.local.Port())
	}
	rem := r.RemoteAddr
	if e.b.family == unix.AF_INET6 {
		rem = netip.AddrFrom16(rem.As16())
		if z := ra.Zone(); z != "" {
			rem = rem.WithZone(z)
		}
	}
	nb.remote = netip.AddrPortFrom(rem, addr.Port())
	nb.connected = true
	nb.nic = nic
	e.p.mu.Lock()
	e.b = nb
	e.p.mu.Unlock()
	e.route = r
	dgram.SeedIPID(&e.ipID)
	return nil
}

// disconnectLocked is udp_disconnect: forget the peer, and the address
// and port unless bind chose them.
func (e *endpoint) disconnectLocked() {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	nb := e.b
	nb.connected = false
	nb.remote = netip.AddrPort{}
	if !e.bindAddrLocked {
		nb.local = netip.AddrPortFrom(e.unspecified(), nb.local.Port())
	}
	e.b = nb
	if !e.bindPortLocked {
		e.p.unhashLocked(e)
	}
	e.route = nil
}

// enqueue queues a received datagram (payload only), or drops it when the
// receive buffer is full (__udp_enqueue_schedule_skb: at least one
// datagram always fits).
func (e *endpoint) enqueue(pkt *buffer.Packet, from netip.AddrPort, ip stack.IPInfo) {
	if e.b.family == unix.AF_INET6 && from.Addr().Is4() {
		from = netip.AddrPortFrom(netip.AddrFrom16(from.Addr().As16()), from.Port())
	}
	e.mu.Lock()
	if e.sk.Closed {
		e.mu.Unlock()
		pkt.Release()
		return
	}
	var specDst netip.Addr
	if ip.Multicast && e.sk.Recv&(dgram.RecvIPPktInfo|dgram.RecvIPv6PktInfo) != 0 && ip.Src.Unmap().Is4() {
		// fib_compute_spec_dst: the address a reply would leave from.
		if r, err := e.p.s.FindRoute(ip.NIC, netip.Addr{}, ip.Src.Unmap().WithZone("")); err == nil {
			specDst = r.LocalAddr
		}
	}
	if !e.sk.EnqueueInfo(pkt, from, dgram.InfoFromIP(ip, e.sk.Recv, specDst)) {
		e.mu.Unlock()
		e.p.stats.RcvbufErrors.Add(1)
		e.p.stats.InErrors.Add(1)
		pkt.Release()
		return
	}
	e.mu.Unlock()
	e.wq.Notify(waiter.EventIn)
}

// handleError records an ICMP error (__udp4_lib_err): connected sockets
// keep hard errors, sockets with IP_RECVERR keep every error.
func (e *endpoint) handleError(ie stack.ICMPError, v4 bool) {
	e.mu.Lock()
	kept := e.sk.RecordError(ie, v4, e.b.connected)
	e.mu.Unlock()
	if kept {
		e.wq.Notify(waiter.EventErr)
	}
}

// Read implements stack.Endpoint (udp_recvmsg). A pending error is
// reported first; a socket shut down for reading returns 0 bytes when
// its queue is empty.
func (e *endpoint) Read(p []byte, o stack.ReadOptions) (stack.ReadResult, error) {
	e.mu.Lock()
	res, dequeued, err := e.sk.Read(p, o.Peek)
	e.mu.Unlock()
	if dequeued {
		// Linux counts InDatagrams when the application receives.
		e.p.stats.InDatagrams.Add(1)
	}
	return res, err
}

// ReadControl implements dgram.ControlReader (udp_recvmsg with its
// control messages).
func (e *endpoint) ReadControl(p []byte, o stack.ReadOptions, keepErr bool) (stack.ReadResult, dgram.Control, error) {
	e.mu.Lock()
	res, ctl, dequeued, err := e.sk.ReadControl(p, o.Peek, keepErr)
	ctl.V6Socket = e.b.family == unix.AF_INET6
	e.mu.Unlock()
	if dequeued {
		e.p.stats.InDatagrams.Add(1)
	}
	return res, ctl, err
}

// RecvFlags implements dgram.ControlReader.
func (e *endpoint) RecvFlags() dgram.RecvFlags {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sk.Recv
}

// Write implements stack.Endpoint (udp_sendmsg): one datagram per call.
func (e *endpoint) Write(p []byte, o stack.WriteOptions) (int, error) {
	e.mu.Lock()
	if e.sk.Closed {
		e.mu.Unlock()
		return 0, unix.EBADF
	}
	// inet_sendmsg binds an unbound socket to a port before udp_sendmsg
	// checks anything, so even a send that fails (EDESTADDRREQ, EMSGSIZE,
	// ...) leaves the socket bound (semantics scenario u-edestaddrreq:
	// sockname_after=0.0.0.0:EPH). A failed autobind is EAGAIN.
	if e.b.local.Port() == 0 {
		if err := e.autobindLocked(); err != nil {
			e.mu.Unlock()
			return 0, unix.EAGAIN
		}
	}
	if len(p) > 0xffff {
		e.mu.Unlock()
		return 0, unix.EMSGSIZE
	}
	if o.OOB {
		e.mu.Unlock()
		return 0, unix.EOPNOTSUPP
	}
	var dst netip.AddrPort
	var r *stack.Route
	if o.To.IsValid() {
		dst = o.To
		if dst.Port() == 0 {
			e.mu.Unlock()
			return 0, unix.EINVAL
		}
		if e.b.family == unix.AF_INET6 {
			a := dst.Addr()
			if a.Is4() {
				a = netip.AddrFrom16(a.As16())
			}
			if a.Is4In6() && e.b.v6only {
				e.mu.Unlock()
				return 0, unix.ENETUNREACH
			}
			if a.IsUnspecified() {
				a = netip.IPv6Loopback()
			}
			dst = netip.AddrPortFrom(a, dst.Port())
		} else if !dst.Addr().Is4() {
			e.mu.Unlock()
			return 0, unix.EAFNOSUPPORT
		}
	} else {
		if !e.b.connected {
			e.mu.Unlock()
			return 0, unix.EDESTADDRREQ
		}
		dst, r = e.b.remote, e.route
	}
	if err := e.autobindLocked(); err != nil {
		e.mu.Unlock()
		return 0, err
	}
	local := e.b.local
	nic := e.b.nic
	if r == nil {
		if z := dst.Addr().Zone(); z != "" {
			if id, err := strconv.Atoi(z); err == nil {
				nic = id
			}
		}
		la := local.Addr().Unmap().WithZone("")
		if la.IsUnspecified() {
			la = netip.Addr{}
		}
		var err error
		if r, err = e.p.s.FindRoute(nic, la, dst.Addr().Unmap().WithZone("")); err != nil {
			e.mu.Unlock()
			return 0, err
		}
		if r.Flags&stack.RouteBroadcast != 0 && !e.sk.Broadcast {
			e.mu.Unlock()
			return 0, unix.EACCES
		}
	}
	max := maxPayloadV6
	if r.RemoteAddr.Is4() {
		max = maxPayloadV4
	}
	if len(p) > max {
		e.mu.Unlock()
		return 0, unix.EMSGSIZE
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
	params := stack.NetworkParams{Protocol: header.ProtoUDP}
	if e.b.connected {
		// A socket with a destination numbers all its datagrams from
		// its own counter, even those sent elsewhere with sendto
		// (ip_select_ident_segs tests inet_daddr only).
		params.ID = &e.ipID
	}
	if r.Flags&stack.RouteMulticast != 0 {
		params.TTL = uint8(e.mcastTTL)
	} else if e.sk.TTL > 0 {
		params.TTL = uint8(e.sk.TTL)
	}
	if e.sk.TOS > 0 {
		params.TOS = uint8(e.sk.TOS)
	}
	noCheck := e.noCheck && r.RemoteAddr.Is4()
	e.mu.Unlock()

	pkt := buffer.New(buffer.Headroom, header.UDPLen+len(p))
	b := pkt.Append(header.UDPLen + len(p))
	copy(b[header.UDPLen:], p)
	header.UDPFields{SrcPort: local.Port(), DstPort: dst.Port(), Length: uint16(len(b))}.Emit(b)
	if !noCheck {
		header.UDP(b).SetChecksum(header.UDPChecksum(b, r.LocalAddr, r.RemoteAddr))
	}
	if err := r.WritePacket(pkt, params); err != nil {
		if err == unix.ENOBUFS && !e.sk.RecvErr {
			e.p.stats.SndbufErrors.Add(1)
			return len(p), nil
		}
		return 0, err
	}
	e.p.stats.OutDatagrams.Add(1)
	return len(p), nil
}

// Shutdown implements stack.Endpoint (inet_shutdown): the flags are set
// even on an unconnected socket, which still gets ENOTCONN.
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
	e.p.mu.Lock()
	e.p.unhashLocked(e)
	e.p.mu.Unlock()
	e.sk.Queue.Clear()
	e.route = nil
	e.leaveAllLocked()
	e.mu.Unlock()
	e.wq.Notify(waiter.EventHUp)
}

// LocalAddress implements stack.Endpoint.
func (e *endpoint) LocalAddress() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.b.local
}

// RemoteAddress implements stack.Endpoint.
func (e *endpoint) RemoteAddress() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.b.connected || e.b.remote.Port() == 0 {
		// inet_getname: no peer name without a destination port, even
		// after a successful connect to port 0.
		return netip.AddrPort{}, unix.ENOTCONN
	}
	return e.b.remote, nil
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
	return e.sk.Info(header.ProtoUDP, e.b.local, e.b.remote, e.b.connected)
}

// InQueue is SIOCINQ/FIONREAD for UDP: the payload length of the first
// queued datagram.
func (e *endpoint) InQueue() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sk.InQueue()
}

// OutQueue is SIOCOUTQ: datagrams leave at once, so nothing is queued.
func (e *endpoint) OutQueue() int { return 0 }
