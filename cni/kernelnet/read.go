package kernelnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
)

// Route is one main-table route out of the interface.
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr // invalid: directly connected
	Src     netip.Addr // prefsrc; optional
	MTU     int        // 0: the interface's
	AdvMSS  int        // 0: from the MTU
	Metric  int
}

// Neighbor is one permanent neighbour entry (`nud permanent`).
type Neighbor struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// View is the kernel's configuration of one interface.
type View struct {
	Interface string
	MAC       net.HardwareAddr
	MTU       int
	Up        bool
	// NoARP: the interface does not resolve neighbours (ipvlan l3,
	// `ip link set DEV arp off`).
	NoARP bool
	// Addrs are the global-scope addresses (the stack makes its own
	// IPv6 link-local address from the same MAC, as the kernel does).
	Addrs []netip.Prefix
	// Routes are the main-table routes through the interface that the
	// kernel did not add itself for an address (protocol kernel): the
	// stack adds those when it gets the address.
	Routes    []Route
	Neighbors []Neighbor
	// Connected are the destinations of the kernel's own routes for the
	// addresses (protocol kernel): an address whose subnet is missing
	// here had its connected route deleted (the ptp CNI plugin routes its
	// subnet via the gateway instead).
	Connected []netip.Prefix
}

// Unconnected returns the subnets of v's IPv4 and global IPv6 addresses
// for which the kernel has no connected route.
func (v *View) Unconnected() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range v.Addrs {
		p := a.Masked()
		if p.Bits() == p.Addr().BitLen() {
			continue // a host address has no subnet route anyway
		}
		found := false
		for _, c := range v.Connected {
			if c == p {
				found = true
			}
		}
		if !found {
			out = append(out, p)
		}
	}
	return out
}

