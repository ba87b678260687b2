package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/netprov/netprov/cni/agent"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/control"
)

// Main runs the plugin for the CNI_COMMAND in the environment and exits.
func Main(about string) {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus}, version.All, about)
}

// stopGrace is how long DEL waits for the stack process after SIGTERM.
const stopGrace = 5 * time.Second

func parsePrevResult(c *NetConf) error {
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "prevResult cannot be decoded", err.Error())
	}
	return nil
}

// lockState takes the plugin-wide lock under stateDir (ADD, DEL and GC
// of one host run one at a time).
func lockState(stateDir string) (func(), error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("state directory %s: %v", stateDir, err), "")
	}
	f, err := os.OpenFile(filepath.Join(stateDir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("lock in %s: %v", stateDir, err), "")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("another netprov plugin call holds %s for over 60 s; try again later", f.Name()), "")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cmdAdd(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	// Before anything changes: a bad MAC request must not cost the
	// container its previous attachment.
	if err := resolveContainerMAC(conf, args.Args); err != nil {
		return err
	}
	unlock, err := lockState(conf.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	ctx := context.Background()
	dir := control.SandboxDir(conf.StateDir, args.ContainerID)
	if old, err := control.ReadSandboxConfig(dir); err == nil {
		if old.Network != conf.Name || old.IfName != args.IfName {
			return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("container %s already has netprov network %q on %s: one netprov attachment per container", args.ContainerID, old.Network, old.IfName), "")
		}
	}
	// A previous attachment of the same container and interface (a
	// failed ADD without DEL, a runtime restart) is removed first.
	if err := teardown(ctx, conf, args.StdinData, args.ContainerID, args.IfName); err != nil {
		return types.NewError(types.ErrTryAgainLater, "removing the previous attachment failed; try again later", err.Error())
	}
	result, err := add(ctx, conf, args, dir)
	if err != nil {
		if terr := teardown(ctx, conf, args.StdinData, args.ContainerID, args.IfName); terr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, terr)
		}
		var te *types.Error
		if errors.As(err, &te) {
			return te
		}
		return types.NewError(types.ErrInternal, "netprov ADD failed", err.Error())
	}
	return types.PrintResult(result, conf.CNIVersion)
}

