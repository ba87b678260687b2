package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/cni/stackd"
)

// Attach mode: netprov follows an interface plugin (bridge, macvlan,
// ipvlan, ptp) in a conflist. ADD takes the sandbox interface that plugin
// made (prevResult's interface named CNI_IFNAME in CNI_NETNS), its
// addresses (prevResult), routes (prevResult and the kernel's) and the
// kernel's permanent neighbours, and starts the stack process on it (see
// stackd.AttachConfig): a packet socket on the interface, an nftables
// ingress drop that keeps the sandbox's kernel silent for it. The result is
// prevResult unchanged. DEL stops the stack process, which removes the
// drop; DEL removes a drop a killed stack process left. The kernel's
// addresses and routes are never changed, so the interface is as before.

// validateAttachConf checks the plugin's own configuration in attach mode.
func validateAttachConf(c *NetConf) error {
	invalid := func(msg string) error { return types.NewError(types.ErrInvalidNetworkConfig, msg, "") }
	if c.Provider != "netstack" {
		return invalid(fmt.Sprintf("mode attach serves the interface from the userspace stack: provider %q is not possible (remove \"provider\" or set it to \"netstack\")", c.Provider))
	}
	if c.IPAM.Type != "" {
		return invalid("mode attach takes its addresses from the interface plugin before it (prevResult): remove the \"ipam\" section")
	}
	if c.CNIVersion != "" {
		if ok, err := version.GreaterThanOrEqualTo(c.CNIVersion, "0.3.0"); err == nil && !ok {
			return types.NewError(types.ErrIncompatibleCNIVersion,
				fmt.Sprintf("mode attach is a chained plugin and needs cniVersion 0.3.0 or later (prevResult); the configuration has %s", c.CNIVersion), "")
		}
	}
	return nil
}

// errNoPrevResult: attach mode called without an interface plugin before
// it. Code 4: what the runtime passed lacks the chained call's input.
func errNoPrevResult() error {
	return types.NewError(types.ErrInvalidEnvironmentVariables,
		"mode attach is a chained plugin: it needs the prevResult of an interface plugin (bridge, macvlan, ipvlan, ptp) listed before netprov in the conflist", "")
}

// attachPlan is what ADD takes over from prevResult and the kernel.
type attachPlan struct {
	result *types100.Result
	addrs  []netip.Prefix
	routes []stackd.AttachRoute
	view   *kernelnet.View
}

// planAttach finds the sandbox interface in prevResult and reads its
// kernel view. Errors are *types.Error.
func planAttach(ctx context.Context, conf *NetConf, args *skel.CmdArgs) (*attachPlan, error) {
	if conf.PrevResult == nil {
		return nil, errNoPrevResult()
	}
	prev, err := types100.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "prevResult cannot be converted", err.Error())
	}
	idx := -1
	for i, itf := range prev.Interfaces {
		if itf.Name == args.IfName && itf.Sandbox != "" && sameNetns(itf.Sandbox, args.Netns) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("mode attach: prevResult has no interface %s in %s (CNI_IFNAME, CNI_NETNS): the plugin before netprov must create the sandbox interface", args.IfName, args.Netns), "")
	}
	view, err := kernelnet.Read(ctx, args.Netns, args.IfName)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("mode attach: cannot read interface %s in %s", args.IfName, args.Netns), err.Error())
	}
	if !view.Up {
		return nil, types.NewError(types.ErrInternal, fmt.Sprintf("mode attach: interface %s in %s is down", args.IfName, args.Netns), "")
	}
	if view.NoARP {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("mode attach: interface %s in %s does not resolve neighbours (NOARP: ipvlan l3/l3s, arp off); the stack needs an Ethernet interface with ARP (ipvlan mode l2, bridge, macvlan, ptp)", args.IfName, args.Netns), "")
	}
	p := &attachPlan{result: prev, view: view}
	var ips []*types100.IPConfig
	for _, ip := range prev.IPs {
		if ip.Interface != nil && *ip.Interface != idx {
			continue
		}
		a, ok := prefixOf(ip.Address)
		if !ok {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("prevResult address %v is not valid", ip.Address), "")
		}
		p.addrs = append(p.addrs, a)
		ips = append(ips, ip)
	}
	if len(p.addrs) == 0 {
		// An interface plugin without IPAM: what the kernel has.
		p.addrs = view.Addrs
	}
	if len(p.addrs) == 0 {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("mode attach: interface %s has no address in prevResult nor in the kernel (give the interface plugin an \"ipam\" section)", args.IfName), "")
	}
	p.routes = attachRoutes(prev.Routes, ips, view.Routes, p.addrs)
	return p, nil
}

