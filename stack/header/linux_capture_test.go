package header

import (
	"bytes"
	"net/netip"
	"testing"
)

// TestLinuxCaptureVerifiesAndRoundTrips parses every frame Linux sent in
// testdata/linux_veth.pcap, verifies every checksum, and checks that Emit
// of each parsed header reproduces Linux's bytes exactly (TCP options
// included, re-encoded with the Linux option writer, behaviour 36).
func TestLinuxCaptureVerifiesAndRoundTrips(t *testing.T) {
	counts := map[string]int{}
	for i, fr := range linuxFrames(t) {
		eth, err := ParseEthernet(fr)
		if err != nil {
			t.Fatalf("frame %d: ParseEthernet: %v", i, err)
		}
		var out [EthernetLen]byte
		eth.Emit(out[:])
		if !bytes.Equal(out[:], fr[:EthernetLen]) {
			t.Errorf("frame %d: Ethernet round trip % x, want % x", i, out, fr[:EthernetLen])
		}
		p := fr[EthernetLen:]
		switch eth.EtherType {
		case EtherTypeARP:
			counts["arp"]++
			checkARPRoundTrip(t, i, p)
		case EtherTypeIPv4:
			counts["ipv4"]++
			ip, err := ParseIPv4(p)
			if err != nil {
				t.Fatalf("frame %d: ParseIPv4: %v", i, err)
			}
			hdr := make([]byte, ip.HeaderLen())
			ip.Emit(hdr)
			if !bytes.Equal(hdr, p[:ip.HeaderLen()]) {
				t.Errorf("frame %d: IPv4 round trip\n got % x\nwant % x", i, hdr, p[:ip.HeaderLen()])
			}
			checkTransport(t, i, counts, ip.Protocol, IPv4(p).Payload(), ip.Src, ip.Dst)
		case EtherTypeIPv6:
			counts["ipv6"]++
			ip, err := ParseIPv6(p)
			if err != nil {
				t.Fatalf("frame %d: ParseIPv6: %v", i, err)
			}
			var hdr [IPv6Len]byte
			ip.Emit(hdr[:])
			if !bytes.Equal(hdr[:], p[:IPv6Len]) {
				t.Errorf("frame %d: IPv6 round trip\n got % x\nwant % x", i, hdr, p[:IPv6Len])
			}
			payload := IPv6(p).Payload()
			ext, err := WalkIPv6Extensions(ip.NextHeader, payload)
			if err != nil {
				t.Fatalf("frame %d: WalkIPv6Extensions: %v", i, err)
			}
			checkTransport(t, i, counts, ext.Proto, payload[ext.Offset:], ip.Src, ip.Dst)
		default:
			t.Errorf("frame %d: unexpected EtherType %#x", i, eth.EtherType)
		}
	}
	want := map[string]int{"arp": 2, "ipv4": 11, "ipv6": 19, "tcp": 12, "udp": 2, "icmp": 3, "icmpv6": 13}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s frames verified = %d, want %d (counts %v)", k, counts[k], n, counts)
		}
	}
}

func checkARPRoundTrip(t *testing.T, i int, p []byte) {
	t.Helper()
	a, err := ParseARP(p)
	if err != nil {
		t.Fatalf("frame %d: ParseARP: %v", i, err)
	}
	var out [ARPLen]byte
	a.Emit(out[:])
	if !bytes.Equal(out[:], p[:ARPLen]) {
		t.Errorf("frame %d: ARP round trip % x, want % x", i, out, p[:ARPLen])
	}
}

