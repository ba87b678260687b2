package ipv6

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/internal/testlink"
	"github.com/netprov/netprov/stack/link"
)

// Fragmentation at the source (RFC 8200 §4.5, ip6_fragment): every
// fragment fits the MTU and carries a multiple of 8 bytes except the last,
// with one identification; DontFragment gives EMSGSIZE; GSO packets are
// left to the link.
func TestFragmentation(t *testing.T) {
	for _, mtu := range []int{1280, 1500} {
		env := newTestEnv(t, mtu)
		env.knowPeer()
		payload := udpLike(3000 - 8)
		if err := env.send(env.route(peerAddr), payload, stack.NetworkParams{Protocol: udpNumber}); err != nil {
			t.Fatal(err)
		}
		frames := env.link.Take()
		per := (mtu - header.IPv6Len - header.IPv6FragmentLen) &^ 7
		want := (len(payload) + per - 1) / per
		if len(frames) != want {
			t.Fatalf("MTU %d: %d fragments, want %d", mtu, len(frames), want)
		}
		var joined []byte
		var id uint32
		for i, fr := range frames {
			pf := parseFrame(t, fr)
			if n := len(fr) - header.EthernetLen; n > mtu {
				t.Errorf("MTU %d: fragment %d is %d bytes", mtu, i, n)
			}
			if pf.ip.NextHeader != header.ProtoFragment {
				t.Fatalf("fragment %d next header %d", i, pf.ip.NextHeader)
			}
			fh, err := header.ParseIPv6Fragment(pf.payload)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				id = fh.ID
			}
			data := pf.payload[header.IPv6FragmentLen:]
			last := i == len(frames)-1
			if fh.ID != id || fh.NextHeader != udpNumber || int(fh.Offset) != len(joined) || fh.More == last {
				t.Errorf("fragment %d header %+v", i, fh)
			}
			if !last && len(data) != per {
				t.Errorf("fragment %d carries %d bytes, want %d", i, len(data), per)
			}
			joined = append(joined, data...)
		}
		if !bytes.Equal(joined, payload) {
			t.Errorf("MTU %d: fragments do not join to the payload", mtu)
		}
		st := &env.s.Stats().IPv6
		if st.FragOKs.Load() != 1 || st.FragCreates.Load() != uint64(want) {
			t.Errorf("FragOKs %d FragCreates %d", st.FragOKs.Load(), st.FragCreates.Load())
		}

		err := env.send(env.route(peerAddr), payload, stack.NetworkParams{Protocol: udpNumber, DontFragment: true})
		if err != errEMSGSIZE {
			t.Errorf("DontFragment: err %v, want EMSGSIZE", err)
		}
		pkt := buffer.New(buffer.Headroom, len(payload))
		copy(pkt.Append(len(payload)), payload)
		pkt.Meta.GSO.Type = buffer.GSOTCPv6
		if err := env.route(peerAddr).WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoTCP}); err != nil {
			t.Fatal(err)
		}
		if frames := env.link.Take(); len(frames) != 1 || len(frames[0]) != header.EthernetLen+header.IPv6Len+len(payload) {
			t.Errorf("GSO packet written as %d frames", len(frames))
		}
	}
}

// fragments splits an IPv6 datagram (upper-layer proto, data) from the
// peer into fragments of at most per data bytes.
func fragments(proto uint8, id uint32, data []byte, per int) [][]byte {
	var out [][]byte
	for off := 0; off < len(data); off += per {
		end := min(off+per, len(data))
		fh := make([]byte, header.IPv6FragmentLen)
		header.IPv6Fragment{NextHeader: proto, Offset: uint16(off), More: end < len(data), ID: id}.Emit(fh)
		out = append(out, ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoFragment, 64, append(fh, data[off:end]...))))
	}
	return out
}

// rawFragment builds one fragment with an arbitrary offset and length.
func rawFragment(id uint32, off int, more bool, data []byte) []byte {
	fh := make([]byte, header.IPv6FragmentLen)
	header.IPv6Fragment{NextHeader: udpNumber, Offset: uint16(off), More: more, ID: id}.Emit(fh)
	return ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoFragment, 64, append(fh, data...)))
}

