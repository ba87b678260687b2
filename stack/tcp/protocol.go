// Package tcp is netprov's TCP, written after Linux's net/ipv4/tcp*.c: the
// state machine, SYN and accept queues with SYN cookies, the ephemeral
// port search, keyed ISNs, SACK-based loss recovery with CUBIC, window
// scaling with receive-buffer autotuning, delayed ACKs, Nagle, keepalive,
// TIME_WAIT and the RST rules. Behaviour numbers in comments refer to
// /work/shared/spec/linux-tcp-behaviors.md.
package tcp

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/tcp/seqnum"
)

// Protocol is TCP on one stack: the connection tables and the sysctls.
type Protocol struct {
	stack   *stack.Stack
	cfg     Config
	stats   *stack.Stats
	clock   clock.Clock
	ports   *portTable
	secrets secrets

	// challenge rate-limits RFC 5961 challenge ACKs per second
	// (tcp_challenge_ack_limit).
	challengeMu    sync.Mutex
	challengeStart time.Time
	challengeCount int
}

var (
	_ stack.TransportProtocol = (*Protocol)(nil)
	_ stack.EndpointFactory   = (*Protocol)(nil)
)

// Register creates TCP with cfg and registers it with s.
func Register(s *stack.Stack, cfg Config) *Protocol {
	p := &Protocol{
		stack:   s,
		cfg:     cfg,
		stats:   s.Stats(),
		clock:   s.Clock(),
		ports:   newPortTable(),
		secrets: newSecrets(),
	}
	s.RegisterTransportProtocol(p)
	return p
}

// Config returns the protocol's settings.
func (p *Protocol) Config() Config { return p.cfg }

// Number implements stack.TransportProtocol.
func (p *Protocol) Number() uint8 { return header.ProtoTCP }

// segment is a received TCP segment as the input path sees it. It lives on
// the stack of HandlePacket; payload points into the packet.
type segment struct {
	hdr     header.TCP
	seq     seqnum.Value
	ack     seqnum.Value
	endSeq  seqnum.Value // seq + SYN + payload + FIN
	flags   header.TCPFlags
	window  uint16
	urgent  uint16
	payload []byte
	opts    header.TCPOptions
	src     netip.Addr // remote (wire form)
	dst     netip.Addr // local
	sport   uint16
	dport   uint16
	ip      stack.IPInfo
}

func (s *segment) has(f header.TCPFlags) bool { return s.flags&f != 0 }

func (s *segment) length() seqnum.Size { return s.seq.Size(s.endSeq) }

// HandlePacket implements stack.TransportProtocol (tcp_v4_rcv; spec 45-46).
func (p *Protocol) HandlePacket(pkt *buffer.Packet, ip stack.IPInfo) stack.Verdict {
	defer pkt.Release()
	p.stats.TCP.InSegs.Add(1)
	b := pkt.Data()
	f, err := header.ParseTCP(b)
	if err != nil {
		p.stats.TCP.InErrs.Add(1)
		p.stats.Dropped.MalformedTCP.Add(1)
		return stack.Delivered
	}
	if !pkt.Meta.ChecksumVerified && !header.TCPChecksumValid(b, ip.Src, ip.Dst) {
		p.stats.TCP.InCsumErrors.Add(1)
		p.stats.TCP.InErrs.Add(1)
		return stack.Delivered
	}
	var s segment
	h := header.TCP(b)
	s.hdr = h
	s.seq, s.ack = seqnum.Value(f.Seq), seqnum.Value(f.Ack)
	s.flags, s.window, s.urgent = f.Flags, f.Window, f.Urgent
	s.payload = b[f.DataOffset:]
	if f.DataOffset > header.TCPMinLen {
		s.opts = header.ParseTCPOptions(h.Options())
	} else {
		s.opts.WindowScale = -1
	}
	s.src, s.dst = ip.Src.Unmap(), ip.Dst.Unmap()
	s.sport, s.dport = f.SrcPort, f.DstPort
	s.ip = ip
	n := seqnum.Size(len(s.payload))
	if s.has(header.TCPFlagSyn) {
		n++
	}
	if s.has(header.TCPFlagFin) {
		n++
	}
	s.endSeq = s.seq.Add(n)
	if ip.Multicast {
		// Not for a unicast socket (spec 45/48): drop silently; a SYN to
		// a broadcast or multicast address counts as a listen drop.
		if ip.Multicast && s.flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn {
			p.stats.TCPExt.ListenDrops.Add(1)
		}
		return stack.Delivered
	}
	p.deliver(&s)
	return stack.Delivered
}