func checkTransport(t *testing.T, i int, counts map[string]int, proto uint8, seg []byte, src, dst netip.Addr) {
	t.Helper()
	switch proto {
	case ProtoTCP:
		counts["tcp"]++
		h, err := ParseTCP(seg)
		if err != nil {
			t.Fatalf("frame %d: ParseTCP: %v", i, err)
		}
		if !TCPChecksumValid(seg, src, dst) {
			t.Errorf("frame %d: TCP checksum does not verify", i)
		}
		if got := TCPChecksum(seg, src, dst); got != h.Checksum {
			t.Errorf("frame %d: TCPChecksum = %#04x, want Linux's %#04x", i, got, h.Checksum)
		}
		out := make([]byte, h.DataOffset)
		h.Emit(out)
		opts := ParseTCPOptions(TCP(seg).Options())
		var n int
		if h.Flags&TCPFlagSyn != 0 {
			n = EncodeSYNOptions(out[TCPMinLen:], opts)
		} else {
			n = EncodeOptions(out[TCPMinLen:], opts)
		}
		if n != int(h.DataOffset)-TCPMinLen || TCPOptionsLen(opts, h.Flags&TCPFlagSyn != 0) != n {
			t.Errorf("frame %d: options encode to %d bytes, Linux sent %d", i, n, int(h.DataOffset)-TCPMinLen)
		}
		if !bytes.Equal(out, seg[:h.DataOffset]) {
			t.Errorf("frame %d: TCP header round trip\n got % x\nwant % x", i, out, seg[:h.DataOffset])
		}
	case ProtoUDP:
		counts["udp"]++
		h, err := ParseUDP(seg)
		if err != nil {
			t.Fatalf("frame %d: ParseUDP: %v", i, err)
		}
		if !UDPChecksumValid(seg, src, dst) {
			t.Errorf("frame %d: UDP checksum does not verify", i)
		}
		if got := UDPChecksum(seg[:h.Length], src, dst); got != h.Checksum {
			t.Errorf("frame %d: UDPChecksum = %#04x, want Linux's %#04x", i, got, h.Checksum)
		}
		var out [UDPLen]byte
		h.Emit(out[:])
		if !bytes.Equal(out[:], seg[:UDPLen]) {
			t.Errorf("frame %d: UDP round trip % x, want % x", i, out, seg[:UDPLen])
		}
	case ProtoICMP:
		counts["icmp"]++
		h, err := ParseICMPv4(seg)
		if err != nil {
			t.Fatalf("frame %d: ParseICMPv4: %v", i, err)
		}
		out := append([]byte(nil), seg...)
		clear(out[:ICMPv4MinLen])
		h.Emit(out, out[ICMPv4MinLen:])
		if !bytes.Equal(out, seg) {
			t.Errorf("frame %d: ICMPv4 round trip\n got % x\nwant % x", i, out[:8], seg[:8])
		}
	case ProtoICMPv6:
		counts["icmpv6"]++
		h, err := ParseICMPv6(seg, src, dst)
		if err != nil {
			t.Fatalf("frame %d: ParseICMPv6: %v", i, err)
		}
		out := append([]byte(nil), seg...)
		clear(out[:ICMPv6MinLen])
		h.Emit(out, out[ICMPv6MinLen:], src, dst)
		if !bytes.Equal(out, seg) {
			t.Errorf("frame %d: ICMPv6 round trip\n got % x\nwant % x", i, out[:8], seg[:8])
		}
	default:
		t.Errorf("frame %d: unexpected protocol %d", i, proto)
	}
}

