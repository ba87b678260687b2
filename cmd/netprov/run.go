package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/provider/host"
	"github.com/netprov/netprov/provider/netstack"
	"github.com/netprov/netprov/provider/none"
	"github.com/netprov/netprov/socketshim"
	"github.com/netprov/netprov/socketshim/seccomp"
	"github.com/netprov/netprov/stack/link/tap"
	"github.com/netprov/netprov/stack/node"
)

// runOptions are `netprov run`'s flags.
type runOptions struct {
	provider    string
	bridge      string
	subnet      netip.Prefix
	ip          netip.Addr // zero: next free
	ipv6Subnet  netip.Prefix
	mtu         int
	dns         []string
	publish     []publishSpec
	printConfig bool
	// hostNetns is where the bridge, TAP and NAT live ("" = ours). Tests
	// point it at a namespace they made, never at the machine's own.
	hostNetns string
	// noDefaultRoute leaves the sandbox without a default route (only its
	// subnet is reachable), like a namespace with an address and no
	// gateway.
	noDefaultRoute bool
	// pingGroupRange is --ping-group-range: "" (every group), "inherit"
	// (the namespace netprov runs in) or "LO HI".
	pingGroupRange string
}

// publishSpec is one --publish HOSTPORT:PORT[/tcp|/udp].
type publishSpec struct {
	HostPort int    `json:"host_port"`
	Port     int    `json:"port"`
	Proto    string `json:"proto"`
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func parseRunFlags(args []string) (*runOptions, []string, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &runOptions{}
	var subnet, ip, subnet6 string
	var dns, publish multiFlag
	fs.StringVar(&o.provider, "provider", "netstack", "netstack, host or none")
	fs.StringVar(&o.bridge, "bridge", "netprov0", "host bridge for the sandbox's TAP (created if missing)")
	fs.StringVar(&subnet, "subnet", "10.213.0.0/24", "IPv4 subnet of the bridge")
	fs.StringVar(&ip, "ip", "", "sandbox IPv4 address (default: next free)")
	fs.StringVar(&subnet6, "ipv6-subnet", "", "optional IPv6 subnet")
	fs.IntVar(&o.mtu, "mtu", 1500, "MTU of the sandbox's link")
	fs.Var(&dns, "dns", "DNS server for the sandbox's resolv.conf (repeatable)")
	fs.Var(&publish, "publish", "HOSTPORT:PORT[/tcp|/udp] (repeatable)")
	fs.BoolVar(&o.printConfig, "print-config", false, "print the sandbox's network configuration as JSON and exit")
	fs.BoolVar(&o.noDefaultRoute, "no-default-route", false, "give the sandbox no default route (only its subnet is reachable)")
	fs.StringVar(&o.pingGroupRange, "ping-group-range", "", `net.ipv4.ping_group_range of the stack: "LO HI", "inherit" (this namespace's) or empty for every group`)
	fs.StringVar(&o.hostNetns, "host-netns", os.Getenv("NETPROV_HOST_NETNS"), "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println("usage: netprov run [flags] -- CMD [ARGS...]")
			fs.VisitAll(func(f *flag.Flag) {
				if f.Usage != "" { // --host-netns is for tests
					fmt.Printf("  --%-12s %s (default %q)\n", f.Name, f.Usage, f.DefValue)
				}
			})
		}
		return nil, nil, usageError{fmt.Sprintf("run: %v", err)}
	}
	var err error
	if o.subnet, err = netip.ParsePrefix(subnet); err != nil || !o.subnet.Addr().Is4() {
		return nil, nil, usageError{fmt.Sprintf("run: --subnet %q: not an IPv4 CIDR", subnet)}
	}
	o.subnet = o.subnet.Masked()
	if o.subnet.Bits() > 30 {
		return nil, nil, usageError{fmt.Sprintf("run: --subnet %v is too small", o.subnet)}
	}
	if ip != "" {
		if o.ip, err = netip.ParseAddr(ip); err != nil || !o.subnet.Contains(o.ip) {
			return nil, nil, usageError{fmt.Sprintf("run: --ip %q is not an address in %v", ip, o.subnet)}
		}
	}
	if subnet6 != "" {
		if o.ipv6Subnet, err = netip.ParsePrefix(subnet6); err != nil || !o.ipv6Subnet.Addr().Is6() {
			return nil, nil, usageError{fmt.Sprintf("run: --ipv6-subnet %q: not an IPv6 CIDR", subnet6)}
		}
		o.ipv6Subnet = o.ipv6Subnet.Masked()
	}
	for _, d := range dns {
		if _, err := netip.ParseAddr(d); err != nil {
			return nil, nil, usageError{fmt.Sprintf("run: --dns %q: not an address", d)}
		}
	}
	o.dns = dns
	for _, p := range publish {
		ps, err := parsePublish(p)
		if err != nil {
			return nil, nil, usageError{fmt.Sprintf("run: --publish %q: %v", p, err)}
		}
		o.publish = append(o.publish, ps)
	}
	switch o.pingGroupRange {
	case "", "inherit":
	default:
		if _, err := parseGroupRange(o.pingGroupRange); err != nil {
			return nil, nil, usageError{fmt.Sprintf("run: --ping-group-range %q: want \"LO HI\" or inherit", o.pingGroupRange)}
		}
	}
	if o.mtu < 576 || o.mtu > 65535 {
		return nil, nil, usageError{fmt.Sprintf("run: --mtu %d out of range 576..65535", o.mtu)}
	}
	switch o.provider {
	case "netstack", "host", "none":
	default:
		return nil, nil, usageError{fmt.Sprintf("run: --provider %q: want netstack, host or none", o.provider)}
	}
	if len(o.bridge) == 0 || len(o.bridge) > 15 {
		return nil, nil, usageError{fmt.Sprintf("run: --bridge %q: 1..15 characters", o.bridge)}
	}
	rest := fs.Args()
	if !o.printConfig && len(rest) == 0 {
		return nil, nil, usageError{"run: no command given (netprov run [flags] -- CMD [ARGS...])"}
	}
	return o, rest, nil
}

