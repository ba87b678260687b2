// Package ipv4 is the IPv4 network protocol (RFC 791) with ICMPv4 (RFC
// 792): header building and validation, fragmentation and reassembly,
// local delivery to the transport protocols, ICMP echo and errors, and a
// path MTU cache. It behaves like Linux's net/ipv4 on a host (forwarding
// off) with the default sysctls, which are the fields of Config.
//
// Neighbour resolution uses the ARP endpoint of the NIC (stack/arp), which
// must be registered too on stacks with Ethernet NICs.
//
// What transports see:
//   - Route.WritePacket returns EMSGSIZE for a DF packet larger than the
//     path MTU (route MTU, lowered by Protocol.PathMTU), ENETDOWN/ENOBUFS
//     from the neighbour table, and nil when the packet was sent or queued
//     for resolution.
//   - Errors come back through TransportProtocol.HandleError: ICMP errors
//     from the network (Kind from the type/code, MTU for fragmentation
//     needed, after the path MTU cache was updated), and, when ARP fails
//     (3 requests 1 s apart), ICMPHostUnreachable for every packet that
//     was waiting, as Linux's ipv4_link_failure does (EHOSTUNREACH).
//   - PortUnreachable from HandlePacket makes the stack send ICMP port
//     unreachable; ICMP echo replies (and errors about echo requests) go
//     to the transport registered for protocol 1, if any.
package ipv4

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
)

// Config holds the net.ipv4.* sysctls the protocol reads. DefaultConfig
// returns Linux's defaults.
type Config struct {
	// DefaultTTL is ip_default_ttl.
	DefaultTTL uint8
	// FragTime is ipfrag_time: how long an incomplete datagram is kept.
	FragTime time.Duration
	// FragHighThresh is ipfrag_high_thresh: while fragments queued for
	// reassembly use more memory than this, new fragments are dropped
	// (Linux >= 4.17 behaviour).
	FragHighThresh int
	// FragLowThresh is ipfrag_low_thresh, kept for completeness: like
	// Linux since 4.17 it no longer drives an evictor.
	FragLowThresh int
	// NoPMTUDisc is ip_no_pmtu_disc: when set, ICMP fragmentation-needed
	// messages do not lower the path MTU.
	NoPMTUDisc bool
	// MinPMTU is min_pmtu: a smaller MTU from an ICMP message is raised to it.
	MinPMTU int
	// MTUExpires is mtu_expires: how long a learned path MTU is kept.
	MTUExpires time.Duration
	// ICMPEchoIgnoreAll is icmp_echo_ignore_all.
	ICMPEchoIgnoreAll bool
	// ICMPEchoIgnoreBroadcasts is icmp_echo_ignore_broadcasts.
	ICMPEchoIgnoreBroadcasts bool
	// ICMPRatelimit is icmp_ratelimit: the per-destination interval of the
	// ICMP types in ICMPRatemask (token bucket with a burst of 6).
	ICMPRatelimit time.Duration
	// ICMPRatemask is icmp_ratemask: bit n set limits ICMP type n.
	ICMPRatemask uint32
	// ICMPMsgsPerSec and ICMPMsgsBurst are icmp_msgs_per_sec and
	// icmp_msgs_burst: the host-wide limit on the same ICMP types.
	ICMPMsgsPerSec int
	ICMPMsgsBurst  int
}

