package tcp

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/waiter"
	"golang.org/x/sys/unix"
)

// testIP is a minimal IPv4 layer for these tests (no options, no
// fragments, no ARP: the peer's MAC is fixed), so TCP can be tested on
// its own, packet by packet.
type testIP struct {
	s       *stack.Stack
	peerMAC header.MAC
}

func (p *testIP) EtherType() uint16 { return header.EtherTypeIPv4 }

func (p *testIP) NewEndpoint(nic *stack.NIC) stack.NetworkEndpoint {
	return &testIPEndpoint{p: p, nic: nic}
}

type testIPEndpoint struct {
	p   *testIP
	nic *stack.NIC
}

func (e *testIPEndpoint) HandlePacket(pkt *buffer.Packet) {
	h, err := header.ParseIPv4(pkt.Data())
	if err != nil || !e.nic.HasAddress(h.Dst) {
		pkt.Release()
		return
	}
	hl := header.IPv4(pkt.Data()).HeaderLen()
	pkt.Truncate(int(h.TotalLen))
	pkt.TrimFront(hl)
	tp := e.p.s.TransportProtocol(h.Protocol)
	if tp == nil {
		pkt.Release()
		return
	}
	tp.HandlePacket(pkt, stack.IPInfo{Src: h.Src, Dst: h.Dst, NIC: e.nic.ID(), TTL: h.TTL, TOS: h.TOS})
}

func (e *testIPEndpoint) Close() {}

func (e *testIPEndpoint) WritePacket(r *stack.Route, pkt *buffer.Packet, p stack.NetworkParams) error {
	f := header.IPv4Fields{TotalLen: uint16(pkt.Len() + header.IPv4MinLen), TTL: 64, Protocol: p.Protocol,
		Src: r.LocalAddr, Dst: r.RemoteAddr, TOS: p.TOS}
	if p.TTL != 0 {
		f.TTL = p.TTL
	}
	if p.DontFragment {
		f.Flags = header.IPv4FlagDF
	}
	f.Emit(pkt.Prepend(header.IPv4MinLen))
	return e.nic.WriteFrame(e.p.peerMAC, header.EtherTypeIPv4, pkt)
}

// recLink is a link endpoint that records every frame the stack sends and
// lets the test inject frames synchronously.
type recLink struct {
	mtu    int
	mu     sync.Mutex
	frames [][]byte
	d      link.Dispatcher
}

func (l *recLink) MTU() int                        { return l.mtu }
func (l *recLink) LinkAddress() header.MAC         { return header.MAC{} }
func (l *recLink) Capabilities() link.Capabilities { return 0 }
func (l *recLink) Attach(d link.Dispatcher)        { l.d = d }
func (l *recLink) Close() error                    { return nil }
func (l *recLink) WritePackets(pkts []*buffer.Packet) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range pkts {
		l.frames = append(l.frames, append([]byte(nil), p.Data()...))
		p.Release()
	}
	return len(pkts), nil
}

func (l *recLink) pop() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.frames) == 0 {
		return nil
	}
	f := l.frames[0]
	l.frames = l.frames[1:]
	return f
}

// seg is a segment the stack sent, decoded.
type seg struct {
	f       header.TCPFields
	rawOpts []byte
	opts    header.TCPOptions
	payload []byte
	src     netip.Addr
	dst     netip.Addr
}

func (s seg) seq() uint32            { return s.f.Seq }
func (s seg) ack() uint32            { return s.f.Ack }
func (s seg) flags() header.TCPFlags { return s.f.Flags }

// tctx is a stack with TCP on a recording link: local 10.0.0.1, the
// simulated peer 10.0.0.2.
type tctx struct {
	t      *testing.T
	clk    *clock.Fake
	s      *stack.Stack
	p      *Protocol
	link   *recLink
	nic    *stack.NIC
	local  netip.Addr
	remote netip.Addr
}

