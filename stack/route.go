package stack

import (
	"net/netip"
	"slices"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"golang.org/x/sys/unix"
)

// RouteEntry is one row of the routing table (`ip route`).
type RouteEntry struct {
	// Dst is the destination prefix; 0.0.0.0/0 or ::/0 is a default route.
	Dst netip.Prefix
	// Gateway is the next hop; invalid for directly connected subnets.
	Gateway netip.Addr
	// NIC is the outgoing interface.
	NIC int
	// Src is the preferred source address (`src`); optional.
	Src netip.Addr
	// MTU overrides the NIC MTU for this route (`mtu`); 0 means the NIC's.
	MTU int
	// AdvMSS overrides the MSS advertised in SYNs (`advmss`); 0 means MTU
	// minus the IP and TCP headers.
	AdvMSS int
	// Metric orders routes with the same prefix; lower wins.
	Metric int

	// connected marks the route the stack added for an address's subnet.
	connected bool
}

type routeTable struct {
	// entries are kept sorted by prefix length (longest first), then metric,
	// so the first match is the longest-prefix match.
	entries []RouteEntry
}

// AddRoute adds a route. A route with the same prefix, gateway and NIC
// replaces the old one.
func (s *Stack) AddRoute(r RouteEntry) {
	r.Dst = r.Dst.Masked()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.routes
	t.entries = slices.DeleteFunc(t.entries, func(e RouteEntry) bool {
		return e.Dst == r.Dst && e.Gateway == r.Gateway && e.NIC == r.NIC
	})
	t.entries = append(t.entries, r)
	slices.SortStableFunc(t.entries, func(a, b RouteEntry) int {
		if a.Dst.Bits() != b.Dst.Bits() {
			return b.Dst.Bits() - a.Dst.Bits()
		}
		return a.Metric - b.Metric
	})
}

// RemoveRoute deletes the routes to dst (through gw on nic when those are
// set). It fails with ESRCH, as `ip route del` does, if none matched.
func (s *Stack) RemoveRoute(dst netip.Prefix, gw netip.Addr, nic int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.routes.entries)
	s.routes.entries = slices.DeleteFunc(s.routes.entries, func(e RouteEntry) bool {
		return e.Dst == dst.Masked() && (!gw.IsValid() || e.Gateway == gw) && (nic == 0 || e.NIC == nic)
	})
	if len(s.routes.entries) == n {
		return unix.ESRCH
	}
	return nil
}

// Routes returns a copy of the routing table, longest prefix first.
func (s *Stack) Routes() []RouteEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.routes.entries)
}

// addConnectedRoute adds the route to p's subnet through n, unless the
// subnet already has one (the first address of a subnet is its primary).
func (s *Stack) addConnectedRoute(n *NIC, p netip.Prefix) {
	if n.IsLoopback() && p.Bits() == p.Addr().BitLen() {
		return
	}
	dst := p.Masked()
	s.mu.RLock()
	exists := slices.ContainsFunc(s.routes.entries, func(e RouteEntry) bool {
		return e.connected && e.NIC == n.id && e.Dst == dst
	})
	s.mu.RUnlock()
	if !exists {
		s.AddRoute(RouteEntry{Dst: dst, NIC: n.id, Src: p.Addr(), connected: true})
	}
}

func (s *Stack) removeConnectedRoute(nic int, p netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes.entries = slices.DeleteFunc(s.routes.entries, func(e RouteEntry) bool {
		return e.connected && e.NIC == nic && e.Dst == p.Masked() && e.Src == p.Addr()
	})
}

func (t *routeTable) removeNIC(nic int) {
	t.entries = slices.DeleteFunc(t.entries, func(e RouteEntry) bool { return e.NIC == nic })
}

// lookup returns the longest-prefix match for dst, restricted to nic when
// it is not 0 (a socket bound to a device).
func (t *routeTable) lookup(dst netip.Addr, nic int) (RouteEntry, bool) {
	for _, e := range t.entries {
		if (nic == 0 || e.NIC == nic) && e.Dst.Contains(dst) {
			return e, true
		}
	}
	return RouteEntry{}, false
}

// RouteFlags describe the kind of destination a route leads to.
type RouteFlags uint8

const (
	// RouteLocal: the destination is this host; packets go through loopback.
	RouteLocal RouteFlags = 1 << iota
	// RouteBroadcast: the destination is an IPv4 broadcast address.
	RouteBroadcast
	// RouteMulticast: the destination is a multicast group.
	RouteMulticast
)

// Route is the result of a route lookup: everything a transport needs to
// send to one remote address. Transports cache it per connection.
type Route struct {
	NIC        *NIC
	LocalAddr  netip.Addr
	RemoteAddr netip.Addr
	// NextHop is the gateway, or RemoteAddr on a connected subnet.
	NextHop netip.Addr
	// MTU is the path MTU: the route's MTU or the NIC's.
	MTU int
	// AdvMSS is the route's advmss, 0 when unset.
	AdvMSS int
	Flags  RouteFlags

	writer PacketWriter
}

