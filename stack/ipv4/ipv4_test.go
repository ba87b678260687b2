package ipv4

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
)

func TestEchoReply(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig())
	c.resolvePeer()
	data := []byte("0123456789abcdefghij")
	req := icmpMessage(header.ICMPv4Fields{Type: header.ICMPv4Echo, Ident: 0x1234, Seq: 7}, data)
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr, TOS: 0x10}, req))
	got := c.takeIP()
	if len(got) != 1 {
		t.Fatalf("sent %d packets, want 1 echo reply", len(got))
	}
	r := got[0]
	if r.eth.Dst != peerMAC || r.eth.Src != localMAC {
		t.Fatalf("reply frame %v → %v, want %v → %v", r.eth.Src, r.eth.Dst, localMAC, peerMAC)
	}
	if r.ip.Src != localAddr || r.ip.Dst != peerAddr || r.ip.Protocol != header.ProtoICMP || r.ip.TTL != 64 || r.ip.TOS != 0x10 {
		t.Fatalf("reply IP header %+v", r.ip)
	}
	if r.ip.Flags&header.IPv4FlagDF != 0 {
		t.Fatal("echo reply has DF set; Linux's ICMP socket uses IP_PMTUDISC_DONT")
	}
	m, err := header.ParseICMPv4(r.payload())
	if err != nil {
		t.Fatalf("reply ICMP: %v", err)
	}
	if m.Type != header.ICMPv4EchoReply || m.Code != 0 || m.Ident != 0x1234 || m.Seq != 7 {
		t.Fatalf("reply ICMP header %+v", m)
	}
	if !bytes.Equal(r.payload()[8:], data) {
		t.Fatalf("reply data %q, want %q", r.payload()[8:], data)
	}
	st := c.s.Stats()
	if st.ICMP.InEchos.Load() != 1 || st.ICMP.OutEchoReps.Load() != 1 || st.IP.InDelivers.Load() != 1 {
		t.Fatalf("counters InEchos=%d OutEchoReps=%d InDelivers=%d", st.ICMP.InEchos.Load(), st.ICMP.OutEchoReps.Load(), st.IP.InDelivers.Load())
	}
}

func TestEchoIgnoredToBroadcastAndWhenDisabled(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig())
	c.resolvePeer()
	req := icmpMessage(header.ICMPv4Fields{Type: header.ICMPv4Echo, Ident: 1, Seq: 1}, nil)
	for _, dst := range []string{"10.213.0.255", "255.255.255.255"} {
		c.injectTo(header.BroadcastMAC, ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: mustAddr(dst)}, req))
	}
	if got := c.takeIP(); len(got) != 0 {
		t.Fatalf("answered broadcast echo: %+v", got)
	}
	if n := c.s.Stats().ICMP.InErrors.Load(); n != 2 {
		t.Fatalf("InErrors = %d, want 2 (Linux counts ignored broadcast echos)", n)
	}

	cfg := DefaultConfig()
	cfg.ICMPEchoIgnoreAll = true
	c2 := newContext(t, 1500, cfg)
	c2.resolvePeer()
	c2.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, req))
	if got := c2.takeIP(); len(got) != 0 {
		t.Fatalf("icmp_echo_ignore_all: answered %+v", got)
	}
}

