// Package attachnet serves an existing kernel interface from the userspace
// stack: a packet socket on the interface inside its network namespace, a
// stack node with the interface's addresses, routes and permanent
// neighbours, and an nftables ingress drop that keeps the namespace's
// kernel silent for the interface meanwhile. `netprov run --attach` and the
// CNI plugin's attach mode (the per-sandbox stack process) both build their
// stack with Open.
package attachnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/afpacket"
	"github.com/netprov/netprov/stack/node"
)

// Config says which interface to serve and with what configuration.
type Config struct {
	// Netns is the namespace file the interface lives in ("" = ours).
	Netns     string
	Interface string
	// MTU of the stack's link (0: the interface's).
	MTU       int
	Addrs     []netip.Prefix
	Routes    []kernelnet.Route
	Neighbors []kernelnet.Neighbor
	// Unconnected are address subnets the kernel has no connected route
	// for (kernelnet.View.Unconnected): the stack drops its own, so that
	// Routes (say "SUBNET via GW", as the ptp plugin sets up) decide.
	Unconnected []netip.Prefix
	// Node configures the stack node (sysctls).
	Node node.Options
	// WrapLink, when set, wraps the packet endpoint before the NIC gets it
	// (the stack process puts its capture sniffer there).
	WrapLink func(link.Endpoint) (link.Endpoint, error)
	Log      *slog.Logger
}

// Link is a stack node serving an attached interface.
type Link struct {
	Node     *node.Node
	NIC      *stack.NIC
	Endpoint *afpacket.Endpoint
	drop     *kernelnet.IngressDrop
}

// Open installs the ingress drop on cfg.Interface and serves the interface
// from a new stack node. The caller owns the node (closing it closes the
// packet socket) and calls RemoveDrop once the node is closed.
func Open(ctx context.Context, cfg Config) (*Link, error) {
	if cfg.Interface == "" {
		return nil, errors.New("attach: no interface")
	}
	if len(cfg.Addrs) == 0 {
		return nil, fmt.Errorf("attach %s: no address", cfg.Interface)
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	// The drop goes in first: from the moment the stack answers, the
	// kernel must not (a SYN the kernel saw would get its RST).
	drop, err := kernelnet.InstallIngressDrop(ctx, cfg.Netns, cfg.Interface)
	if err != nil {
		return nil, err
	}
	l := &Link{drop: drop}
	fail := func(err error) (*Link, error) {
		return nil, errors.Join(err, l.RemoveDrop(context.Background()))
	}
	// VnetHdr: the veth, macvlan or NIC peer sends TSO/GRO super-frames
	// and takes ours (checksum and segmentation offload). A kernel that
	// refuses PACKET_VNET_HDR gets plain frames.
	acfg := afpacket.Config{Interface: cfg.Interface, NetNS: cfg.Netns, MTU: cfg.MTU, VnetHdr: true}
	ep, err := afpacket.New(acfg)
	if err != nil {
		acfg.VnetHdr = false
		var err2 error
		if ep, err2 = afpacket.New(acfg); err2 != nil {
			return fail(fmt.Errorf("attach %s: %w", cfg.Interface, err))
		}
		log.Warn("attach: no virtio-net header on the packet socket; offloads off", "iface", cfg.Interface, "err", err)
	}
	l.Endpoint = ep
	var nicEP link.Endpoint = ep
	if cfg.WrapLink != nil {
		if nicEP, err = cfg.WrapLink(ep); err != nil {
			ep.Close()
			return fail(fmt.Errorf("attach %s: %w", cfg.Interface, err))
		}
	}
	n, err := node.New(cfg.Node)
	if err != nil {
		ep.Close()
		return fail(fmt.Errorf("attach: stack: %w", err))
	}
	nic, err := n.AddNIC(nicEP, cfg.Interface, cfg.Addrs...)
	if err != nil {
		n.Close()
		ep.Close()
		return fail(fmt.Errorf("attach: stack NIC: %w", err))
	}
	l.Node, l.NIC = n, nic
	for _, p := range cfg.Unconnected {
		if err := n.Stack.RemoveRoute(p, netip.Addr{}, nic.ID()); err != nil && !errors.Is(err, unix.ESRCH) {
			log.Warn("attach: connected route kept", "dst", p, "err", err)
		}
	}
	for _, r := range cfg.Routes {
		n.AddRoute(stack.RouteEntry{Dst: r.Dst.Masked(), Gateway: r.Gateway, NIC: nic.ID(), Src: r.Src, MTU: r.MTU, AdvMSS: r.AdvMSS, Metric: r.Metric})
	}
	for _, nb := range cfg.Neighbors {
		if err := AddPermanentNeighbor(nic, nb); err != nil {
			log.Warn("attach: permanent neighbour not taken over", "addr", nb.Addr, "err", err)
		}
	}
	return l, nil
}

// RemoveDrop gives the interface back to the kernel: its addresses and
// routes were never touched. Call it after the node is closed, so the
// kernel never sees the stack's connections. A second call does nothing.
func (l *Link) RemoveDrop(ctx context.Context) error {
	if l.drop == nil {
		return nil
	}
	d := l.drop
	l.drop = nil
	return d.Remove(ctx)
}
