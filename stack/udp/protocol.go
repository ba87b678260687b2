package udp

import (
	"net/netip"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/dgram"
	"github.com/netprov/netprov/stack/header"
)

// Protocol is UDP on one stack: the table of bound endpoints and the
// receive and ICMP-error paths.
type Protocol struct {
	s     *stack.Stack
	cfg   Config
	stats *stack.UDPStats

	// mu guards ports and every endpoint's binding (the fields demux reads).
	mu sync.RWMutex
	// ports holds the endpoints bound to each local port (Linux's
	// udptable hslot).
	ports map[uint16][]*endpoint
}

var (
	_ stack.TransportProtocol = (*Protocol)(nil)
	_ stack.EndpointFactory   = (*Protocol)(nil)
)

// Register creates UDP with cfg (zero fields take Linux's defaults) and
// registers it on s.
func Register(s *stack.Stack, cfg Config) *Protocol {
	cfg.SetDefaults()
	p := &Protocol{s: s, cfg: cfg, stats: &s.Stats().UDP, ports: make(map[uint16][]*endpoint)}
	s.RegisterTransportProtocol(p)
	return p
}

// Number implements stack.TransportProtocol.
func (p *Protocol) Number() uint8 { return header.ProtoUDP }

// Config returns the protocol's settings.
func (p *Protocol) Config() Config { return p.cfg }

// NewEndpoint implements stack.EndpointFactory.
func (p *Protocol) NewEndpoint(family int) (stack.Endpoint, error) {
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return nil, unix.EAFNOSUPPORT
	}
	return newEndpoint(p, family), nil
}

// Endpoints returns a snapshot of every bound endpoint, for listings.
func (p *Protocol) Endpoints() []stack.EndpointInfo {
	return dgram.Infos(&p.mu, p.ports)
}

// HandlePacket implements stack.TransportProtocol.
func (p *Protocol) HandlePacket(pkt *buffer.Packet, ip stack.IPInfo) stack.Verdict {
	b := pkt.Data()
	h, err := header.ParseUDP(b)
	if err != nil {
		// Linux's short_packet path.
		p.s.Stats().Dropped.MalformedUDP.Add(1)
		p.stats.InErrors.Add(1)
		pkt.Release()
		return stack.Delivered
	}
	// IPv6 forbids a zero checksum (udp6_csum_init drops it even when the
	// device verified checksums); otherwise verify unless the link did.
	if (h.Checksum == 0 && !ip.Src.Is4()) ||
		(!pkt.Meta.ChecksumVerified && !header.UDPChecksumValid(b, ip.Src, ip.Dst)) {
		p.stats.InCsumErrors.Add(1)
		p.stats.InErrors.Add(1)
		pkt.Release()
		return stack.Delivered
	}
	srcAddr := ip.Src
	if srcAddr.Is6() && (srcAddr.IsLinkLocalUnicast() || srcAddr.IsLinkLocalMulticast()) && ip.NIC != 0 {
		// recvfrom reports the incoming interface as sin6_scope_id.
		srcAddr = srcAddr.WithZone(strconv.Itoa(ip.NIC))
	}
	src := netip.AddrPortFrom(srcAddr, h.SrcPort)
	dst := netip.AddrPortFrom(ip.Dst, h.DstPort)

	if ip.Multicast {
		trimToPayload(pkt, h.Length)
		p.deliverMulticast(pkt, src, dst, ip)
		return stack.Delivered
	}
	p.mu.RLock()
	e := p.lookup(src, dst, ip.NIC)
	p.mu.RUnlock()
	if e == nil {
		// The network layer keeps pkt, untouched, to quote it in the ICMP
		// port unreachable and releases it (see package ipv6).
		p.stats.NoPorts.Add(1)
		return stack.PortUnreachable
	}
	trimToPayload(pkt, h.Length)
	e.enqueue(pkt, src, ip)
	return stack.Delivered
}

// trimToPayload leaves only the UDP payload in pkt (dropping link padding).
func trimToPayload(pkt *buffer.Packet, length uint16) {
	pkt.Truncate(int(length))
	pkt.TrimFront(header.UDPLen)
}

// deliverMulticast gives a multicast or broadcast datagram to every
// matching socket (__udp4_lib_mcast_deliver): each gets its own copy.
func (p *Protocol) deliverMulticast(pkt *buffer.Packet, src, dst netip.AddrPort, ip stack.IPInfo) {
	nic := ip.NIC
	var arr [8]*endpoint
	eps := arr[:0]
	p.mu.RLock()
	for _, e := range p.ports[dst.Port()] {
		if e.b.score(src, dst, nic) >= 0 {
			eps = append(eps, e)
		}
	}
	p.mu.RUnlock()
	if len(eps) == 0 {
		// Linux counts these as IgnoredMulti and sends no ICMP error.
		pkt.Release()
		return
	}
	for i, e := range eps {
		if i == len(eps)-1 {
			e.enqueue(pkt, src, ip)
		} else {
			e.enqueue(pkt.Clone(), src, ip)
		}
	}
}

// lookup returns the socket a unicast datagram from src to dst arriving on
// nic belongs to, or nil. The caller holds p.mu. As Linux, a socket bound
// to dst's address beats a wildcard one, a connected socket beats an
// unconnected one, and among unconnected SO_REUSEPORT sockets with the
// best score one is chosen by a hash of the source.
func (p *Protocol) lookup(src, dst netip.AddrPort, nic int) *endpoint {
	var best *endpoint
	bestScore, ties := -1, 0
	for _, e := range p.ports[dst.Port()] {
		sc := e.b.score(src, dst, nic)
		switch {
		case sc > bestScore:
			best, bestScore, ties = e, sc, 1
		case sc == bestScore && sc >= 0:
			// The most recently bound of equal sockets wins, as Linux
			// adds them at the head of the hash chain.
			best = e
			ties++
		}
	}
	if best == nil || ties == 1 || !best.b.reusePort || best.b.connected {
		return best
	}
	// reuseport_select_sock: pick one member of the group by flow hash.
	n := 0
	for _, e := range p.ports[dst.Port()] {
		if e.b.reusePort && !e.b.connected && e.b.score(src, dst, nic) == bestScore {
			n++
		}
	}
	k := int(flowHash(src) % uint32(n))
	for _, e := range p.ports[dst.Port()] {
		if e.b.reusePort && !e.b.connected && e.b.score(src, dst, nic) == bestScore {
			if k == 0 {
				return e
			}
			k--
		}
	}
	return best
}

// flowHash hashes a source address and port (FNV-1a), stable per flow.
func flowHash(a netip.AddrPort) uint32 {
	h := uint32(2166136261)
	b := a.Addr().As16()
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	h = (h ^ uint32(a.Port()>>8)) * 16777619
	h = (h ^ uint32(a.Port()&0xff)) * 16777619
	return h
}

// HandleError implements stack.TransportProtocol: an ICMP error about a
// datagram sent from ip.Src to ip.Dst. The socket that sent it is found as
// if the quoted datagram had been received from the peer (__udp4_lib_err).
func (p *Protocol) HandleError(ie stack.ICMPError, ip stack.IPInfo, payload []byte) {
	if len(payload) < 4 {
		return
	}
	h := header.UDP(payload)
	local := netip.AddrPortFrom(ip.Src, h.SrcPort())
	remote := netip.AddrPortFrom(ip.Dst, h.DstPort())
	p.mu.RLock()
	e := p.lookup(remote, local, ip.NIC)
	p.mu.RUnlock()
	if e == nil {
		return
	}
	e.handleError(ie, ip.Src.Is4())
}