// TestLinuxSYNAccessors checks every accessor against tcpdump's decoding
// of frame 15, a SYN Linux sent with all options on (behaviour 36).
func TestLinuxSYNAccessors(t *testing.T) {
	fr := linuxFrames(t)[15]
	e := Ethernet(fr)
	if e.Src() != (MAC{0x3a, 0xc1, 0x21, 0x4f, 0xab, 0xd3}) || e.Dst() != (MAC{0x2e, 0x37, 0xd8, 0x1f, 0xd0, 0xa7}) || e.EtherType() != EtherTypeIPv4 {
		t.Errorf("ethernet: %v > %v type %#x", e.Src(), e.Dst(), e.EtherType())
	}
	ip := IPv4(e.Payload())
	if ip.HeaderLen() != 20 || ip.TOS() != 0 || ip.TotalLen() != 60 || ip.ID() != 31455 ||
		ip.Flags() != IPv4FlagDF || ip.FragmentOffset() != 0 || ip.TTL() != 64 || ip.Protocol() != ProtoTCP ||
		ip.Src() != netip.MustParseAddr("10.213.0.1") || ip.Dst() != netip.MustParseAddr("10.213.0.2") ||
		len(ip.Options()) != 0 || len(ip.Payload()) != 40 {
		t.Errorf("ipv4 accessors: hl %d tos %d len %d id %d flags %d off %d ttl %d proto %d %v > %v",
			ip.HeaderLen(), ip.TOS(), ip.TotalLen(), ip.ID(), ip.Flags(), ip.FragmentOffset(), ip.TTL(), ip.Protocol(), ip.Src(), ip.Dst())
	}
	if c := ip.ComputeChecksum(); c != ip.Checksum() {
		t.Errorf("ComputeChecksum = %#04x, header has %#04x", c, ip.Checksum())
	}
	tcp := TCP(ip.Payload())
	if tcp.SrcPort() != 47264 || tcp.DstPort() != 5001 || tcp.Seq() != 121235177 || tcp.Ack() != 0 ||
		tcp.DataOffset() != 40 || tcp.Flags() != TCPFlagSyn || tcp.Window() != 64240 ||
		tcp.Checksum() != 0x523e || tcp.Urgent() != 0 || len(tcp.Payload()) != 0 {
		t.Errorf("tcp accessors: %d > %d seq %d ack %d doff %d flags %v win %d sum %#x urg %d",
			tcp.SrcPort(), tcp.DstPort(), tcp.Seq(), tcp.Ack(), tcp.DataOffset(), tcp.Flags(), tcp.Window(), tcp.Checksum(), tcp.Urgent())
	}
	o := ParseTCPOptions(tcp.Options())
	want := TCPOptions{MSS: 1460, HasMSS: true, WindowScale: 10, SACKPermitted: true, HasTimestamps: true, TSVal: 791149485, TSEcr: 0}
	if o != want {
		t.Errorf("options = %+v, want %+v", o, want)
	}
	if s := tcp.Flags().String(); s != "[S]" {
		t.Errorf("flags string %q, want [S]", s)
	}
}

// TestLinuxSYNACKAndDataSegments checks the SYN-ACK (frame 16) and the
// data segment (frame 18) against tcpdump's decoding.
func TestLinuxSYNACKAndDataSegments(t *testing.T) {
	frames := linuxFrames(t)
	synack := TCP(IPv4(frames[16][EthernetLen:]).Payload())
	if synack.Flags() != TCPFlagSyn|TCPFlagAck || synack.Flags().String() != "[S.]" ||
		synack.Seq() != 3643193395 || synack.Ack() != 121235178 || synack.Window() != 65160 {
		t.Errorf("SYN-ACK: flags %v seq %d ack %d win %d", synack.Flags(), synack.Seq(), synack.Ack(), synack.Window())
	}
	o := ParseTCPOptions(synack.Options())
	if !o.HasTimestamps || o.TSVal != 649474205 || o.TSEcr != 791149485 || o.WindowScale != 10 || o.MSS != 1460 || !o.SACKPermitted {
		t.Errorf("SYN-ACK options %+v", o)
	}
	ipd := IPv4(frames[18][EthernetLen:])
	data := TCP(ipd.Payload())
	if data.Flags().String() != "[P.]" || string(data.Payload()) != "hello" || data.Window() != 63 || data.DataOffset() != 32 {
		t.Errorf("data segment: flags %v payload %q win %d doff %d", data.Flags(), data.Payload(), data.Window(), data.DataOffset())
	}
	o = ParseTCPOptions(data.Options())
	if !o.HasTimestamps || o.TSVal != 791149485 || o.TSEcr != 649474205 || o.HasMSS || o.WindowScale != -1 || o.SACKPermitted {
		t.Errorf("data options %+v", o)
	}
}

