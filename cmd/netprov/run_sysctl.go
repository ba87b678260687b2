package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/dgram"
	"github.com/netprov/netprov/stack/icmp"
	"github.com/netprov/netprov/stack/node"
	"github.com/netprov/netprov/stack/tcp"
	"github.com/netprov/netprov/stack/udp"
)

// procSysNet is where the current network namespace's IPv4 sysctls are.
const procSysNet = "/proc/sys/net/ipv4/"

// procSysNetCore holds net.core.rmem_max and friends: global (not
// per-namespace) values, the same file in every namespace.
const procSysNetCore = "/proc/sys/net/core/"

// namespaceSysctls are the per-namespace sysctls the stack of `netprov
// run` takes from the network namespace netprov is started in (the
// sandbox's own kernel namespace is new, so it has only the defaults): a
// sandbox behaves like a program run in that namespace without netprov.
// ping_group_range only with --ping-group-range inherit (see
// readNamespaceSysctls).
type namespaceSysctls struct {
	// localPortRange is net.ipv4.ip_local_port_range.
	localPortRange [2]uint16
	// reservedPorts is net.ipv4.ip_local_reserved_ports.
	reservedPorts map[uint16]bool
	// pingGroup is net.ipv4.ping_group_range ([lo, hi] of admitted gids).
	pingGroup [2]uint32
	// coreMem is net.core.{rmem,wmem}_{default,max}: global sysctls, so
	// SO_RCVBUF/SO_SNDBUF clamp to the host's ceilings (0 keeps Linux's
	// default).
	coreMem coreMemSysctls
}

// coreMemSysctls are net.core.rmem_default, rmem_max, wmem_default and
// wmem_max.
type coreMemSysctls struct {
	rmemDefault, rmemMax, wmemDefault, wmemMax int
}

// readCoreMem reads net.core.*mem* from dir; an unreadable or malformed
// file leaves its field 0 (the protocol's default).
func readCoreMem(dir string) coreMemSysctls {
	read := func(name string) int {
		b, err := os.ReadFile(dir + name)
		if err != nil {
			return 0
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || v <= 0 {
			return 0
		}
		return v
	}
	return coreMemSysctls{
		rmemDefault: read("rmem_default"),
		rmemMax:     read("rmem_max"),
		wmemDefault: read("wmem_default"),
		wmemMax:     read("wmem_max"),
	}
}

// applyTCP sets the SO_RCVBUF/SO_SNDBUF ceilings the host has; zero
// fields keep what the config had.
func (m coreMemSysctls) applyTCP(c *tcp.Config) {
	if m.rmemMax > 0 {
		c.RmemMax = m.rmemMax
	}
	if m.wmemMax > 0 {
		c.WmemMax = m.wmemMax
	}
}

// applyDgram sets the datagram sockets' initial buffers and ceilings.
func (m coreMemSysctls) applyDgram(c *dgram.Config) {
	if m.rmemDefault > 0 {
		c.RmemDefault = m.rmemDefault
	}
	if m.rmemMax > 0 {
		c.RmemMax = m.rmemMax
	}
	if m.wmemDefault > 0 {
		c.WmemDefault = m.wmemDefault
	}
	if m.wmemMax > 0 {
		c.WmemMax = m.wmemMax
	}
}

// readNamespaceSysctls reads the sysctls of the current network
// namespace; a file that cannot be read keeps Linux's default.
// pingGroupRange is --ping-group-range: "" admits every group, "inherit"
// takes the namespace's (the kernel default "1 0" admits nobody), else
// "LO HI" (validated by parseRunFlags).
func readNamespaceSysctls(pingGroupRange string) namespaceSysctls {
	ns := namespaceSysctls{
		localPortRange: stack.DefaultConfig().LocalPortRange,
		// Every group: systemd's default, what a sandbox's programs
		// expect from a distribution.
		pingGroup: [2]uint32{0, 2147483647},
		coreMem:   readCoreMem(procSysNetCore),
	}
	if b, err := os.ReadFile(procSysNet + "ip_local_port_range"); err == nil {
		if r, err := parsePortRange(string(b)); err == nil {
			ns.localPortRange = r
		}
	}
	if b, err := os.ReadFile(procSysNet + "ip_local_reserved_ports"); err == nil {
		if m, err := parsePortList(string(b)); err == nil {
			ns.reservedPorts = m
		}
	}
	switch pingGroupRange {
	case "":
	case "inherit":
		ns.pingGroup = [2]uint32{1, 0}
		if b, err := os.ReadFile(procSysNet + "ping_group_range"); err == nil {
			if r, err := parseGroupRange(string(b)); err == nil {
				ns.pingGroup = r
			}
		}
	default:
		if r, err := parseGroupRange(pingGroupRange); err == nil {
			ns.pingGroup = r
		}
	}
	return ns
}

// parsePortRange parses "32768\t60999".
func parsePortRange(s string) ([2]uint16, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return [2]uint16{}, fmt.Errorf("port range %q: want two numbers", s)
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 16)
	hi, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || lo == 0 || lo > hi {
		return [2]uint16{}, fmt.Errorf("port range %q: bad numbers", s)
	}
	return [2]uint16{uint16(lo), uint16(hi)}, nil
}

// parsePortList parses ip_local_reserved_ports: "" or "8080,9000-9010".
func parsePortList(s string) (map[uint16]bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	m := map[uint16]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || a > b {
			return nil, fmt.Errorf("reserved ports %q: bad entry %q", s, part)
		}
		for p := a; p <= b; p++ {
			m[uint16(p)] = true
		}
	}
	return m, nil
}

// parseGroupRange parses "1\t0" (the kernel default: nobody).
func parseGroupRange(s string) ([2]uint32, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return [2]uint32{}, fmt.Errorf("group range %q: want two numbers", s)
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 32)
	hi, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil {
		return [2]uint32{}, fmt.Errorf("group range %q: bad numbers", s)
	}
	return [2]uint32{uint32(lo), uint32(hi)}, nil
}

// pingAllowed is ping_init_sock's check: the caller's effective group or
// one of its supplementary groups lies in ping_group_range. The sandboxed
// program runs with netprov's credentials.
func (ns namespaceSysctls) pingAllowed(egid int, groups []int) bool {
	in := func(g int) bool { return uint32(g) >= ns.pingGroup[0] && uint32(g) <= ns.pingGroup[1] }
	if in(egid) {
		return true
	}
	for _, g := range groups {
		if in(g) {
			return true
		}
	}
	return false
}

// nodeOptions returns the stack options that carry the sysctls. Echo
// ("ping") sockets follow the stack's ping_group_range like the kernel's:
// under "1 0" (the kernel default, --ping-group-range inherit in a
// namespace that kept it) socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) fails
// with EACCES, and ping then needs raw sockets, which the stack does not
// serve; by default the range admits every group (systemd's setting), so
// ping works in the sandbox.
func (ns namespaceSysctls) nodeOptions() node.Options {
	cfg := stack.DefaultConfig()
	cfg.LocalPortRange = ns.localPortRange
	cfg.ReservedPorts = ns.reservedPorts
	ic := icmp.DefaultConfig()
	groups, _ := os.Getgroups()
	ic.Disabled = !ns.pingAllowed(os.Getegid(), groups)
	ns.coreMem.applyDgram(&ic.Config)
	tc := tcp.DefaultConfig()
	ns.coreMem.applyTCP(&tc)
	uc := udp.DefaultConfig()
	ns.coreMem.applyDgram(&uc)
	return node.Options{Stack: stack.Options{Config: &cfg}, TCP: &tc, UDP: &uc, ICMP: &ic}
}
