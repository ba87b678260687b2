package kernelpeer

import (
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/afpacket"
	"github.com/netprov/netprov/stack/link/tap"
	"github.com/netprov/netprov/stack/node"
	"github.com/netprov/netprov/stack/tcp"
)

// linkKind is how the stack reaches the kernel peer.
type linkKind string

const (
	// linkTAP: a TAP device created inside the peer namespace; the kernel
	// side of the TAP holds the peer's addresses, the stack owns the fd.
	linkTAP linkKind = "tap"
	// linkAFPacket: a veth pair between the peer namespace and a second
	// namespace, whose end (with no kernel address) the stack opens with
	// AF_PACKET.
	linkAFPacket linkKind = "afpacket"
	// linkTAPVnet and linkAFPacketVnet are the same with the virtio-net
	// header: the stack sends and receives 64 KiB TCP super-segments
	// (GSO/GRO) and leaves checksums to the kernel.
	linkTAPVnet      linkKind = "tap-vnet"
	linkAFPacketVnet linkKind = "afpacket-vnet"
)

var linkKinds = []linkKind{linkTAP, linkAFPacket, linkTAPVnet, linkAFPacketVnet}

// Addresses inside the test namespaces (see HELPERS.md: 10.213.x.x and
// fd00:213::/64 only).
var (
	kernelV4 = netip.MustParsePrefix("10.213.7.1/24")
	stackV4  = netip.MustParsePrefix("10.213.7.2/24")
	kernelV6 = netip.MustParsePrefix("fd00:213:7::1/64")
	stackV6  = netip.MustParsePrefix("fd00:213:7::2/64")
)

// family is one IP version with the addresses both sides use.
type family struct {
	name          string // "IPv4" or "IPv6"
	kernel, stack netip.Addr
}

var families = []family{
	{"IPv4", kernelV4.Addr(), stackV4.Addr()},
	{"IPv6", kernelV6.Addr(), stackV6.Addr()},
}

// hostPort formats addr:port with brackets for IPv6, as URLs and Dial want.
func hostPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

// peer is one topology: the kernel in namespace kernel, on device dev,
// and the userspace stack (node) in the test process.
type peer struct {
	kind   linkKind
	kernel *netns.NS
	dev    string // the kernel's interface facing the stack
	node   *node.Node
	ep     link.Endpoint
}

// newPeer builds the topology of kind k and waits until the kernel's device
// is operationally up. Everything is removed when the test ends.
func newPeer(t *testing.T, k linkKind) *peer {
	t.Helper()
	vnetHdr := k == linkTAPVnet || k == linkAFPacketVnet
	if _, err := exec.LookPath("ethtool"); err != nil && k == linkAFPacket {
		t.Skip("ethtool not installed (scripts/setup installs it)")
	}
	p := &peer{kind: k, kernel: netns.New(t, "kp")}
	switch k {
	case linkTAP, linkTAPVnet:
		p.dev = netns.UniqueName("tap")
		ep, err := tap.New(tap.Config{Name: p.dev, MTU: 1500, NetNS: p.kernel.Path(), VnetHdr: vnetHdr})
		if err != nil {
			t.Fatalf("tap.New in %s: %v", p.kernel, err)
		}
		p.ep = ep
	case linkAFPacket, linkAFPacketVnet:
		stackNS := netns.New(t, "ks")
		// The stack uses veth1's MAC, so its EUI-64 link-local address
		// would be the kernel's too: keep the kernel of stackNS off IPv6.
		stackNS.Sysctl(t, "net.ipv6.conf.default.disable_ipv6", "1")
		stackNS.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
		p.dev = "veth0"
		netns.Veth(t, p.kernel, p.dev, stackNS, "veth1")
		if !vnetHdr {
			// Without PACKET_VNET_HDR the endpoint takes only
			// MTU-sized frames: the kernel must segment before the veth.
			p.kernel.Run(t, "ethtool", "-K", p.dev, "tso", "off", "gso", "off")
		}
		waitOperUp(t, stackNS, "veth1")
		ep, err := afpacket.New(afpacket.Config{Interface: "veth1", NetNS: stackNS.Path(), VnetHdr: vnetHdr})
		if err != nil {
			t.Fatalf("afpacket.New on veth1 in %s: %v", stackNS, err)
		}
		p.ep = ep
	default:
		t.Fatalf("unknown link kind %q", k)
	}
	// Closing twice is harmless: this covers a failure before the node
	// owns the endpoint.
	t.Cleanup(func() { p.ep.Close() })
	tcpCfg := kernelTCPConfig(t, p.kernel)
	n, err := node.New(node.Options{TCP: &tcpCfg})
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Logf("node close: %v", err)
		}
	})
	if _, err := n.AddNIC(p.ep, "eth0", stackV4, stackV6); err != nil {
		t.Fatalf("AddNIC: %v", err)
	}
	p.node = n
	if k == linkTAP || k == linkTAPVnet {
		p.kernel.LinkUp(t, p.dev)
	}
	p.kernel.AddAddr(t, p.dev, kernelV4.String())
	p.kernel.AddAddr(t, p.dev, kernelV6.String())
	waitOperUp(t, p.kernel, p.dev)
	return p
}

