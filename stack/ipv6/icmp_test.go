package ipv6

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/internal/testlink"
	"github.com/netprov/netprov/stack/link"
)

func echoRequestFrame(src, dst netip.Addr, ethDst header.MAC, tc uint8, data []byte) []byte {
	msg := icmpMsg(src, dst, header.ICMPv6Fields{Type: header.ICMPv6EchoRequest, Ident: 0x1234, Seq: 7}, data)
	ip := ipPacket(src, dst, header.ProtoICMPv6, 64, msg)
	header.IPv6Fields{TrafficClass: tc, NextHeader: header.ProtoICMPv6, HopLimit: 64, PayloadLen: uint16(len(msg)), Src: src, Dst: dst}.Emit(ip)
	return ethFrame(ethDst, ip)
}

// Echo requests to our global, link-local and the all-nodes address are
// answered with the same identifier, sequence and data, from the address
// asked (the route's source for a group) and the request's traffic class.
func TestEchoReply(t *testing.T) {
	data := []byte("netprov ping payload")
	for _, tc := range []struct {
		name          string
		src, dst, rep netip.Addr
		ethDst        header.MAC
	}{
		{"global", peerAddr, ourAddr, ourAddr, ourMAC},
		{"link-local", peerLL, ourLL, ourLL, ourMAC},
		{"all-nodes", peerAddr, allNodes, ourAddr, header.IPv6MulticastMAC(allNodes)},
		{"all-nodes from link-local", peerLL, allNodes, ourLL, header.IPv6MulticastMAC(allNodes)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, 1500)
			env.knowPeer()
			env.link.Inject(echoRequestFrame(tc.src, tc.dst, tc.ethDst, 0xb8, data))
			frames := env.link.Take()
			if len(frames) != 1 {
				t.Fatalf("%d frames, want 1 reply", len(frames))
			}
			pf, m := parseICMP(t, frames[0])
			if m.Type != header.ICMPv6EchoReply || m.Ident != 0x1234 || m.Seq != 7 {
				t.Errorf("reply %+v", m)
			}
			if !bytes.Equal(pf.payload[8:], data) {
				t.Errorf("reply data %q", pf.payload[8:])
			}
			if pf.ip.Src != tc.rep || pf.ip.Dst != tc.src || pf.eth.Dst != peerMAC {
				t.Errorf("reply %v -> %v (eth %v), want %v -> %v", pf.ip.Src, pf.ip.Dst, pf.eth.Dst, tc.rep, tc.src)
			}
			if pf.ip.TrafficClass != 0xb8 || pf.ip.HopLimit != 64 {
				t.Errorf("traffic class %#x hop limit %d", pf.ip.TrafficClass, pf.ip.HopLimit)
			}
			st := &env.s.Stats().ICMPv6
			if st.InEchos.Load() != 1 || st.OutEchoReps.Load() != 1 || st.InMsgs.Load() != 1 || st.OutMsgs.Load() != 1 {
				t.Errorf("stats in %d/%d out %d/%d", st.InMsgs.Load(), st.InEchos.Load(), st.OutMsgs.Load(), st.OutEchoReps.Load())
			}
		})
	}
}

// Echo replies go to a registered ICMPv6 transport (ping sockets).
func TestEchoReplyDelivered(t *testing.T) {
	env2 := newTestEnvWith(t, &testTransport{num: header.ProtoICMPv6})
	msg := icmpMsg(peerAddr, ourAddr, header.ICMPv6Fields{Type: header.ICMPv6EchoReply, Ident: 9, Seq: 1}, []byte("x"))
	env2.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoICMPv6, 64, msg)))
	pkts, _ := env2.icmp6.got()
	if len(pkts) != 1 || !bytes.Equal(pkts[0].data, msg) || pkts[0].ip.Src != peerAddr || pkts[0].ip.Dst != ourAddr {
		t.Fatalf("delivered %+v", pkts)
	}
}

// newTestEnvWith is newTestEnv with an extra transport registered.
func newTestEnvWith(t *testing.T, extra *testTransport) *testEnv {
	env := newTestEnvHook(t, 1500, func(s *stack.Stack) { s.RegisterTransportProtocol(extra) })
	env.icmp6 = extra
	return env
}