func parsePublish(s string) (publishSpec, error) {
	ps := publishSpec{Proto: "tcp"}
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		ps.Proto = s[i+1:]
		s = s[:i]
		if ps.Proto != "tcp" && ps.Proto != "udp" {
			return ps, errors.New("protocol must be tcp or udp")
		}
	}
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return ps, errors.New("want HOSTPORT:PORT")
	}
	var err1, err2 error
	ps.HostPort, err1 = strconv.Atoi(h)
	ps.Port, err2 = strconv.Atoi(p)
	if err1 != nil || err2 != nil || ps.HostPort < 1 || ps.HostPort > 65535 || ps.Port < 1 || ps.Port > 65535 {
		return ps, errors.New("ports must be 1..65535")
	}
	return ps, nil
}

// sandboxConfig is the sandbox's network as --print-config shows it and
// as the stage configures the sandbox's kernel namespace.
type sandboxConfig struct {
	Provider  string        `json:"provider"`
	Bridge    string        `json:"bridge,omitempty"`
	Subnet    string        `json:"subnet,omitempty"`
	Gateway   string        `json:"gateway,omitempty"`
	Address   string        `json:"address,omitempty"` // CIDR
	Subnet6   string        `json:"ipv6_subnet,omitempty"`
	Gateway6  string        `json:"ipv6_gateway,omitempty"`
	Address6  string        `json:"ipv6_address,omitempty"`
	MTU       int           `json:"mtu"`
	DNS       []string      `json:"dns,omitempty"`
	Routes    []routeConfig `json:"routes"`
	Publish   []publishSpec `json:"publish,omitempty"`
	Interface string        `json:"interface,omitempty"`
	HostNetns string        `json:"host_netns,omitempty"` // provider host
	// NoDefaultRoute: --no-default-route (Gateway is still the bridge's
	// address, for NAT and --publish, but nothing routes through it).
	NoDefaultRoute bool `json:"no_default_route,omitempty"`
	// AttachNetns: --netns with --attach; CMD runs in it (attach.go).
	AttachNetns string `json:"attach_netns,omitempty"`
}

type routeConfig struct {
	Dst string `json:"dst"`
	Via string `json:"via,omitempty"`
	Dev string `json:"dev"`
}

const sandboxIface = "eth0"

