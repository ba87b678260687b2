package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/netprov/netprov/cni/kernelnet"
)

// attachOptions are `netprov run --netns PATH|NAME --attach IFACE`'s flags.
type attachOptions struct {
	netns  string // namespace file (a NAME is resolved to /run/netns/NAME)
	iface  string
	ips    []netip.Prefix    // --ip: replace the kernel's addresses
	routes []kernelnet.Route // --route: replace the kernel's routes
	dns    []string
	// pingGroupRange is as for the bridge mode.
	pingGroupRange string
}

// isAttachRun reports whether run's arguments (before "--") ask for
// attach mode.
func isAttachRun(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "attach" {
			return true
		}
	}
	return false
}

func parseAttachFlags(args []string) (*attachOptions, []string, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &attachOptions{}
	var ips, routes, dns multiFlag
	fs.StringVar(&o.netns, "netns", "", "existing network namespace (path or ip-netns name)")
	fs.StringVar(&o.iface, "attach", "", "interface in --netns the stack takes over")
	fs.Var(&ips, "ip", "CIDR for the stack instead of the interface's addresses (repeatable)")
	fs.Var(&routes, "route", `"DST via GW [mtu N] [advmss N]" instead of the interface's routes (repeatable)`)
	fs.Var(&dns, "dns", "DNS server for the sandbox's resolv.conf (repeatable)")
	fs.StringVar(&o.pingGroupRange, "ping-group-range", "", `net.ipv4.ping_group_range of the stack`)
	if err := fs.Parse(args); err != nil {
		return nil, nil, usageError{fmt.Sprintf("run: %v", err)}
	}
	if o.netns == "" {
		return nil, nil, usageError{"run: --attach needs --netns PATH|NAME"}
	}
	o.netns = kernelnet.ResolveNetns(o.netns)
	if o.iface == "" || len(o.iface) > 15 {
		return nil, nil, usageError{fmt.Sprintf("run: --attach %q: 1..15 characters", o.iface)}
	}
	for _, s := range ips {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, nil, usageError{fmt.Sprintf("run: --ip %q: not a CIDR", s)}
		}
		o.ips = append(o.ips, p)
	}
	for _, s := range routes {
		r, err := parseRouteSpec(s)
		if err != nil {
			return nil, nil, usageError{fmt.Sprintf("run: --route %q: %v", s, err)}
		}
		o.routes = append(o.routes, r)
	}
	for _, d := range dns {
		if _, err := netip.ParseAddr(d); err != nil {
			return nil, nil, usageError{fmt.Sprintf("run: --dns %q: not an address", d)}
		}
	}
	o.dns = dns
	switch o.pingGroupRange {
	case "", "inherit":
	default:
		if _, err := parseGroupRange(o.pingGroupRange); err != nil {
			return nil, nil, usageError{fmt.Sprintf("run: --ping-group-range %q: want \"LO HI\" or inherit", o.pingGroupRange)}
		}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return nil, nil, usageError{"run: no command given (netprov run [flags] -- CMD [ARGS...])"}
	}
	return o, rest, nil
}

// parseRouteSpec parses "DST [via GW] [src ADDR] [mtu N] [advmss N]
// [metric N]" as ip-route(8) spells it; DST is a CIDR, an address or
// "default" (IPv4 unless GW is IPv6).
func parseRouteSpec(s string) (kernelnet.Route, error) {
	var r kernelnet.Route
	f := strings.Fields(s)
	if len(f) == 0 || len(f)%2 != 1 {
		return r, errors.New(`want "DST via GW [mtu N] [advmss N]"`)
	}
	for i := 1; i < len(f); i += 2 {
		key, val := f[i], f[i+1]
		var err error
		switch key {
		case "via", "src":
			var a netip.Addr
			if a, err = netip.ParseAddr(val); err != nil {
				return r, fmt.Errorf("%s %q: not an address", key, val)
			}
			if key == "via" {
				r.Gateway = a
			} else {
				r.Src = a
			}
		case "mtu", "advmss", "metric":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > 65535 && key != "metric" {
				return r, fmt.Errorf("%s %q: not a number in range", key, val)
			}
			switch key {
			case "mtu":
				r.MTU = n
			case "advmss":
				r.AdvMSS = n
			default:
				r.Metric = n
			}
		default:
			return r, fmt.Errorf("unknown keyword %q (want via, src, mtu, advmss, metric)", key)
		}
	}
	if f[0] == "default" {
		r.Dst = netip.MustParsePrefix("0.0.0.0/0")
		if r.Gateway.Is6() {
			r.Dst = netip.MustParsePrefix("::/0")
		}
	} else {
		p, err := kernelnet.ParsePrefix(f[0])
		if err != nil {
			return r, fmt.Errorf("destination %q: not a CIDR", f[0])
		}
		r.Dst = p
	}
	if r.Gateway.IsValid() && r.Gateway.Is4() != r.Dst.Addr().Is4() {
		return r, errors.New("gateway and destination families differ")
	}
	if r.MTU != 0 && r.MTU < 68 {
		return r, fmt.Errorf("mtu %d below 68", r.MTU)
	}
	return r, nil
}
