package ipv6

import (
	"net/netip"
	"testing"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/internal/testlink"
	"github.com/netprov/netprov/stack/neighbor"
)

// A permanent entry added through the endpoint's Neighbors (as `ip -6
// neigh add ADDR lladdr MAC nud permanent` does) is used at once: the
// packet goes to that MAC, with no neighbour solicitation before or after,
// and the entry stays PERMANENT.
func TestNeighborsPermanentEntrySendsWithoutSolicitation(t *testing.T) {
	env := newTestEnv(t, 1500)
	ep, ok := env.nic.NetworkEndpoint(header.EtherTypeIPv6).(*Endpoint)
	if !ok {
		t.Fatal("no IPv6 endpoint on the NIC")
	}
	tb := ep.Neighbors()
	if tb == nil || tb != env.p.Table(env.nic.ID()) {
		t.Fatalf("Neighbors() = %p, want the NIC's table %p", tb, env.p.Table(env.nic.ID()))
	}
	silent := netip.MustParseAddr("fd00:213::99")
	silentMAC := header.MAC{0x02, 0x00, 0x00, 0x00, 0x02, 0x99}
	tb.AddStatic(silent, silentMAC)
	r := env.route(silent)
	for i := range 2 {
		if err := env.send(r, udpLike(i), stack.NetworkParams{Protocol: udpNumber}); err != nil {
			t.Fatal(err)
		}
	}
	frames := env.link.Take()
	if len(frames) != 2 {
		t.Fatalf("%d frames, want the 2 packets and nothing else", len(frames))
	}
	for i, fr := range frames {
		pf := parseFrame(t, fr)
		if pf.eth.Dst != silentMAC || pf.ip.Dst != silent || pf.ip.NextHeader != udpNumber {
			t.Errorf("frame %d: %+v %+v, want UDP-numbered to %s at %s", i, pf.eth, pf.ip, silent, silentMAC)
		}
	}
	// Past every NUD timer: a permanent entry is never probed.
	env.clk.Advance(2 * DefaultNeighborConfig().BaseReachableTime)
	if frames := env.link.Take(); len(frames) != 0 {
		t.Errorf("%d frames after the reachable time, want none (no probe of a permanent entry)", len(frames))
	}
	if e, ok := tb.Lookup(silent); !ok || e.State != neighbor.Permanent || e.MAC != silentMAC {
		t.Errorf("entry %+v (found %v), want PERMANENT %s", e, ok, silentMAC)
	}
}

// On a link without Ethernet addressing there is no neighbour table.
func TestNeighborsNilWithoutEthernet(t *testing.T) {
	env := newTestEnv(t, 1500)
	nic, err := env.s.AddNIC(testlink.New(header.MAC{}, 1500, 0), stack.NICOptions{Name: "tun0"})
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := nic.NetworkEndpoint(header.EtherTypeIPv6).(*Endpoint)
	if !ok {
		t.Fatal("no IPv6 endpoint on the NIC")
	}
	if tb := ep.Neighbors(); tb != nil {
		t.Errorf("Neighbors() on a non-Ethernet link = %p, want nil", tb)
	}
}
