package udp

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
)

// groupJoiner is implemented by network endpoints that keep multicast
// group memberships per NIC (ipv6.Endpoint; ipv4 once it has IGMP).
type groupJoiner interface {
	JoinGroup(g netip.Addr)
	LeaveGroup(g netip.Addr)
}

// membership is one group a socket joined (ip_mc_socklist).
type membership struct {
	group netip.Addr
	nic   int
}

// maxMemberships is net.ipv4.igmp_max_memberships.
const maxMemberships = 20

// parseMembership decodes struct ip_mreq / ip_mreqn (IP_ADD_MEMBERSHIP)
// or struct ipv6_mreq (IPV6_ADD_MEMBERSHIP) and finds the NIC the way
// ip_mc_find_dev / ipv6_sock_mc_join do: the index, else the NIC owning
// the given address, else the route to the group.
func (e *endpoint) parseMembership(v6 bool, val []byte) (membership, error) {
	var m membership
	var ifaddr netip.Addr
	if v6 {
		if len(val) < 20 {
			return m, unix.EINVAL
		}
		m.group = netip.AddrFrom16([16]byte(val[0:16]))
		m.nic = int(int32(binary.NativeEndian.Uint32(val[16:20])))
	} else {
		if len(val) < 8 {
			return m, unix.EINVAL
		}
		m.group = netip.AddrFrom4([4]byte(val[0:4]))
		ifaddr = netip.AddrFrom4([4]byte(val[4:8]))
		if len(val) >= 12 {
			m.nic = int(int32(binary.NativeEndian.Uint32(val[8:12])))
		}
	}
	if !m.group.IsMulticast() {
		return m, unix.EINVAL
	}
	s := e.p.s
	switch {
	case m.nic != 0:
		if s.NIC(m.nic) == nil {
			return m, unix.ENODEV
		}
	case ifaddr.IsValid() && !ifaddr.IsUnspecified():
		nic := s.FindLocalNIC(ifaddr)
		if nic == nil {
			return m, unix.ENODEV
		}
		m.nic = nic.ID()
	default:
		r, err := s.FindRoute(0, netip.Addr{}, m.group)
		if err != nil {
			return m, unix.ENODEV
		}
		m.nic = r.NIC.ID()
	}
	return m, nil
}

// joiner returns the network endpoint of m's NIC that keeps memberships.
func (e *endpoint) joiner(m membership) (groupJoiner, bool) {
	nic := e.p.s.NIC(m.nic)
	if nic == nil {
		return nil, false
	}
	et := header.EtherTypeIPv4
	if m.group.Is6() {
		et = header.EtherTypeIPv6
	}
	j, ok := nic.NetworkEndpoint(et).(groupJoiner)
	return j, ok
}

// joinLocked is IP_ADD_MEMBERSHIP / IPV6_ADD_MEMBERSHIP.
func (e *endpoint) joinLocked(v6 bool, val []byte) error {
	m, err := e.parseMembership(v6, val)
	if err != nil {
		return err
	}
	for _, o := range e.groups {
		if o == m {
			return unix.EADDRINUSE
		}
	}
	if len(e.groups) >= maxMemberships {
		return unix.ENOBUFS
	}
	j, ok := e.joiner(m)
	if !ok {
		// The network layer does not support group membership (IPv4
		// without IGMP): say so rather than pretend.
		return unix.ENOPROTOOPT
	}
	j.JoinGroup(m.group)
	e.groups = append(e.groups, m)
	return nil
}

// leaveLocked is IP_DROP_MEMBERSHIP / IPV6_DROP_MEMBERSHIP.
func (e *endpoint) leaveLocked(v6 bool, val []byte) error {
	m, err := e.parseMembership(v6, val)
	if err != nil {
		return err
	}
	for i, o := range e.groups {
		if o == m {
			if j, ok := e.joiner(m); ok {
				j.LeaveGroup(m.group)
			}
			e.groups = append(e.groups[:i], e.groups[i+1:]...)
			return nil
		}
	}
	return unix.EADDRNOTAVAIL
}

// leaveAllLocked drops every membership (close).
func (e *endpoint) leaveAllLocked() {
	for _, m := range e.groups {
		if j, ok := e.joiner(m); ok {
			j.LeaveGroup(m.group)
		}
	}
	e.groups = nil
}