func TestReassembly(t *testing.T) {
	data := udpLike(4000)
	for _, tc := range []struct {
		name  string
		order func([][]byte) [][]byte
	}{
		{"in order", func(f [][]byte) [][]byte { return f }},
		{"reverse", func(f [][]byte) [][]byte {
			r := make([][]byte, len(f))
			for i := range f {
				r[len(f)-1-i] = f[i]
			}
			return r
		}},
		{"duplicates", func(f [][]byte) [][]byte { return append([][]byte{f[1], f[1]}, f...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, 1500)
			for _, fr := range tc.order(fragments(udpNumber, 77, data, 1448)) {
				env.link.Inject(fr)
			}
			pkts, _ := env.udp.got()
			if len(pkts) != 1 || !bytes.Equal(pkts[0].data, data) {
				t.Fatalf("delivered %d datagrams", len(pkts))
			}
			if pkts[0].ip.Src != peerAddr || pkts[0].ip.Dst != ourAddr {
				t.Errorf("ip info %+v", pkts[0].ip)
			}
			st := &env.s.Stats().IPv6
			if st.ReasmOKs.Load() != 1 || st.ReasmFails.Load() != 0 {
				t.Errorf("ReasmOKs %d ReasmFails %d", st.ReasmOKs.Load(), st.ReasmFails.Load())
			}
			if q, mem := env.p.reasm.pending(); q != 0 || mem != 0 {
				t.Errorf("%d queues with %d bytes left", q, mem)
			}
		})
	}
}

// Overlapping fragments discard the whole datagram (RFC 5722); the rest
// of its fragments start a new one that never completes.
func TestReassemblyOverlapDiscards(t *testing.T) {
	env := newTestEnv(t, 1500)
	data := udpLike(2000)
	env.link.Inject(rawFragment(5, 0, true, data[:1000]))
	env.link.Inject(rawFragment(5, 992, true, data[992:1504])) // overlaps by 8
	env.link.Inject(rawFragment(5, 1504, false, data[1504:]))
	if pkts, _ := env.udp.got(); len(pkts) != 0 {
		t.Fatalf("overlapping datagram delivered")
	}
	if got := env.s.Stats().IPv6.ReasmFails.Load(); got != 1 {
		t.Errorf("ReasmFails = %d, want 1", got)
	}
	if q, _ := env.p.reasm.pending(); q != 1 {
		t.Errorf("%d queues, want 1 (the trailing fragment)", q)
	}
}

// An incomplete datagram expires after ip6frag_time (60 s); the sender
// gets a time exceeded (reassembly) when the first fragment was there.
func TestReassemblyTimeout(t *testing.T) {
	env := newTestEnv(t, 1500)
	env.knowPeer()
	frags := fragments(udpNumber, 9, udpLike(3000), 1448)
	env.link.Inject(frags[0])
	env.link.Inject(frags[2])
	env.clk.Advance(59 * time.Second)
	if q, _ := env.p.reasm.pending(); q != 1 {
		t.Fatalf("queue gone before the timeout")
	}
	env.clk.Advance(time.Second)
	if q, mem := env.p.reasm.pending(); q != 0 || mem != 0 {
		t.Fatalf("%d queues (%d bytes) after the timeout", q, mem)
	}
	st := &env.s.Stats().IPv6
	if st.ReasmTimeout.Load() != 1 || st.ReasmFails.Load() != 1 {
		t.Errorf("ReasmTimeout %d ReasmFails %d", st.ReasmTimeout.Load(), st.ReasmFails.Load())
	}
	frames := env.link.Take()
	if len(frames) != 1 {
		t.Fatalf("%d frames, want 1 time exceeded", len(frames))
	}
	pf, m := parseICMP(t, frames[0])
	if m.Type != header.ICMPv6TimeExceeded || m.Code != header.ICMPv6CodeReassemblyExceeded || pf.ip.Dst != peerAddr {
		t.Errorf("sent %+v to %v", m, pf.ip.Dst)
	}
	if q := pf.payload[8:]; !bytes.Equal(q, frags[0][header.EthernetLen:header.EthernetLen+len(q)]) {
		t.Error("time exceeded does not quote the first fragment")
	}

	// Without the first fragment nothing is sent.
	env.link.Inject(frags[1])
	env.clk.Advance(61 * time.Second)
	if n := len(env.link.Take()); n != 0 {
		t.Errorf("%d frames for a datagram without its first fragment", n)
	}
}

