package ipv4

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/arp"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/loopback"
	"github.com/netprov/netprov/stack/neighbor"
)

// icmpErrorAbout builds an ICMP error from the peer about a UDP datagram
// this host sent to otherAddr.
func icmpErrorAbout(typ, code uint8, mtu uint16, data string) (msg, quotedUDP []byte) {
	quotedUDP = udpish(data)
	inner := ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: localAddr, Dst: otherAddr, TTL: 64}, quotedUDP)
	msg = icmpMessage(header.ICMPv4Fields{Type: typ, Code: code, MTU: mtu}, inner)
	return msg, quotedUDP
}

func TestICMPErrorsDeliveredToTransport(t *testing.T) {
	for _, tc := range []struct {
		typ, code uint8
		kind      stack.ICMPErrorKind
	}{
		{header.ICMPv4DstUnreachable, header.ICMPv4CodePortUnreachable, stack.ICMPPortUnreachable},
		{header.ICMPv4DstUnreachable, header.ICMPv4CodeHostUnreachable, stack.ICMPHostUnreachable},
		{header.ICMPv4DstUnreachable, header.ICMPv4CodeNetUnreachable, stack.ICMPNetUnreachable},
		{header.ICMPv4DstUnreachable, header.ICMPv4CodeProtoUnreachable, stack.ICMPProtoUnreachable},
		{header.ICMPv4DstUnreachable, header.ICMPv4CodeAdminProhibited, stack.ICMPAdminProhibited},
		{header.ICMPv4TimeExceeded, header.ICMPv4CodeTTLExceeded, stack.ICMPTimeExceeded},
		{header.ICMPv4ParamProblem, 0, stack.ICMPParamProblem},
	} {
		udp := &fakeTransport{num: header.ProtoUDP}
		c := newContext(t, 1500, DefaultConfig(), udp)
		msg, quoted := icmpErrorAbout(tc.typ, tc.code, 0, "payload!")
		c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, msg))
		if len(udp.errors) != 1 {
			t.Fatalf("type %d code %d: %d errors delivered, want 1", tc.typ, tc.code, len(udp.errors))
		}
		e := udp.errors[0]
		if e.err.Kind != tc.kind || e.err.Type != tc.typ || e.err.Code != tc.code {
			t.Fatalf("type %d code %d: delivered %+v, want kind %d", tc.typ, tc.code, e.err, tc.kind)
		}
		if e.info.Src != localAddr || e.info.Dst != otherAddr || !bytes.Equal(e.payload, quoted) {
			t.Fatalf("error info %+v payload %x", e.info, e.payload)
		}
		if got := c.takeIP(); len(got) != 0 {
			t.Fatalf("answered an ICMP error with %d packets", len(got))
		}
	}
}

func TestICMPErrorTruncatedQuoteCounted(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	msg, _ := icmpErrorAbout(header.ICMPv4DstUnreachable, header.ICMPv4CodePortUnreachable, 0, "")
	short := msg[:8+20+4] // inner header but only 4 transport bytes
	short[2], short[3] = 0, 0
	header.ICMPv4(short).SetChecksum(header.ICMPv4Checksum(short))
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, short))
	if len(udp.errors) != 0 || c.s.Stats().ICMP.InErrors.Load() != 1 {
		t.Fatalf("truncated quote: delivered=%d InErrors=%d", len(udp.errors), c.s.Stats().ICMP.InErrors.Load())
	}
}