// Spec 100: input checks, including the header checksum.
func TestHeaderErrorsCounted(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	c.resolvePeer()
	good := ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr}, udpish("x"))

	badSum := bytes.Clone(good)
	badSum[10] ^= 0xff
	c.inject(badSum)
	short := bytes.Clone(good[:15])
	c.inject(short)
	badLen := bytes.Clone(good)
	badLen[3] = 200 // total length beyond the frame
	c.inject(badLen)
	badVer := bytes.Clone(good)
	badVer[0] = 0x65
	c.inject(badVer)

	st := c.s.Stats()
	if n := st.IP.InHdrErrors.Load(); n != 4 {
		t.Fatalf("InHdrErrors = %d, want 4", n)
	}
	if n := st.Dropped.MalformedIPv4.Load(); n != 4 {
		t.Fatalf("MalformedIPv4 = %d, want 4", n)
	}
	if len(udp.packets) != 0 {
		t.Fatalf("malformed packets delivered: %d", len(udp.packets))
	}

	// ICMP checksum errors are ICMP's.
	req := icmpMessage(header.ICMPv4Fields{Type: header.ICMPv4Echo}, []byte("abc"))
	req[2] ^= 1
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, req))
	if st.ICMP.InCsumErrors.Load() != 1 || st.ICMP.InErrors.Load() != 1 {
		t.Fatalf("ICMP InCsumErrors=%d InErrors=%d, want 1 1", st.ICMP.InCsumErrors.Load(), st.ICMP.InErrors.Load())
	}
	if got := c.takeIP(); len(got) != 0 {
		t.Fatalf("answered bad packets: %+v", got)
	}
}

func TestDeliveryAndPadding(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	pkt := ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr, TTL: 17, TOS: 0x28}, udpish("hi"))
	// Ethernet pads short frames to 60 bytes: the padding must go.
	padded := append(bytes.Clone(pkt), make([]byte, 20)...)
	c.inject(padded)
	if len(udp.packets) != 1 {
		t.Fatalf("delivered %d packets, want 1", len(udp.packets))
	}
	d := udp.packets[0]
	if !bytes.Equal(d.data, udpish("hi")) {
		t.Fatalf("transport got %x, want %x", d.data, udpish("hi"))
	}
	want := stack.IPInfo{Src: peerAddr, Dst: localAddr, NIC: c.nic.ID(), TTL: 17, TOS: 0x28}
	if d.info != want {
		t.Fatalf("IPInfo = %+v, want %+v", d.info, want)
	}
	// Not for us: dropped and counted, no forwarding.
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: otherAddr}, udpish("no")))
	if len(udp.packets) != 1 || c.s.Stats().IP.InAddrErrors.Load() != 1 {
		t.Fatalf("packet for another host: delivered=%d InAddrErrors=%d", len(udp.packets), c.s.Stats().IP.InAddrErrors.Load())
	}
	// Broadcast is delivered, flagged multicast.
	c.injectTo(header.BroadcastMAC, ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: mustAddr("10.213.0.255")}, udpish("b")))
	if len(udp.packets) != 2 || !udp.packets[1].info.Multicast {
		t.Fatalf("subnet broadcast not delivered as multicast: %+v", udp.packets)
	}
	// Options are skipped; a source route is refused.
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr, Options: []byte{1, 1, 1, 0}}, udpish("o")))
	if len(udp.packets) != 3 || !bytes.Equal(udp.packets[2].data, udpish("o")) {
		t.Fatalf("packet with NOP options not delivered intact")
	}
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr, Options: []byte{131, 7, 4, 10, 213, 0, 9, 0}}, udpish("s")))
	if len(udp.packets) != 3 {
		t.Fatal("source-routed packet delivered")
	}
	c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr, Options: []byte{7, 9, 0, 0}}, udpish("m")))
	if len(udp.packets) != 3 {
		t.Fatal("packet with malformed options delivered")
	}
}

