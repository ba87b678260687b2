// Package icmp is the stack's ICMP echo ("ping") sockets: socket(AF_INET,
// SOCK_DGRAM, IPPROTO_ICMP) and socket(AF_INET6, SOCK_DGRAM,
// IPPROTO_ICMPV6), as Linux's net/ipv4/ping.c. The application writes echo
// requests; the stack sets the identifier to the socket's "port" (bound or
// chosen automatically) and the checksum, and delivers the echo replies
// carrying that identifier to the socket. The network layers answer echo
// requests and handle ICMP errors themselves; they pass echo replies and
// errors about echo requests to the transport registered for protocol 1
// (ICMPv4) or 58 (ICMPv6), which Register installs.
package icmp

import (
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/dgram"
	"github.com/netprov/netprov/stack/header"
)

// Config holds the sysctls echo sockets read.
type Config struct {
	// Disabled refuses echo sockets with EACCES, as Linux does for a
	// caller outside net.ipv4.ping_group_range (whose kernel default
	// "1 0" admits nobody; distributions open it to every group, which is
	// what a sandbox's programs expect, so sockets are allowed by default).
	Disabled bool
	// Config holds net.core.*mem* and net.ipv4.ip_default_ttl.
	dgram.Config
}

// DefaultConfig returns Linux's defaults (with ping sockets allowed).
func DefaultConfig() Config {
	return Config{Config: dgram.DefaultConfig()}
}

// Protocol is the table of echo sockets of one stack, shared by both
// families as Linux's ping_table (identifiers conflict across families).
type Protocol struct {
	s   *stack.Stack
	cfg Config
	v4  *Transport
	v6  *Transport

	mu sync.RWMutex
	// idents maps an identifier to its sockets (more than one only with
	// SO_REUSEADDR on all of them).
	idents    map[uint16][]*endpoint
	nextIdent uint16
}

// Transport is the echo-socket transport of one IP version: the
// stack.TransportProtocol registered for protocol 1 or 58 and the
// stack.EndpointFactory the socket layer uses.
type Transport struct {
	p      *Protocol
	family int
	number uint8
}

var (
	_ stack.TransportProtocol = (*Transport)(nil)
	_ stack.EndpointFactory   = (*Transport)(nil)
)

// Register creates echo sockets with cfg (zero fields take the defaults)
// and registers their transports for ICMPv4 (1) and ICMPv6 (58) on s.
func Register(s *stack.Stack, cfg Config) *Protocol {
	cfg.SetDefaults()
	p := &Protocol{s: s, cfg: cfg, idents: make(map[uint16][]*endpoint), nextIdent: 1}
	p.v4 = &Transport{p: p, family: unix.AF_INET, number: header.ProtoICMP}
	p.v6 = &Transport{p: p, family: unix.AF_INET6, number: header.ProtoICMPv6}
	s.RegisterTransportProtocol(p.v4)
	s.RegisterTransportProtocol(p.v6)
	return p
}

// V4 and V6 return the per-family transports.
func (p *Protocol) V4() *Transport { return p.v4 }

// V6 returns the ICMPv6 transport.
func (p *Protocol) V6() *Transport { return p.v6 }

// Endpoints returns a snapshot of every bound echo socket.
func (p *Protocol) Endpoints() []stack.EndpointInfo {
	return dgram.Infos(&p.mu, p.idents)
}

// Number implements stack.TransportProtocol.
func (t *Transport) Number() uint8 { return t.number }

// NewEndpoint implements stack.EndpointFactory.
func (t *Transport) NewEndpoint(family int) (stack.Endpoint, error) {
	if family != t.family {
		return nil, unix.EPROTONOSUPPORT
	}
	if t.p.cfg.Disabled {
		return nil, unix.EACCES
	}
	return newEndpoint(t, family), nil
}

// echoReplyType is the echo reply of the transport's ICMP version.
func (t *Transport) echoReplyType() uint8 {
	if t.family == unix.AF_INET {
		return header.ICMPv4EchoReply
	}
	return header.ICMPv6EchoReply
}

// HandlePacket implements stack.TransportProtocol: pkt is an echo reply
// (its data starts at the ICMP header, already checksummed by the network
// layer). Anything else, or a reply nobody waits for, is dropped; no ICMP
// error is ever sent for it, so the verdict is always Delivered.
func (t *Transport) HandlePacket(pkt *buffer.Packet, ip stack.IPInfo) stack.Verdict {
	b := pkt.Data()
	if len(b) < header.ICMPv4MinLen || b[0] != t.echoReplyType() || b[1] != 0 {
		pkt.Release()
		return stack.Delivered
	}
	ident := header.ICMPv4(b).Ident()
	t.p.mu.RLock()
	e := t.p.lookupLocked(t.family, ident, ip.Dst, ip.NIC)
	t.p.mu.RUnlock()
	if e == nil {
		pkt.Release()
		return stack.Delivered
	}
	e.enqueue(pkt, ip)
	return stack.Delivered
}

// HandleError implements stack.TransportProtocol: an ICMP error quoting
// an echo request this host sent (ping_err).
func (t *Transport) HandleError(ie stack.ICMPError, ip stack.IPInfo, payload []byte) {
	if len(payload) < header.ICMPv4MinLen {
		return
	}
	want := header.ICMPv4Echo
	if t.family == unix.AF_INET6 {
		want = header.ICMPv6EchoRequest
	}
	if payload[0] != want {
		return
	}
	ident := header.ICMPv4(payload).Ident()
	t.p.mu.RLock()
	e := t.p.lookupLocked(t.family, ident, ip.Src, ip.NIC)
	t.p.mu.RUnlock()
	if e != nil {
		e.handleError(ie, t.family == unix.AF_INET)
	}
}

// lookupLocked is ping_lookup: the first socket of the family with the
// identifier whose bound address (if any) is dst and bound device (if
// any) is nic. The peer of a connected socket is not checked.
func (p *Protocol) lookupLocked(family int, ident uint16, dst netip.Addr, nic int) *endpoint {
	for _, e := range p.idents[ident] {
		if e.b.family != family {
			continue
		}
		if a := e.b.local.Addr().WithZone(""); !a.IsUnspecified() && a != dst.WithZone("") {
			continue
		}
		if e.b.nic != 0 && e.b.nic != nic {
			continue
		}
		return e
	}
	return nil
}

// hashLocked gives e the identifier ident (0: the next free one, as
// ping_get_port's rolling search) and adds it to the table.
func (p *Protocol) hashLocked(e *endpoint, ident uint16) error {
	if ident == 0 {
		for i := 0; i < 0xffff; i++ {
			cand := p.nextIdent
			p.nextIdent++
			if p.nextIdent == 0 {
				p.nextIdent = 1
			}
			if len(p.idents[cand]) == 0 {
				ident = cand
				break
			}
		}
		if ident == 0 {
			return unix.EADDRINUSE
		}
	} else {
		for _, o := range p.idents[ident] {
			if o != e && (!o.reuseAddr || !e.reuseAddr) {
				return unix.EADDRINUSE
			}
		}
	}
	e.b.local = netip.AddrPortFrom(e.b.local.Addr(), ident)
	p.idents[ident] = append(p.idents[ident], e)
	return nil
}

func (p *Protocol) unhashLocked(e *endpoint) {
	ident := e.b.local.Port()
	if ident == 0 {
		return
	}
	dgram.Unhash(p.idents, ident, e)
	e.b.local = netip.AddrPortFrom(e.b.local.Addr(), 0)
}