func buildSandboxConfig(o *runOptions, addr netip.Addr) sandboxConfig {
	c := sandboxConfig{Provider: o.provider, MTU: o.mtu, DNS: o.dns, Interface: sandboxIface, Publish: o.publish}
	switch o.provider {
	case "none":
		c.Interface = "lo"
		c.Routes = []routeConfig{{Dst: "127.0.0.0/8", Dev: "lo"}}
		return c
	case "host":
		// The host namespace's own addresses and routes apply.
		c.Interface = ""
		c.Routes = []routeConfig{}
		c.HostNetns = o.hostNetns
		if c.HostNetns == "" {
			c.HostNetns = "/proc/1/ns/net"
		}
		return c
	}
	gw := o.subnet.Addr().Next()
	c.Bridge = o.bridge
	c.Subnet = o.subnet.String()
	c.Gateway = gw.String()
	c.Address = netip.PrefixFrom(addr, o.subnet.Bits()).String()
	c.NoDefaultRoute = o.noDefaultRoute
	if !o.noDefaultRoute {
		c.Routes = append(c.Routes, routeConfig{Dst: "0.0.0.0/0", Via: gw.String(), Dev: sandboxIface})
	}
	c.Routes = append(c.Routes, routeConfig{Dst: o.subnet.String(), Dev: sandboxIface})
	if o.ipv6Subnet.IsValid() {
		gw6 := o.ipv6Subnet.Addr().Next()
		c.Subnet6 = o.ipv6Subnet.String()
		c.Gateway6 = gw6.String()
		c.Address6 = netip.PrefixFrom(ipv6HostFor(o.ipv6Subnet, addr, o.subnet), o.ipv6Subnet.Bits()).String()
		if !o.noDefaultRoute {
			c.Routes = append(c.Routes, routeConfig{Dst: "::/0", Via: gw6.String(), Dev: sandboxIface})
		}
		c.Routes = append(c.Routes, routeConfig{Dst: o.ipv6Subnet.String(), Dev: sandboxIface})
	}
	return c
}

// ipv6HostFor gives the sandbox the IPv6 address whose host part is its
// IPv4 host number (10.213.0.5 in /24 → SUBNET::5).
func ipv6HostFor(p6 netip.Prefix, a4 netip.Addr, p4 netip.Prefix) netip.Addr {
	host := ipv4Uint(a4) &^ ipv4Uint(p4.Masked().Addr())
	b := p6.Addr().As16()
	b[12], b[13], b[14], b[15] = byte(host>>24), byte(host>>16), byte(host>>8), byte(host)
	return netip.AddrFrom16(b)
}

func ipv4Uint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// runRun is `netprov run`.
func runRun(ctx context.Context, args []string) error {
	if seccomp.IsStage() {
		return runStageMain(args)
	}
	if isAttachRun(args) {
		return runAttach(ctx, args)
	}
	o, cmdArgs, err := parseRunFlags(args)
	if err != nil {
		return err
	}
	log := slog.Default()
	hn := hostNet{ns: o.hostNetns, log: log}
	if o.printConfig {
		addr := o.ip
		if !addr.IsValid() && o.provider == "netstack" {
			if addr, err = hn.peekFreeIP(o); err != nil {
				return err
			}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(buildSandboxConfig(o, addr))
	}
	if os.Geteuid() != 0 {
		return errors.New("run: needs root (network namespaces, TAP, seccomp listener)")
	}
	sb, err := setUpSandboxNet(ctx, o, &hn)
	if err != nil {
		hn.teardown()
		return err
	}
	code, err := runSandboxed(ctx, o, sb, cmdArgs, log)
	sb.close()
	hn.teardown()
	if err != nil {
		return err
	}
	os.Exit(code)
	return nil
}

// sandboxNet is what the supervisor holds for one sandbox.
type sandboxNet struct {
	cfg  sandboxConfig
	prov provider.Provider
}

func (s *sandboxNet) close() {
	if s.prov != nil {
		s.prov.Close()
	}
}

// setUpSandboxNet builds the provider: for netstack, a stack node whose
// eth0 is a TAP on the bridge in the host namespace.
func setUpSandboxNet(ctx context.Context, o *runOptions, hn *hostNet) (*sandboxNet, error) {
	switch o.provider {
	case "none":
		p, err := none.NewWithOptions(readNamespaceSysctls(o.pingGroupRange).nodeOptions())
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		return &sandboxNet{cfg: buildSandboxConfig(o, netip.Addr{}), prov: p}, nil
	case "host":
		// Kernel sockets in the host namespace, like runsc
		// --network=host: no bridge, TAP or NAT.
		ns := o.hostNetns
		if ns == "" {
			ns = "/proc/self/ns/net"
		}
		p, err := host.New(ns)
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		return &sandboxNet{cfg: buildSandboxConfig(o, netip.Addr{}), prov: p}, nil
	}
	addr, err := hn.allocIP(o)
	if err != nil {
		return nil, err
	}
	cfg := buildSandboxConfig(o, addr)
	if err := hn.ensureBridge(ctx, o); err != nil {
		return nil, err
	}
	tapName, err := hn.tapName()
	if err != nil {
		return nil, err
	}
	// The virtio-net header lets the stack send 64 KiB TCP super-segments
	// that the kernel segments (GSO) and receive coalesced ones (GRO): the
	// per-frame cost, not TCP, limits a TAP otherwise.
	ep, err := tap.New(tap.Config{Name: tapName, MTU: o.mtu, NetNS: o.hostNetns, VnetHdr: true})
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	hn.tap = tapName
	if err := hn.attachTAP(ctx, o, tapName); err != nil {
		ep.Close()
		return nil, err
	}
	// The stack takes the sysctls of the namespace netprov runs in.
	n, err := node.New(readNamespaceSysctls(o.pingGroupRange).nodeOptions())
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("run: stack: %w", err)
	}
	prefixes := []netip.Prefix{netip.MustParsePrefix(cfg.Address)}
	if cfg.Address6 != "" {
		prefixes = append(prefixes, netip.MustParsePrefix(cfg.Address6))
	}
	nic, err := n.AddNIC(ep, sandboxIface, prefixes...)
	if err != nil {
		n.Close()
		ep.Close()
		return nil, fmt.Errorf("run: stack NIC: %w", err)
	}
	// The TAP is on the bridge already: a host that kept a neighbour entry
	// for a reused address learns the new MAC now (gratuitous ARP).
	if a := n.ARP.Endpoint(nic.ID()); a != nil {
		a.Announce()
	}
	// Without a default route only the subnets (from the NIC's prefixes)
	// are reachable.
	if !cfg.NoDefaultRoute {
		if err := n.AddDefaultRoute(netip.MustParseAddr(cfg.Gateway)); err != nil {
			n.Close()
			return nil, fmt.Errorf("run: %w", err)
		}
	}
	if cfg.Gateway6 != "" && !cfg.NoDefaultRoute {
		if err := n.AddDefaultRoute(netip.MustParseAddr(cfg.Gateway6)); err != nil {
			n.Close()
			return nil, fmt.Errorf("run: %w", err)
		}
	}
	if err := hn.setUpNAT(ctx, o, addr); err != nil {
		n.Close()
		return nil, err
	}
	if err := hn.setUpPublish(ctx, o, addr); err != nil {
		n.Close()
		return nil, err
	}
	p := netstack.NewWithConfig(n, netstack.Config{OwnsNode: true})
	return &sandboxNet{cfg: cfg, prov: p}, nil
}