func TestPortUnreachable(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP, verdict: stack.PortUnreachable}
	c := newContext(t, 1500, DefaultConfig(), udp)
	c.resolvePeer()
	orig := ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr, ID: 99, TOS: 0x04}, udpish("query"))
	c.inject(orig)
	got := c.takeIP()
	if len(got) != 1 {
		t.Fatalf("sent %d packets, want 1 port unreachable", len(got))
	}
	r := got[0]
	if r.ip.Src != localAddr || r.ip.Dst != peerAddr || r.ip.Protocol != header.ProtoICMP || r.ip.TOS != 0xc4 {
		t.Fatalf("ICMP error IP header %+v (want TOS 0xc4: precedence internetwork control)", r.ip)
	}
	m, err := header.ParseICMPv4(r.payload())
	if err != nil || m.Type != header.ICMPv4DstUnreachable || m.Code != header.ICMPv4CodePortUnreachable {
		t.Fatalf("ICMP %+v, %v; want destination unreachable / port", m, err)
	}
	if !bytes.Equal(r.payload()[8:], orig) {
		t.Fatalf("quoted %x, want the whole original datagram %x", r.payload()[8:], orig)
	}
	st := c.s.Stats()
	if st.ICMP.OutDestUnreachs.Load() != 1 || st.ICMP.OutMsgs.Load() != 1 {
		t.Fatalf("OutDestUnreachs=%d OutMsgs=%d", st.ICMP.OutDestUnreachs.Load(), st.ICMP.OutMsgs.Load())
	}
	// Never for broadcasts.
	c.injectTo(header.BroadcastMAC, ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: mustAddr("255.255.255.255")}, udpish("b")))
	c.injectTo(header.BroadcastMAC, ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr}, udpish("c")))
	if got := c.takeIP(); len(got) != 0 {
		t.Fatalf("ICMP error for a broadcast: %+v", got)
	}
}

func TestPortUnreachableQuoteLimitedTo576(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP, verdict: stack.PortUnreachable}
	c := newContext(t, 1500, DefaultConfig(), udp)
	c.resolvePeer()
	orig := ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr}, udpish(string(make([]byte, 1200))))
	c.inject(orig)
	got := c.takeIP()
	if len(got) != 1 || got[0].ip.TotalLen != 576 || !bytes.Equal(got[0].payload()[8:], orig[:548]) {
		t.Fatalf("ICMP error of %d bytes, want 576 quoting the first 548 bytes", got[0].ip.TotalLen)
	}
}

func TestProtocolUnreachable(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig())
	c.resolvePeer()
	orig := ipPacket(header.IPv4Fields{Protocol: 99, Src: peerAddr, Dst: localAddr}, []byte("12345678"))
	c.inject(orig)
	got := c.takeIP()
	if len(got) != 1 {
		t.Fatalf("sent %d packets, want 1", len(got))
	}
	m, _ := header.ParseICMPv4(got[0].payload())
	if m.Type != header.ICMPv4DstUnreachable || m.Code != header.ICMPv4CodeProtoUnreachable {
		t.Fatalf("ICMP %+v, want protocol unreachable", m)
	}
	if c.s.Stats().IP.InUnknownProtos.Load() != 1 {
		t.Fatal("InUnknownProtos not counted")
	}
}

func TestICMPErrorRateLimit(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP, verdict: stack.PortUnreachable}
	c := newContext(t, 1500, DefaultConfig(), udp)
	c.resolvePeer()
	orig := ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr}, udpish("q"))
	for i := 0; i < 10; i++ {
		c.inject(orig)
	}
	if n := len(c.takeIP()); n != 6 {
		t.Fatalf("%d port unreachables for 10 packets at once, want burst of 6", n)
	}
	c.clk.Advance(1000_000_000) // 1 s: one more token
	c.inject(orig)
	c.inject(orig)
	if n := len(c.takeIP()); n != 1 {
		t.Fatalf("%d port unreachables after 1 s, want 1", n)
	}
	// Echo replies are not limited (icmp_ratemask 0x1818).
	req := icmpMessage(header.ICMPv4Fields{Type: header.ICMPv4Echo, Ident: 1}, nil)
	for i := 0; i < 10; i++ {
		c.inject(ipPacket(header.IPv4Fields{Protocol: header.ProtoICMP, Src: peerAddr, Dst: localAddr}, req))
	}
	if n := len(c.takeIP()); n != 10 {
		t.Fatalf("%d echo replies for 10 requests, want 10", n)
	}
}

