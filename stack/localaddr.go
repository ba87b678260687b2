package stack

import (
	"net/netip"
)

// localAddrs is an immutable snapshot of the addresses assigned to the
// stack's NICs, so that "is this one of my addresses" (asked for every
// received packet and every connect/bind) is answered without taking the
// stack's lock. It is rebuilt, under Stack.localMu, whenever an address or
// a NIC is added or removed, and swapped in atomically: readers see either
// the old or the new set, never a partial one.
type localAddrs struct {
	// owners lists every assigned address with its NIC, in NIC id order
	// then address order (the first owner wins when two NICs carry the
	// same address, deterministically).
	owners []localOwner
	// byAddr indexes owners when there are too many to scan; nil otherwise.
	byAddr map[netip.Addr]*NIC
	// loopback is the first loopback NIC (by id), or nil.
	loopback *NIC
	// loopbackV4 are the IPv4 prefixes on that NIC: Linux's local route
	// "local 127.0.0.0/8 dev lo" makes the whole prefix local.
	loopbackV4 []netip.Prefix
}

type localOwner struct {
	addr netip.Addr
	nic  *NIC
}

// localScanLimit is the number of addresses up to which a linear scan of
// owners beats a map lookup (a host usually has a handful).
const localScanLimit = 8

var emptyLocalAddrs = &localAddrs{}

// lookup returns the NIC to which a is assigned, or nil.
func (l *localAddrs) lookup(a netip.Addr) *NIC {
	if l.byAddr != nil {
		return l.byAddr[a]
	}
	for i := range l.owners {
		if l.owners[i].addr == a {
			return l.owners[i].nic
		}
	}
	return nil
}

// isLocal reports whether a is assigned to a NIC or lies inside an IPv4
// loopback prefix assigned to the loopback NIC.
func (l *localAddrs) isLocal(a netip.Addr) bool {
	if l.lookup(a) != nil {
		return true
	}
	if a.Is4() && a.IsLoopback() {
		for _, p := range l.loopbackV4 {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

// localSnapshot returns the current snapshot (never nil).
func (s *Stack) localSnapshot() *localAddrs {
	if l := s.local.Load(); l != nil {
		return l
	}
	return emptyLocalAddrs
}

// rebuildLocal builds a fresh snapshot from the NICs' current addresses.
// Rebuilds are serialised by localMu and each reads the state after its
// caller's change was stored, so the last one to run reflects every change.
func (s *Stack) rebuildLocal() {
	s.localMu.Lock()
	defer s.localMu.Unlock()
	l := &localAddrs{}
	for _, n := range s.NICs() {
		addrs := *n.addrs.Load()
		if n.IsLoopback() && l.loopback == nil {
			l.loopback = n
			for _, p := range addrs {
				if p.Addr().Is4() {
					l.loopbackV4 = append(l.loopbackV4, p)
				}
			}
		}
		for _, p := range addrs {
			l.owners = append(l.owners, localOwner{addr: p.Addr(), nic: n})
		}
	}
	if len(l.owners) > localScanLimit {
		l.byAddr = make(map[netip.Addr]*NIC, len(l.owners))
		for _, o := range l.owners {
			if _, dup := l.byAddr[o.addr]; !dup {
				l.byAddr[o.addr] = o.nic
			}
		}
	}
	s.local.Store(l)
}
