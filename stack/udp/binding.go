package udp

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// binding is what the demultiplexer and the bind-conflict check read of an
// endpoint. It is written only with both the endpoint's and the protocol's
// locks held, and read with either.
type binding struct {
	family int
	v6only bool
	// local is the bound address (rcv_saddr) and port; port 0 means not
	// hashed. AF_INET6 endpoints hold 16-byte addresses (v4-mapped for
	// IPv4), AF_INET ones 4-byte addresses.
	local netip.AddrPort
	// remote is the default peer of a connected endpoint.
	remote    netip.AddrPort
	connected bool
	// nic is the bound device (SO_BINDTODEVICE or a link-local scope id).
	nic                  int
	reuseAddr, reusePort bool
}

// localV4 is the IPv4 address the endpoint receives on (0.0.0.0 for
// any), or false if it takes no IPv4 traffic (Linux's sk_rcv_saddr view:
// an IPv6-only or IPv6-bound AF_INET6 socket never matches IPv4).
func (b *binding) localV4() (netip.Addr, bool) {
	a := b.local.Addr()
	if b.family == unix.AF_INET {
		return a, true
	}
	if b.v6only {
		return netip.Addr{}, false
	}
	if a.IsUnspecified() {
		return netip.IPv4Unspecified(), true
	}
	if a.Is4In6() {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// score is Linux's compute_score for a datagram from src to dst (4-byte
// addresses for IPv4, 16-byte for IPv6) on nic: -1 if the endpoint does
// not take it, higher for a more specific match. A matching bound address
// adds 16 because Linux looks up sockets bound to dst's address before
// wildcard ones.
func (b *binding) score(src, dst netip.AddrPort, nic int) int {
	if b.local.Port() != dst.Port() {
		return -1
	}
	var local netip.Addr
	score := 1
	if dst.Addr().Is4() {
		l, ok := b.localV4()
		if !ok {
			return -1
		}
		local = l
		if b.family == unix.AF_INET {
			score = 2
		}
	} else {
		if b.family != unix.AF_INET6 || b.local.Addr().Is4In6() {
			return -1
		}
		local = b.local.Addr().WithZone("")
	}
	if !local.IsUnspecified() {
		if local != dst.Addr().WithZone("") {
			return -1
		}
		score += 16
	}
	if b.connected {
		r := b.remote.Addr().WithZone("")
		if dst.Addr().Is4() {
			r = r.Unmap()
		}
		if r != src.Addr().WithZone("") {
			return -1
		}
		score += 4
		if b.remote.Port() != 0 {
			if b.remote.Port() != src.Port() {
				return -1
			}
			score += 4
		}
	}
	if b.nic != 0 {
		if b.nic != nic {
			return -1
		}
		score += 4
	}
	return score
}

// sameAddr is Linux's inet_rcv_saddr_equal(sk, sk2, match_wildcard=true):
// whether two bindings of one port overlap.
func sameAddr(a, b *binding) bool {
	if a.family == unix.AF_INET {
		// ipv4_rcv_saddr_equal: an IPv6-only sk2 never overlaps.
		b4, ok := b.localV4()
		if !ok || (b.family == unix.AF_INET6 && b.v6only) {
			return false
		}
		a4 := a.local.Addr()
		return a4 == b4 || a4.IsUnspecified() || b4.IsUnspecified()
	}
	return ipv6SaddrEqual(a, b)
}

// ipv6SaddrEqual is ipv6_rcv_saddr_equal for an AF_INET6 socket a.
func ipv6SaddrEqual(a, b *binding) bool {
	a6 := a.local.Addr().WithZone("")
	aMapped := a6.Is4In6()
	// An AF_INET sk2 is seen as IPV6_ADDR_MAPPED.
	bMapped := b.family == unix.AF_INET || b.local.Addr().Is4In6()
	bAny := b.family == unix.AF_INET6 && b.local.Addr().IsUnspecified()
	aAny := a6.IsUnspecified()
	if aMapped && bMapped {
		if b.family == unix.AF_INET6 && b.v6only {
			return false
		}
		a4 := a6.Unmap()
		b4 := b.local.Addr().Unmap()
		return a4 == b4 || a4.IsUnspecified() || b4.IsUnspecified()
	}
	if aAny && bAny {
		return true
	}
	if bAny && !(b.v6only && aMapped) {
		return true
	}
	if aAny && !(a.v6only && bMapped) {
		return true
	}
	if b.family == unix.AF_INET6 && a6 == b.local.Addr().WithZone("") {
		return true
	}
	return false
}

// conflicts is udp_lib_lport_inuse for two bindings of the same port.
func conflicts(a, b *binding) bool {
	if a.reuseAddr && b.reuseAddr {
		return false
	}
	if a.nic != 0 && b.nic != 0 && a.nic != b.nic {
		return false
	}
	if !sameAddr(a, b) {
		return false
	}
	// Two SO_REUSEPORT sockets (same owner: the stack serves one sandbox)
	// join one group.
	return !(a.reusePort && b.reusePort)
}