func TestFragNeededUpdatesPathMTU(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	c.arp.Table(c.nic.ID()).AddStatic(otherAddr, peerMAC)
	msg, _ := icmpErrorAbout(header.ICMPv4DstUnreachable, header.ICMPv4CodeFragmentationNeeded, 1400, "big")
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, msg))
	if len(udp.errors) != 1 || udp.errors[0].err.Kind != stack.ICMPFragNeeded || udp.errors[0].err.MTU != 1400 {
		t.Fatalf("errors delivered: %+v, want FragNeeded MTU 1400", udp.errors)
	}
	if got := c.ip.PathMTU(otherAddr); got != 1400 {
		t.Fatalf("PathMTU = %d, want 1400", got)
	}
	// Output now fragments at 1400 (no DF) and refuses 1400+ with DF.
	r, err := c.s.FindRoute(0, localAddr, otherAddr)
	if err != nil {
		t.Fatal(err)
	}
	pkt := buffer.New(buffer.Headroom, 1450)
	pkt.Append(1450)
	if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP}); err != nil {
		t.Fatal(err)
	}
	got := c.takeIP()
	if len(got) != 2 || got[0].ip.TotalLen != 1396 {
		t.Fatalf("sent %d packets (first %d bytes), want fragments of at most 1400", len(got), got[0].ip.TotalLen)
	}
	// A bigger MTU is ignored; a tiny one is raised to min_pmtu 552.
	msg, _ = icmpErrorAbout(header.ICMPv4DstUnreachable, header.ICMPv4CodeFragmentationNeeded, 1450, "big")
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, msg))
	if got := c.ip.PathMTU(otherAddr); got != 1400 {
		t.Fatalf("PathMTU = %d after a larger report, want 1400", got)
	}
	msg, _ = icmpErrorAbout(header.ICMPv4DstUnreachable, header.ICMPv4CodeFragmentationNeeded, 300, "big")
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, msg))
	if got := c.ip.PathMTU(otherAddr); got != 552 {
		t.Fatalf("PathMTU = %d after MTU 300, want min_pmtu 552", got)
	}
	// mtu_expires: forgotten after 10 minutes.
	c.clk.Advance(10 * time.Minute)
	if got := c.ip.PathMTU(otherAddr); got != 0 {
		t.Fatalf("PathMTU = %d after mtu_expires, want 0", got)
	}
}

func TestEchoReplyPassedToICMPSockets(t *testing.T) {
	ping := &fakeTransport{num: header.ProtoICMP}
	c := newContext(t, 1500, DefaultConfig(), ping)
	reply := icmpMessage(header.ICMPv4Fields{Type: header.ICMPv4EchoReply, Ident: 5, Seq: 6}, []byte("pong"))
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, reply))
	if len(ping.packets) != 1 || !bytes.Equal(ping.packets[0].data, reply) || ping.packets[0].info.Src != peerAddr {
		t.Fatalf("echo reply not passed to protocol 1: %+v", ping.packets)
	}
	// An error about our echo request goes to the ICMP socket protocol.
	inner := ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: localAddr, Dst: otherAddr},
		icmpMessage(header.ICMPv4Fields{Type: header.ICMPv4Echo, Ident: 5, Seq: 7}, nil))
	msg := icmpMessage(header.ICMPv4Fields{Type: header.ICMPv4DstUnreachable, Code: header.ICMPv4CodeHostUnreachable}, inner)
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, msg))
	if len(ping.errors) != 1 || ping.errors[0].err.Kind != stack.ICMPHostUnreachable {
		t.Fatalf("error about an echo request: %+v", ping.errors)
	}
	// Requests are answered by the stack, not passed on.
	req := icmpMessage(header.ICMPv4Fields{Type: header.ICMPv4Echo, Ident: 5, Seq: 6}, nil)
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, req))
	if len(ping.packets) != 1 {
		t.Fatal("echo request passed to protocol 1")
	}
}

// Sending to an unresolved neighbour: ARP requests at 0, 1, 2 s; at 3 s
// the transport gets EHOSTUNREACH-class errors for its queued packets.
func TestARPResolutionFailureReportsHostUnreachable(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	r, err := c.s.FindRoute(0, localAddr, peerAddr)
	if err != nil {
		t.Fatal(err)
	}
	pkt := buffer.New(buffer.Headroom, 8)
	copy(pkt.Append(8), udpish(""))
	if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP}); err != nil {
		t.Fatal(err)
	}
	var requests []time.Duration
	start := c.clk.Now()
	for i := 0; i < 40; i++ {
		for _, f := range c.link.Take() {
			eth, _ := header.ParseEthernet(f)
			if eth.EtherType != header.EtherTypeARP {
				t.Fatalf("sent a non-ARP frame while unresolved")
			}
			a, err := header.ParseARP(f[header.EthernetLen:])
			if err != nil || a.Op != header.ARPRequest || a.TargetIP != peerAddr || a.SenderIP != localAddr ||
				eth.Dst != header.BroadcastMAC || a.TargetMAC != (header.MAC{}) {
				t.Fatalf("bad ARP request %+v to %v", a, eth.Dst)
			}
			requests = append(requests, c.clk.Now().Sub(start))
		}
		c.clk.Advance(100 * time.Millisecond)
	}
	if len(requests) != 3 || requests[0] != 0 || requests[1] != time.Second || requests[2] != 2*time.Second {
		t.Fatalf("ARP requests at %v, want 0s 1s 2s", requests)
	}
	if len(udp.errors) != 1 {
		t.Fatalf("%d errors delivered, want 1", len(udp.errors))
	}
	e := udp.errors[0]
	if e.err.Kind != stack.ICMPHostUnreachable || e.info.Src != localAddr || e.info.Dst != peerAddr {
		t.Fatalf("error %+v info %+v", e.err, e.info)
	}
	if st, _ := c.arp.Table(c.nic.ID()).Lookup(peerAddr); st.State != neighbor.Failed {
		t.Fatalf("neighbour state %v, want FAILED", st.State)
	}
}

