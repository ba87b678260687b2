package arp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/internal/testlink"
	"github.com/netprov/netprov/stack/neighbor"
)

var (
	localAddr  = netip.MustParseAddr("10.213.0.1")
	secondAddr = netip.MustParseAddr("10.213.1.1") // on another NIC
	peerAddr   = netip.MustParseAddr("10.213.0.2")
	localMAC   = header.MAC{0x02, 0, 0, 0, 0, 0x01}
	peerMAC    = header.MAC{0x02, 0, 0, 0, 0, 0x02}
)

type testContext struct {
	t    *testing.T
	clk  *clock.Fake
	s    *stack.Stack
	arp  *Protocol
	link *testlink.Link
	nic  *stack.NIC
}

func newContext(t *testing.T) *testContext {
	return newContextConfig(t, DefaultConfig())
}

func newContextConfig(t *testing.T, cfg Config) *testContext {
	c := &testContext{t: t, clk: clock.NewFake(), link: testlink.NewEthernet(localMAC, 1500)}
	c.s = stack.New(stack.Options{Clock: c.clk})
	c.arp = RegisterConfig(c.s, cfg)
	nic, err := c.s.AddNIC(c.link, stack.NICOptions{Name: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	c.nic = nic
	t.Cleanup(func() { _ = c.s.Close() })
	return c
}

func (c *testContext) table() *neighbor.Table { return c.arp.Table(c.nic.ID()) }

func (c *testContext) injectARP(dst header.MAC, f header.ARPFields) {
	frame := make([]byte, header.EthernetLen+header.ARPLen+18) // padded to 60
	header.EthernetFields{Dst: dst, Src: f.SenderMAC, EtherType: header.EtherTypeARP}.Emit(frame)
	f.Emit(frame[header.EthernetLen:])
	c.nic.DeliverLinkPacket(buffer.FromBytes(frame))
}

type sentARP struct {
	eth header.EthernetFields
	arp header.ARPFields
}

func (c *testContext) takeARP() []sentARP {
	c.t.Helper()
	var out []sentARP
	for _, f := range c.link.Take() {
		eth, _ := header.ParseEthernet(f)
		if eth.EtherType != header.EtherTypeARP {
			c.t.Fatalf("non-ARP frame sent: %x", f)
		}
		if len(f) != header.EthernetLen+header.ARPLen {
			c.t.Fatalf("ARP frame of %d bytes", len(f))
		}
		a, err := header.ParseARP(f[header.EthernetLen:])
		if err != nil {
			c.t.Fatalf("invalid ARP sent: %v", err)
		}
		out = append(out, sentARP{eth, a})
	}
	return out
}

// Linux with arp_notify=0 sends nothing on `ip addr add` (checked against
// the kernel with tcpdump on a veth peer).
func TestNoGratuitousARPByDefault(t *testing.T) {
	c := newContext(t)
	if err := c.nic.AddAddress(netip.PrefixFrom(localAddr, 24)); err != nil {
		t.Fatal(err)
	}
	if got := c.takeARP(); len(got) != 0 {
		t.Fatalf("sent %+v on address add with arp_notify=0", got)
	}
}

func TestGratuitousARPWithNotify(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Notify = true
	c := newContextConfig(t, cfg)
	if err := c.nic.AddAddress(netip.PrefixFrom(localAddr, 24)); err != nil {
		t.Fatal(err)
	}
	got := c.takeARP()
	want := sentARP{
		eth: header.EthernetFields{Dst: header.BroadcastMAC, Src: localMAC, EtherType: header.EtherTypeARP},
		arp: header.ARPFields{Op: header.ARPRequest, SenderMAC: localMAC, SenderIP: localAddr, TargetIP: localAddr},
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("sent %+v, want one gratuitous request %+v", got, want)
	}
}

// Announce sends one gratuitous request per IPv4 address even with
// arp_notify=0 (arping -U), and none for IPv6 or loopback addresses.
func TestAnnounce(t *testing.T) {
	c := newContext(t)
	second := netip.MustParseAddr("10.213.9.9")
	for _, p := range []netip.Prefix{netip.PrefixFrom(localAddr, 24), netip.PrefixFrom(second, 24), netip.MustParsePrefix("fd00:213::1/64")} {
		if err := c.nic.AddAddress(p); err != nil {
			t.Fatal(err)
		}
	}
	c.takeARP()
	c.arp.Endpoint(c.nic.ID()).Announce()
	got := c.takeARP()
	if len(got) != 2 {
		t.Fatalf("sent %+v, want one gratuitous request for each IPv4 address", got)
	}
	for i, a := range []netip.Addr{localAddr, second} {
		want := sentARP{
			eth: header.EthernetFields{Dst: header.BroadcastMAC, Src: localMAC, EtherType: header.EtherTypeARP},
			arp: header.ARPFields{Op: header.ARPRequest, SenderMAC: localMAC, SenderIP: a, TargetIP: a},
		}
		if got[i] != want {
			t.Errorf("request %d: %+v, want %+v", i, got[i], want)
		}
	}
}

func TestRequestForUsIsAnsweredAndLearned(t *testing.T) {
	c := newContext(t)
	_ = c.nic.AddAddress(netip.PrefixFrom(localAddr, 24))
	c.takeARP()
	c.injectARP(header.BroadcastMAC, header.ARPFields{Op: header.ARPRequest, SenderMAC: peerMAC, SenderIP: peerAddr, TargetIP: localAddr})
	got := c.takeARP()
	want := sentARP{
		eth: header.EthernetFields{Dst: peerMAC, Src: localMAC, EtherType: header.EtherTypeARP},
		arp: header.ARPFields{Op: header.ARPReply, SenderMAC: localMAC, SenderIP: localAddr, TargetMAC: peerMAC, TargetIP: peerAddr},
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("sent %+v, want reply %+v", got, want)
	}
	if e, ok := c.table().Lookup(peerAddr); !ok || e.State != neighbor.Stale || e.MAC != peerMAC {
		t.Fatalf("asker learned as %+v %v, want STALE %v", e, ok, peerMAC)
	}
	st := &c.s.Stats().ARP
	if st.RequestsReceived.Load() != 1 || st.RepliesSent.Load() != 1 {
		t.Fatalf("RequestsReceived=%d RepliesSent=%d", st.RequestsReceived.Load(), st.RepliesSent.Load())
	}
}

func TestRequestForOtherHostIgnored(t *testing.T) {
	c := newContext(t)
	_ = c.nic.AddAddress(netip.PrefixFrom(localAddr, 24))
	c.takeARP()
	c.injectARP(header.BroadcastMAC, header.ARPFields{Op: header.ARPRequest, SenderMAC: peerMAC, SenderIP: peerAddr, TargetIP: netip.MustParseAddr("10.213.0.99")})
	if got := c.takeARP(); len(got) != 0 {
		t.Fatalf("answered a request for another host: %+v", got)
	}
	if _, ok := c.table().Lookup(peerAddr); ok {
		t.Fatal("learned from a request not for us (arp_accept=0)")
	}
}

// arp_ignore=0: an address of another interface is answered too.
func TestWeakHostAnswersAnyLocalAddress(t *testing.T) {
	c := newContext(t)
	_ = c.nic.AddAddress(netip.PrefixFrom(localAddr, 24))
	other, err := c.s.AddNIC(testlink.NewEthernet(header.MAC{2, 0, 0, 0, 0, 9}, 1500), stack.NICOptions{Name: "eth1"})
	if err != nil {
		t.Fatal(err)
	}
	_ = other.AddAddress(netip.PrefixFrom(secondAddr, 24))
	c.takeARP()
	c.injectARP(header.BroadcastMAC, header.ARPFields{Op: header.ARPRequest, SenderMAC: peerMAC, SenderIP: peerAddr, TargetIP: secondAddr})
	got := c.takeARP()
	if len(got) != 1 || got[0].arp.SenderIP != secondAddr || got[0].arp.SenderMAC != localMAC {
		t.Fatalf("sent %+v, want a reply for %v with eth0's MAC", got, secondAddr)
	}
}

func TestUnsolicitedReplyDoesNotCreateEntry(t *testing.T) {
	c := newContext(t)
	_ = c.nic.AddAddress(netip.PrefixFrom(localAddr, 24))
	c.injectARP(localMAC, header.ARPFields{Op: header.ARPReply, SenderMAC: peerMAC, SenderIP: peerAddr, TargetMAC: localMAC, TargetIP: localAddr})
	if _, ok := c.table().Lookup(peerAddr); ok {
		t.Fatal("unsolicited reply created an entry")
	}
}

func TestDuplicateAddressProbeAnswered(t *testing.T) {
	c := newContext(t)
	_ = c.nic.AddAddress(netip.PrefixFrom(localAddr, 24))
	c.takeARP()
	c.injectARP(header.BroadcastMAC, header.ARPFields{Op: header.ARPRequest, SenderMAC: peerMAC, SenderIP: netip.IPv4Unspecified(), TargetIP: localAddr})
	got := c.takeARP()
	if len(got) != 1 || got[0].arp.Op != header.ARPReply || got[0].arp.TargetIP != netip.IPv4Unspecified() || got[0].eth.Dst != peerMAC {
		t.Fatalf("DAD probe answer %+v", got)
	}
	if len(c.table().Entries()) != 0 {
		t.Fatal("learned from a DAD probe")
	}
}

// Spec 101: requests go to the broadcast MAC with a zero target MAC;
// spec 103: three of them, 1 s apart, then FAILED (checked against the
// kernel: `ping` to an absent neighbour shows the same three requests).
func TestResolutionTiming(t *testing.T) {
	c := newContext(t)
	_ = c.nic.AddAddress(netip.PrefixFrom(localAddr, 24))
	c.takeARP()
	pkt := buffer.New(buffer.Headroom, 1)
	pkt.Append(1)
	if err := c.table().Output(peerAddr, pkt); err != nil {
		t.Fatal(err)
	}
	var at []time.Duration
	start := c.clk.Now()
	for i := 0; i < 50; i++ {
		for _, a := range c.takeARP() {
			if a.arp.Op != header.ARPRequest || a.eth.Dst != header.BroadcastMAC || a.arp.TargetIP != peerAddr ||
				a.arp.SenderIP != localAddr || a.arp.TargetMAC != (header.MAC{}) {
				t.Fatalf("bad request %+v", a)
			}
			at = append(at, c.clk.Now().Sub(start))
		}
		c.clk.Advance(100 * time.Millisecond)
	}
	if len(at) != 3 || at[1]-at[0] != time.Second || at[2]-at[1] != time.Second {
		t.Fatalf("requests at %v, want three 1 s apart", at)
	}
	if e, _ := c.table().Lookup(peerAddr); e.State != neighbor.Failed {
		t.Fatalf("state %v, want FAILED", e.State)
	}
	st := &c.s.Stats().ARP
	if st.RequestsSent.Load() != 3 || st.ResolutionFailed.Load() != 1 {
		t.Fatalf("RequestsSent=%d ResolutionFailed=%d", st.RequestsSent.Load(), st.ResolutionFailed.Load())
	}
}

func TestProbeUnicastAfterStale(t *testing.T) {
	c := newContext(t)
	_ = c.nic.AddAddress(netip.PrefixFrom(localAddr, 24))
	c.takeARP()
	c.injectARP(header.BroadcastMAC, header.ARPFields{Op: header.ARPRequest, SenderMAC: peerMAC, SenderIP: peerAddr, TargetIP: localAddr})
	c.takeARP()
	pkt := buffer.New(buffer.Headroom, 1)
	pkt.Append(1)
	_ = c.table().Output(peerAddr, pkt) // STALE → DELAY, sent at once
	c.link.Take()
	c.clk.Advance(5 * time.Second) // DELAY → PROBE
	got := c.takeARP()
	if len(got) != 1 || got[0].eth.Dst != peerMAC || got[0].arp.TargetIP != peerAddr {
		t.Fatalf("probe %+v, want a unicast request to %v", got, peerMAC)
	}
	// A unicast reply confirms: REACHABLE.
	c.injectARP(localMAC, header.ARPFields{Op: header.ARPReply, SenderMAC: peerMAC, SenderIP: peerAddr, TargetMAC: localMAC, TargetIP: localAddr})
	if e, _ := c.table().Lookup(peerAddr); e.State != neighbor.Reachable {
		t.Fatalf("state %v after reply, want REACHABLE", e.State)
	}
}

// Spec 102: ARP with another hardware type or address length is dropped.
func TestMalformedCounted(t *testing.T) {
	c := newContext(t)
	_ = c.nic.AddAddress(netip.PrefixFrom(localAddr, 24))
	c.takeARP()
	for _, b := range [][]byte{
		make([]byte, 10), // truncated
		func() []byte { // hardware type 6 (IEEE 802)
			b := make([]byte, header.ARPLen)
			header.ARPFields{Op: 1, SenderIP: peerAddr, TargetIP: localAddr}.Emit(b)
			b[1] = 6
			return b
		}(),
		func() []byte { // operation 9
			b := make([]byte, header.ARPLen)
			header.ARPFields{Op: 9, SenderIP: peerAddr, TargetIP: localAddr}.Emit(b)
			return b
		}(),
	} {
		frame := make([]byte, header.EthernetLen+len(b))
		header.EthernetFields{Dst: header.BroadcastMAC, Src: peerMAC, EtherType: header.EtherTypeARP}.Emit(frame)
		copy(frame[header.EthernetLen:], b)
		c.nic.DeliverLinkPacket(buffer.FromBytes(frame))
	}
	if n := c.s.Stats().Dropped.MalformedARP.Load(); n != 3 {
		t.Fatalf("MalformedARP = %d, want 3", n)
	}
	if got := c.takeARP(); len(got) != 0 {
		t.Fatalf("answered malformed ARP: %+v", got)
	}
}