func add(ctx context.Context, conf *NetConf, args *skel.CmdArgs, dir string) (*types100.Result, error) {
	if conf.AgentSocket != "" {
		// The runtime connects to the agent right after ADD, and no service
		// manager runs here to start it.
		if err := agent.EnsureRunning(ctx, agent.EnsureConfig{Socket: conf.AgentSocket, StateDir: conf.StateDir}); err != nil {
			return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("cannot start the netprov agent on %s; try again later", conf.AgentSocket), err.Error())
		}
	}
	sc := &control.SandboxConfig{
		ContainerID:        args.ContainerID,
		Network:            conf.Name,
		IfName:             args.IfName,
		Netns:              args.Netns,
		Provider:           conf.Provider,
		MTU:                conf.MTU,
		MAC:                conf.sandboxMAC(args.ContainerID, args.IfName),
		HandoffWarnSeconds: conf.HandoffWarnSeconds,
		NetConf:            json.RawMessage(args.StdinData),
	}
	if conf.Mode == ModeAttach {
		return addAttach(ctx, conf, args, dir, sc)
	}
	result := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	if conf.Provider == "netstack" {
		ipamRes, err := invoke.DelegateAdd(ctx, conf.IPAM.Type, ipamStdin(ctx, conf, args.StdinData), nil)
		if err != nil {
			return nil, ipamError("ADD", conf.IPAM.Type, err)
		}
		r, err := types100.NewResultFromResult(ipamRes)
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "IPAM result cannot be converted", err.Error())
		}
		if len(r.IPs) == 0 {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("IPAM plugin %s returned no IP address", conf.IPAM.Type), "")
		}
		sc.Bridge = conf.Bridge
		sc.TAP = tapName(args.ContainerID, args.IfName)
		var gateways []netip.Prefix
		for _, ip := range r.IPs {
			p, ok := prefixOf(ip.Address)
			if !ok {
				return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("IPAM address %v is not valid", ip.Address), "")
			}
			sc.Addresses = append(sc.Addresses, p)
			if gw, ok := netip.AddrFromSlice(ip.Gateway); ok && ip.Gateway != nil {
				gw = gw.Unmap()
				if conf.IsGateway {
					gateways = append(gateways, netip.PrefixFrom(gw, p.Bits()))
				}
				if conf.IsDefaultGateway {
					dst := netip.MustParsePrefix("0.0.0.0/0")
					if gw.Is6() {
						dst = netip.MustParsePrefix("::/0")
					}
					sc.Routes = append(sc.Routes, control.Route{Dst: dst, Gateway: gw})
					r.Routes = append(r.Routes, &types.Route{Dst: *prefixToIPNet(dst), GW: net.IP(gw.AsSlice())})
				}
			}
		}
		for _, rt := range r.Routes {
			dst, ok := prefixOf(rt.Dst)
			if !ok {
				continue
			}
			gw, _ := netip.AddrFromSlice(rt.GW)
			if rt.GW == nil {
				gw = gatewayFor(r.IPs, dst.Addr().Is4()) // like ipam.ConfigureIface
			}
			sc.Routes = appendRoute(sc.Routes, control.Route{Dst: dst, Gateway: gw.Unmap()})
		}
		if err := ownNS().EnsureBridge(ctx, conf.Bridge, conf.MTU, gateways); err != nil {
			return nil, err
		}
		result.IPs, result.Routes, result.DNS = r.IPs, r.Routes, r.DNS
	}
	if len(conf.DNS.Nameservers) > 0 || conf.DNS.Domain != "" || len(conf.DNS.Search) > 0 {
		result.DNS = conf.DNS
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("state directory %s: %v", dir, err), "")
	}
	if err := control.WriteSandboxConfig(dir, sc); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("write %s: %v", control.ConfigFile, err), "")
	}
	st, err := startAndWait(ctx, conf, dir)
	if err != nil {
		return nil, err
	}
	sandbox := &types100.Interface{Name: args.IfName, Mac: sc.MAC, Sandbox: args.Netns}
	if conf.Provider == "netstack" {
		if err := ownNS().AttachToBridge(ctx, sc.TAP, conf.Bridge); err != nil {
			return nil, err
		}
		// Now that the TAP is on the bridge: neighbours holding a stale
		// entry for a reused address learn the new MAC (as the bridge
		// plugin's gratuitous ARP does). Best effort: an old stack process
		// without the op changes nothing else.
		_ = control.Announce(ctx, filepath.Join(dir, control.SocketFile))
		if conf.IPMasq {
			sc.IPMasqChain = masqChain(args.ContainerID, args.IfName)
			if err := control.WriteSandboxConfig(dir, sc); err != nil {
				return nil, err
			}
			for _, a := range sc.Addresses {
				if err := ownNS().SetUpMasq(ctx, sc.IPMasqChain, a, "netprov:"+args.ContainerID); err != nil {
					return nil, err
				}
			}
		}
		if st.MAC != "" {
			sandbox.Mac = st.MAC
		}
		result.Interfaces = []*types100.Interface{
			{Name: conf.Bridge, Mac: linkMAC(conf.Bridge)},
			{Name: sc.TAP, Mac: linkMAC(sc.TAP)},
			sandbox,
		}
		idx := 2
		for _, ip := range result.IPs {
			ip.Interface = &idx
		}
	} else {
		result.Interfaces = []*types100.Interface{sandbox}
	}
	if err := loopbackUp(ctx, args.Netns); err != nil {
		return nil, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("bring up lo in %s", args.Netns), err.Error())
	}
	return result, nil
}

