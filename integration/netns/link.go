package netns

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Veth creates a veth pair with end aName in a and end bName in b and sets
// both ends up. b may be nil for the test process's own namespace, but tests
// should keep both ends in namespaces they created. The pair is deleted when
// the test ends (deleting a namespace also deletes its ends).
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	peerNS := strconv.Itoa(os.Getpid()) // `netns PID` means that process's namespace
	if b != nil {
		peerNS = b.name
	}
	a.IP(t, "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", peerNS)
	t.Cleanup(func() {
		// Deleting one end deletes the pair; it may already be gone with
		// its namespace, so errors are expected and ignored.
		_, _ = ipCommand("-n", a.name, "link", "del", aName)
	})
	a.LinkUp(t, aName)
	if b != nil {
		b.LinkUp(t, bName)
	} else if out, err := ipCommand("link", "set", bName, "up"); err != nil {
		t.Fatalf("netns: ip link set %s up: %v\n%s", bName, err, out)
	}
}

// AddAddr adds an address in CIDR notation ("10.213.0.1/24",
// "fd00:213::1/64") to dev. IPv6 addresses skip duplicate address detection
// ("nodad") so they are usable at once instead of after about a second.
func (ns *NS) AddAddr(t testing.TB, dev, cidr string) {
	t.Helper()
	args := []string{"addr", "add", cidr, "dev", dev}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	ns.IP(t, args...)
}

// LinkUp sets dev up.
func (ns *NS) LinkUp(t testing.TB, dev string) {
	t.Helper()
	ns.IP(t, "link", "set", dev, "up")
}

// SetMTU sets dev's MTU.
func (ns *NS) SetMTU(t testing.TB, dev string, mtu int) {
	t.Helper()
	ns.IP(t, "link", "set", dev, "mtu", strconv.Itoa(mtu))
}

// AddRoute runs `ip route add ROUTE...` in the namespace, e.g.
// AddRoute(t, "default", "via", "10.213.0.1"). Routes that mention an IPv6
// address are added with `ip -6`.
func (ns *NS) AddRoute(t testing.TB, route ...string) {
	t.Helper()
	args := []string{"route", "add"}
	for _, r := range route {
		if strings.Contains(r, ":") {
			args = []string{"-6", "route", "add"}
			break
		}
	}
	ns.IP(t, append(args, route...)...)
}

// HardwareAddr returns dev's link-layer address as the kernel reports it.
func (ns *NS) HardwareAddr(t testing.TB, dev string) net.HardwareAddr {
	t.Helper()
	out := ns.Run(t, "cat", "/sys/class/net/"+dev+"/address")
	hw, err := net.ParseMAC(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("netns %s: address of %s: %v", ns.name, dev, err)
	}
	return hw
}
