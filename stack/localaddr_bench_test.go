package stack

import (
	"net/netip"
	"testing"

	"github.com/netprov/netprov/stack/link"
)

// BenchmarkIsLocalAddressParallel is the weak-host check ipv4/ipv6 make
// per received packet whose destination is another NIC's address (and per
// connect/bind), from all CPUs at once.
func BenchmarkIsLocalAddressParallel(b *testing.B) {
	s := New(Options{})
	for i, name := range []string{"eth0", "eth1", "eth2"} {
		n, err := s.AddNIC(&frameLink{mtu: 1500, caps: link.CapEthernet}, NICOptions{Name: name})
		if err != nil {
			b.Fatal(err)
		}
		if err := n.AddAddress(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), 1}), 24)); err != nil {
			b.Fatal(err)
		}
	}
	dst := netip.AddrFrom4([4]byte{10, 213, 2, 1})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.IsLocalAddress(dst) {
				b.Fatal("not local")
			}
		}
	})
}