func TestWritePacketHeader(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig())
	c.resolvePeer()
	r, err := c.s.FindRoute(0, localAddr, peerAddr)
	if err != nil {
		t.Fatal(err)
	}
	send := func(params stack.NetworkParams, data string) sentIP {
		t.Helper()
		pkt := buffer.New(buffer.Headroom, len(data))
		copy(pkt.Append(len(data)), data)
		if err := r.WritePacket(pkt, params); err != nil {
			t.Fatalf("WritePacket: %v", err)
		}
		got := c.takeIP()
		if len(got) != 1 {
			t.Fatalf("sent %d packets, want 1", len(got))
		}
		return got[0]
	}
	a := send(stack.NetworkParams{Protocol: header.ProtoUDP}, "hello")
	if a.ip.TTL != 64 || a.ip.Src != localAddr || a.ip.Dst != peerAddr || a.ip.Protocol != header.ProtoUDP ||
		a.ip.Flags != 0 || a.ip.TotalLen != 25 || string(a.payload()) != "hello" || a.eth.Dst != peerMAC {
		t.Fatalf("packet %+v eth %+v", a.ip, a.eth)
	}
	b := send(stack.NetworkParams{Protocol: header.ProtoTCP, TTL: 5, TOS: 0x10, DontFragment: true}, "x")
	if b.ip.TTL != 5 || b.ip.TOS != 0x10 || b.ip.Flags != header.IPv4FlagDF {
		t.Fatalf("packet %+v", b.ip)
	}
	// Spec 32 (ip_select_ident_segs): a DF packet of no connected socket
	// carries ID 0; other packets without a socket counter take
	// consecutive IDs from the flow's shared counter.
	if b.ip.ID != 0 {
		t.Fatalf("DF packet without a socket counter: ID %d, want 0", b.ip.ID)
	}
	a2 := send(stack.NetworkParams{Protocol: header.ProtoUDP}, "again")
	if a2.ip.ID != a.ip.ID+1 {
		t.Fatalf("IDs %d then %d, want consecutive", a.ip.ID, a2.ip.ID)
	}
	// A connected socket's counter: its value, then one more per segment.
	var id atomic.Uint32
	id.Store(0xfffe)
	c2 := send(stack.NetworkParams{Protocol: header.ProtoTCP, DontFragment: true, ID: &id}, "y")
	c3 := send(stack.NetworkParams{Protocol: header.ProtoTCP, DontFragment: true, ID: &id}, "z")
	if c2.ip.ID != 0xfffe || c3.ip.ID != 0xffff || id.Load() != 0x10000 {
		t.Fatalf("socket counter: IDs %#x, %#x, counter %#x; want 0xfffe, 0xffff, 0x10000", c2.ip.ID, c3.ip.ID, id.Load())
	}
	// A GSO super-segment becomes three segments: the counter skips three.
	gso := buffer.New(buffer.Headroom, header.TCPMinLen+3000)
	gso.Append(header.TCPMinLen + 3000)
	gso.Meta.GSO = buffer.GSO{Type: buffer.GSOTCPv4, MSS: 1000, HeaderLen: uint16(r.MaxHeaderLen() + header.TCPMinLen)}
	if err := r.WritePacket(gso, stack.NetworkParams{Protocol: header.ProtoTCP, DontFragment: true, ID: &id}); err != nil {
		t.Fatalf("WritePacket GSO: %v", err)
	}
	if sent := c.takeIP(); len(sent) != 1 || sent[0].ip.ID != 0 || id.Load() != 0x10003 {
		t.Fatalf("GSO packet: %d sent, counter %#x; want one with ID 0 (0x10000 as 16 bits), counter 0x10003", len(sent), id.Load())
	}
	if c.s.Stats().IP.OutRequests.Load() != 6 {
		t.Fatalf("OutRequests = %d", c.s.Stats().IP.OutRequests.Load())
	}
}