// A datagram no socket wants gets a port unreachable quoting it, unless
// it went to a multicast group.
func TestPortUnreachable(t *testing.T) {
	env := newTestEnv(t, 1500)
	env.knowPeer()
	env.udp.verdict = stack.PortUnreachable
	ip := ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(20))
	env.link.Inject(ethFrame(ourMAC, ip))
	frames := env.link.Take()
	if len(frames) != 1 {
		t.Fatalf("%d frames, want 1", len(frames))
	}
	pf, m := parseICMP(t, frames[0])
	if m.Type != header.ICMPv6DstUnreachable || m.Code != header.ICMPv6CodePortUnreachable {
		t.Errorf("type %d code %d", m.Type, m.Code)
	}
	if pf.ip.Src != ourAddr || pf.ip.Dst != peerAddr || !bytes.Equal(pf.payload[8:], ip) {
		t.Errorf("error %v -> %v quoting %x", pf.ip.Src, pf.ip.Dst, pf.payload[8:])
	}
	if got := env.s.Stats().ICMPv6.OutDestUnreachs.Load(); got != 1 {
		t.Errorf("OutDestUnreachs = %d", got)
	}

	env.link.Inject(ethFrame(header.IPv6MulticastMAC(allNodes), ipPacket(peerAddr, allNodes, udpNumber, 64, udpLike(20))))
	if n := len(env.link.Take()); n != 0 {
		t.Errorf("multicast datagram answered with %d frames", n)
	}
}

// A long datagram is quoted only up to the minimum MTU.
func TestErrorQuoteFitsMinimumMTU(t *testing.T) {
	env := newTestEnv(t, 9000)
	env.knowPeer()
	env.udp.verdict = stack.PortUnreachable
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(4000))))
	frames := env.link.Take()
	if len(frames) != 1 {
		t.Fatalf("%d frames", len(frames))
	}
	if n := len(frames[0]) - header.EthernetLen; n != MinMTU {
		t.Errorf("error packet is %d bytes, want %d", n, MinMTU)
	}
}

// An unknown next header gets a parameter problem (code 1) pointing at
// the next-header field that named it.
func TestUnknownNextHeader(t *testing.T) {
	env := newTestEnv(t, 1500)
	env.knowPeer()
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, 200, 64, udpLike(4))))
	// Behind a destination options header the pointer is that header's
	// first byte.
	opts := append([]byte{200, 0, optPadN, 4, 0, 0, 0, 0}, udpLike(4)...)
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoDestOpts, 64, opts)))
	frames := env.link.Take()
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2", len(frames))
	}
	for i, want := range []uint32{6, 40} {
		_, m := parseICMP(t, frames[i])
		if m.Type != header.ICMPv6ParamProblem || m.Code != header.ICMPv6CodeUnknownNextHeader || m.Pointer != want {
			t.Errorf("frame %d: %+v, want pointer %d", i, m, want)
		}
	}
	if got := env.s.Stats().IPv6.InUnknownProtos.Load(); got != 2 {
		t.Errorf("InUnknownProtos = %d", got)
	}
}

// errorFrame builds an ICMPv6 error from the peer quoting a packet we sent
// to it.
func errorFrame(typ, code uint8, param uint32, quoted []byte) []byte {
	f := header.ICMPv6Fields{Type: typ, Code: code, MTU: param, Pointer: param}
	msg := icmpMsg(peerAddr, ourAddr, f, quoted)
	return ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, header.ProtoICMPv6, 64, msg))
}

