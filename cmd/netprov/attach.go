package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/attachnet"
	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/provider/netstack"
)

// runAttach is `netprov run --netns X --attach IFACE [--ip CIDR]...
// [--route SPEC]... -- CMD`: CMD runs in the existing namespace X, and
// the stack serves IFACE through a packet socket with the addresses,
// routes and permanent neighbours the kernel had for it (or --ip and
// --route). An nftables ingress drop keeps X's kernel from answering for
// IFACE meanwhile; its own copy of the configuration stays, inert, and
// is IFACE's again when the sandbox ends.
//
// The stack's copy is taken once, at start: programs that change the
// kernel's addresses or routes of IFACE with netlink meanwhile (`ip addr
// add/del`, `ip route add`) change only the inert kernel copy, never the
// sandbox's. netprov itself never writes the kernel's configuration, so
// "restored" at the end means: the drop is removed and the kernel serves
// IFACE again with its configuration as it is at that moment — changes
// made meanwhile are kept, not rolled back to what was read at start
// (TestRunAttachKernelConfigChangesStayInert).
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
	var unconnected []netip.Prefix
	if len(o.ips) == 0 {
		// Subnets whose connected route the kernel lacks (ptp-style).
		unconnected = view.Unconnected()
	}
	l, err := attachnet.Open(ctx, attachnet.Config{
		Netns: o.netns, Interface: o.iface, MTU: view.MTU,
		Addrs: addrs, Routes: routes, Neighbors: view.Neighbors, Unconnected: unconnected,
		Node: readNamespaceSysctls(o.pingGroupRange).nodeOptions(), Log: log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("run: --attach: %w", err)
	}
	undo := func() error { return l.RemoveDrop(context.Background()) }
	n := l.Node
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
