package stack

import (
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// AddAddress assigns an address with its prefix length to the NIC and adds
// the connected route for its subnet, as Linux does for `ip addr add`.
// It fails with EEXIST if the address is already assigned.
func (n *NIC) AddAddress(p netip.Prefix) error {
	if !p.IsValid() {
		return unix.EINVAL
	}
	n.mu.Lock()
	old := *n.addrs.Load()
	for _, q := range old {
		if q.Addr() == p.Addr() {
			n.mu.Unlock()
			return unix.EEXIST
		}
	}
	next := append(slices.Clip(old), p)
	n.addrs.Store(&next)
	n.mu.Unlock()
	n.stack.rebuildLocal()

	n.stack.addConnectedRoute(n, p)
	for _, e := range n.netEPs {
		if o, ok := e.ep.(AddressObserver); ok {
			o.AddressAdded(p)
		}
	}
	return nil
}

// RemoveAddress removes an address and its connected route. It fails with
// EADDRNOTAVAIL if the address is not assigned.
func (n *NIC) RemoveAddress(a netip.Addr) error {
	n.mu.Lock()
	old := *n.addrs.Load()
	i := slices.IndexFunc(old, func(q netip.Prefix) bool { return q.Addr() == a })
	if i < 0 {
		n.mu.Unlock()
		return unix.EADDRNOTAVAIL
	}
	p := old[i]
	next := slices.Delete(slices.Clone(old), i, i+1)
	n.addrs.Store(&next)
	n.mu.Unlock()
	n.stack.rebuildLocal()
	n.stack.removeConnectedRoute(n.id, p)
	// Another address in the same subnet keeps the subnet reachable, as on
	// Linux where the route then names that address as its source.
	for _, q := range next {
		if q.Masked() == p.Masked() {
			n.stack.addConnectedRoute(n, q)
			break
		}
	}
	return nil
}

// Addresses returns the NIC's addresses in the order they were added.
func (n *NIC) Addresses() []netip.Prefix { return slices.Clone(*n.addrs.Load()) }

// HasAddress reports whether a is assigned to the NIC.
func (n *NIC) HasAddress(a netip.Addr) bool {
	for _, p := range *n.addrs.Load() {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// IsBroadcast reports whether a is the limited broadcast address or the
// directed broadcast address of one of the NIC's IPv4 subnets.
func (n *NIC) IsBroadcast(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	for _, p := range *n.addrs.Load() {
		if p.Addr().Is4() && p.Bits() < 31 && lastAddr(p) == a {
			return true
		}
	}
	return false
}

// PrimaryAddress chooses the NIC's source address for sending to dst:
// an address of dst's family whose subnet contains dst, else the first one
// of the right family and scope (link-local only for link-local dst).
func (n *NIC) PrimaryAddress(dst netip.Addr) (netip.Addr, bool) {
	addrs := *n.addrs.Load()
	var first netip.Addr
	for _, p := range addrs {
		a := p.Addr()
		if a.Is4() != dst.Is4() {
			continue
		}
		if p.Contains(dst) {
			return a, true
		}
		if !first.IsValid() && (a.IsLinkLocalUnicast() == linkScope(dst) || !dst.Is6()) {
			first = a
		}
	}
	return first, first.IsValid()
}

// linkScope reports whether an IPv6 destination is link-local in scope:
// a link-local unicast address or a multicast group of scope 1 or 2
// (RFC 6724 rule 2 then prefers a link-local source).
func linkScope(a netip.Addr) bool {
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast()
}

// lastAddr is the highest address of the prefix (the IPv4 broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << host) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// FindLocalNIC returns the NIC that owns the unicast address a, or nil.
// It reads a lock-free snapshot (localaddr.go): safe on the packet path.
func (s *Stack) FindLocalNIC(a netip.Addr) *NIC {
	return s.localSnapshot().lookup(a)
}

// IsLocalAddress reports whether a is assigned to any NIC. Loopback
// addresses (127.0.0.0/8, ::1) count only when assigned, as on Linux where
// lo carries 127.0.0.1/8: the whole /8 is local. Lock-free, like
// FindLocalNIC.
func (s *Stack) IsLocalAddress(a netip.Addr) bool {
	return s.localSnapshot().isLocal(a)
}

// loopbackNIC returns the loopback NIC (the first by id), or nil.
func (s *Stack) loopbackNIC() *NIC {
	return s.localSnapshot().loopback
}