func TestARPReplyReleasesQueuedPackets(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig())
	r, _ := c.s.FindRoute(0, localAddr, peerAddr)
	for i := 0; i < 2; i++ {
		pkt := buffer.New(buffer.Headroom, 4)
		copy(pkt.Append(4), "data")
		_ = r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP})
	}
	if got := c.takeIP(); len(got) != 0 {
		t.Fatal("sent before resolution")
	}
	frame := make([]byte, header.EthernetLen+header.ARPLen)
	header.EthernetFields{Dst: localMAC, Src: peerMAC, EtherType: header.EtherTypeARP}.Emit(frame)
	header.ARPFields{Op: header.ARPReply, SenderMAC: peerMAC, SenderIP: peerAddr, TargetMAC: localMAC, TargetIP: localAddr}.Emit(frame[header.EthernetLen:])
	c.nic.DeliverLinkPacket(buffer.FromBytes(frame))
	got := c.takeIP()
	if len(got) != 2 || got[0].eth.Dst != peerMAC || string(got[1].payload()) != "data" {
		t.Fatalf("after ARP reply sent %d packets", len(got))
	}
	if e, _ := c.arp.Table(c.nic.ID()).Lookup(peerAddr); e.State != neighbor.Reachable {
		t.Fatalf("state after unicast reply = %v, want REACHABLE", e.State)
	}
}

// The loopback path: a route to a local address goes through lo, with no
// neighbour resolution, and comes back in.
func TestLoopbackRoute(t *testing.T) {
	s := stack.New(stack.Options{Clock: clock.NewFake()})
	arp.Register(s)
	Register(s, DefaultConfig())
	udp := &fakeTransport{num: header.ProtoUDP}
	s.RegisterTransportProtocol(udp)
	lo := loopback.New(loopback.Config{})
	nic, err := s.AddNIC(lo, stack.NICOptions{Name: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := nic.AddAddress(netip.MustParsePrefix("127.0.0.1/8")); err != nil {
		t.Fatal(err)
	}
	r, err := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	pkt := buffer.New(buffer.Headroom, 10)
	copy(pkt.Append(10), udpish("lo"))
	if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP}); err != nil {
		t.Fatal(err)
	}
	if d := waitPackets(t, udp, 1, 5*time.Second)[0]; !bytes.Equal(d.data, udpish("lo")) || d.info.Src.String() != "127.0.0.1" {
		t.Fatalf("delivered %+v", d)
	}
}

func TestTimestampReply(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig())
	c.resolvePeer()
	req := icmpMessage(header.ICMPv4Fields{Type: icmpTimestamp, Ident: 3, Seq: 4}, []byte{0, 0, 0x30, 0x39, 0, 0, 0, 0, 0, 0, 0, 0})
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, req))
	got := c.takeIP()
	if len(got) != 1 {
		t.Fatalf("sent %d packets, want a timestamp reply", len(got))
	}
	b := got[0].payload()
	m, err := header.ParseICMPv4(b)
	if err != nil || m.Type != icmpTimestampReply || m.Ident != 3 || m.Seq != 4 || len(b) != icmpTimestampLen {
		t.Fatalf("reply %+v %v len %d", m, err, len(b))
	}
	now := c.clk.Now().UTC()
	want := uint32(now.Unix()%86400)*1000 + uint32(now.Nanosecond()/1e6)
	if !bytes.Equal(b[8:12], []byte{0, 0, 0x30, 0x39}) || binary.BigEndian.Uint32(b[12:16]) != want || binary.BigEndian.Uint32(b[16:20]) != want {
		t.Fatalf("timestamps %x, want originate 00003039 and %d", b[8:20], want)
	}
}
