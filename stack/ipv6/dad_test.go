package ipv6

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack/header"
)

func newDADEnv(t *testing.T) *testEnv {
	cfg := DefaultConfig()
	cfg.DADTransmits = 1
	return newTestEnvConfig(t, 1500, cfg, nil)
}

// With dad_transmits=1 an address is tentative until one probe from ::
// went unanswered for a retrans time; meanwhile it accepts nothing.
func TestDADSucceeds(t *testing.T) {
	env := newDADEnv(t)
	ep := env.p.Endpoint(env.nic.ID())
	if ready, _ := ep.AddressReady(ourAddr); ready {
		t.Fatal("address ready before DAD")
	}
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(4))))
	env.link.Inject(nsFrame(peerAddr, header.SolicitedNodeMulticast(ourAddr), ourAddr, 255, true))
	if pkts, _ := env.udp.got(); len(pkts) != 0 {
		t.Error("tentative address accepted a datagram")
	}
	if frames := env.link.Take(); len(frames) != 0 {
		t.Errorf("tentative address answered: %d frames", len(frames))
	}
	env.clk.Advance(rtrSolicitDelay)
	probes := env.link.Take()
	if len(probes) != 2 { // the global and the link-local address
		t.Fatalf("%d probes after the initial delay, want 2", len(probes))
	}
	targets := map[netip.Addr]bool{}
	for _, fr := range probes {
		pf, m := parseICMP(t, fr)
		ns, err := header.ParseNDPNeighborSolicit(pf.payload[4:])
		if err != nil || m.Type != header.ICMPv6NeighborSolicit || !pf.ip.Src.IsUnspecified() ||
			pf.ip.Dst != header.SolicitedNodeMulticast(ns.Target) || ns.HasSourceLL || pf.ip.HopLimit != 255 {
			t.Errorf("probe %+v %+v %v", pf.ip, ns, err)
		}
		targets[ns.Target] = true
	}
	if !targets[ourAddr] || !targets[ourLL] {
		t.Errorf("probed %v", targets)
	}
	env.clk.Advance(time.Second)
	if ready, failed := ep.AddressReady(ourAddr); !ready || failed {
		t.Fatalf("after DAD: ready %v failed %v", ready, failed)
	}
	env.link.Inject(ethFrame(ourMAC, ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(4))))
	if pkts, _ := env.udp.got(); len(pkts) != 1 {
		t.Error("valid address did not accept a datagram")
	}
}

// An advertisement for a tentative address, or another node's DAD probe
// for it, fails DAD; the address stays unusable.
func TestDADConflict(t *testing.T) {
	for _, name := range []string{"advertisement", "probe"} {
		t.Run(name, func(t *testing.T) {
			env := newDADEnv(t)
			ep := env.p.Endpoint(env.nic.ID())
			env.clk.Advance(rtrSolicitDelay)
			env.link.Take()
			if name == "advertisement" {
				env.link.Inject(naFrame(allNodes, ourAddr, header.IPv6MulticastMAC(allNodes),
					header.NDPNeighborAdvert{Override: true, TargetLL: peerMAC, HasTargetLL: true}))
			} else {
				env.link.Inject(nsFrame(netip.IPv6Unspecified(), header.SolicitedNodeMulticast(ourAddr), ourAddr, 255, false))
			}
			env.clk.Advance(5 * time.Second)
			if ready, failed := ep.AddressReady(ourAddr); ready || !failed {
				t.Errorf("ready %v failed %v, want failed", ready, failed)
			}
			if env.nic.HasAddress(ourAddr) {
				t.Error("failed address still assigned")
			}
			if ready, _ := ep.AddressReady(ourLL); !ready {
				t.Error("link-local address should have passed DAD")
			}
			if env.p.Stats.DADConflicts.Load() != 1 {
				t.Errorf("DADConflicts = %d", env.p.Stats.DADConflicts.Load())
			}
			if frames := env.link.Take(); len(frames) != 0 {
				t.Errorf("%d frames sent after the conflict", len(frames))
			}
		})
	}
}
