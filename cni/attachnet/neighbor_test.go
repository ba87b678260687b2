package attachnet

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/ipv4"
	"github.com/netprov/netprov/stack/ipv6"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/neighbor"
	"github.com/netprov/netprov/stack/node"
)

// TestAddPermanentNeighbor: a kernel `nud permanent` entry lands in the
// NIC's ARP or NDP table as a static entry with its MAC; a MAC that is
// not 6 bytes is EINVAL.
func TestAddPermanentNeighbor(t *testing.T) {
	n, err := node.New(node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	a, b := pipe.New(pipe.Config{})
	defer b.Close()
	nic, err := n.AddNIC(a, "eth0", netip.MustParsePrefix("10.213.80.2/24"), netip.MustParsePrefix("fd00:213:80::2/64"))
	if err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0x80, 9}
	v4, v6 := netip.MustParseAddr("10.213.80.9"), netip.MustParseAddr("fd00:213:80::9")
	for _, addr := range []netip.Addr{v4, v6} {
		if err := AddPermanentNeighbor(nic, kernelnet.Neighbor{Addr: addr, MAC: mac}); err != nil {
			t.Fatalf("%v: %v", addr, err)
		}
	}
	tables := map[netip.Addr]*neighbor.Table{
		v4: nic.NetworkEndpoint(header.EtherTypeIPv4).(*ipv4.Endpoint).Neighbors(),
		v6: nic.NetworkEndpoint(header.EtherTypeIPv6).(*ipv6.Endpoint).Neighbors(),
	}
	for addr, table := range tables {
		e, ok := table.Lookup(addr)
		if !ok || e.MAC != header.MAC(mac) || e.State != neighbor.Permanent {
			t.Errorf("%v: entry %+v (found %v), want permanent with %v", addr, e, ok, mac)
		}
	}
	err = AddPermanentNeighbor(nic, kernelnet.Neighbor{Addr: v4, MAC: net.HardwareAddr{1, 2, 3}})
	if !errors.Is(err, unix.EINVAL) {
		t.Errorf("3-byte MAC: %v, want EINVAL", err)
	}
}