// Bad fragment lengths: a non-final fragment that is not a multiple of 8
// gets a parameter problem at the payload length; one reaching past 65535
// at the fragment offset.
func TestFragmentLengthErrors(t *testing.T) {
	env := newTestEnv(t, 1500)
	env.knowPeer()
	env.link.Inject(rawFragment(1, 0, true, make([]byte, 100)))
	env.link.Inject(rawFragment(2, 65528, false, make([]byte, 16)))
	frames := env.link.Take()
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2", len(frames))
	}
	for i, want := range []uint32{4, 42} {
		_, m := parseICMP(t, frames[i])
		if m.Type != header.ICMPv6ParamProblem || m.Code != 0 || m.Pointer != want {
			t.Errorf("frame %d: %+v, want pointer %d", i, m, want)
		}
	}
	// A first fragment without the whole transport header: parameter
	// problem code 3 (RFC 7112).
	env.link.Inject(func() []byte {
		fh := make([]byte, header.IPv6FragmentLen)
		header.IPv6Fragment{NextHeader: header.ProtoDestOpts, More: true, ID: 4}.Emit(fh)
		opts := []byte{header.ProtoTCP, 0, optPadN, 4, 0, 0, 0, 0}
		return ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoFragment, 64, concat(fh, opts, make([]byte, 8))))
	}())
	frames = env.link.Take()
	if len(frames) != 1 {
		t.Fatalf("%d frames for an incomplete header chain", len(frames))
	}
	if _, m := parseICMP(t, frames[0]); m.Type != header.ICMPv6ParamProblem || m.Code != icmpv6CodeHeaderIncomplete {
		t.Errorf("sent %+v", m)
	}
	// An empty fragment kills its queue; the datagram never completes.
	env.link.Inject(rawFragment(3, 0, true, make([]byte, 8)))
	env.link.Inject(rawFragment(3, 8, true, nil))
	if q, _ := env.p.reasm.pending(); q != 0 {
		t.Errorf("%d queues after an empty fragment", q)
	}
}

// Fragments beyond ip6frag_high_thresh are dropped.
func TestReassemblyMemoryLimit(t *testing.T) {
	env := newTestEnv(t, 1500)
	limit := env.p.Config().FragHighThresh
	sent := 0
	for id := uint32(0); sent < 2*limit/2048+10; id++ {
		env.link.Inject(rawFragment(id, 0, true, make([]byte, 1024)))
		sent++
	}
	_, mem := env.p.reasm.pending()
	if mem > limit {
		t.Errorf("reassembly holds %d bytes, limit %d", mem, limit)
	}
	if env.s.Stats().IPv6.ReasmFails.Load() == 0 {
		t.Error("no fragment dropped at the memory limit")
	}
}

