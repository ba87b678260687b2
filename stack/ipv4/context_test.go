package ipv4

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/arp"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/internal/testlink"
)

// The packet-level test context: one stack with one Ethernet NIC whose
// link records every frame the stack writes; tests inject crafted frames
// and assert the exact frames that come back.

var (
	localAddr = netip.MustParseAddr("10.213.0.1")
	peerAddr  = netip.MustParseAddr("10.213.0.2")
	otherAddr = netip.MustParseAddr("10.213.0.77")
	localMAC  = header.MAC{0x02, 0, 0, 0, 0, 0x01}
	peerMAC   = header.MAC{0x02, 0, 0, 0, 0, 0x02}
)

// fakeTransport is a transport protocol test double that records what the
// network layer gives it and answers with a fixed verdict.
type fakeTransport struct {
	num     uint8
	verdict stack.Verdict

	mu      sync.Mutex
	packets []deliveredPacket
	errors  []deliveredError
}

type deliveredPacket struct {
	data []byte
	info stack.IPInfo
}

type deliveredError struct {
	err     stack.ICMPError
	info    stack.IPInfo
	payload []byte
}

func (f *fakeTransport) Number() uint8 { return f.num }

func (f *fakeTransport) HandlePacket(pkt *buffer.Packet, ip stack.IPInfo) stack.Verdict {
	f.mu.Lock()
	f.packets = append(f.packets, deliveredPacket{bytes.Clone(pkt.Data()), ip})
	f.mu.Unlock()
	// A transport that answers PortUnreachable leaves pkt to the network
	// layer (see stack.TransportProtocol).
	if f.verdict == stack.Delivered {
		pkt.Release()
	}
	return f.verdict
}

func (f *fakeTransport) HandleError(e stack.ICMPError, ip stack.IPInfo, payload []byte) {
	f.mu.Lock()
	f.errors = append(f.errors, deliveredError{e, ip, bytes.Clone(payload)})
	f.mu.Unlock()
}

// waitPackets waits (at most timeout) until tp has received n packets and
// returns them; it fails the test if fewer, or more, arrive.
func waitPackets(t *testing.T, tp *fakeTransport, n int, timeout time.Duration) []deliveredPacket {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tp.mu.Lock()
		got := append([]deliveredPacket(nil), tp.packets...)
		tp.mu.Unlock()
		if len(got) > n {
			t.Fatalf("received %d packets, want %d", len(got), n)
		}
		if len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d packets within %v", len(got), n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitErrors waits (bounded) until the transport has recorded n errors.
func waitErrors(t *testing.T, tp *fakeTransport, n int) []deliveredError {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tp.mu.Lock()
		got := append([]deliveredError(nil), tp.errors...)
		tp.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ICMP errors delivered within 5 s, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testContext struct {
	t    *testing.T
	clk  *clock.Fake
	s    *stack.Stack
	ip   *Protocol
	arp  *arp.Protocol
	link *testlink.Link
	nic  *stack.NIC
}

func newContext(t *testing.T, mtu int, cfg Config, transports ...stack.TransportProtocol) *testContext {
	t.Helper()
	c := &testContext{t: t, clk: clock.NewFake(), link: testlink.NewEthernet(localMAC, mtu)}
	c.s = stack.New(stack.Options{Clock: c.clk})
	c.arp = arp.Register(c.s)
	c.ip = Register(c.s, cfg)
	for _, tp := range transports {
		c.s.RegisterTransportProtocol(tp)
	}
	nic, err := c.s.AddNIC(c.link, stack.NICOptions{Name: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	c.nic = nic
	if err := nic.AddAddress(netip.PrefixFrom(localAddr, 24)); err != nil {
		t.Fatal(err)
	}
	c.link.Take() // gratuitous ARP
	t.Cleanup(func() { _ = c.s.Close() })
	return c
}

// resolvePeer installs a static neighbour entry for the peer.
func (c *testContext) resolvePeer() {
	c.arp.Table(c.nic.ID()).AddStatic(peerAddr, peerMAC)
}

// inject delivers an IPv4 packet from the peer's MAC to ours.
func (c *testContext) inject(ipPacket []byte) {
	c.injectTo(localMAC, ipPacket)
}

func (c *testContext) injectTo(dst header.MAC, ipPacket []byte) {
	frame := make([]byte, header.EthernetLen+len(ipPacket))
	header.EthernetFields{Dst: dst, Src: peerMAC, EtherType: header.EtherTypeIPv4}.Emit(frame)
	copy(frame[header.EthernetLen:], ipPacket)
	c.nic.DeliverLinkPacket(buffer.FromBytes(frame))
}

// ipPacket builds an IPv4 packet with a valid header checksum.
func ipPacket(f header.IPv4Fields, payload []byte) []byte {
	if f.TTL == 0 {
		f.TTL = 64
	}
	hl := f.HeaderLen()
	if f.TotalLen == 0 {
		f.TotalLen = uint16(hl + len(payload))
	}
	b := make([]byte, hl+len(payload))
	f.Emit(b)
	copy(b[hl:], payload)
	return b
}

// icmpMessage builds an ICMP message with a valid checksum.
func icmpMessage(f header.ICMPv4Fields, payload []byte) []byte {
	b := make([]byte, header.ICMPv4MinLen+len(payload))
	copy(b[header.ICMPv4MinLen:], payload)
	f.Emit(b, b[header.ICMPv4MinLen:])
	return b
}

// sentIP is a frame the stack sent, split into its layers.
type sentIP struct {
	eth header.EthernetFields
	ip  header.IPv4Fields
	raw []byte // IP packet
}

func (c *testContext) takeIP() []sentIP {
	c.t.Helper()
	var out []sentIP
	for _, f := range c.link.Take() {
		eth, err := header.ParseEthernet(f)
		if err != nil {
			c.t.Fatalf("bad frame: %v", err)
		}
		if eth.EtherType != header.EtherTypeIPv4 {
			continue
		}
		raw := f[header.EthernetLen:]
		ip, err := header.ParseIPv4(raw)
		if err != nil {
			c.t.Fatalf("stack sent invalid IPv4 packet: %v", err)
		}
		out = append(out, sentIP{eth, ip, raw[:ip.TotalLen]})
	}
	return out
}

func (s sentIP) payload() []byte { return s.raw[header.IPv4(s.raw).HeaderLen():] }

// udpish is an 8-byte header plus data, enough to stand for a UDP datagram.
func udpish(data string) []byte {
	b := make([]byte, 8+len(data))
	b[0], b[1], b[2], b[3] = 0x30, 0x39, 0x00, 0x35 // ports 12345 → 53
	b[5] = byte(8 + len(data))
	copy(b[8:], data)
	return b
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