// Spec 96: fragment when needed; with DF and too big, EMSGSIZE.
func TestFragmentation(t *testing.T) {
	for _, tc := range []struct {
		mtu, size int
		want      []int // payload bytes per fragment
	}{
		{1500, 4000, []int{1480, 1480, 1040}},
		{576, 1500, []int{552, 552, 396}},
		{1500, 1480, []int{1480}},
	} {
		c := newContext(t, tc.mtu, DefaultConfig())
		c.resolvePeer()
		r, err := c.s.FindRoute(0, localAddr, peerAddr)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, tc.size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		pkt := buffer.New(buffer.Headroom, tc.size)
		copy(pkt.Append(tc.size), data)
		if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP}); err != nil {
			t.Fatalf("mtu %d: %v", tc.mtu, err)
		}
		got := c.takeIP()
		if len(got) != len(tc.want) {
			t.Fatalf("mtu %d size %d: %d fragments, want %d", tc.mtu, tc.size, len(got), len(tc.want))
		}
		var joined []byte
		off := 0
		for i, f := range got {
			mf := f.ip.Flags&header.IPv4FlagMF != 0
			if len(f.payload()) != tc.want[i] || int(f.ip.FragmentOffset) != off || mf != (i < len(got)-1) ||
				f.ip.ID != got[0].ip.ID || int(f.ip.TotalLen) > tc.mtu {
				t.Fatalf("mtu %d fragment %d: len %d off %d MF %v ID %d", tc.mtu, i, len(f.payload()), f.ip.FragmentOffset, mf, f.ip.ID)
			}
			off += len(f.payload())
			joined = append(joined, f.payload()...)
		}
		if !bytes.Equal(joined, data) {
			t.Fatalf("mtu %d: fragments do not add up to the data", tc.mtu)
		}
		st := &c.s.Stats().IP
		if len(tc.want) > 1 && (st.FragOKs.Load() != 1 || st.FragCreates.Load() != uint64(len(tc.want))) {
			t.Fatalf("FragOKs=%d FragCreates=%d", st.FragOKs.Load(), st.FragCreates.Load())
		}
		// DF forbids it.
		pkt = buffer.New(buffer.Headroom, tc.size)
		pkt.Append(tc.size)
		err = r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP, DontFragment: true})
		if len(tc.want) > 1 && !errors.Is(err, unix.EMSGSIZE) {
			t.Fatalf("mtu %d DF oversize: %v, want EMSGSIZE", tc.mtu, err)
		}
		c.takeIP()
	}
}

func TestGSOPacketNotFragmented(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig())
	c.resolvePeer()
	r, _ := c.s.FindRoute(0, localAddr, peerAddr)
	pkt := buffer.New(buffer.Headroom, 10000)
	pkt.Append(10000)
	pkt.Meta.GSO = buffer.GSO{Type: buffer.GSOTCPv4, MSS: 1448, HeaderLen: 52}
	if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoTCP, DontFragment: true}); err != nil {
		t.Fatalf("GSO packet: %v", err)
	}
	// The capture link takes it whole (a GSO link would segment it).
	if got := c.takeIP(); len(got) != 1 || got[0].ip.TotalLen != 10020 {
		t.Fatalf("GSO packet sent as %d packets", len(got))
	}
}

func TestUnfragmentedOutputDoesNotAllocate(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig())
	c.resolvePeer()
	r, _ := c.s.FindRoute(0, localAddr, peerAddr)
	c.link.SetDiscard(true)
	allocs := testing.AllocsPerRun(200, func() {
		pkt := buffer.New(buffer.Headroom, 1000)
		pkt.Append(1000)
		_ = r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP})
	})
	if allocs != 0 {
		t.Fatalf("allocations per WritePacket = %v, want 0", allocs)
	}
}

func BenchmarkWritePacket(b *testing.B) {
	c := newContext(&testing.T{}, 1500, DefaultConfig())
	c.resolvePeer()
	r, _ := c.s.FindRoute(0, localAddr, peerAddr)
	c.link.SetDiscard(true)
	b.ReportAllocs()
	for b.Loop() {
		pkt := buffer.New(buffer.Headroom, 1400)
		pkt.Append(1400)
		_ = r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP})
	}
}