// Received errors reach the transport of the quoted packet with the kind
// Linux's icmpv6_err_convert gives; packet too big lowers the path MTU
// (never below 1280) and later packets fragment to it.
func TestICMPErrorDelivery(t *testing.T) {
	env := newTestEnv(t, 1500)
	env.knowPeer()
	quoted := ipPacket(ourAddr, peerAddr, udpNumber, 64, udpLike(100))
	for _, tc := range []struct {
		typ, code uint8
		param     uint32
		kind      stack.ICMPErrorKind
	}{
		{header.ICMPv6DstUnreachable, header.ICMPv6CodePortUnreachable, 0, stack.ICMPPortUnreachable},
		{header.ICMPv6DstUnreachable, header.ICMPv6CodeNoRoute, 0, stack.ICMPNetUnreachable},
		{header.ICMPv6DstUnreachable, header.ICMPv6CodeAdminProhibited, 0, stack.ICMPAdminProhibited},
		{header.ICMPv6DstUnreachable, header.ICMPv6CodeAddressUnreachable, 0, stack.ICMPHostUnreachable},
		{header.ICMPv6TimeExceeded, 0, 0, stack.ICMPTimeExceeded},
		{header.ICMPv6ParamProblem, 0, 6, stack.ICMPParamProblem},
		{header.ICMPv6PacketTooBig, 0, 1400, stack.ICMPFragNeeded},
	} {
		env.link.Inject(errorFrame(tc.typ, tc.code, tc.param, quoted))
		_, errs := env.udp.got()
		if len(errs) == 0 {
			t.Fatalf("type %d code %d not delivered", tc.typ, tc.code)
		}
		e := errs[len(errs)-1]
		if e.e.Kind != tc.kind || e.e.Type != tc.typ || e.e.Code != tc.code {
			t.Errorf("type %d code %d: got %+v, want kind %d", tc.typ, tc.code, e.e, tc.kind)
		}
		if e.ip.Src != ourAddr || e.ip.Dst != peerAddr || !bytes.Equal(e.payload, quoted[header.IPv6Len:]) {
			t.Errorf("type %d: ip %+v payload %d bytes", tc.typ, e.ip, len(e.payload))
		}
		if tc.typ == header.ICMPv6PacketTooBig && e.e.MTU != 1400 {
			t.Errorf("MTU %d, want 1400", e.e.MTU)
		}
	}
	if got := env.p.PathMTU(peerAddr); got != 1400 {
		t.Errorf("PathMTU = %d, want 1400", got)
	}
	env.link.Take()
	if err := env.send(env.route(peerAddr), udpLike(1400), stack.NetworkParams{Protocol: udpNumber}); err != nil {
		t.Fatal(err)
	}
	for _, fr := range env.link.Take() {
		if n := len(fr) - header.EthernetLen; n > 1400 {
			t.Errorf("packet of %d bytes exceeds the path MTU", n)
		}
	}
	// A larger MTU does not raise it; a tiny one is clamped to 1280.
	env.link.Inject(errorFrame(header.ICMPv6PacketTooBig, 0, 1450, quoted))
	if got := env.p.PathMTU(peerAddr); got != 1400 {
		t.Errorf("PathMTU after larger PTB = %d", got)
	}
	env.link.Inject(errorFrame(header.ICMPv6PacketTooBig, 0, 600, quoted))
	if got := env.p.PathMTU(peerAddr); got != MinMTU {
		t.Errorf("PathMTU after 600 = %d, want %d", got, MinMTU)
	}
	// A quote too short for the transport's 8 bytes is dropped.
	before := env.s.Stats().ICMPv6.InErrors.Load()
	env.link.Inject(errorFrame(header.ICMPv6DstUnreachable, 4, 0, quoted[:header.IPv6Len+4]))
	if env.s.Stats().ICMPv6.InErrors.Load() != before+1 {
		t.Error("short quote not counted")
	}
}

// No error is sent about an ICMPv6 error, and errors are rate limited per
// destination after a burst of 6 (net.ipv6.icmp.ratelimit).
func TestErrorSuppression(t *testing.T) {
	env := newTestEnv(t, 1500)
	env.knowPeer()
	env.udp.verdict = stack.PortUnreachable
	quoted := ipPacket(ourAddr, peerAddr, 200, 64, udpLike(8))
	// An error quoting a packet of unknown protocol: the transport is
	// missing, but no error answers an error.
	env.link.Inject(errorFrame(header.ICMPv6DstUnreachable, 4, 0, quoted))
	if n := len(env.link.Take()); n != 0 {
		t.Errorf("error answered with %d frames", n)
	}
	for range 10 {
		env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(4))))
	}
	if n := len(env.link.Take()); n != rateLimitBurst {
		t.Errorf("%d errors sent for 10 datagrams at once, want %d", n, rateLimitBurst)
	}
	env.clk.Advance(env.p.Config().ErrorRateLimit)
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(4))))
	if n := len(env.link.Take()); n != 1 {
		t.Errorf("%d errors after one interval, want 1", n)
	}
}

// On loopback (checksums not computed, as on Linux lo) an echo request
// with an unfinished checksum is answered, through loopback again.
func TestLoopbackEcho(t *testing.T) {
	env := newTestEnv(t, 1500)
	lo := testlink.New(header.MAC{}, 65536, link.CapLoopback|link.CapRXChecksumOffload)
	if _, err := env.s.AddNIC(lo, stack.NICOptions{Name: "lo"}); err != nil {
		t.Fatal(err)
	}
	msg := icmpMsg(ourAddr, ourAddr, header.ICMPv6Fields{Type: header.ICMPv6EchoRequest, Ident: 1, Seq: 2}, []byte("hi"))
	msg[2], msg[3] = 0, 0 // left to "offload"
	lo.Inject(ipPacket(ourAddr, ourAddr, header.ProtoICMPv6, 64, msg))
	frames := lo.Take()
	if len(frames) != 1 {
		t.Fatalf("%d frames on lo, want 1 reply", len(frames))
	}
	f, err := header.ParseIPv6(frames[0])
	if err != nil {
		t.Fatal(err)
	}
	m, err := header.ParseICMPv6(frames[0][header.IPv6Len:], f.Src, f.Dst)
	if err != nil || m.Type != header.ICMPv6EchoReply || f.Src != ourAddr || f.Dst != ourAddr {
		t.Errorf("reply %+v %+v %v", f, m, err)
	}
	if n := len(env.link.Take()); n != 0 {
		t.Errorf("%d frames on eth0", n)
	}
}