func newCtx(t *testing.T, cfg Config) *tctx {
	return newCtxMTU(t, cfg, 1500)
}

func newCtxMTU(t *testing.T, cfg Config, mtu int) *tctx {
	t.Helper()
	c := &tctx{t: t, clk: clock.NewFake(), link: &recLink{mtu: mtu},
		local: netip.MustParseAddr("10.0.0.1"), remote: netip.MustParseAddr("10.0.0.2")}
	c.s = stack.New(stack.Options{Clock: c.clk})
	c.s.RegisterNetworkProtocol(&testIP{s: c.s})
	c.p = Register(c.s, cfg)
	nic, err := c.s.AddNIC(c.link, stack.NICOptions{Name: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	c.nic = nic
	if err := nic.AddAddress(netip.PrefixFrom(c.local, 24)); err != nil {
		t.Fatal(err)
	}
	return c
}

// inject delivers a segment from the peer.
func (c *tctx) inject(f header.TCPFields, opts []byte, payload []byte) {
	c.injectFrom(c.remote, f, opts, payload)
}

func (c *tctx) injectFrom(src netip.Addr, f header.TCPFields, opts []byte, payload []byte) {
	optLen := (len(opts) + 3) &^ 3
	tl := header.TCPMinLen + optLen + len(payload)
	pkt := buffer.New(buffer.Headroom, tl)
	b := pkt.Append(tl)
	f.DataOffset = uint8(header.TCPMinLen + optLen)
	f.Checksum = 0
	f.Emit(b)
	copy(b[header.TCPMinLen:], opts)
	for i := header.TCPMinLen + len(opts); i < header.TCPMinLen+optLen; i++ {
		b[i] = header.TCPOptEOL
	}
	copy(b[header.TCPMinLen+optLen:], payload)
	header.TCP(b).SetChecksum(header.TCPChecksum(b, src, c.local))
	ip := header.IPv4Fields{TotalLen: uint16(tl + header.IPv4MinLen), TTL: 64, Protocol: header.ProtoTCP,
		Src: src, Dst: c.local}
	ip.Emit(pkt.Prepend(header.IPv4MinLen))
	c.nic.DeliverLinkPacket(pkt)
}

// next returns the next segment the stack sent, or fails.
func (c *tctx) next() seg {
	c.t.Helper()
	s, ok := c.tryNext()
	if !ok {
		c.t.Fatalf("expected a segment, none was sent")
	}
	return s
}

func (c *tctx) tryNext() (seg, bool) {
	c.t.Helper()
	for {
		fr := c.link.pop()
		if fr == nil {
			return seg{}, false
		}
		ip, err := header.ParseIPv4(fr)
		if err != nil || ip.Protocol != header.ProtoTCP {
			continue
		}
		b := fr[header.IPv4(fr).HeaderLen():ip.TotalLen]
		if !header.TCPChecksumValid(b, ip.Src, ip.Dst) {
			c.t.Fatalf("segment with bad checksum sent")
		}
		f, err := header.ParseTCP(b)
		if err != nil {
			c.t.Fatalf("malformed segment sent: %v", err)
		}
		raw := header.TCP(b).Options()
		return seg{f: f, rawOpts: append([]byte(nil), raw...), opts: header.ParseTCPOptions(raw),
			payload: append([]byte(nil), b[f.DataOffset:]...), src: ip.Src, dst: ip.Dst}, true
	}
}

// expectNone fails if the stack sent anything.
func (c *tctx) expectNone() {
	c.t.Helper()
	if s, ok := c.tryNext(); ok {
		c.t.Fatalf("unexpected segment %v seq=%d ack=%d len=%d", s.f.Flags, s.f.Seq, s.f.Ack, len(s.payload))
	}
}

func (c *tctx) drain() {
	for {
		if _, ok := c.tryNext(); !ok {
			return
		}
	}
}

func (c *tctx) newEP() *endpoint {
	c.t.Helper()
	ep, err := c.p.NewEndpoint(unix.AF_INET)
	if err != nil {
		c.t.Fatal(err)
	}
	return ep.(*endpoint)
}

// Options the simulated peer sends in its SYN: Linux's layout with MSS
// 1460, SACK-permitted, timestamps and window scale 7.
func peerSYNOpts(tsval, tsecr uint32) []byte {
	b := make([]byte, 20)
	header.EncodeSYNOptions(b, header.TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true,
		HasTimestamps: true, TSVal: tsval, TSEcr: tsecr, WindowScale: 7})
	return b
}

func tsOpts(tsval, tsecr uint32) []byte {
	b := make([]byte, 12)
	header.EncodeOptions(b, header.TCPOptions{HasTimestamps: true, TSVal: tsval, TSEcr: tsecr})
	return b
}

const peerPort = 40000
const peerISN = 5000

// connectEstablished runs an active open against the simulated peer (with
// the given SYN-ACK options) and returns the endpoint and its SYN.
func (c *tctx) connectEstablished(synAckOpts []byte) (*endpoint, seg) {
	c.t.Helper()
	ep := c.newEP()
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != unix.EINPROGRESS {
		c.t.Fatalf("connect = %v, want EINPROGRESS", err)
	}
	syn := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Seq: peerISN, Ack: syn.f.Seq + 1,
		Flags: header.TCPFlagSyn | header.TCPFlagAck, Window: 65535}, synAckOpts, nil)
	ack := c.next()
	if ack.flags() != header.TCPFlagAck {
		c.t.Fatalf("third segment flags %v, want [.]", ack.flags())
	}
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != nil {
		c.t.Fatalf("connect after handshake = %v, want nil", err)
	}
	return ep, syn
}