// sinkTransport takes packets without looking at them.
type sinkTransport struct{ num uint8 }

func (s sinkTransport) Number() uint8 { return s.num }
func (s sinkTransport) HandlePacket(pkt *buffer.Packet, _ stack.IPInfo) stack.Verdict {
	pkt.Release()
	return stack.Delivered
}
func (sinkTransport) HandleError(stack.ICMPError, stack.IPInfo, []byte) {}

func TestReceiveDoesNotAllocate(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig(), sinkTransport{header.ProtoUDP}, sinkTransport{header.ProtoTCP})
	for _, proto := range []uint8{header.ProtoUDP, header.ProtoTCP} {
		ip := ipPacket(header.IPv4Fields{Protocol: proto, Src: peerAddr, Dst: localAddr}, udpish(string(make([]byte, 1000))))
		frame := make([]byte, header.EthernetLen+len(ip))
		header.EthernetFields{Dst: localMAC, Src: peerMAC, EtherType: header.EtherTypeIPv4}.Emit(frame)
		copy(frame[header.EthernetLen:], ip)
		allocs := testing.AllocsPerRun(200, func() {
			c.nic.DeliverLinkPacket(buffer.FromBytes(frame))
		})
		if allocs != 0 {
			t.Fatalf("protocol %d: allocations per received packet = %v, want 0", proto, allocs)
		}
	}
	if n := c.s.Stats().IP.InDelivers.Load(); n < 400 {
		t.Fatalf("InDelivers = %d", n)
	}
}

func TestBadOptionsParamProblem(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	c.resolvePeer()
	// NOP, then a record-route option claiming 9 bytes in the 3 left.
	orig := ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr, Options: []byte{1, 7, 9, 0}}, udpish("o"))
	c.inject(orig)
	got := c.takeIP()
	if len(got) != 1 {
		t.Fatalf("sent %d packets, want 1 parameter problem", len(got))
	}
	m, err := header.ParseICMPv4(got[0].payload())
	if err != nil || m.Type != header.ICMPv4ParamProblem || m.Pointer != 21 {
		t.Fatalf("ICMP %+v %v, want parameter problem pointing at byte 21", m, err)
	}
	if len(udp.packets) != 0 || c.s.Stats().IP.InHdrErrors.Load() != 1 {
		t.Fatal("bad options: delivered or not counted")
	}
}

func TestMulticastMembership(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	group := mustAddr("239.1.2.3")
	send := func(dst string) {
		c.injectTo(multicastMAC(mustAddr(dst)), ipPacket(header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: mustAddr(dst)}, udpish("m")))
	}
	send("239.1.2.3")
	send("224.0.0.1")
	if len(udp.packets) != 1 || udp.packets[0].info.Dst != allHostsGroup {
		t.Fatalf("before joining: delivered %+v, want only the all-hosts datagram", udp.packets)
	}
	if err := c.ip.JoinGroup(c.nic.ID(), group); err != nil {
		t.Fatal(err)
	}
	send("239.1.2.3")
	if len(udp.packets) != 2 || !udp.packets[1].info.Multicast {
		t.Fatal("joined group not received")
	}
	if err := c.ip.LeaveGroup(c.nic.ID(), group); err != nil {
		t.Fatal(err)
	}
	if err := c.ip.LeaveGroup(c.nic.ID(), group); !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Fatalf("second leave = %v, want EADDRNOTAVAIL", err)
	}
	if err := c.ip.JoinGroup(c.nic.ID(), localAddr); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("join of a unicast address = %v, want EINVAL", err)
	}
	send("239.1.2.3")
	if len(udp.packets) != 2 {
		t.Fatal("left group still received")
	}
	if got := c.takeIP(); len(got) != 0 {
		t.Fatalf("answered multicast with %d packets", len(got))
	}
}
