package ipv6

import (
	"io"
	"log/slog"
	"net/netip"

	"golang.org/x/sys/unix"

	"sync"
	"testing"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/internal/testlink"
)

// testTransport is a transport protocol that records what it gets.
type testTransport struct {
	num     uint8
	verdict stack.Verdict

	mu      sync.Mutex
	packets []recvd
	errors  []recvdErr
}

type recvd struct {
	data []byte
	ip   stack.IPInfo
}

type recvdErr struct {
	e       stack.ICMPError
	ip      stack.IPInfo
	payload []byte
}

func (t *testTransport) Number() uint8 { return t.num }

func (t *testTransport) HandlePacket(pkt *buffer.Packet, ip stack.IPInfo) stack.Verdict {
	t.mu.Lock()
	t.packets = append(t.packets, recvd{data: append([]byte(nil), pkt.Data()...), ip: ip})
	t.mu.Unlock()
	if t.verdict == stack.Delivered {
		pkt.Release()
	}
	return t.verdict
}

func (t *testTransport) HandleError(e stack.ICMPError, ip stack.IPInfo, payload []byte) {
	t.mu.Lock()
	t.errors = append(t.errors, recvdErr{e: e, ip: ip, payload: append([]byte(nil), payload...)})
	t.mu.Unlock()
}

func (t *testTransport) got() ([]recvd, []recvdErr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]recvd(nil), t.packets...), append([]recvdErr(nil), t.errors...)
}

var (
	ourMAC    = header.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	peerMAC   = header.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	ourAddr   = netip.MustParseAddr("fd00:213::2")
	peerAddr  = netip.MustParseAddr("fd00:213::1")
	ourLL     = LinkLocalAddress(ourMAC)
	peerLL    = LinkLocalAddress(peerMAC)
	allNodes  = netip.MustParseAddr("ff02::1")
	udpNumber = header.ProtoUDP
)

// testEnv is a stack with one Ethernet NIC holding ourAddr/64 and the
// EUI-64 link-local address, and a recording UDP-numbered transport.
type testEnv struct {
	t     *testing.T
	clk   *clock.Fake
	s     *stack.Stack
	p     *Protocol
	nic   *stack.NIC
	link  *testlink.Link
	udp   *testTransport
	icmp6 *testTransport
}

func newTestEnv(t *testing.T, mtu int) *testEnv {
	t.Helper()
	return newTestEnvHook(t, mtu, nil)
}

// newTestEnvHook is newTestEnv with a hook that registers more protocols
// before the NIC is added.
func newTestEnvHook(t *testing.T, mtu int, hook func(*stack.Stack)) *testEnv {
	t.Helper()
	return newTestEnvConfig(t, mtu, DefaultConfig(), hook)
}

func newTestEnvConfig(t *testing.T, mtu int, cfg Config, hook func(*stack.Stack)) *testEnv {
	t.Helper()
	clk := clock.NewFake()
	s := stack.New(stack.Options{Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	p := Register(s, cfg)
	udp := &testTransport{num: udpNumber}
	s.RegisterTransportProtocol(udp)
	if hook != nil {
		hook(s)
	}
	l := testlink.NewEthernet(ourMAC, mtu)
	nic, err := s.AddNIC(l, stack.NICOptions{Name: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := nic.AddAddress(netip.PrefixFrom(ourAddr, 64)); err != nil {
		t.Fatal(err)
	}
	if _, err := AddLinkLocalAddress(nic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &testEnv{t: t, clk: clk, s: s, p: p, nic: nic, link: l, udp: udp}
}

// knowPeer puts the peer into the neighbour table so replies need no
// resolution.
func (env *testEnv) knowPeer() {
	tb := env.p.Table(env.nic.ID())
	tb.AddStatic(peerAddr, peerMAC)
	tb.AddStatic(peerLL, peerMAC)
}

// ethFrame wraps an IPv6 packet in an Ethernet header from the peer.
func ethFrame(dst header.MAC, ip []byte) []byte {
	b := make([]byte, header.EthernetLen+len(ip))
	header.EthernetFields{Dst: dst, Src: peerMAC, EtherType: header.EtherTypeIPv6}.Emit(b)
	copy(b[header.EthernetLen:], ip)
	return b
}

// ipPacket builds an IPv6 packet with the given next header and payload.
func ipPacket(src, dst netip.Addr, nextHeader, hop uint8, payload []byte) []byte {
	b := make([]byte, header.IPv6Len+len(payload))
	header.IPv6Fields{NextHeader: nextHeader, HopLimit: hop, PayloadLen: uint16(len(payload)), Src: src, Dst: dst}.Emit(b)
	copy(b[header.IPv6Len:], payload)
	return b
}

// icmpMsg builds an ICMPv6 message with a correct checksum.
func icmpMsg(src, dst netip.Addr, f header.ICMPv6Fields, payload []byte) []byte {
	b := make([]byte, header.ICMPv6MinLen+len(payload))
	copy(b[header.ICMPv6MinLen:], payload)
	f.Emit(b[:header.ICMPv6MinLen], b[header.ICMPv6MinLen:], src, dst)
	return b
}

// ndpMsg builds an NDP message (type typ) with body emitted by emit.
func ndpMsg(src, dst netip.Addr, typ uint8, bodyLen int, emit func([]byte)) []byte {
	b := make([]byte, 4+bodyLen)
	emit(b[4:])
	header.EmitICMPv6Header(b, typ, 0, src, dst)
	return b
}

// udpLike is an 8-byte "transport header" and payload for the test
// transport (the stack does not look inside).
func udpLike(n int) []byte {
	b := make([]byte, 8+n)
	b[0], b[1], b[2], b[3] = 0x30, 0x39, 0x00, 0x35
	for i := range n {
		b[8+i] = byte(i)
	}
	return b
}

// parsedFrame is a frame the stack wrote, decoded.
type parsedFrame struct {
	eth     header.EthernetFields
	ip      header.IPv6Fields
	payload []byte // after the fixed IPv6 header
}

func parseFrame(t *testing.T, b []byte) parsedFrame {
	t.Helper()
	eth, err := header.ParseEthernet(b)
	if err != nil {
		t.Fatalf("frame: %v", err)
	}
	if eth.EtherType != header.EtherTypeIPv6 {
		t.Fatalf("frame ethertype %#x", eth.EtherType)
	}
	ipb := b[header.EthernetLen:]
	f, err := header.ParseIPv6(ipb)
	if err != nil {
		t.Fatalf("ipv6: %v", err)
	}
	return parsedFrame{eth: eth, ip: f, payload: ipb[header.IPv6Len : header.IPv6Len+int(f.PayloadLen)]}
}

// parseICMP decodes a frame carrying ICMPv6 and verifies its checksum.
func parseICMP(t *testing.T, b []byte) (parsedFrame, header.ICMPv6Fields) {
	t.Helper()
	pf := parseFrame(t, b)
	if pf.ip.NextHeader != header.ProtoICMPv6 {
		t.Fatalf("next header %d, want ICMPv6", pf.ip.NextHeader)
	}
	m, err := header.ParseICMPv6(pf.payload, pf.ip.Src, pf.ip.Dst)
	if err != nil {
		t.Fatalf("icmpv6: %v", err)
	}
	return pf, m
}

var errEMSGSIZE = unix.EMSGSIZE

func prefix64(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, 64) }