// teardown removes everything of attachment (id, ifname): stack process,
// TAP, ipMasq chain, IPAM lease, state directory. Missing pieces are fine.
// netconf is the configuration to release IPAM with.
func teardown(ctx context.Context, conf *NetConf, netconf []byte, id, ifname string) error {
	dir := control.SandboxDir(conf.StateDir, id)
	var errs []error
	if err := stopStack(dir, stopGrace); err != nil {
		errs = append(errs, err)
	} else if err := teardownAttach(ctx, dir); err != nil {
		errs = append(errs, err)
	}
	if err := ownNS().DeleteLink(ctx, tapName(id, ifname)); err != nil {
		errs = append(errs, err)
	}
	if err := ownNS().TearDownMasq(ctx, masqChain(id, ifname)); err != nil {
		errs = append(errs, err)
	}
	if conf.IPAM.Type != "" && conf.Provider == "netstack" {
		if err := invoke.DelegateDel(ctx, conf.IPAM.Type, ipamStdin(ctx, conf, netconf), nil); err != nil {
			errs = append(errs, fmt.Errorf("IPAM %s DEL: %w", conf.IPAM.Type, err))
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parseLocked parses the network configuration and takes the plugin-wide
// lock of its state directory (DEL and GC).
func parseLocked(stdin []byte) (*NetConf, func(), error) {
	conf, err := parseConfig(stdin)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := lockState(conf.StateDir)
	if err != nil {
		return nil, nil, err
	}
	return conf, unlock, nil
}

func cmdDel(args *skel.CmdArgs) error {
	conf, unlock, err := parseLocked(args.StdinData)
	if err != nil {
		return err
	}
	defer unlock()
	if err := teardown(context.Background(), conf, args.StdinData, args.ContainerID, args.IfName); err != nil {
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("DEL of container %s did not finish; it is safe to retry", args.ContainerID), err.Error())
	}
	return nil
}

func cmdCheck(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if conf.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs prevResult", "")
	}
	prev, err := types100.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "prevResult cannot be converted", err.Error())
	}
	dir := control.SandboxDir(conf.StateDir, args.ContainerID)
	sc, err := control.ReadSandboxConfig(dir)
	if err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("container %s has no netprov state in %s", args.ContainerID, dir), err.Error())
	}
	if !stackAlive(readPID(dir), dir) {
		return types.NewError(types.ErrInternal, fmt.Sprintf("stack process of container %s is not running (log: %s)", args.ContainerID, filepath.Join(dir, control.LogFile)), "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := control.GetStatus(ctx, filepath.Join(dir, control.SocketFile))
	if err != nil || !st.Ready {
		return types.NewError(types.ErrInternal, fmt.Sprintf("stack process of container %s does not answer on its control socket", args.ContainerID), fmt.Sprint(err))
	}
	if conf.Mode == ModeAttach {
		if err := checkAttach(ctx, dir, st); err != nil {
			return err
		}
	} else if conf.Provider == "netstack" {
		if !linkExists(sc.TAP) {
			return types.NewError(types.ErrInternal, fmt.Sprintf("TAP %s of container %s is missing", sc.TAP, args.ContainerID), "")
		}
		if m := linkMaster(sc.TAP); m != conf.Bridge {
			return types.NewError(types.ErrInternal, fmt.Sprintf("TAP %s is on %q, not on bridge %s", sc.TAP, m, conf.Bridge), "")
		}
	}
	have := map[netip.Prefix]bool{}
	for _, a := range st.Addresses {
		have[a] = true
	}
	for _, ip := range prev.IPs {
		p, ok := prefixOf(ip.Address)
		if ok && !have[p] {
			return types.NewError(types.ErrInternal, fmt.Sprintf("stack of container %s lacks address %v", args.ContainerID, p), "")
		}
	}
	for _, itf := range prev.Interfaces {
		if itf.Sandbox != "" && itf.Name == args.IfName && itf.Mac != st.MAC {
			return types.NewError(types.ErrInternal, fmt.Sprintf("stack MAC %s differs from the result's %s", st.MAC, itf.Mac), "")
		}
	}
	if conf.IPAM.Type != "" && conf.Provider == "netstack" {
		if err := invoke.DelegateCheck(context.Background(), conf.IPAM.Type, ipamStdin(context.Background(), conf, args.StdinData), nil); err != nil {
			return ipamError("CHECK", conf.IPAM.Type, err)
		}
	}
	return nil
}

func cmdGC(args *skel.CmdArgs) error {
	conf, unlock, err := parseLocked(args.StdinData)
	if err != nil {
		return err
	}
	defer unlock()
	valid := map[types.GCAttachment]bool{}
	for _, a := range conf.ValidAttachments {
		valid[a] = true
	}
	entries, err := os.ReadDir(conf.StateDir)
	if err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("read %s", conf.StateDir), err.Error())
	}
	ctx := context.Background()
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		sc, err := control.ReadSandboxConfig(filepath.Join(conf.StateDir, e.Name()))
		if err != nil || sc.Network != conf.Name {
			continue // not ours, or not a sandbox directory
		}
		if valid[types.GCAttachment{ContainerID: sc.ContainerID, IfName: sc.IfName}] {
			continue
		}
		netconf := []byte(sc.NetConf)
		if len(netconf) == 0 {
			netconf = args.StdinData
		}
		// The IPAM plugin's DEL reads the attachment from the environment.
		os.Setenv("CNI_CONTAINERID", sc.ContainerID)
		os.Setenv("CNI_IFNAME", sc.IfName)
		os.Setenv("CNI_NETNS", "")
		if err := teardown(ctx, conf, netconf, sc.ContainerID, sc.IfName); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sc.ContainerID, err))
		}
	}
	if len(errs) > 0 {
		return types.NewError(types.ErrTryAgainLater, "GC could not remove every stale sandbox; it is safe to retry", errors.Join(errs...).Error())
	}
	return nil
}

