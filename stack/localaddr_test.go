package stack

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/netprov/netprov/stack/link"
)

// TestLocalAddressSnapshotFollowsChanges checks that the lock-free snapshot
// behind IsLocalAddress/FindLocalNIC follows address and NIC changes: any
// NIC's address is local (weak host model), the whole 127/8 of lo is, an
// unassigned loopback address is not once lo's prefix is gone, and the
// owners of a removed NIC disappear.
func TestLocalAddressSnapshotFollowsChanges(t *testing.T) {
	s, _, eth, _ := newTestStack(t)
	eth1, err := s.AddNIC(&frameLink{mtu: 1500, caps: link.CapEthernet}, NICOptions{Name: "eth1"})
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, eth, "10.213.0.1/24")
	mustAdd(t, eth1, "10.213.1.1/24")
	mustAdd(t, eth1, "fd00:213::1/64")

	a := netip.MustParseAddr
	for _, tc := range []struct {
		addr  string
		local bool
		owner *NIC
	}{
		{"10.213.0.1", true, eth},
		{"10.213.1.1", true, eth1},
		{"fd00:213::1", true, eth1},
		{"10.213.0.2", false, nil},
		{"10.213.0.255", false, nil},
		{"127.0.0.1", true, s.NICByName("lo")},
		{"127.3.2.1", true, nil}, // inside lo's 127.0.0.1/8, not assigned
		{"::1", true, s.NICByName("lo")},
		{"::2", false, nil},
	} {
		if got := s.IsLocalAddress(a(tc.addr)); got != tc.local {
			t.Errorf("IsLocalAddress(%s) = %v, want %v", tc.addr, got, tc.local)
		}
		if got := s.FindLocalNIC(a(tc.addr)); got != tc.owner {
			t.Errorf("FindLocalNIC(%s) = %v, want %v", tc.addr, got, tc.owner)
		}
	}

	if err := eth.RemoveAddress(a("10.213.0.1")); err != nil {
		t.Fatal(err)
	}
	if s.IsLocalAddress(a("10.213.0.1")) {
		t.Error("10.213.0.1 still local after RemoveAddress")
	}
	if err := s.NICByName("lo").RemoveAddress(a("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if s.IsLocalAddress(a("127.3.2.1")) || s.IsLocalAddress(a("127.0.0.1")) {
		t.Error("127/8 still local after lo's 127.0.0.1/8 was removed")
	}
	if err := s.RemoveNIC(eth1.ID()); err != nil {
		t.Fatal(err)
	}
	if s.IsLocalAddress(a("10.213.1.1")) || s.FindLocalNIC(a("fd00:213::1")) != nil {
		t.Error("addresses of a removed NIC still local")
	}
}

// TestLocalAddressSnapshotManyAddresses covers the indexed (map) form used
// when a host has more addresses than are worth scanning.
func TestLocalAddressSnapshotManyAddresses(t *testing.T) {
	s, _, eth, _ := newTestStack(t)
	const n = 3 * localScanLimit
	for i := range n {
		mustAdd(t, eth, fmt.Sprintf("10.213.2.%d/24", i+1))
	}
	if s.localSnapshot().byAddr == nil {
		t.Fatalf("%d addresses: snapshot not indexed", n)
	}
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, 213, 2, byte(i + 1)})
		if s.FindLocalNIC(a) != eth {
			t.Errorf("FindLocalNIC(%s) != eth0", a)
		}
	}
	if s.IsLocalAddress(netip.AddrFrom4([4]byte{10, 213, 2, n + 1})) {
		t.Error("unassigned address reported local")
	}
	if !s.IsLocalAddress(netip.MustParseAddr("127.9.9.9")) {
		t.Error("127/8 not local with an indexed snapshot")
	}
}

// TestLocalAddressSnapshotConcurrent races readers against address changes
// (run with -race): a reader never sees a stable address disappear.
func TestLocalAddressSnapshotConcurrent(t *testing.T) {
	s, _, eth, _ := newTestStack(t)
	stable := netip.MustParseAddr("10.213.3.1")
	mustAdd(t, eth, "10.213.3.1/24")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, 4, byte(i%50 + 1)}), 24)
			_ = eth.AddAddress(p)
			_ = eth.RemoveAddress(p.Addr())
		}
		close(stop)
	}()
	for i := 0; ; i++ {
		select {
		case <-stop:
			wg.Wait()
			return
		default:
		}
		if !s.IsLocalAddress(stable) {
			t.Fatalf("read %d: stable address not local during concurrent changes", i)
		}
	}
}