// DefaultConfig returns Linux's defaults.
func DefaultConfig() Config {
	return Config{
		DefaultTTL:               64,
		FragTime:                 30 * time.Second,
		FragHighThresh:           4 << 20,
		FragLowThresh:            3 << 20,
		MinPMTU:                  552,
		MTUExpires:               10 * time.Minute,
		ICMPEchoIgnoreBroadcasts: true,
		ICMPRatelimit:            time.Second,
		ICMPRatemask:             0x1818,
		ICMPMsgsPerSec:           1000,
		ICMPMsgsBurst:            50,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DefaultTTL == 0 {
		c.DefaultTTL = d.DefaultTTL
	}
	if c.FragTime <= 0 {
		c.FragTime = d.FragTime
	}
	if c.FragHighThresh <= 0 {
		c.FragHighThresh = d.FragHighThresh
	}
	if c.FragLowThresh <= 0 {
		c.FragLowThresh = d.FragLowThresh
	}
	if c.MinPMTU <= 0 {
		c.MinPMTU = d.MinPMTU
	}
	if c.MTUExpires <= 0 {
		c.MTUExpires = d.MTUExpires
	}
	if c.ICMPMsgsPerSec <= 0 {
		c.ICMPMsgsPerSec = d.ICMPMsgsPerSec
	}
	if c.ICMPMsgsBurst <= 0 {
		c.ICMPMsgsBurst = d.ICMPMsgsBurst
	}
	return c
}

// identBuckets is the number of IP ID counters (Linux's ip_idents is
// sized by memory; 2048 buckets keep collisions rare for a host).
const identBuckets = 2048

// Protocol is IPv4 registered on one stack.
type Protocol struct {
	s     *stack.Stack
	cfg   Config
	stats *stack.IPStats
	icmp  *stack.ICMPStats

	// idents are the IP ID counters, selected by a keyed hash of
	// (dst, src, protocol) like Linux's __ip_select_ident.
	idents   [identBuckets]atomic.Uint32
	identKey [2]uint64

	reasm   reassembler
	pmtu    pmtuCache
	limiter icmpLimiter
}

var _ stack.NetworkProtocol = (*Protocol)(nil)

// Register adds IPv4 (and ICMPv4) to s. A zero Config field takes Linux's
// default, except the booleans, which are used as given: start from
// DefaultConfig to keep ICMPEchoIgnoreBroadcasts on.
func Register(s *stack.Stack, cfg Config) *Protocol {
	p := &Protocol{s: s, cfg: cfg.withDefaults(), stats: &s.Stats().IP, icmp: &s.Stats().ICMP}
	var key [16]byte
	_, _ = rand.Read(key[:])
	p.identKey = [2]uint64{binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])}
	for i := range p.idents {
		var b [4]byte
		_, _ = rand.Read(b[:])
		p.idents[i].Store(binary.LittleEndian.Uint32(b[:]))
	}
	p.reasm.init(p)
	p.pmtu.init(p.cfg.MTUExpires)
	p.limiter.init(p.cfg)
	s.RegisterNetworkProtocol(p)
	return p
}

// Config returns the protocol's settings.
func (p *Protocol) Config() Config { return p.cfg }

// EtherType implements stack.NetworkProtocol.
func (p *Protocol) EtherType() uint16 { return header.EtherTypeIPv4 }

// NewEndpoint implements stack.NetworkProtocol.
func (p *Protocol) NewEndpoint(nic *stack.NIC) stack.NetworkEndpoint {
	return &Endpoint{p: p, nic: nic}
}

// PathMTU returns the path MTU learned for dst from ICMP
// fragmentation-needed messages, or 0 when nothing (unexpired) is known;
// the route MTU applies then. TCP reads it to size segments.
func (p *Protocol) PathMTU(dst netip.Addr) int {
	return p.pmtu.get(dst, p.s.Clock().Now())
}

// selectID is ip_select_ident_segs: a connected socket's own counter,
// advanced by the number of segments the packet becomes; 0 for a DF
// packet of no connected socket (a listener's SYN-ACK, a RST), which can
// never be fragmented; else the shared keyed counters.
func (p *Protocol) selectID(r *stack.Route, pkt *buffer.Packet, params stack.NetworkParams) uint16 {
	switch {
	case params.ID != nil:
		segs := uint32(1)
		if g := pkt.Meta.GSO; g.Type != buffer.GSONone && g.MSS > 0 {
			payload := pkt.Len() - int(g.HeaderLen) + r.MaxHeaderLen()
			segs = uint32(max(1, (payload+int(g.MSS)-1)/int(g.MSS)))
		}
		return uint16(params.ID.Add(segs) - segs)
	case params.DontFragment:
		return 0
	default:
		return p.nextID(r.LocalAddr, r.RemoteAddr, params.Protocol)
	}
}

// nextID returns the IP ID for a packet (Linux's __ip_select_ident: a
// counter per hash bucket of the addresses and protocol).
func (p *Protocol) nextID(src, dst netip.Addr, proto uint8) uint16 {
	s, d := src.As4(), dst.As4()
	h := uint64(binary.BigEndian.Uint32(d[:]))<<32 | uint64(binary.BigEndian.Uint32(s[:]))
	h ^= p.identKey[0]
	h *= 0x9e3779b97f4a7c15
	h ^= uint64(proto) ^ p.identKey[1]
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return uint16(p.idents[h%identBuckets].Add(1))
}
