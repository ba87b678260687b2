package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/provider/netstack"
	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/ipv4"
	"github.com/netprov/netprov/stack/link/afpacket"
	"github.com/netprov/netprov/stack/node"
)

// runAttach is `netprov run --netns X --attach IFACE [--ip CIDR]...
// [--route SPEC]... -- CMD`: CMD runs in the existing namespace X, and
// the stack serves IFACE through a packet socket with the addresses,
// routes and permanent neighbours the kernel had for it (or --ip and
// --route). An nftables ingress drop keeps X's kernel from answering for
// IFACE meanwhile; its own copy of the configuration stays, inert, and
// is IFACE's again when the sandbox ends.
func runAttach(ctx context.Context, args []string) error {
	o, cmdArgs, err := parseAttachFlags(args)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("run: needs root (network namespaces, packet socket, seccomp listener)")
	}
	log := slog.Default()
	sb, undo, err := setUpAttachNet(ctx, o, log)
	if err != nil {
		return err
	}
	code, err := runSandboxed(ctx, &runOptions{provider: "netstack"}, sb, cmdArgs, log)
	sb.close()
	if uerr := undo(); uerr != nil {
		log.Error("run: restoring the kernel's view", "iface", o.iface, "err", uerr)
		if err == nil {
			err = uerr
		}
	}
	if err != nil {
		return err
	}
	os.Exit(code)
	return nil
}

// setUpAttachNet reads IFACE's configuration, opens the stack on it and
// installs the ingress drop. undo removes the drop (call it after the
// provider is closed, so the kernel never sees the stack's connections).
func setUpAttachNet(ctx context.Context, o *attachOptions, log *slog.Logger) (*sandboxNet, func() error, error) {
	view, err := kernelnet.Read(ctx, o.netns, o.iface)
	if err != nil {
		return nil, nil, fmt.Errorf("run: --attach: %w", err)
	}
	if !view.Up {
		return nil, nil, fmt.Errorf("run: --attach %s: interface is down", o.iface)
	}
	addrs, routes := view.Addrs, view.Routes
	if len(o.ips) > 0 {
		addrs = o.ips
	}
	if len(o.routes) > 0 {
		routes = o.routes
	}
	if len(addrs) == 0 {
		return nil, nil, fmt.Errorf("run: --attach %s: no address (give --ip CIDR)", o.iface)
	}
	// The drop goes in first: from the moment the stack answers, the
	// kernel must not (a SYN the kernel saw would get its RST).
	drop, err := kernelnet.InstallIngressDrop(ctx, o.netns, o.iface)
	if err != nil {
		return nil, nil, fmt.Errorf("run: %w", err)
	}
	undo := func() error { return drop.Remove(context.Background()) }
	fail := func(err error) (*sandboxNet, func() error, error) {
		return nil, nil, errors.Join(err, undo())
	}
	// VnetHdr: the veth or NIC peer sends TSO/GRO super-frames and takes
	// ours (checksum and segmentation offload).
	ep, err := afpacket.New(afpacket.Config{Interface: o.iface, NetNS: o.netns, MTU: view.MTU, VnetHdr: true})
	if err != nil {
		return fail(fmt.Errorf("run: --attach %s: %w", o.iface, err))
	}
	n, err := node.New(readNamespaceSysctls(o.pingGroupRange).nodeOptions())
	if err != nil {
		ep.Close()
		return fail(fmt.Errorf("run: stack: %w", err))
	}
	nic, err := n.AddNIC(ep, o.iface, addrs...)
	if err != nil {
		n.Close()
		ep.Close()
		return fail(fmt.Errorf("run: stack NIC: %w", err))
	}
	for _, r := range routes {
		n.AddRoute(stack.RouteEntry{Dst: r.Dst, Gateway: r.Gateway, NIC: nic.ID(), Src: r.Src, MTU: r.MTU, AdvMSS: r.AdvMSS, Metric: r.Metric})
	}
	for _, nb := range view.Neighbors {
		if err := addPermanentNeighbor(nic, nb); err != nil {
			log.Warn("run: --attach: permanent neighbour not taken over", "addr", nb.Addr, "err", err)
		}
	}
	cfg := sandboxConfig{Provider: "netstack", MTU: view.MTU, DNS: o.dns, Interface: o.iface, AttachNetns: o.netns, Routes: []routeConfig{}}
	for _, a := range addrs {
		if a.Addr().Is4() && cfg.Address == "" {
			cfg.Address = a.String()
		} else if a.Addr().Is6() && cfg.Address6 == "" {
			cfg.Address6 = a.String()
		}
	}
	for _, r := range routes {
		rc := routeConfig{Dst: r.Dst.String(), Dev: o.iface}
		if r.Gateway.IsValid() {
			rc.Via = r.Gateway.String()
		}
		cfg.Routes = append(cfg.Routes, rc)
	}
	log.Debug("run: attached", "netns", o.netns, "iface", o.iface, "addrs", addrs, "routes", len(routes))
	return &sandboxNet{cfg: cfg, prov: netstack.NewWithConfig(n, netstack.Config{OwnsNode: true})}, undo, nil
}

// addPermanentNeighbor copies a `nud permanent` entry into the stack.
func addPermanentNeighbor(nic *stack.NIC, nb kernelnet.Neighbor) error {
	if len(nb.MAC) != len(header.MAC{}) {
		return fmt.Errorf("link address %v: %w", nb.MAC, unix.EINVAL)
	}
	if !nb.Addr.Is4() {
		return fmt.Errorf("IPv6 permanent neighbours: %w", unix.EOPNOTSUPP)
	}
	ep, ok := nic.NetworkEndpoint(header.EtherTypeIPv4).(*ipv4.Endpoint)
	if !ok {
		return fmt.Errorf("no IPv4 on the NIC: %w", unix.EAFNOSUPPORT)
	}
	ep.Neighbors().AddStatic(nb.Addr, header.MAC(nb.MAC))
	return nil
}

// enterAttachNetns moves the stage's thread into the attached namespace:
// CMD runs there (its `ip addr` shows the interface), and RunStage execs
// it from this locked thread, which carries the namespace into CMD.
func enterAttachNetns(path string) error {
	runtime.LockOSThread() // never unlocked: the process image is replaced
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	return nil
}