type ipLink struct {
	IfName   string   `json:"ifname"`
	MTU      int      `json:"mtu"`
	Address  string   `json:"address"`
	Flags    []string `json:"flags"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

type ipRoute struct {
	Dst      string           `json:"dst"`
	Gateway  string           `json:"gateway"`
	Protocol string           `json:"protocol"`
	PrefSrc  string           `json:"prefsrc"`
	Metric   int              `json:"metric"`
	Type     string           `json:"type"`
	Metrics  []map[string]int `json:"metrics"`
}

type ipNeigh struct {
	Dst    string `json:"dst"`
	LLAddr string `json:"lladdr"`
}

// Read returns the kernel's view of dev in namespace ns ("" = ours).
func Read(ctx context.Context, ns, dev string) (*View, error) {
	out, err := command(ctx, ns, "ip", "-j", "addr", "show", "dev", dev)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dev, err)
	}
	v, err := parseAddrs(out)
	if err != nil {
		return nil, fmt.Errorf("read %s addresses: %w", dev, err)
	}
	for _, fam := range []string{"-4", "-6"} {
		out, err := command(ctx, ns, "ip", "-j", fam, "route", "show", "table", "main", "dev", dev)
		if err != nil {
			return nil, fmt.Errorf("read %s routes: %w", dev, err)
		}
		rs, err := parseRoutes(out, fam == "-6")
		if err != nil {
			return nil, fmt.Errorf("read %s routes: %w", dev, err)
		}
		v.Routes = append(v.Routes, rs...)
		cs, err := parseConnected(out, fam == "-6")
		if err != nil {
			return nil, fmt.Errorf("read %s routes: %w", dev, err)
		}
		v.Connected = append(v.Connected, cs...)
	}
	out, err = command(ctx, ns, "ip", "-j", "neigh", "show", "dev", dev, "nud", "permanent")
	if err != nil {
		return nil, fmt.Errorf("read %s neighbours: %w", dev, err)
	}
	if v.Neighbors, err = parseNeighbors(out); err != nil {
		return nil, fmt.Errorf("read %s neighbours: %w", dev, err)
	}
	return v, nil
}

func parseAddrs(out []byte) (*View, error) {
	var links []ipLink
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, err
	}
	if len(links) != 1 {
		return nil, fmt.Errorf("%d interfaces in ip's answer, want 1", len(links))
	}
	l := links[0]
	v := &View{Interface: l.IfName, MTU: l.MTU}
	if l.Address != "" {
		mac, err := net.ParseMAC(l.Address)
		if err != nil {
			return nil, fmt.Errorf("link address %q: %w", l.Address, err)
		}
		v.MAC = mac
	}
	for _, f := range l.Flags {
		switch f {
		case "UP":
			v.Up = true
		case "NOARP":
			v.NoARP = true
		}
	}
	for _, a := range l.AddrInfo {
		if a.Scope != "global" || (a.Family != "inet" && a.Family != "inet6") {
			continue
		}
		addr, err := netip.ParseAddr(a.Local)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", a.Local, err)
		}
		p := netip.PrefixFrom(addr, a.PrefixLen)
		if !p.IsValid() {
			return nil, fmt.Errorf("address %s/%d: bad prefix length", a.Local, a.PrefixLen)
		}
		v.Addrs = append(v.Addrs, p)
	}
	return v, nil
}

func parseRoutes(out []byte, v6 bool) ([]Route, error) {
	var rs []ipRoute
	if err := json.Unmarshal(out, &rs); err != nil {
		return nil, err
	}
	var routes []Route
	for _, r := range rs {
		// Connected routes come with the addresses; multicast, local
		// and blackhole types are not next hops out of the interface.
		if r.Protocol == "kernel" || (r.Type != "" && r.Type != "unicast") {
			continue
		}
		var rt Route
		var err error
		switch r.Dst {
		case "default":
			rt.Dst = netip.MustParsePrefix("0.0.0.0/0")
			if v6 {
				rt.Dst = netip.MustParsePrefix("::/0")
			}
		default:
			if rt.Dst, err = ParsePrefix(r.Dst); err != nil {
				return nil, fmt.Errorf("route %q: %w", r.Dst, err)
			}
		}
		if r.Gateway != "" {
			if rt.Gateway, err = netip.ParseAddr(r.Gateway); err != nil {
				return nil, fmt.Errorf("route %s gateway %q: %w", r.Dst, r.Gateway, err)
			}
		}
		if r.PrefSrc != "" {
			if rt.Src, err = netip.ParseAddr(r.PrefSrc); err != nil {
				return nil, fmt.Errorf("route %s src %q: %w", r.Dst, r.PrefSrc, err)
			}
		}
		rt.Metric = r.Metric
		for _, m := range r.Metrics {
			if n, ok := m["mtu"]; ok {
				rt.MTU = n
			}
			if n, ok := m["advmss"]; ok {
				rt.AdvMSS = n
			}
		}
		routes = append(routes, rt)
	}
	return routes, nil
}

// parseConnected returns the destinations of the kernel's connected
// (protocol kernel, unicast) routes.
func parseConnected(out []byte, v6 bool) ([]netip.Prefix, error) {
	var rs []ipRoute
	if err := json.Unmarshal(out, &rs); err != nil {
		return nil, err
	}
	var ps []netip.Prefix
	for _, r := range rs {
		if r.Protocol != "kernel" || (r.Type != "" && r.Type != "unicast") || r.Dst == "default" {
			continue
		}
		p, err := ParsePrefix(r.Dst)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Dst, err)
		}
		if p.Addr().Is6() == v6 {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

func parseNeighbors(out []byte) ([]Neighbor, error) {
	var ns []ipNeigh
	if err := json.Unmarshal(out, &ns); err != nil {
		return nil, err
	}
	var nbs []Neighbor
	for _, n := range ns {
		a, err := netip.ParseAddr(n.Dst)
		if err != nil {
			return nil, fmt.Errorf("neighbour %q: %w", n.Dst, err)
		}
		if n.LLAddr == "" {
			continue // a permanent entry without an address (noarp)
		}
		mac, err := net.ParseMAC(n.LLAddr)
		if err != nil {
			return nil, fmt.Errorf("neighbour %s lladdr %q: %w", n.Dst, n.LLAddr, err)
		}
		nbs = append(nbs, Neighbor{Addr: a, MAC: mac})
	}
	return nbs, nil
}

// ParsePrefix parses a CIDR, or a bare address as a host route (ip(8)
// prints /32 and /128 destinations without a length).
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
