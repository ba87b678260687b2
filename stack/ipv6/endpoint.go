package ipv6

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/neighbor"
)

// Endpoint is IPv6 on one NIC: its multicast group memberships and its
// neighbour table.
type Endpoint struct {
	proto    *Protocol
	nic      *stack.NIC
	ethernet bool
	loopback bool

	// neigh resolves next hops on Ethernet links; nil otherwise.
	neigh *neighbor.Table

	groupsMu sync.Mutex
	// groupRefs counts the joins of each group; groups is its key set,
	// read without locks on every multicast packet.
	groupRefs map[netip.Addr]int
	groups    atomic.Pointer[[]netip.Addr]

	dadMu sync.Mutex
	// dad holds the addresses under duplicate address detection (or that
	// failed it); tentative is its key set, read per packet.
	dad       map[netip.Addr]*dadState
	tentative atomic.Pointer[[]netip.Addr]
	closed    bool // under dadMu
}

var (
	_ stack.NetworkEndpoint = (*Endpoint)(nil)
	_ stack.PacketWriter    = (*Endpoint)(nil)
	_ stack.AddressObserver = (*Endpoint)(nil)
)

// All-nodes multicast addresses, which every IPv6 interface joins.
var (
	allNodesLinkLocal = netip.MustParseAddr("ff02::1")
	allNodesIfLocal   = netip.MustParseAddr("ff01::1")
)

func newEndpoint(p *Protocol, nic *stack.NIC) *Endpoint {
	e := &Endpoint{
		proto:     p,
		nic:       nic,
		ethernet:  nic.Capabilities()&link.CapEthernet != 0,
		loopback:  nic.IsLoopback(),
		groupRefs: make(map[netip.Addr]int),
		dad:       make(map[netip.Addr]*dadState),
	}
	empty := []netip.Addr{}
	e.groups.Store(&empty)
	e.tentative.Store(&empty)
	e.JoinGroup(allNodesLinkLocal)
	e.JoinGroup(allNodesIfLocal)
	if e.ethernet {
		e.neigh = e.newNeighborTable()
	}
	return e
}

func (e *Endpoint) stats() *stack.Stats { return e.proto.s.Stats() }

// NIC returns the endpoint's NIC.
func (e *Endpoint) NIC() *stack.NIC { return e.nic }

// Close implements stack.NetworkEndpoint.
func (e *Endpoint) Close() {
	e.stopDAD()
	if e.neigh != nil {
		e.neigh.Close()
	}
	e.proto.reasm.closeEndpoint(e)
	e.proto.removeEndpoint(e)
}

// AddressAdded implements stack.AddressObserver: the NIC joins the
// solicited-node multicast group of each IPv6 address, so that neighbour
// solicitations for it arrive, and starts duplicate address detection when
// it is enabled.
func (e *Endpoint) AddressAdded(p netip.Prefix) {
	a := p.Addr()
	if !a.Is6() || a.Is4In6() {
		return
	}
	e.JoinGroup(header.SolicitedNodeMulticast(a))
	e.startDAD(a)
}

// JoinGroup makes the NIC accept packets sent to the multicast group g
// (IPV6_JOIN_GROUP). Joins are counted: the group stays joined until
// LeaveGroup was called as many times.
//
// MLD reports are not sent: on the point-to-point and bridged links the
// stack uses, no switch filters multicast by MLD snooping.
func (e *Endpoint) JoinGroup(g netip.Addr) {
	e.groupsMu.Lock()
	defer e.groupsMu.Unlock()
	e.groupRefs[g]++
	if e.groupRefs[g] == 1 {
		e.publishGroupsLocked()
	}
}

// LeaveGroup undoes one JoinGroup. The all-nodes groups cannot be left.
func (e *Endpoint) LeaveGroup(g netip.Addr) {
	e.groupsMu.Lock()
	defer e.groupsMu.Unlock()
	n, ok := e.groupRefs[g]
	if !ok || g == allNodesLinkLocal || g == allNodesIfLocal {
		return
	}
	if n > 1 {
		e.groupRefs[g] = n - 1
		return
	}
	delete(e.groupRefs, g)
	e.publishGroupsLocked()
}

func (e *Endpoint) publishGroupsLocked() {
	gs := make([]netip.Addr, 0, len(e.groupRefs))
	for g := range e.groupRefs {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b netip.Addr) int { return a.Compare(b) })
	e.groups.Store(&gs)
}

// Groups returns the joined multicast groups, sorted.
func (e *Endpoint) Groups() []netip.Addr { return slices.Clone(*e.groups.Load()) }

// isJoined reports whether the NIC is a member of group g.
func (e *Endpoint) isJoined(g netip.Addr) bool {
	for _, a := range *e.groups.Load() {
		if a == g {
			return true
		}
	}
	return false
}
