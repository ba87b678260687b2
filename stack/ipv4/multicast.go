package ipv4

import (
	"maps"
	"net/netip"

	"golang.org/x/sys/unix"
)

// JoinGroup makes the NIC receive datagrams sent to the multicast group
// (the IP layer of IP_ADD_MEMBERSHIP). Joins are counted: each needs a
// LeaveGroup. 224.0.0.1 is always received. No IGMP reports are sent.
func (p *Protocol) JoinGroup(nicID int, group netip.Addr) error {
	if !group.Is4() || !group.IsMulticast() {
		return unix.EINVAL
	}
	e := p.endpoint(nicID)
	if e == nil {
		return unix.ENODEV
	}
	e.groupsMu.Lock()
	defer e.groupsMu.Unlock()
	next := map[netip.Addr]int{}
	if old := e.groups.Load(); old != nil {
		next = maps.Clone(*old)
	}
	next[group]++
	e.groups.Store(&next)
	return nil
}

// LeaveGroup undoes one JoinGroup; it fails with EADDRNOTAVAIL, as
// IP_DROP_MEMBERSHIP does, when the group was not joined.
func (p *Protocol) LeaveGroup(nicID int, group netip.Addr) error {
	e := p.endpoint(nicID)
	if e == nil {
		return unix.ENODEV
	}
	e.groupsMu.Lock()
	defer e.groupsMu.Unlock()
	old := e.groups.Load()
	if old == nil || (*old)[group] == 0 {
		return unix.EADDRNOTAVAIL
	}
	next := maps.Clone(*old)
	if next[group]--; next[group] == 0 {
		delete(next, group)
	}
	e.groups.Store(&next)
	return nil
}

// joined reports whether the NIC receives the multicast group.
func (e *Endpoint) joined(group netip.Addr) bool {
	if group == allHostsGroup {
		return true
	}
	g := e.groups.Load()
	return g != nil && (*g)[group] > 0
}

func (p *Protocol) endpoint(nicID int) *Endpoint {
	nic := p.s.NIC(nicID)
	if nic == nil {
		return nil
	}
	e, _ := nic.NetworkEndpoint(p.EtherType()).(*Endpoint)
	return e
}
