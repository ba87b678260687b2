package bench

// This file adds netprov's own stack ("ours") to the benchmark table: two
// nodes (stack/node: ARP, IPv4, TCP, ...) joined by a pipe link
// (stack/link/pipe), configured from the same Config as the netstack side.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/node"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/tcp"
)

func oursImplementations() []Implementation {
	return []Implementation{{Name: "ours", New: newOursNetwork}}
}

// oursNetwork is two netprov nodes joined by a pipe link: Ethernet frames,
// ARP, no checksum or segmentation offload (pipe.Config.GSO off), so every
// segment is one MTU-sized frame with software checksums, the same work per
// packet as the netstack side. The pipe moves frames with one goroutine per
// direction, like the netstack side's pumps.
type oursNetwork struct {
	client, server *node.Node
	// clientEnd, serverEnd are the pipe's ends (for link statistics).
	clientEnd, serverEnd *pipe.Endpoint
}

func newOursNetwork(cfg Config) (Network, error) {
	a, b := pipe.New(pipe.Config{
		MTU:  cfg.MTU,
		AToB: pipe.Impairments{QueueLimit: cfg.LinkQueueLen},
		BToA: pipe.Impairments{QueueLimit: cfg.LinkQueueLen},
	})
	n := &oursNetwork{clientEnd: a, serverEnd: b}
	var err error
	if n.client, err = newOursNode(cfg, a, clientAddr); err != nil {
		a.Close()
		return nil, fmt.Errorf("ours client stack: %w", err)
	}
	if n.server, err = newOursNode(cfg, b, serverAddr); err != nil {
		n.client.Close()
		b.Close()
		return nil, fmt.Errorf("ours server stack: %w", err)
	}
	return n, nil
}

// newOursNode builds one node with the pipe end ep as eth0 holding addr/24,
// TCP set up as DefaultConfig documents: tcp_rmem and tcp_wmem from cfg
// with receive buffer moderation on, SACK on, CUBIC, and cfg's ephemeral
// port range. Everything else keeps Linux's defaults (tcp.DefaultConfig:
// timestamps, window scaling, Nagle on unless TCP_NODELAY).
func newOursNode(cfg Config, ep *pipe.Endpoint, addr netip.Addr) (*node.Node, error) {
	sc := stack.DefaultConfig()
	sc.LocalPortRange = [2]uint16{cfg.EphemeralPortFirst, cfg.EphemeralPortLast}
	tc := tcp.DefaultConfig()
	tc.RMem = [3]int{cfg.RecvBuf.Min, cfg.RecvBuf.Default, cfg.RecvBuf.Max}
	tc.WMem = [3]int{cfg.SendBuf.Min, cfg.SendBuf.Default, cfg.SendBuf.Max}
	tc.ModerateRcvbuf = true
	tc.SACK = true
	tc.CongestionControl = "cubic"
	nd, err := node.New(node.Options{Stack: stack.Options{Config: &sc}, TCP: &tc})
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("new node: %w", err)
	}
	if _, err := nd.AddNIC(ep, "eth0", netip.PrefixFrom(addr, 24)); err != nil {
		nd.Close()
		ep.Close()
		return nil, fmt.Errorf("add NIC: %w", err)
	}
	return nd, nil
}

func (n *oursNetwork) Name() string           { return "ours" }
func (n *oursNetwork) ServerAddr() netip.Addr { return serverAddr }

// Listen returns the socket layer's net.Listener on the server node.
func (n *oursNetwork) Listen(addr netip.AddrPort) (net.Listener, error) {
	if !addr.Addr().Is4() {
		return nil, fmt.Errorf("ours listen %v: %w", addr, errNotIPv4)
	}
	l, err := n.server.Listen("tcp4", addr.String())
	if err != nil {
		return nil, fmt.Errorf("ours listen %v: %w", addr, err)
	}
	return l, nil
}

// Dial returns the socket layer's net.Conn from the client node; ctx bounds
// the handshake. It does what socket.Dial does (socket, connect, wrap)
// without formatting and parsing an address string per connection, the
// same as the netstack side, which passes a tcpip.FullAddress.
func (n *oursNetwork) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	if !addr.Addr().Is4() {
		return nil, fmt.Errorf("ours dial %v: %w", addr, errNotIPv4)
	}
	so, err := socket.New(n.client.Stack, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, fmt.Errorf("ours dial %v: socket: %w", addr, err)
	}
	if err := so.ConnectAddr(ctx, addr); err != nil {
		so.Close()
		return nil, fmt.Errorf("ours dial %v: %w", addr, err)
	}
	return socket.NewConn(so), nil
}

// Retransmits implements RetransmitCounter (Tcp: RetransSegs of both nodes).
func (n *oursNetwork) Retransmits() uint64 {
	return n.client.Stack.Stats().TCP.RetransSegs.Load() + n.server.Stack.Stats().TCP.RetransSegs.Load()
}

// Close closes both nodes, which close their NICs and so the pipe.
func (n *oursNetwork) Close() error {
	return errors.Join(n.client.Close(), n.server.Close())
}