// TestLinuxIPv6SYN checks the IPv6 fixed header accessors and the IPv6
// pseudo-header checksum on frame 21.
func TestLinuxIPv6SYN(t *testing.T) {
	ip := IPv6(linuxFrames(t)[21][EthernetLen:])
	if ip.TrafficClass() != 0 || ip.FlowLabel() != 0x07015 || ip.PayloadLen() != 40 || ip.NextHeader() != ProtoTCP ||
		ip.HopLimit() != 64 || ip.Src() != netip.MustParseAddr("fd00:213::1") || ip.Dst() != netip.MustParseAddr("fd00:213::2") {
		t.Errorf("ipv6: tc %d fl %#x plen %d nh %d hl %d %v > %v", ip.TrafficClass(), ip.FlowLabel(), ip.PayloadLen(), ip.NextHeader(), ip.HopLimit(), ip.Src(), ip.Dst())
	}
	tcp := TCP(ip.Payload())
	if tcp.Checksum() != 0xf7bc || TCPChecksum(tcp, ip.Src(), ip.Dst()) != 0xf7bc {
		t.Errorf("IPv6 TCP checksum: field %#x computed %#x, want 0xf7bc", tcp.Checksum(), TCPChecksum(tcp, ip.Src(), ip.Dst()))
	}
	if o := ParseTCPOptions(tcp.Options()); o.MSS != 1440 || o.TSVal != 174301208 {
		t.Errorf("IPv6 SYN options %+v", o)
	}
}

// TestLinuxARP checks the ARP request and reply (frames 4, 5).
func TestLinuxARP(t *testing.T) {
	frames := linuxFrames(t)
	req, err := ParseARP(frames[4][EthernetLen:])
	if err != nil {
		t.Fatal(err)
	}
	a := MAC{0x3a, 0xc1, 0x21, 0x4f, 0xab, 0xd3}
	b := MAC{0x2e, 0x37, 0xd8, 0x1f, 0xd0, 0xa7}
	want := ARPFields{Op: ARPRequest, SenderMAC: a, SenderIP: netip.MustParseAddr("10.213.0.1"), TargetIP: netip.MustParseAddr("10.213.0.2")}
	if req != want {
		t.Errorf("request = %+v, want %+v", req, want)
	}
	rep, err := ParseARP(frames[5][EthernetLen:])
	if err != nil {
		t.Fatal(err)
	}
	want = ARPFields{Op: ARPReply, SenderMAC: b, SenderIP: netip.MustParseAddr("10.213.0.2"), TargetMAC: a, TargetIP: netip.MustParseAddr("10.213.0.1")}
	if rep != want {
		t.Errorf("reply = %+v, want %+v", rep, want)
	}
}

// TestLinuxICMP checks the echo request/reply (frames 6, 7) and the port
// unreachable with its quoted datagram (frame 26).
func TestLinuxICMP(t *testing.T) {
	frames := linuxFrames(t)
	for i, typ := range map[int]uint8{6: ICMPv4Echo, 7: ICMPv4EchoReply} {
		ip := IPv4(frames[i][EthernetLen:])
		f, err := ParseICMPv4(ip.Payload())
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Type != typ || f.Code != 0 || f.Ident != 12123 || f.Seq != 1 || len(ICMPv4(ip.Payload()).Payload()) != 56 {
			t.Errorf("frame %d: %+v", i, f)
		}
	}
	ip := IPv4(frames[26][EthernetLen:])
	if ip.TOS() != 0xc0 || ip.Flags() != 0 {
		t.Errorf("port unreachable IP tos %#x flags %d, want 0xc0, 0", ip.TOS(), ip.Flags())
	}
	f, err := ParseICMPv4(ip.Payload())
	if err != nil || f.Type != ICMPv4DstUnreachable || f.Code != ICMPv4CodePortUnreachable {
		t.Fatalf("port unreachable: %+v %v", f, err)
	}
	inner, err := ParseIPv4(ICMPv4(ip.Payload()).Payload())
	if err != nil || inner.ID != 5354 || inner.Protocol != ProtoUDP {
		t.Fatalf("quoted datagram: %+v %v", inner, err)
	}
	u := UDP(IPv4(ICMPv4(ip.Payload()).Payload()).Payload())
	if u.SrcPort() != 45170 || u.DstPort() != 5003 || string(u.Payload()) != "udp!" {
		t.Errorf("quoted UDP %d > %d %q", u.SrcPort(), u.DstPort(), u.Payload())
	}
}