// passiveEstablished has the simulated peer connect to a listener on port
// and returns the accepted endpoint and the SYN-ACK.
func (c *tctx) passiveEstablished(l *endpoint, synOpts []byte, ackOpts []byte) (*endpoint, seg) {
	c.t.Helper()
	port := l.LocalAddress().Port()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, synOpts, nil)
	sa := c.next()
	if sa.flags() != header.TCPFlagSyn|header.TCPFlagAck {
		c.t.Fatalf("reply to SYN has flags %v, want [S.]", sa.flags())
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: sa.f.Seq + 1,
		Flags: header.TCPFlagAck, Window: 502}, ackOpts, nil)
	a, _, err := l.Accept()
	if err != nil {
		c.t.Fatalf("accept = %v", err)
	}
	return a.(*endpoint), sa
}

// eventRecorder records the events an endpoint notifies.
type eventRecorder struct {
	mu  sync.Mutex
	got waiter.EventMask
}

func (r *eventRecorder) attach(ep stack.Endpoint) {
	ep.EventQueue().Register(&waiter.Entry{Mask: waiterAll, Callback: func(m waiter.EventMask) {
		r.mu.Lock()
		r.got |= m
		r.mu.Unlock()
	}})
}

func (r *eventRecorder) take() waiter.EventMask {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.got
	r.got = 0
	return m
}

var _ = time.Second

func (c *tctx) injectRaw(tcp []byte) {
	tl := len(tcp)
	pkt := buffer.New(buffer.Headroom, tl)
	copy(pkt.Append(tl), tcp)
	ip := header.IPv4Fields{TotalLen: uint16(tl + header.IPv4MinLen), TTL: 64, Protocol: header.ProtoTCP,
		Src: c.remote, Dst: c.local}
	ip.Emit(pkt.Prepend(header.IPv4MinLen))
	c.nic.DeliverLinkPacket(pkt)
}

func stackReadOpts() stack.ReadOptions { return stack.ReadOptions{} }

func bufferFrom(b []byte) *buffer.Packet {
	p := buffer.FromBytes(b)
	p.Meta.ChecksumVerified = true
	return p
}