// WritePacket sends a transport packet along the route; it owns pkt.
func (r *Route) WritePacket(pkt *buffer.Packet, p NetworkParams) error {
	return r.writer.WritePacket(r, pkt, p)
}

// IsLocal reports whether the route leads back to this host.
func (r *Route) IsLocal() bool { return r.Flags&RouteLocal != 0 }

// MaxHeaderLen is the IP header length packets on this route carry.
func (r *Route) MaxHeaderLen() int {
	if r.RemoteAddr.Is4() {
		return 20
	}
	return header.IPv6Len
}

// DefaultMSS is the MSS to advertise on this route (dst_metric_advmss):
// the route's advmss, or the MTU less IP and TCP headers, at most 65535-40.
func (r *Route) DefaultMSS() int {
	if r.AdvMSS > 0 {
		return r.AdvMSS
	}
	mss := r.MTU - r.MaxHeaderLen() - 20
	if mss > 65535-40 {
		mss = 65535 - 40
	}
	return mss
}

var (
	loopbackV4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopbackV6 = netip.IPv6Loopback()
)

// FindRoute finds how to reach remote from local (the unspecified address
// to let the route choose) out of nic (0 for any). It fails like Linux's
// ip_route_output: ENETUNREACH with no route, EADDRNOTAVAIL for a local
// address the host does not have.
func (s *Stack) FindRoute(nic int, local, remote netip.Addr) (*Route, error) {
	r := new(Route)
	if err := s.FindRouteInto(r, nic, local, remote); err != nil {
		return nil, err
	}
	return r, nil
}

// FindRouteInto is FindRoute writing the route into r, for callers that
// keep it in their own storage (a connection embeds its route: one
// allocation less per connection). r is left untouched on error.
func (s *Stack) FindRouteInto(r *Route, nic int, local, remote netip.Addr) error {
	remote = remote.Unmap()
	local = local.Unmap()
	if local.IsUnspecified() {
		local = netip.Addr{}
	}
	if remote.IsUnspecified() {
		// connect() to INADDR_ANY reaches this host (spec 17).
		if remote.Is4() {
			remote = loopbackV4
		} else {
			remote = loopbackV6
		}
	}
	if local.IsValid() && !s.IsLocalAddress(local) {
		return unix.EADDRNOTAVAIL
	}
	if s.IsLocalAddress(remote) {
		lo := s.loopbackNIC()
		if lo == nil {
			s.stats.IP.OutNoRoutes.Add(1)
			return unix.ENETUNREACH
		}
		if !local.IsValid() {
			local = remote
			if s.FindLocalNIC(remote) == nil {
				// Inside lo's 127.0.0.1/8 but not assigned: the local
				// route "local 127.0.0.0/8 dev lo src 127.0.0.1" gives
				// the assigned address as the source.
				if a, ok := lo.PrimaryAddress(remote); ok {
					local = a
				}
			}
		}
		return s.makeRoute(r, lo, RouteEntry{}, local, remote, remote, RouteLocal)
	}

	s.mu.RLock()
	e, ok := s.routes.lookup(remote, nic)
	var out *NIC
	if ok {
		out = s.nics[e.NIC]
	}
	s.mu.RUnlock()
	if !ok || out == nil {
		s.stats.IP.OutNoRoutes.Add(1)
		return unix.ENETUNREACH
	}
	if local.Is4() && local.IsLoopback() && !out.IsLoopback() {
		// __mkroute_output: a loopback source never leaves through
		// another device (connect from a socket bound to 127.0.0.1 to
		// a peer on the network is EINVAL).
		return unix.EINVAL
	}
	var flags RouteFlags
	if remote.IsMulticast() {
		flags |= RouteMulticast
	} else if out.IsBroadcast(remote) {
		flags |= RouteBroadcast
	}
	if !local.IsValid() {
		local = e.Src
	}
	if !local.IsValid() {
		var found bool
		if local, found = out.PrimaryAddress(remote); !found {
			s.stats.IP.OutNoRoutes.Add(1)
			return unix.ENETUNREACH
		}
	}
	nextHop := remote
	if e.Gateway.IsValid() && flags == 0 {
		nextHop = e.Gateway
	}
	return s.makeRoute(r, out, e, local, remote, nextHop, flags)
}

func (s *Stack) makeRoute(r *Route, n *NIC, e RouteEntry, local, remote, nextHop netip.Addr, flags RouteFlags) error {
	etherType := header.EtherTypeIPv6
	if remote.Is4() {
		etherType = header.EtherTypeIPv4
	}
	w, ok := n.NetworkEndpoint(etherType).(PacketWriter)
	if !ok {
		return unix.ENETUNREACH
	}
	mtu := n.MTU()
	if e.MTU > 0 && e.MTU < mtu {
		mtu = e.MTU
	}
	*r = Route{
		NIC: n, LocalAddr: local, RemoteAddr: remote, NextHop: nextHop,
		MTU: mtu, AdvMSS: e.AdvMSS, Flags: flags, writer: w,
	}
	return nil
}