// kernelTCPConfig returns Linux's TCP defaults with the buffer sysctls
// (tcp_rmem, tcp_wmem, rmem_max, wmem_max) of the kernel in ns, so that the
// stack and its kernel peer size windows alike: the window-scale shift of
// a SYN derives from max(tcp_rmem[2], rmem_max), and hosts often raise
// them from the defaults.
func kernelTCPConfig(t *testing.T, ns *netns.NS) tcp.Config {
	t.Helper()
	cfg := tcp.DefaultConfig()
	triple := func(key string) [3]int {
		f := strings.Fields(ns.GetSysctl(t, key))
		var v [3]int
		if len(f) != 3 {
			t.Fatalf("sysctl %s = %q: want three numbers", key, f)
		}
		for i := range v {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				t.Fatalf("sysctl %s: %v", key, err)
			}
			v[i] = n
		}
		return v
	}
	one := func(key string) int {
		n, err := strconv.Atoi(ns.GetSysctl(t, key))
		if err != nil {
			t.Fatalf("sysctl %s: %v", key, err)
		}
		return n
	}
	cfg.RMem, cfg.WMem = triple("net.ipv4.tcp_rmem"), triple("net.ipv4.tcp_wmem")
	cfg.RmemMax, cfg.WmemMax = one("net.core.rmem_max"), one("net.core.wmem_max")
	return cfg
}

// waitOperUp waits until dev has carrier and a real qdisc: right after
// `ip link set up` the kernel may still have the noop qdisc, which drops
// every frame, until its link watcher runs (up to a second later).
func waitOperUp(t *testing.T, ns *netns.NS, dev string) {
	t.Helper()
	netns.WaitFor(t, 5*time.Second, func() bool {
		out, err := ns.Exec("ip", "-o", "link", "show", dev)
		s := string(out)
		return err == nil && strings.Contains(s, "LOWER_UP") && !strings.Contains(s, "qdisc noop")
	})
}

// forEachPeer runs f as a subtest for every link kind and address family.
func forEachPeer(t *testing.T, f func(t *testing.T, p *peer, fam family)) {
	forEachPeerOf(t, linkKinds, f)
}

// forEachPeerOf is forEachPeer for some link kinds.
func forEachPeerOf(t *testing.T, kinds []linkKind, f func(t *testing.T, p *peer, fam family)) {
	for _, k := range kinds {
		for _, fam := range families {
			t.Run(string(k)+"/"+fam.name, func(t *testing.T) {
				f(t, newPeer(t, k), fam)
			})
		}
	}
}