// runSandboxed starts CMD through the stage (a re-exec of this binary in a
// new network and mount namespace), serves its socket calls and returns
// its exit status (128+N when killed by signal N).
func runSandboxed(ctx context.Context, o *runOptions, sb *sandboxNet, cmdArgs []string, log *slog.Logger) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("run: %w", err)
	}
	cfgJSON, err := json.Marshal(sb.cfg)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(self, append([]string{"run", "--"}, cmdArgs...)...)
	cmd.Env = append(os.Environ(), stageConfigEnv+"="+string(cfgJSON))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET | unix.CLONE_NEWNS}
	sc, err := seccomp.StartStage(cmd)
	if err != nil {
		return 0, fmt.Errorf("run: %w", err)
	}
	defer sc.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := sc.ReceiveListener(setupCtx)
	if err != nil {
		cmd.Process.Kill()
		<-exited
		if errors.Is(err, exec.ErrNotFound) || strings.Contains(err.Error(), exec.ErrNotFound.Error()) {
			// As a shell says it: command not found is 127.
			fmt.Fprintf(os.Stderr, "netprov: run: %s: command not found\n", cmdArgs[0])
			return 127, nil
		}
		return 0, fmt.Errorf("run: %w", err)
	}
	defer l.Close()
	srv := socketshim.NewServer(l, sb.prov, socketshim.Config{Logger: log})
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx) }()
	if err := sc.Release(setupCtx); err != nil {
		cmd.Process.Kill()
		<-exited
		stopServe()
		<-served
		return 0, fmt.Errorf("run: %w", err)
	}
	// Signals for netprov go to CMD, and netprov waits for CMD to end.
	// SIGINT is not passed on: from a terminal CMD (same process group)
	// gets it itself.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	defer signal.Stop(sigs)
	var werr error
wait:
	for {
		select {
		case werr = <-exited:
			break wait
		case sig := <-sigs:
			cmd.Process.Signal(sig)
		}
	}
	// The sandbox ends with CMD: descendants still filtered get ENOSYS.
	stopServe()
	<-served
	return exitCode(cmd, werr)
}

func exitCode(cmd *exec.Cmd, werr error) (int, error) {
	st := cmd.ProcessState
	if st == nil {
		return 0, fmt.Errorf("run: %w", werr)
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok {
		return st.ExitCode(), nil
	}
	switch {
	case ws.Signaled():
		return 128 + int(ws.Signal()), nil
	case ws.Exited():
		return ws.ExitStatus(), nil
	}
	return 1, nil
}
