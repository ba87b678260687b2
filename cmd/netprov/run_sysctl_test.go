package main

import (
	"os"
	"testing"

	"github.com/netprov/netprov/stack/dgram"
	"github.com/netprov/netprov/stack/tcp"
)

// TestNamespaceSysctlParsers: the sysctl files' formats, with Linux's
// rejections (a reversed or zero-based port range).
func TestNamespaceSysctlParsers(t *testing.T) {
	if r, err := parsePortRange("40000\t40000\n"); err != nil || r != [2]uint16{40000, 40000} {
		t.Errorf("one-port range: %v %v", r, err)
	}
	for _, bad := range []string{"", "1", "60999 32768", "0 10", "a b", "1 70000"} {
		if _, err := parsePortRange(bad); err == nil {
			t.Errorf("port range %q accepted", bad)
		}
	}
	m, err := parsePortList("8080,9000-9002\n")
	if err != nil || len(m) != 4 || !m[8080] || !m[9001] || m[9003] {
		t.Errorf("reserved ports: %v %v", m, err)
	}
	if m, err := parsePortList("\n"); err != nil || m != nil {
		t.Errorf("empty reserved ports: %v %v", m, err)
	}
	if _, err := parsePortList("9-8"); err == nil {
		t.Error("reversed reserved range accepted")
	}
	if r, err := parseGroupRange("1\t0\n"); err != nil || r != [2]uint32{1, 0} {
		t.Errorf("group range: %v %v", r, err)
	}
}

// TestPingGroupRange: ping_init_sock admits a caller whose effective or
// supplementary group is in the range; the kernel default "1 0" admits
// nobody, so `netprov run` then refuses echo sockets like the kernel.
func TestPingGroupRange(t *testing.T) {
	def := namespaceSysctls{pingGroup: [2]uint32{1, 0}}
	if def.pingAllowed(0, []int{0, 1, 2}) {
		t.Error(`"1 0" admitted a caller`)
	}
	wide := namespaceSysctls{pingGroup: [2]uint32{0, 2147483647}}
	if !wide.pingAllowed(0, nil) {
		t.Error(`"0 2147483647" refused gid 0`)
	}
	some := namespaceSysctls{pingGroup: [2]uint32{100, 200}}
	if some.pingAllowed(0, []int{5}) || !some.pingAllowed(0, []int{5, 150}) {
		t.Error("supplementary groups not honoured")
	}
	def.localPortRange = [2]uint16{40000, 40000}
	o := def.nodeOptions()
	if o.Stack.Config == nil || o.Stack.Config.LocalPortRange != [2]uint16{40000, 40000} || o.ICMP == nil {
		t.Fatalf("node options %+v", o)
	}
	if !o.ICMP.Disabled {
		t.Error(`echo sockets enabled under "1 0"`)
	}
}

// TestRunNoDefaultRoute: --no-default-route leaves only the subnet routes
// in the sandbox's configuration.
func TestRunNoDefaultRoute(t *testing.T) {
	o, _, err := parseRunFlags([]string{"--subnet", "10.213.7.0/24", "--ip", "10.213.7.9", "--ipv6-subnet", "fd00:213:7::/64", "--no-default-route", "--", "true"})
	if err != nil {
		t.Fatal(err)
	}
	c := buildSandboxConfig(o, o.ip)
	if !c.NoDefaultRoute || len(c.Routes) != 2 {
		t.Fatalf("config %+v", c)
	}
	for _, r := range c.Routes {
		if r.Via != "" || r.Dst == "0.0.0.0/0" || r.Dst == "::/0" {
			t.Errorf("route %+v with --no-default-route", r)
		}
	}
}

// TestPingGroupRangeFlag: --ping-group-range chooses the stack's range:
// every group by default, an explicit one, or the namespace's (inherit).
func TestPingGroupRangeFlag(t *testing.T) {
	if ns := readNamespaceSysctls(""); !ns.pingAllowed(0, nil) || !ns.pingAllowed(65534, nil) {
		t.Errorf("default range %v refuses a group", ns.pingGroup)
	}
	if ns := readNamespaceSysctls("1 0"); ns.pingAllowed(0, []int{0, 1}) {
		t.Errorf(`"1 0" gave %v`, ns.pingGroup)
	}
	if _, _, err := parseRunFlags([]string{"--ping-group-range", "x", "--", "true"}); err == nil {
		t.Error("bad --ping-group-range accepted")
	}
	for _, ok := range []string{"inherit", "0 10", ""} {
		if _, _, err := parseRunFlags([]string{"--ping-group-range", ok, "--", "true"}); err != nil {
			t.Errorf("--ping-group-range %q: %v", ok, err)
		}
	}
}

// TestCoreMemSysctls: net.core.rmem_max/wmem_max (global sysctls) become
// the TCP and datagram SO_RCVBUF/SO_SNDBUF ceilings of `netprov run`'s
// stack, so setsockopt(SO_RCVBUF, huge) reads back 2*rmem_max as on the
// host; missing or malformed files keep Linux's defaults.
func TestCoreMemSysctls(t *testing.T) {
	dir := t.TempDir() + "/"
	write := func(name, v string) {
		if err := os.WriteFile(dir+name, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rmem_max", "4194304\n")
	write("wmem_max", "1048576\n")
	write("rmem_default", "bogus\n")
	m := readCoreMem(dir)
	if m != (coreMemSysctls{rmemMax: 4194304, wmemMax: 1048576}) {
		t.Fatalf("readCoreMem = %+v", m)
	}
	ns := namespaceSysctls{pingGroup: [2]uint32{0, 2147483647}, coreMem: m}
	o := ns.nodeOptions()
	if o.TCP == nil || o.TCP.RmemMax != 4194304 || o.TCP.WmemMax != 1048576 {
		t.Errorf("tcp config %+v", o.TCP)
	}
	if o.UDP == nil || o.UDP.RmemMax != 4194304 || o.UDP.WmemMax != 1048576 ||
		o.UDP.RmemDefault != dgram.DefaultConfig().RmemDefault {
		t.Errorf("udp config %+v", o.UDP)
	}
	if o.ICMP == nil || o.ICMP.RmemMax != 4194304 || o.ICMP.WmemMax != 1048576 {
		t.Errorf("icmp config %+v", o.ICMP)
	}
	if d := tcp.DefaultConfig(); o.TCP.SynRetries != d.SynRetries {
		t.Errorf("tcp config lost its defaults: %+v", o.TCP)
	}
	empty := readCoreMem(t.TempDir() + "/")
	if empty != (coreMemSysctls{}) {
		t.Errorf("missing files: %+v", empty)
	}
	o = namespaceSysctls{coreMem: empty}.nodeOptions()
	if o.TCP.RmemMax != tcp.DefaultConfig().RmemMax || o.UDP.RmemMax != dgram.DefaultConfig().RmemMax {
		t.Errorf("defaults not kept: tcp %d udp %d", o.TCP.RmemMax, o.UDP.RmemMax)
	}
}
