//go:build netprov_ours

package bench

// This file adds netprov's own stack ("ours") to the benchmark table. It is
// built only with -tags netprov_ours until the stack has TCP and a net.Conn
// adapter; then drop the build tag and ours_stub.go (the one-line change
// that puts ours next to netstack in every benchmark).
//
// What exists today is wired for real (two stacks, a pipe link with the
// benchmark's MTU and queue length, addresses and the ephemeral port range);
// New returns errNotReady, so the benchmarks skip "ours", until the parts
// marked TODO exist.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/link/pipe"
)

func oursImplementations() []Implementation {
	return []Implementation{{Name: "ours", New: newOursNetwork}}
}

// oursNetwork is two netprov stacks joined by a pipe link (Ethernet frames,
// ARP, no offloads: the same work per packet as the netstack side).
type oursNetwork struct {
	client, server *stack.Stack
}

func newOursNetwork(cfg Config) (Network, error) {
	a, b := pipe.New(pipe.Config{
		MTU:  cfg.MTU,
		AToB: pipe.Impairments{QueueLimit: cfg.LinkQueueLen},
		BToA: pipe.Impairments{QueueLimit: cfg.LinkQueueLen},
	})
	n := &oursNetwork{}
	var err error
	if n.client, err = newOursStack(cfg, a, clientAddr); err != nil {
		a.Close()
		b.Close()
		return nil, fmt.Errorf("ours client stack: %w", err)
	}
	if n.server, err = newOursStack(cfg, b, serverAddr); err != nil {
		n.client.Close()
		b.Close()
		return nil, fmt.Errorf("ours server stack: %w", err)
	}
	// TODO(tcp, socket): remove once Listen and Dial below are real.
	n.Close()
	return nil, errNotReady
}

// newOursStack builds one stack on ep with addr/24 and cfg's settings.
func newOursStack(cfg Config, ep *pipe.Endpoint, addr netip.Addr) (*stack.Stack, error) {
	sc := stack.DefaultConfig()
	sc.LocalPortRange = [2]uint16{cfg.EphemeralPortFirst, cfg.EphemeralPortLast}
	s := stack.New(stack.Options{Config: &sc})
	// TODO(ipv4, arp, tcp): register the protocols here, before AddNIC:
	//   s.RegisterNetworkProtocol(ipv4.New(...)); arp; s.RegisterTransportProtocol(tcp.New(tcpCfg))
	// with tcpCfg's tcp_rmem/tcp_wmem from cfg.RecvBuf/cfg.SendBuf (auto-tuning
	// on), SACK on and CUBIC, the Linux defaults DefaultConfig documents.
	nic, err := s.AddNIC(ep, stack.NICOptions{Name: "eth0"})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("add NIC: %w", err)
	}
	if err := nic.AddAddress(netip.PrefixFrom(addr, 24)); err != nil {
		s.Close()
		return nil, fmt.Errorf("add address: %w", err)
	}
	return s, nil
}

func (n *oursNetwork) Name() string           { return "ours" }
func (n *oursNetwork) ServerAddr() netip.Addr { return serverAddr }

// Listen will return the socket layer's net.Listener adapter on the server
// stack (TODO(socket)).
func (n *oursNetwork) Listen(addr netip.AddrPort) (net.Listener, error) {
	return nil, fmt.Errorf("ours listen %v: %w", addr, errNotReady)
}

// Dial will return the socket layer's net.Conn adapter from the client stack
// (TODO(socket)).
func (n *oursNetwork) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	return nil, fmt.Errorf("ours dial %v: %w", addr, errNotReady)
}

// TODO(tcp): implement RetransmitCounter (network.go) from both stacks' TCP
// statistics, so the benchmarks report retrans/op for ours as for netstack.

// Close closes both stacks, which close their NICs and so the pipe.
func (n *oursNetwork) Close() error {
	return errors.Join(n.client.Close(), n.server.Close())
}
