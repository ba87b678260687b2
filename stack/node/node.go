// Package node assembles a complete host stack: the core stack with ARP,
// IPv4, IPv6, TCP, UDP and ICMP echo sockets registered, the loopback
// device "lo" with 127.0.0.1/8 and ::1/128, and helpers to add NICs and
// routes and to open sockets (BSD-style or as net.Conn / net.Listener).
// It is what a sandbox's stack process, the demo command, the benchmarks
// and end-to-end tests build on.
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/arp"
	"github.com/netprov/netprov/stack/icmp"
	"github.com/netprov/netprov/stack/ipv4"
	"github.com/netprov/netprov/stack/ipv6"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/loopback"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/tcp"
	"github.com/netprov/netprov/stack/udp"
)

// Options configure a Node. Nil protocol configs take each protocol's
// DefaultConfig (Linux's defaults).
type Options struct {
	// Stack holds the clock, namespace-wide settings and logger.
	Stack stack.Options
	IPv4  *ipv4.Config
	IPv6  *ipv6.Config
	ARP   *arp.Config
	TCP   *tcp.Config
	UDP   *udp.Config
	ICMP  *icmp.Config
	// Loopback configures lo (zero: Linux's lo, MTU 65536).
	Loopback loopback.Config
}

// Node is one host: a stack with every protocol and a loopback device.
type Node struct {
	Stack *stack.Stack
	ARP   *arp.Protocol
	IPv4  *ipv4.Protocol
	IPv6  *ipv6.Protocol
	TCP   *tcp.Protocol
	UDP   *udp.Protocol
	ICMP  *icmp.Protocol
	// Loopback is the "lo" NIC.
	Loopback *stack.NIC
}

// New builds a node: registers the protocols and adds lo with
// 127.0.0.1/8 and ::1/128.
func New(o Options) (*Node, error) {
	s := stack.New(o.Stack)
	n := &Node{Stack: s}
	if o.ARP != nil {
		n.ARP = arp.RegisterConfig(s, *o.ARP)
	} else {
		n.ARP = arp.Register(s)
	}
	n.IPv4 = ipv4.Register(s, orDefault(o.IPv4, ipv4.DefaultConfig))
	n.IPv6 = ipv6.Register(s, orDefault(o.IPv6, ipv6.DefaultConfig))
	n.TCP = tcp.Register(s, orDefault(o.TCP, tcp.DefaultConfig))
	n.UDP = udp.Register(s, orDefault(o.UDP, udp.DefaultConfig))
	n.ICMP = icmp.Register(s, orDefault(o.ICMP, icmp.DefaultConfig))

	lo, err := s.AddNIC(loopback.New(o.Loopback), stack.NICOptions{Name: "lo"})
	if err != nil {
		return nil, fmt.Errorf("add loopback: %w", err)
	}
	for _, p := range []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")} {
		if err := lo.AddAddress(p); err != nil {
			s.Close()
			return nil, fmt.Errorf("add %v to lo: %w", p, err)
		}
	}
	n.Loopback = lo
	return n, nil
}

var multicastV6 = netip.MustParsePrefix("ff00::/8")

func orDefault[C any](c *C, def func() C) C {
	if c != nil {
		return *c
	}
	return def()
}

// AddNIC attaches a link endpoint as NIC name with the given addresses
// (each also adds its subnet's route). Ethernet NICs get their EUI-64
// IPv6 link-local address and the ff00::/8 multicast route too, as Linux
// configures when a device comes up.
func (n *Node) AddNIC(ep link.Endpoint, name string, addrs ...netip.Prefix) (*stack.NIC, error) {
	nic, err := n.Stack.AddNIC(ep, stack.NICOptions{Name: name})
	if err != nil {
		return nil, err
	}
	if ep.Capabilities()&link.CapEthernet != 0 {
		if _, err := ipv6.AddLinkLocalAddress(nic); err != nil && !errors.Is(err, errExist) {
			return nil, fmt.Errorf("NIC %s: link-local address: %w", name, err)
		}
		// Linux gives every IPv6 device "multicast ff00::/8 dev DEV
		// metric 256" (table local), so groups can be reached out of it.
		n.Stack.AddRoute(stack.RouteEntry{Dst: multicastV6, NIC: nic.ID(), Metric: 256})
	}
	for _, p := range addrs {
		if err := nic.AddAddress(p); err != nil {
			return nil, fmt.Errorf("NIC %s: add %v: %w", name, p, err)
		}
	}
	return nic, nil
}

// AddRoute adds a routing-table entry (`ip route add`).
func (n *Node) AddRoute(r stack.RouteEntry) { n.Stack.AddRoute(r) }

// AddDefaultRoute adds 0.0.0.0/0 (or ::/0) via gw, out of the NIC whose
// subnet contains gw. It fails with ENETUNREACH if no NIC's subnet does.
func (n *Node) AddDefaultRoute(gw netip.Addr) error {
	for _, nic := range n.Stack.NICs() {
		for _, p := range nic.Addresses() {
			if p.Contains(gw) {
				dst := netip.MustParsePrefix("0.0.0.0/0")
				if gw.Is6() {
					dst = netip.MustParsePrefix("::/0")
				}
				n.Stack.AddRoute(stack.RouteEntry{Dst: dst, Gateway: gw, NIC: nic.ID()})
				return nil
			}
		}
	}
	return fmt.Errorf("default route via %v: %w", gw, errNetUnreach)
}

// Socket creates a socket as socket(2) (see socket.New).
func (n *Node) Socket(family, sotype, protocol int) (*socket.Socket, error) {
	return socket.New(n.Stack, family, sotype, protocol)
}

// Dial connects like net.Dial ("tcp", "tcp4", "tcp6", "udp", "udp4",
// "udp6"; the host must be an IP literal or "localhost").
func (n *Node) Dial(network, address string) (net.Conn, error) {
	return n.DialContext(context.Background(), network, address)
}

// DialContext is Dial bounded by ctx.
func (n *Node) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := socket.Dial(ctx, n.Stack, network, address)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Listen opens a TCP listener like net.Listen.
func (n *Node) Listen(network, address string) (net.Listener, error) {
	l, err := socket.Listen(n.Stack, network, address)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListenPacket opens a UDP socket like net.ListenPacket.
func (n *Node) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := socket.ListenPacket(n.Stack, network, address)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Transport protocols list their sockets either as snapshots (UDP, ICMP)
// or as the endpoints themselves (TCP).
type (
	infoLister     interface{ Endpoints() []stack.EndpointInfo }
	endpointLister interface{ Endpoints() []stack.Endpoint }
)

// Connections lists the sockets of every protocol (for `ss`).
func (n *Node) Connections() []stack.EndpointInfo {
	var out []stack.EndpointInfo
	for _, p := range []any{n.TCP, n.UDP, n.ICMP} {
		switch l := p.(type) {
		case infoLister:
			out = append(out, l.Endpoints()...)
		case endpointLister:
			for _, ep := range l.Endpoints() {
				out = append(out, ep.Info())
			}
		}
	}
	return out
}

// Close removes every NIC (stopping their endpoints).
func (n *Node) Close() error { return n.Stack.Close() }