// Hop-by-hop and destination options are skipped before the upper layer,
// also after a fragment header; unknown options act by their type's top
// bits (RFC 8200 §4.2).
func TestExtensionHeaders(t *testing.T) {
	env := newTestEnv(t, 1500)
	env.knowPeer()
	body := udpLike(16)
	hbh := []byte{header.ProtoDestOpts, 0, optPadN, 4, 0, 0, 0, 0}
	dst := []byte{udpNumber, 0, 0x1e, 2, 0xaa, 0xbb, optPad1, optPad1} // unknown type 00: skip
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoHopByHop, 64, concat(hbh, dst, body))))
	pkts, _ := env.udp.got()
	if len(pkts) != 1 || !bytes.Equal(pkts[0].data, body) {
		t.Fatalf("delivered %d datagrams", len(pkts))
	}

	// Destination options after the fragment header of an atomic fragment.
	fh := make([]byte, 8)
	header.IPv6Fragment{NextHeader: header.ProtoDestOpts, ID: 3}.Emit(fh)
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoHopByHop, 64,
		concat([]byte{header.ProtoFragment, 0, optPadN, 4, 0, 0, 0, 0}, fh, dst, body))))
	if pkts, _ := env.udp.got(); len(pkts) != 2 {
		t.Fatalf("atomic fragment with options: %d delivered", len(pkts))
	}

	// Unknown option 10xxxxxx: parameter problem code 2 at the option.
	bad := []byte{udpNumber, 0, 0x9e, 2, 0, 0, optPad1, optPad1}
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoDestOpts, 64, concat(bad, body))))
	// 01xxxxxx: silently discarded.
	bad01 := []byte{udpNumber, 0, 0x5e, 2, 0, 0, optPad1, optPad1}
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoDestOpts, 64, concat(bad01, body))))
	if pkts, _ := env.udp.got(); len(pkts) != 2 {
		t.Errorf("%d delivered, packets with bad options got through", len(pkts))
	}
	frames := env.link.Take()
	if len(frames) != 1 {
		t.Fatalf("%d frames, want 1 parameter problem", len(frames))
	}
	if _, m := parseICMP(t, frames[0]); m.Type != header.ICMPv6ParamProblem ||
		m.Code != header.ICMPv6CodeUnrecognizedOption || m.Pointer != 42 {
		t.Errorf("sent %+v", m)
	}
}

func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// Malformed packets are dropped and counted, never a panic.
func TestMalformedInputs(t *testing.T) {
	env := newTestEnv(t, 1500)
	good := ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(8))
	wrongVersion := append([]byte(nil), good...)
	wrongVersion[0] = 0x40
	longPayload := append([]byte(nil), good...)
	header.IPv6(longPayload).SetPayloadLen(1000)
	var nineOpts []byte
	for range 9 {
		nineOpts = append(nineOpts, header.ProtoDestOpts, 0, optPadN, 4, 0, 0, 0, 0)
	}
	nineOpts[len(nineOpts)-8] = udpNumber
	lateHBH := concat([]byte{header.ProtoHopByHop, 0, optPadN, 4, 0, 0, 0, 0}, []byte{udpNumber, 0, optPadN, 4, 0, 0, 0, 0}, udpLike(4))
	truncExt := []byte{udpNumber, 3, 0, 0}
	cases := []struct {
		name string
		ip   []byte
	}{
		{"truncated header", good[:30]},
		{"wrong version", wrongVersion},
		{"payload length past the end", longPayload},
		{"too many extension headers", ipPacket(peerAddr, ourAddr, header.ProtoDestOpts, 64, nineOpts)},
		{"hop-by-hop not first", ipPacket(peerAddr, ourAddr, header.ProtoDestOpts, 64, lateHBH)},
		{"truncated extension header", ipPacket(peerAddr, ourAddr, header.ProtoDestOpts, 64, truncExt)},
		{"truncated fragment header", ipPacket(peerAddr, ourAddr, header.ProtoFragment, 64, []byte{17, 0, 0})},
	}
	for _, c := range cases {
		before := env.s.Stats().Dropped.MalformedIPv6.Load()
		env.link.Inject(ethFrame(ourMAC, c.ip))
		if env.s.Stats().Dropped.MalformedIPv6.Load() != before+1 {
			t.Errorf("%s: not counted as malformed", c.name)
		}
	}
	icmpCases := []struct {
		name string
		msg  []byte
	}{
		{"short ICMPv6", []byte{128, 0, 0}},
		{"bad checksum", func() []byte {
			m := icmpMsg(peerAddr, ourAddr, header.ICMPv6Fields{Type: header.ICMPv6EchoRequest}, []byte("abc"))
			m[9] ^= 0xff
			return m
		}()},
		{"short solicitation", ndpMsg(peerAddr, ourAddr, header.ICMPv6NeighborSolicit, 10, func([]byte) {})},
		{"zero-length NDP option", ndpMsg(peerAddr, ourAddr, header.ICMPv6NeighborSolicit, 28, func(b []byte) {
			t := ourAddr.As16()
			copy(b[4:], t[:])
			b[20] = header.NDPOptSourceLL
		})},
		{"error quoting garbage", icmpMsg(peerAddr, ourAddr, header.ICMPv6Fields{Type: header.ICMPv6DstUnreachable}, []byte{1, 2, 3})},
	}
	for _, c := range icmpCases {
		st := env.s.Stats()
		before := st.ICMPv6.InErrors.Load() + st.NDP.Malformed.Load()
		env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoICMPv6, 255, c.msg)))
		if st.ICMPv6.InErrors.Load()+st.NDP.Malformed.Load() <= before {
			t.Errorf("%s: not counted", c.name)
		}
	}
	if got := env.s.Stats().ICMPv6.InCsumErrors.Load(); got != 1 {
		t.Errorf("InCsumErrors = %d", got)
	}
	// Random bytes behind a valid-looking header: must not panic.
	seed := uint32(1)
	for i := range 2000 {
		n := int(seed % 200)
		b := make([]byte, n)
		for j := range b {
			seed = seed*1664525 + 1013904223
			b[j] = byte(seed >> 24)
		}
		proto := []uint8{0, 43, 44, 58, 60, 17}[i%6]
		env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, proto, 255, b)))
		env.link.Inject(ethFrame(ourMAC, b))
	}
	if pkts, _ := env.udp.got(); len(pkts) > 2000 {
		t.Errorf("implausible deliveries: %d", len(pkts))
	}
}