// deliver demuxes a segment: established hash first, then listeners
// (spec 12), else the no-socket RST (spec 46).
func (p *Protocol) deliver(s *segment) {
	k := tupleKey{laddr: s.dst, raddr: s.src, lport: s.dport, rport: s.sport}
	for try := 0; try < 3; try++ {
		if e := p.ports.lookupEstablished(k); e != nil {
			e.mu.Lock()
			if !e.hashed || e.key != k {
				e.mu.Unlock()
				continue
			}
			if e.state == StateTimeWait {
				if e.timeWaitSegment(s) {
					// A new SYN took over the TIME_WAIT socket: go to the
					// listener with the ISN it suggests (spec 54).
					isn := e.sndNxt.Add(65535 + 2)
					e.mu.Unlock()
					if l := p.lookupListener(s.dst, s.dport, s.src, s.sport); l != nil {
						l.mu.Lock()
						if l.state == StateListen {
							l.listenSegment(s, isn)
							l.mu.Unlock()
							return
						}
						l.mu.Unlock()
					}
					p.sendResetFor(s)
					return
				}
				e.mu.Unlock()
				return
			}
			e.beginStamp()
			e.segmentArrived(s)
			e.endStamp()
			e.mu.Unlock()
			return
		}
		if l := p.lookupListener(s.dst, s.dport, s.src, s.sport); l != nil {
			l.mu.Lock()
			if l.state != StateListen {
				l.mu.Unlock()
				continue
			}
			l.listenSegment(s, 0)
			l.mu.Unlock()
			return
		}
		break
	}
	p.sendResetFor(s)
}

// HandleError implements stack.TransportProtocol (tcp_v4_err).
func (p *Protocol) HandleError(ie stack.ICMPError, ip stack.IPInfo, payload []byte) {
	if len(payload) < 8 {
		p.stats.Dropped.MalformedTCP.Add(1)
		return
	}
	h := header.TCP(payload)
	k := tupleKey{laddr: ip.Src.Unmap(), raddr: ip.Dst.Unmap(), lport: h.SrcPort(), rport: h.DstPort()}
	seq := seqnum.Value(h.Seq())
	if e := p.ports.lookupEstablished(k); e != nil {
		e.mu.Lock()
		if e.hashed && e.key == k {
			e.icmpError(ie, seq)
		}
		e.mu.Unlock()
		return
	}
	if l := p.lookupListener(k.laddr, k.lport, k.raddr, k.rport); l != nil {
		l.mu.Lock()
		if l.state == StateListen {
			if r := l.synQueue[k]; r != nil && r.iss == seq {
				// An error about our SYN-ACK drops the request (tcp_req_err).
				if ie.Kind != stack.ICMPFragNeeded {
					l.dropRequest(r)
				}
			}
		}
		l.mu.Unlock()
	}
}

// icmpErrno is icmp_err_convert: the errno of an ICMP error kind.
func icmpErrno(k stack.ICMPErrorKind) unix.Errno {
	switch k {
	case stack.ICMPNetUnreachable:
		return unix.ENETUNREACH
	case stack.ICMPHostUnreachable, stack.ICMPAdminProhibited, stack.ICMPTimeExceeded:
		return unix.EHOSTUNREACH
	case stack.ICMPProtoUnreachable:
		return unix.ENOPROTOOPT
	case stack.ICMPPortUnreachable:
		return unix.ECONNREFUSED
	case stack.ICMPFragNeeded:
		return unix.EMSGSIZE
	case stack.ICMPParamProblem:
		return unix.EPROTO
	}
	return unix.EHOSTUNREACH
}

// icmpError applies an ICMP error to a connection.
func (e *endpoint) icmpError(ie stack.ICMPError, seq seqnum.Value) {
	if e.state == StateTimeWait || e.state == StateListen {
		return
	}
	// The quoted sequence must be one we have in flight.
	if e.state != StateSynSent && !seq.InRange(e.sndUna, e.sndNxt.Add(1)) {
		return
	}
	if ie.Kind == stack.ICMPFragNeeded {
		if ie.MTU > 0 && e.route != nil && int(ie.MTU) < e.route.MTU {
			e.mtuReduced(int(ie.MTU))
		}
		return
	}
	errno := icmpErrno(ie.Kind)
	switch e.state {
	case StateSynSent, StateSynRecv:
		// Hard error during the handshake: abort (spec 20).
		e.err = errno
		e.done = false
		e.stack.Stats().TCP.AttemptFails.Add(1)
		e.setState(StateClose)
		e.notify(waiterAll)
	default:
		e.softErr = errno
	}
}

// challengeAllowed implements the global challenge ACK rate limit.
func (p *Protocol) challengeAllowed(now time.Time) bool {
	p.challengeMu.Lock()
	defer p.challengeMu.Unlock()
	if now.Sub(p.challengeStart) >= time.Second {
		p.challengeStart = now
		p.challengeCount = 0
	}
	if p.challengeCount >= p.cfg.ChallengeAckLimit {
		return false
	}
	p.challengeCount++
	return true
}

// Endpoints returns the sockets in the connection tables (listeners, then
// connections including TIME_WAIT) for `ss`-style listings.
func (p *Protocol) Endpoints() []stack.Endpoint {
	t := p.ports
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]stack.Endpoint, 0, len(t.established)+len(t.listeners))
	for _, l := range t.listeners {
		for _, e := range l {
			out = append(out, e)
		}
	}
	for _, e := range t.established {
		out = append(out, e)
	}
	return out
}
