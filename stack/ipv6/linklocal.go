package ipv6

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
)

// LinkLocalAddress returns the link-local address fe80::/64 with the
// modified EUI-64 interface identifier of mac (RFC 4291 appendix A): the
// address Linux gives an Ethernet device with addr_gen_mode 0 (eui64).
func LinkLocalAddress(mac header.MAC) netip.Addr {
	return netip.AddrFrom16([16]byte{
		0: 0xfe, 1: 0x80,
		8: mac[0] ^ 0x02, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe,
		13: mac[3], 14: mac[4], 15: mac[5],
	})
}

// AddLinkLocalAddress assigns nic its EUI-64 link-local address as a /64,
// which also adds the fe80::/64 route on nic and joins the address's
// solicited-node group. Linux does this when an Ethernet device comes up
// (addrconf_dev_config); the stack leaves it to the code that sets up a
// NIC, which calls this after AddNIC. It fails with EINVAL for links
// without link-layer addresses (loopback) and EEXIST if the address is
// already assigned.
func AddLinkLocalAddress(nic *stack.NIC) (netip.Prefix, error) {
	if nic.IsLoopback() || nic.LinkAddress() == (header.MAC{}) {
		return netip.Prefix{}, unix.EINVAL
	}
	p := netip.PrefixFrom(LinkLocalAddress(nic.LinkAddress()), 64)
	if err := nic.AddAddress(p); err != nil {
		return netip.Prefix{}, err
	}
	return p, nil
}
