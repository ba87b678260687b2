package ipv6

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/neighbor"
)

func nsFrame(src, dst, target netip.Addr, hop uint8, withSLL bool) []byte {
	ns := header.NDPNeighborSolicit{Target: target, SourceLL: peerMAC, HasSourceLL: withSLL}
	msg := ndpMsg(src, dst, header.ICMPv6NeighborSolicit, ns.Len(), ns.Emit)
	return ethFrame(header.IPv6MulticastMAC(dst), ipPacket(src, dst, header.ProtoICMPv6, hop, msg))
}

func naFrame(dst, target netip.Addr, ethDst header.MAC, na header.NDPNeighborAdvert) []byte {
	na.Target = target
	msg := ndpMsg(peerAddr, dst, header.ICMPv6NeighborAdvert, na.Len(), na.Emit)
	return ethFrame(ethDst, ipPacket(peerAddr, dst, header.ProtoICMPv6, 255, msg))
}

// expectNA checks that frame is a neighbour advertisement for target.
func expectNA(t *testing.T, frame []byte, ethDst header.MAC, src, dst, target netip.Addr, solicited bool) {
	t.Helper()
	pf, m := parseICMP(t, frame)
	if m.Type != header.ICMPv6NeighborAdvert || m.Code != 0 {
		t.Fatalf("type %d code %d, want NA", m.Type, m.Code)
	}
	if pf.eth.Dst != ethDst || pf.eth.Src != ourMAC {
		t.Errorf("ethernet %v -> %v, want %v -> %v", pf.eth.Src, pf.eth.Dst, ourMAC, ethDst)
	}
	if pf.ip.Src != src || pf.ip.Dst != dst || pf.ip.HopLimit != 255 {
		t.Errorf("ip %v -> %v hop %d, want %v -> %v hop 255", pf.ip.Src, pf.ip.Dst, pf.ip.HopLimit, src, dst)
	}
	na, err := header.ParseNDPNeighborAdvert(pf.payload[4:])
	if err != nil {
		t.Fatal(err)
	}
	if na.Target != target || na.Solicited != solicited || !na.Override || na.Router {
		t.Errorf("NA %+v, want target %v solicited=%v override, not router", na, target, solicited)
	}
	if !na.HasTargetLL || na.TargetLL != ourMAC {
		t.Errorf("target link-layer option %v (present %v), want %v", na.TargetLL, na.HasTargetLL, ourMAC)
	}
}

// A multicast solicitation for our address gets a solicited, override
// advertisement with our MAC, and the solicitor becomes a STALE neighbour
// (RFC 4861 §7.2.3-4, neigh_event_ns).
func TestNeighborSolicitationAnswered(t *testing.T) {
	for _, target := range []netip.Addr{ourAddr, ourLL} {
		env := newTestEnv(t, 1500)
		src := peerAddr
		if target.IsLinkLocalUnicast() {
			src = peerLL
		}
		env.link.Inject(nsFrame(src, header.SolicitedNodeMulticast(target), target, 255, true))
		frames := env.link.Take()
		if len(frames) != 1 {
			t.Fatalf("target %v: %d frames written, want 1 NA", target, len(frames))
		}
		expectNA(t, frames[0], peerMAC, target, src, target, true)
		e, ok := env.p.Table(env.nic.ID()).Lookup(src)
		if !ok || e.MAC != peerMAC {
			t.Errorf("neighbour entry %+v (%v), want %v", e, ok, peerMAC)
		}
		// Sending the NA used the STALE entry, which moves to DELAY.
		if e.State != neighbor.Delay {
			t.Errorf("neighbour state %v, want DELAY", e.State)
		}
		st := env.s.Stats()
		if st.NDP.RequestsReceived.Load() != 1 || st.NDP.RepliesSent.Load() != 1 {
			t.Errorf("NDP stats requests %d replies %d", st.NDP.RequestsReceived.Load(), st.NDP.RepliesSent.Load())
		}
	}
}

// A DAD probe (source ::) for our address is answered to all nodes,
// unsolicited (RFC 4861 §7.2.4).
func TestDADProbeDefended(t *testing.T) {
	env := newTestEnv(t, 1500)
	env.link.Inject(nsFrame(netip.IPv6Unspecified(), header.SolicitedNodeMulticast(ourAddr), ourAddr, 255, false))
	frames := env.link.Take()
	if len(frames) != 1 {
		t.Fatalf("%d frames, want 1", len(frames))
	}
	expectNA(t, frames[0], header.IPv6MulticastMAC(allNodes), ourAddr, allNodes, ourAddr, false)
	if env.p.Stats.DADConflicts.Load() != 1 {
		t.Errorf("DADConflicts = %d", env.p.Stats.DADConflicts.Load())
	}
	// A DAD probe with a source link-layer option is invalid.
	env.link.Inject(nsFrame(netip.IPv6Unspecified(), header.SolicitedNodeMulticast(ourAddr), ourAddr, 255, true))
	if n := len(env.link.Take()); n != 0 {
		t.Errorf("invalid DAD probe answered with %d frames", n)
	}
}

