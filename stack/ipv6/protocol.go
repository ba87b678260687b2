// Package ipv6 is the stack's IPv6 network layer: the per-NIC endpoint that
// sends and receives IPv6 packets (extension headers, fragmentation and
// reassembly), ICMPv6 (echo, errors, path MTU) and neighbour discovery
// (RFC 4861 neighbour solicitations and advertisements; router discovery is
// not implemented: routes are static). NDP lives here rather than in a
// package of its own because it is ICMPv6 and sends through the IPv6
// output path; the neighbour table it drives is stack/neighbor.
//
// Set-up: Register the protocol before adding NICs; after AddNIC, call
// AddLinkLocalAddress for each Ethernet NIC (Linux configures the EUI-64
// link-local address when the device comes up). Addresses are usable at
// once: duplicate address detection is not run (see Config.DADTransmits).
//
// Ownership of a received packet handed to a transport: when
// TransportProtocol.HandlePacket returns stack.PortUnreachable, the
// transport has not kept or released the packet; the network layer quotes
// it in the ICMPv6 port unreachable and releases it. With Delivered the
// transport owns it.
package ipv6

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/neighbor"
)

// Protocol is IPv6 on one stack: the configuration and the state Linux keeps
// per network namespace (reassembly queues, path MTUs, ICMP rate limits).
type Protocol struct {
	s   *stack.Stack
	cfg Config

	reasm   *reassembler
	pmtu    pmtuCache
	ratelim errorRateLimiter

	// fragID is the next fragment identification. It starts at a random
	// value so identifications are not predictable across restarts.
	fragID atomic.Uint32

	epsMu sync.RWMutex
	eps   map[int]*Endpoint

	// Stats are the counters that have no place in stack.Stats.
	Stats ProtocolStats
}

// ProtocolStats are IPv6 counters beyond the SNMP ones in stack.Stats.
type ProtocolStats struct {
	// RouterMessagesIgnored counts well-formed router solicitations, router
	// advertisements and redirects: the stack is a host with static routes.
	RouterMessagesIgnored atomic.Uint64
	// MLDIgnored counts multicast listener queries and reports.
	MLDIgnored atomic.Uint64
	// ErrorsRateLimited counts ICMPv6 errors not sent because of
	// net.ipv6.icmp.ratelimit.
	ErrorsRateLimited atomic.Uint64
	// DADConflicts counts neighbour advertisements or DAD probes from other
	// hosts for one of our addresses.
	DADConflicts atomic.Uint64
}

var _ stack.NetworkProtocol = (*Protocol)(nil)

// Register creates the IPv6 protocol and registers it with s. It must be
// called before any NIC is added.
func Register(s *stack.Stack, cfg Config) *Protocol {
	cfg = cfg.withDefaults()
	p := &Protocol{s: s, cfg: cfg, eps: make(map[int]*Endpoint)}
	p.reasm = newReassembler(p)
	p.pmtu.init()
	p.ratelim.init()
	var seed [4]byte
	_, _ = rand.Read(seed[:])
	p.fragID.Store(binary.LittleEndian.Uint32(seed[:]))
	s.RegisterNetworkProtocol(p)
	return p
}

// EtherType implements stack.NetworkProtocol.
func (p *Protocol) EtherType() uint16 { return header.EtherTypeIPv6 }

// NewEndpoint implements stack.NetworkProtocol.
func (p *Protocol) NewEndpoint(nic *stack.NIC) stack.NetworkEndpoint {
	e := newEndpoint(p, nic)
	p.epsMu.Lock()
	p.eps[nic.ID()] = e
	p.epsMu.Unlock()
	return e
}

// Endpoint returns the IPv6 endpoint of the NIC with the given id, or nil.
func (p *Protocol) Endpoint(nicID int) *Endpoint {
	p.epsMu.RLock()
	defer p.epsMu.RUnlock()
	return p.eps[nicID]
}

// Table returns the IPv6 neighbour table of the NIC with the given id, or
// nil (no such NIC, or a link without link-layer addresses).
func (p *Protocol) Table(nicID int) *neighbor.Table {
	if e := p.Endpoint(nicID); e != nil {
		return e.neigh
	}
	return nil
}

func (p *Protocol) removeEndpoint(e *Endpoint) {
	p.epsMu.Lock()
	if p.eps[e.nic.ID()] == e {
		delete(p.eps, e.nic.ID())
	}
	p.epsMu.Unlock()
}

// Config returns the protocol's configuration.
func (p *Protocol) Config() Config { return p.cfg }

// PathMTU returns the path MTU to dst learned from packet-too-big messages,
// or 0 when none is known (the route MTU applies).
func (p *Protocol) PathMTU(dst netip.Addr) int {
	return p.pmtu.get(dst, p.s.Clock().Now)
}

// nextFragID returns a fragment identification.
func (p *Protocol) nextFragID() uint32 { return p.fragID.Add(1) }