// Packets to other hosts and to groups we did not join are not accepted;
// multicast sources are header errors.
func TestAddressFiltering(t *testing.T) {
	env := newTestEnv(t, 1500)
	other := netip.MustParseAddr("fd00:213::99")
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, other, udpNumber, 64, udpLike(4))))
	group := netip.MustParseAddr("ff02::1234")
	env.link.Inject(ethFrame(header.IPv6MulticastMAC(group), ipPacket(peerAddr, group, udpNumber, 64, udpLike(4))))
	env.link.Inject(ethFrame(ourMAC, ipPacket(allNodes, ourAddr, udpNumber, 64, udpLike(4))))
	if pkts, _ := env.udp.got(); len(pkts) != 0 {
		t.Fatalf("%d delivered", len(pkts))
	}
	st := &env.s.Stats().IPv6
	if st.InAddrErrors.Load() != 1 || st.InDiscards.Load() != 1 || st.InHdrErrors.Load() != 1 {
		t.Errorf("InAddrErrors %d InDiscards %d InHdrErrors %d", st.InAddrErrors.Load(), st.InDiscards.Load(), st.InHdrErrors.Load())
	}
	ep := env.p.Endpoint(env.nic.ID())
	ep.JoinGroup(group)
	env.link.Inject(ethFrame(header.IPv6MulticastMAC(group), ipPacket(peerAddr, group, udpNumber, 64, udpLike(4))))
	if pkts, _ := env.udp.got(); len(pkts) != 1 || !pkts[0].ip.Multicast {
		t.Errorf("joined group: %d delivered", len(pkts))
	}
}

// Packets between the stack's own addresses go through the loopback NIC.
func TestLoopbackRoute(t *testing.T) {
	env := newTestEnv(t, 1500)
	lo := testlink.New(header.MAC{}, 65536, link.CapLoopback)
	if _, err := env.s.AddNIC(lo, stack.NICOptions{Name: "lo"}); err == nil {
		// AddNIC after sealing is fine for NICs; protocols are sealed.
	} else {
		t.Fatal(err)
	}
	r := env.route(ourAddr)
	if !r.IsLocal() {
		t.Fatalf("route to our address is not local: %+v", r)
	}
	if err := env.send(r, udpLike(10), stack.NetworkParams{Protocol: udpNumber}); err != nil {
		t.Fatal(err)
	}
	if n := len(env.link.Take()); n != 0 {
		t.Errorf("%d frames on eth0", n)
	}
	frames := lo.Take()
	if len(frames) != 1 {
		t.Fatalf("%d frames on lo", len(frames))
	}
	f, err := header.ParseIPv6(frames[0])
	if err != nil || f.Src != ourAddr || f.Dst != ourAddr {
		t.Fatalf("looped packet %+v %v", f, err)
	}
	lo.Inject(frames[0])
	if pkts, _ := env.udp.got(); len(pkts) != 1 || pkts[0].ip.Dst != ourAddr {
		t.Errorf("looped packet not delivered: %d", len(pkts))
	}
}