// NDP messages that may have crossed a router (hop limit < 255) are
// dropped; solicitations for addresses not ours are not answered.
func TestNeighborSolicitationRejected(t *testing.T) {
	env := newTestEnv(t, 1500)
	env.link.Inject(nsFrame(peerAddr, header.SolicitedNodeMulticast(ourAddr), ourAddr, 254, true))
	other := netip.MustParseAddr("fd00:213::99")
	env.link.Inject(nsFrame(peerAddr, header.SolicitedNodeMulticast(other), other, 255, true))
	if n := len(env.link.Take()); n != 0 {
		t.Errorf("%d frames written, want none", n)
	}
	if got := env.s.Stats().NDP.Malformed.Load(); got != 1 {
		t.Errorf("NDP.Malformed = %d, want 1 (hop limit 254)", got)
	}
	if _, ok := env.p.Table(env.nic.ID()).Lookup(peerAddr); ok {
		t.Error("rejected solicitation created a neighbour entry")
	}
}

// route returns a route from the stack to dst.
func (env *testEnv) route(dst netip.Addr) *stack.Route {
	env.t.Helper()
	nic := 0
	if dst.IsLinkLocalUnicast() {
		nic = env.nic.ID()
	}
	r, err := env.s.FindRoute(nic, netip.Addr{}, dst)
	if err != nil {
		env.t.Fatalf("route to %v: %v", dst, err)
	}
	return r
}

func (env *testEnv) send(r *stack.Route, payload []byte, p stack.NetworkParams) error {
	pkt := buffer.New(buffer.Headroom, len(payload))
	copy(pkt.Append(len(payload)), payload)
	return r.WritePacket(pkt, p)
}

// Packets to an unresolved neighbour wait for the advertisement; the
// solicitation goes to the solicited-node group with our link-layer
// address; the advertisement releases the queue in order.
func TestResolutionQueuesPackets(t *testing.T) {
	env := newTestEnv(t, 1500)
	r := env.route(peerAddr)
	for i := range 3 {
		if err := env.send(r, udpLike(i), stack.NetworkParams{Protocol: udpNumber}); err != nil {
			t.Fatal(err)
		}
	}
	frames := env.link.Take()
	if len(frames) != 1 {
		t.Fatalf("%d frames before resolution, want 1 solicitation", len(frames))
	}
	pf, m := parseICMP(t, frames[0])
	group := header.SolicitedNodeMulticast(peerAddr)
	if m.Type != header.ICMPv6NeighborSolicit || pf.ip.Dst != group || pf.ip.HopLimit != 255 ||
		pf.eth.Dst != header.IPv6MulticastMAC(group) || pf.ip.Src != ourAddr {
		t.Fatalf("solicitation %+v %+v type %d", pf.eth, pf.ip, m.Type)
	}
	ns, err := header.ParseNDPNeighborSolicit(pf.payload[4:])
	if err != nil || ns.Target != peerAddr || !ns.HasSourceLL || ns.SourceLL != ourMAC {
		t.Fatalf("solicitation body %+v, %v", ns, err)
	}

	env.link.Inject(naFrame(ourAddr, peerAddr, ourMAC, header.NDPNeighborAdvert{
		Solicited: true, Override: true, TargetLL: peerMAC, HasTargetLL: true,
	}))
	frames = env.link.Take()
	if len(frames) != 3 {
		t.Fatalf("%d frames after the advertisement, want 3", len(frames))
	}
	for i, fr := range frames {
		pf := parseFrame(t, fr)
		if pf.eth.Dst != peerMAC || pf.ip.Dst != peerAddr || pf.ip.Src != ourAddr ||
			pf.ip.NextHeader != udpNumber || pf.ip.HopLimit != 64 || len(pf.payload) != 8+i {
			t.Errorf("frame %d: %+v %+v len %d", i, pf.eth, pf.ip, len(pf.payload))
		}
	}
	if e, _ := env.p.Table(env.nic.ID()).Lookup(peerAddr); e.State != neighbor.Reachable {
		t.Errorf("state %v, want REACHABLE", e.State)
	}
}

// Without an answer, 3 multicast solicitations one second apart, then the
// queued packets fail: the sending transport hears address unreachable
// (EHOSTUNREACH), as ndisc_error_report arranges on Linux.
func TestResolutionFailureReported(t *testing.T) {
	env := newTestEnv(t, 1500)
	r := env.route(peerAddr)
	if err := env.send(r, udpLike(4), stack.NetworkParams{Protocol: udpNumber}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		env.clk.Advance(time.Second)
	}
	frames := env.link.Take()
	if len(frames) != 3 {
		t.Errorf("%d solicitations, want 3 (mcast_solicit)", len(frames))
	}
	_, errs := env.udp.got()
	if len(errs) != 1 {
		t.Fatalf("%d errors reported, want 1", len(errs))
	}
	e := errs[0]
	if e.e.Kind != stack.ICMPHostUnreachable || e.e.Type != header.ICMPv6DstUnreachable ||
		e.e.Code != header.ICMPv6CodeAddressUnreachable || e.ip.Dst != peerAddr || e.ip.Src != ourAddr {
		t.Errorf("error %+v", e)
	}
	if got := env.s.Stats().NDP.ResolutionFailed.Load(); got != 1 {
		t.Errorf("ResolutionFailed = %d", got)
	}
}

