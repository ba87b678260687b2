package kernelnet

import (
	"net/netip"
	"testing"
)

// Output of ip -j (iproute2 6.x) for a veth with an IPv4 address, a route
// with mtu and advmss, and a permanent neighbour.
const (
	addrJSON   = `[{"ifindex":3,"link":"v1","ifname":"v0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"address":"92:9d:4e:4d:3f:ef","addr_info":[{"family":"inet","local":"10.213.71.2","prefixlen":24,"scope":"global"},{"family":"inet6","local":"fd00:213::2","prefixlen":64,"scope":"global"},{"family":"inet6","local":"fe80::909d:4eff:fe4d:3fef","prefixlen":64,"scope":"link"}]}]`
	routeJSON  = `[{"dst":"10.213.71.0/24","protocol":"kernel","scope":"link","prefsrc":"10.213.71.2","flags":[]},{"dst":"default","gateway":"10.213.71.1","flags":[]},{"dst":"10.213.99.0/24","gateway":"10.213.71.1","flags":[],"metric":5,"metrics":[{"mtu":1400,"advmss":1300}]},{"dst":"10.213.98.7","flags":[]},{"type":"blackhole","dst":"10.213.97.0/24","flags":[]}]`
	neighJSON  = `[{"dst":"10.213.71.9","lladdr":"02:00:00:00:00:09","state":["PERMANENT"]},{"dst":"10.213.71.10","state":["PERMANENT"]}]`
	route6JSON = `[{"dst":"fe80::/64","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"default","gateway":"fd00:213::1","metric":1024,"flags":[]}]`
)

func TestParseAddrs(t *testing.T) {
	v, err := parseAddrs([]byte(addrJSON))
	if err != nil {
		t.Fatal(err)
	}
	if v.Interface != "v0" || v.MTU != 1500 || !v.Up || v.MAC.String() != "92:9d:4e:4d:3f:ef" {
		t.Errorf("link: %+v", v)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.213.71.2/24"), netip.MustParsePrefix("fd00:213::2/64")}
	if len(v.Addrs) != len(want) || v.Addrs[0] != want[0] || v.Addrs[1] != want[1] {
		t.Errorf("addresses %v, want %v (link-local left to the stack)", v.Addrs, want)
	}
	if _, err := parseAddrs([]byte(`[]`)); err == nil {
		t.Error("no interface: want an error")
	}
}

func TestParseRoutes(t *testing.T) {
	rs, err := parseRoutes([]byte(routeJSON), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.213.71.1")},
		{Dst: netip.MustParsePrefix("10.213.99.0/24"), Gateway: netip.MustParseAddr("10.213.71.1"), MTU: 1400, AdvMSS: 1300, Metric: 5},
		{Dst: netip.MustParsePrefix("10.213.98.7/32")},
	}
	if len(rs) != len(want) {
		t.Fatalf("routes %+v, want %+v (kernel and blackhole routes skipped)", rs, want)
	}
	for i := range want {
		if rs[i] != want[i] {
			t.Errorf("route %d: %+v, want %+v", i, rs[i], want[i])
		}
	}
	rs6, err := parseRoutes([]byte(route6JSON), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs6) != 1 || rs6[0].Dst != netip.MustParsePrefix("::/0") || rs6[0].Metric != 1024 {
		t.Errorf("IPv6 routes %+v, want the default route only", rs6)
	}
	if _, err := parseRoutes([]byte(`[{"dst":"nonsense"}]`), false); err == nil {
		t.Error("bad destination: want an error")
	}
}

func TestParseNeighbors(t *testing.T) {
	nbs, err := parseNeighbors([]byte(neighJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(nbs) != 1 || nbs[0].Addr != netip.MustParseAddr("10.213.71.9") || nbs[0].MAC.String() != "02:00:00:00:00:09" {
		t.Errorf("neighbours %+v, want 10.213.71.9 only (the other has no lladdr)", nbs)
	}
}

func TestTableNameAndResolve(t *testing.T) {
	if got := TableName("eth0.100-x"); got != "netprov_attach_eth0_100_x" {
		t.Errorf("TableName = %q", got)
	}
	if got := ResolveNetns("X"); got != "/run/netns/X" {
		t.Errorf("ResolveNetns(X) = %q", got)
	}
	if got := ResolveNetns("/proc/1/ns/net"); got != "/proc/1/ns/net" {
		t.Errorf("ResolveNetns(path) = %q", got)
	}
}

// TestConnectedAndUnconnected: the kernel's own routes are the connected
// subnets; an address whose subnet has none (ptp) is unconnected.
func TestConnectedAndUnconnected(t *testing.T) {
	cs, err := parseConnected([]byte(routeJSON), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0] != netip.MustParsePrefix("10.213.71.0/24") {
		t.Errorf("connected %v, want 10.213.71.0/24", cs)
	}
	v := &View{
		Addrs:     []netip.Prefix{netip.MustParsePrefix("10.213.71.2/24"), netip.MustParsePrefix("fd00:213::2/64"), netip.MustParsePrefix("10.213.72.5/32")},
		Connected: cs,
	}
	if got := v.Unconnected(); len(got) != 1 || got[0] != netip.MustParsePrefix("fd00:213::/64") {
		t.Errorf("unconnected %v, want fd00:213::/64 only (the /32 has no subnet)", got)
	}
}