// TestLinuxNDP checks the neighbor solicitation and advertisement Linux
// exchanged (frames 8, 9), and that re-emitting them with our NDP writer
// and ICMPv6 checksum reproduces Linux's messages byte for byte.
func TestLinuxNDP(t *testing.T) {
	frames := linuxFrames(t)
	a := MAC{0x3a, 0xc1, 0x21, 0x4f, 0xab, 0xd3}
	b := MAC{0x2e, 0x37, 0xd8, 0x1f, 0xd0, 0xa7}
	target := netip.MustParseAddr("fd00:213::2")

	ip := IPv6(frames[8][EthernetLen:])
	if ip.Dst() != SolicitedNodeMulticast(target) || Ethernet(frames[8]).Dst() != IPv6MulticastMAC(ip.Dst()) || ip.HopLimit() != 255 {
		t.Errorf("NS to %v (%v), want %v (%v)", ip.Dst(), Ethernet(frames[8]).Dst(), SolicitedNodeMulticast(target), IPv6MulticastMAC(ip.Dst()))
	}
	msg := ICMPv6(ip.Payload())
	if _, err := ParseICMPv6(msg, ip.Src(), ip.Dst()); err != nil || msg.Type() != ICMPv6NeighborSolicit {
		t.Fatalf("NS: type %d %v", msg.Type(), err)
	}
	ns, err := ParseNDPNeighborSolicit(msg.Body())
	if err != nil {
		t.Fatal(err)
	}
	if want := (NDPNeighborSolicit{Target: target, SourceLL: a, HasSourceLL: true}); ns != want {
		t.Errorf("NS = %+v, want %+v", ns, want)
	}
	out := make([]byte, 4+ns.Len())
	ns.Emit(out[4:])
	EmitICMPv6Header(out, ICMPv6NeighborSolicit, 0, ip.Src(), ip.Dst())
	if !bytes.Equal(out, msg) {
		t.Errorf("NS emit\n got % x\nwant % x", out, []byte(msg))
	}

	ip = IPv6(frames[9][EthernetLen:])
	msg = ICMPv6(ip.Payload())
	na, err := ParseNDPNeighborAdvert(msg.Body())
	if err != nil {
		t.Fatal(err)
	}
	if want := (NDPNeighborAdvert{Solicited: true, Override: true, Target: target, TargetLL: b, HasTargetLL: true}); na != want {
		t.Errorf("NA = %+v, want %+v", na, want)
	}
	out = make([]byte, 4+na.Len())
	na.Emit(out[4:])
	EmitICMPv6Header(out, ICMPv6NeighborAdvert, 0, ip.Src(), ip.Dst())
	if !bytes.Equal(out, msg) {
		t.Errorf("NA emit\n got % x\nwant % x", out, []byte(msg))
	}
}

// TestLinuxMLDHopByHop walks the hop-by-hop header (router alert) of
// Linux's MLDv2 report (frame 1) to the ICMPv6 message behind it.
func TestLinuxMLDHopByHop(t *testing.T) {
	ip := IPv6(linuxFrames(t)[1][EthernetLen:])
	if ip.NextHeader() != ProtoHopByHop {
		t.Fatalf("next header %d, want hop-by-hop", ip.NextHeader())
	}
	info, err := WalkIPv6Extensions(ip.NextHeader(), ip.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if info.Proto != ProtoICMPv6 || info.Offset != 8 || info.HasFragment {
		t.Errorf("walk = %+v, want ICMPv6 at 8", info)
	}
	msg := ip.Payload()[info.Offset:]
	f, err := ParseICMPv6(msg, ip.Src(), ip.Dst())
	if err != nil || f.Type != 143 {
		t.Errorf("MLDv2 report: %+v %v", f, err)
	}
}