// An unsolicited advertisement without a link-layer option does not
// create or complete an entry; with override it replaces a cached MAC.
func TestNeighborAdvertisementRules(t *testing.T) {
	env := newTestEnv(t, 1500)
	tb := env.p.Table(env.nic.ID())
	env.link.Inject(naFrame(allNodes, peerAddr, header.IPv6MulticastMAC(allNodes), header.NDPNeighborAdvert{Override: true}))
	if _, ok := tb.Lookup(peerAddr); ok {
		t.Fatal("advertisement created an entry")
	}
	// Solicited advertisements to a multicast address are invalid.
	env.link.Inject(naFrame(allNodes, peerAddr, header.IPv6MulticastMAC(allNodes),
		header.NDPNeighborAdvert{Solicited: true, TargetLL: peerMAC, HasTargetLL: true}))
	if got := env.s.Stats().NDP.Malformed.Load(); got != 1 {
		t.Errorf("Malformed = %d, want 1", got)
	}

	tb.HandleProbe(peerAddr, peerMAC) // STALE with peerMAC
	newMAC := header.MAC{0x02, 0, 0, 0, 0, 0x77}
	env.link.Inject(naFrame(ourAddr, peerAddr, ourMAC, header.NDPNeighborAdvert{TargetLL: newMAC, HasTargetLL: true}))
	if e, _ := tb.Lookup(peerAddr); e.MAC != peerMAC {
		t.Errorf("advertisement without override changed the MAC to %v", e.MAC)
	}
	env.link.Inject(naFrame(ourAddr, peerAddr, ourMAC, header.NDPNeighborAdvert{Override: true, Solicited: true, TargetLL: newMAC, HasTargetLL: true}))
	if e, _ := tb.Lookup(peerAddr); e.MAC != newMAC || e.State != neighbor.Reachable {
		t.Errorf("after override: %+v, want %v REACHABLE", e, newMAC)
	}

	// An advertisement for our own address is a conflict, not an update.
	env.link.Inject(naFrame(allNodes, ourAddr, header.IPv6MulticastMAC(allNodes), header.NDPNeighborAdvert{Override: true, TargetLL: newMAC, HasTargetLL: true}))
	if _, ok := tb.Lookup(ourAddr); ok || env.p.Stats.DADConflicts.Load() != 1 {
		t.Errorf("own address advertised: entry %v conflicts %d", ok, env.p.Stats.DADConflicts.Load())
	}
}

// Router messages are validated and counted, never acted on.
func TestRouterMessagesIgnored(t *testing.T) {
	env := newTestEnv(t, 1500)
	ra := make([]byte, 12+8)
	ra[12], ra[13] = header.NDPOptSourceLL, 1
	msg := ndpMsg(peerLL, allNodes, header.ICMPv6RouterAdvert, len(ra), func(b []byte) { copy(b, ra) })
	env.link.Inject(ethFrame(header.IPv6MulticastMAC(allNodes), ipPacket(peerLL, allNodes, header.ProtoICMPv6, 255, msg)))
	bad := ndpMsg(peerLL, allNodes, header.ICMPv6RouterAdvert, 6, func([]byte) {})
	env.link.Inject(ethFrame(header.IPv6MulticastMAC(allNodes), ipPacket(peerLL, allNodes, header.ProtoICMPv6, 255, bad)))
	if got := env.p.Stats.RouterMessagesIgnored.Load(); got != 1 {
		t.Errorf("RouterMessagesIgnored = %d, want 1", got)
	}
	if got := env.s.Stats().NDP.Malformed.Load(); got != 1 {
		t.Errorf("Malformed = %d, want 1 (short RA)", got)
	}
	if n := len(env.link.Take()); n != 0 {
		t.Errorf("%d frames written", n)
	}
}

func TestLinkLocalAddress(t *testing.T) {
	got := LinkLocalAddress(header.MAC{0x52, 0x54, 0x00, 0x12, 0x34, 0x56})
	if want := netip.MustParseAddr("fe80::5054:ff:fe12:3456"); got != want {
		t.Errorf("LinkLocalAddress = %v, want %v", got, want)
	}
	env := newTestEnv(t, 1500)
	if _, err := AddLinkLocalAddress(env.nic); err == nil {
		t.Error("second AddLinkLocalAddress succeeded")
	}
	ep := env.p.Endpoint(env.nic.ID())
	for _, g := range []netip.Addr{allNodes, header.SolicitedNodeMulticast(ourAddr), header.SolicitedNodeMulticast(ourLL)} {
		if !ep.isJoined(g) {
			t.Errorf("group %v not joined", g)
		}
	}
}