// attachRoutes merges prevResult's routes (a missing gateway is the
// address's gateway, as ipam.ConfigureIface does) with the kernel's routes
// out of the interface; the kernel's mtu and advmss fill in what
// prevResult lacks. Only families the stack has an address of count.
func attachRoutes(prev []*types.Route, ips []*types100.IPConfig, kernel []kernelnet.Route, addrs []netip.Prefix) []stackd.AttachRoute {
	var have4, have6 bool
	for _, a := range addrs {
		have4 = have4 || a.Addr().Is4()
		have6 = have6 || a.Addr().Is6()
	}
	var out []stackd.AttachRoute
	add := func(r stackd.AttachRoute) {
		if !r.Dst.IsValid() || (r.Dst.Addr().Is4() && !have4) || (r.Dst.Addr().Is6() && !have6) {
			return
		}
		r.Dst = r.Dst.Masked()
		for i, x := range out {
			if x.Dst == r.Dst && x.Gateway == r.Gateway {
				if out[i].MTU == 0 {
					out[i].MTU = r.MTU
				}
				if out[i].AdvMSS == 0 {
					out[i].AdvMSS = r.AdvMSS
				}
				return
			}
		}
		out = append(out, r)
	}
	for _, rt := range prev {
		dst, ok := prefixOf(rt.Dst)
		if !ok {
			continue
		}
		gw, _ := netip.AddrFromSlice(rt.GW)
		if rt.GW == nil {
			gw = gatewayFor(ips, dst.Addr().Is4())
		}
		add(stackd.AttachRoute{Dst: dst, Gateway: gw.Unmap(), MTU: rt.MTU, AdvMSS: rt.AdvMSS})
	}
	for _, r := range kernel {
		add(stackd.AttachRoute{Dst: r.Dst, Gateway: r.Gateway, Src: r.Src, MTU: r.MTU, AdvMSS: r.AdvMSS, Metric: r.Metric})
	}
	return out
}

// addAttach is ADD in attach mode; sc is the sandbox config add made.
func addAttach(ctx context.Context, conf *NetConf, args *skel.CmdArgs, dir string, sc *control.SandboxConfig) (*types100.Result, error) {
	p, err := planAttach(ctx, conf, args)
	if err != nil {
		return nil, err
	}
	// The stack serves the interface's own MAC: a MAC the runtime asked
	// for must have been set by a plugin before netprov, or the container
	// silently gets another one.
	if want := conf.containerMAC; want != "" && want != p.view.MAC.String() {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("mode attach: the runtime asks for MAC %s (podman run --mac-address: CNI_ARGS MAC=, or runtimeConfig mac) "+
			"but %s has %s when netprov takes it over; netprov serves the interface's own MAC, so a plugin before netprov must set it: "+
			"declare \"capabilities\": {\"mac\": true} on the interface plugin (bridge, macvlan) or on a tuning entry listed before netprov", want, args.IfName, p.view.MAC), "")
	}
	sc.Provider = "netstack"
	sc.Bridge, sc.TAP = "", ""
	sc.MTU = p.view.MTU
	sc.MAC = p.view.MAC.String()
	sc.Addresses = p.addrs
	sc.Routes = nil
	for _, r := range p.routes {
		sc.Routes = appendRoute(sc.Routes, control.Route{Dst: r.Dst, Gateway: r.Gateway})
	}
	kv := *p.view
	kv.Addrs = p.addrs
	ac := &stackd.AttachConfig{Interface: args.IfName, Netns: args.Netns, MAC: sc.MAC, MTU: p.view.MTU, Routes: p.routes, Unconnected: kv.Unconnected()}
	for _, n := range p.view.Neighbors {
		ac.Neighbors = append(ac.Neighbors, stackd.AttachNeighbor{Addr: n.Addr, MAC: n.MAC.String()})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("state directory %s: %v", dir, err), "")
	}
	if err := stackd.WriteAttachConfig(dir, ac); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("write %s: %v", stackd.AttachFile, err), "")
	}
	if err := control.WriteSandboxConfig(dir, sc); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("write %s: %v", control.ConfigFile, err), "")
	}
	if _, err := startAndWait(ctx, conf, dir); err != nil {
		return nil, err
	}
	if err := loopbackUp(ctx, args.Netns); err != nil {
		return nil, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("bring up lo in %s", args.Netns), err.Error())
	}
	return p.result, nil
}

// startAndWait starts dir's stack process and waits until it is ready.
// A process that dies without a word (nothing in its log: killed before
// its first line) is started once more, and the death noted in the log.
func startAndWait(ctx context.Context, conf *NetConf, dir string) (*control.Status, error) {
	readyTimeout := 10 * time.Second
	if conf.ReadyTimeoutSeconds > 0 {
		readyTimeout = time.Duration(conf.ReadyTimeoutSeconds) * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var st *control.Status
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var pid int
		if pid, err = startStack(dir); err != nil {
			return nil, err
		}
		st, err = waitReady(rctx, dir, pid)
		var exited *stackExitedError
		if !errors.As(err, &exited) || exited.log != emptyLog {
			break
		}
		noteInLog(dir, fmt.Sprintf("netprov: stack process %d ended before its first line%s; starting it again", pid, exited.reason))
	}
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, "the sandbox's stack process did not become ready (see "+filepath.Join(dir, control.LogFile)+")", err.Error())
	}
	return st, nil
}