func cmdStatus(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if conf.Provider == "netstack" && conf.Mode == ModeTAP {
		if _, err := invoke.FindInPath(conf.IPAM.Type, filepath.SplitList(os.Getenv("CNI_PATH"))); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("IPAM plugin %q not found in CNI_PATH", conf.IPAM.Type), err.Error())
		}
	}
	if err := os.MkdirAll(conf.StateDir, 0o755); err != nil || unix.Access(conf.StateDir, unix.W_OK) != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("state directory %s is not writable", conf.StateDir), fmt.Sprint(err))
	}
	if conf.AgentSocket != "" {
		c, err := net.DialTimeout("unixpacket", conf.AgentSocket, 2*time.Second)
		if err != nil {
			c, err = net.DialTimeout("unix", conf.AgentSocket, 2*time.Second)
		}
		if err != nil {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("netprov agent not reachable at %s (is `netprov agent` running?)", conf.AgentSocket), err.Error())
		}
		c.Close()
	}
	return nil
}

// ipamError wraps an IPAM plugin's failure, keeping its CNI error code.
func ipamError(verb, plugin string, err error) error {
	var te *types.Error
	if errors.As(err, &te) {
		return types.NewError(te.Code, fmt.Sprintf("IPAM plugin %s %s: %s", plugin, verb, te.Msg), te.Details)
	}
	return types.NewError(types.ErrInternal, fmt.Sprintf("IPAM plugin %s %s failed", plugin, verb), err.Error())
}

func prefixOf(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func gatewayFor(ips []*types100.IPConfig, v4 bool) netip.Addr {
	for _, ip := range ips {
		if ip.Gateway != nil && (ip.Gateway.To4() != nil) == v4 {
			a, _ := netip.AddrFromSlice(ip.Gateway)
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func appendRoute(rs []control.Route, r control.Route) []control.Route {
	for _, x := range rs {
		if x == r {
			return rs
		}
	}
	return append(rs, r)
}
