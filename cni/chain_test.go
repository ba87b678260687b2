package cni

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/netprov/netprov/cni/control"
)

// requirePlugins skips the test when a reference plugin is missing.
func requirePlugins(t *testing.T, names ...string) {
	t.Helper()
	for _, p := range names {
		if _, err := os.Stat(filepath.Join(systemCNIPath, p)); err != nil {
			t.Skipf("%s/%s missing (install containernetworking-plugins: scripts/setup)", systemCNIPath, p)
		}
	}
}

// TestChainTuningFirewallPortmap chains netprov with the reference
// tuning (a sysctl), firewall (iptables backend) and portmap plugins in
// one 1.0.0 conflist, as podman 4.3 runs it. ADD: the final result is
// still netprov's (bridge, TAP, sandbox interface; the address on the
// sandbox interface), tuning's sysctl took effect in the sandbox's
// kernel netns, firewall's CNI-FORWARD accepts the sandbox address,
// portmap's DNAT points at it. DEL: the per-sandbox rules are gone
// (firewall keeps its shared CNI-FORWARD/CNI-ADMIN chains, as it does
// for every network) and nothing of the sandbox is left.
func TestChainTuningFirewallPortmap(t *testing.T) {
	requirePlugins(t, "tuning", "firewall", "portmap")
	e := newEnv(t)
	const sysctl, want = "net.ipv4.ping_group_range", "0\t2147483647"
	sysctlFile := "/proc/sys/" + strings.ReplaceAll(sysctl, ".", "/")
	if b, err := e.sandbox.Exec("cat", sysctlFile); err != nil || strings.TrimSpace(string(b)) == want {
		t.Fatalf("%s in the fresh sandbox netns = %q (%v); want the kernel default, not %q", sysctl, b, err, want)
	}
	l := e.confListVersion("1.0.0", "npchain3", e.netprovConf(nil),
		map[string]any{"type": "tuning", "sysctl": map[string]string{sysctl: "0 2147483647"}},
		map[string]any{"type": "firewall", "backend": "iptables"},
		map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	id := uniqueID("ch")
	rt := e.rt(id)
	rt.CapabilityArgs = map[string]any{"portMappings": []map[string]any{{"hostPort": 18081, "containerPort": 8080, "protocol": "tcp"}}}
	r := e.addRT(l, rt)

	if len(r.Interfaces) != 3 || r.Interfaces[1].Name != tapName(id, "eth0") || r.Interfaces[2].Sandbox != e.sandbox.Path() {
		t.Fatalf("chained result interfaces %+v, want netprov's bridge, TAP, sandbox interface", r.Interfaces)
	}
	if len(r.IPs) != 1 || r.IPs[0].Interface == nil || *r.IPs[0].Interface != 2 {
		t.Fatalf("chained result ips %+v, want one on the sandbox interface", r.IPs)
	}
	ip := r.IPs[0].Address.IP.String()
	dir := control.SandboxDir(e.stateDir, id)
	pid := readPID(dir)
	if !stackAlive(pid, dir) {
		t.Fatalf("stack process %d not running after the chained ADD", pid)
	}

	if b := e.sandbox.Run(t, "cat", sysctlFile); strings.TrimSpace(string(b)) != want {
		t.Errorf("tuning: %s in the sandbox netns = %q, want %q", sysctl, b, want)
	}
	filter := string(e.host.Run(t, "iptables", "-w", "5", "-S", "CNI-FORWARD"))
	for _, rule := range []string{
		"-A CNI-FORWARD -d " + ip + "/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"-A CNI-FORWARD -s " + ip + "/32 -j ACCEPT",
	} {
		if !strings.Contains(filter, rule) {
			t.Errorf("firewall: rule %q missing:\n%s", rule, filter)
		}
	}
	if fwd := string(e.host.Run(t, "iptables", "-w", "5", "-S", "FORWARD")); !strings.Contains(fwd, "-j CNI-FORWARD") {
		t.Errorf("firewall: FORWARD does not jump to CNI-FORWARD:\n%s", fwd)
	}
	nat := string(e.host.Run(t, "iptables", "-w", "5", "-t", "nat", "-S"))
	if !strings.Contains(nat, "--to-destination "+ip+":8080") || !strings.Contains(nat, "--dport 18081") {
		t.Errorf("portmap: DNAT 18081 -> %s:8080 missing:\n%s", ip, nat)
	}

	if err := e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, l, rt) }); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if filter := string(e.host.Run(t, "iptables", "-w", "5", "-S")); strings.Contains(filter, ip) {
		t.Errorf("firewall rules for %s left after DEL:\n%s", ip, filter)
	}
	if nat := string(e.host.Run(t, "iptables", "-w", "5", "-t", "nat", "-S")); strings.Contains(nat, ip) || strings.Contains(nat, "18081") {
		t.Errorf("portmap rules left after DEL:\n%s", nat)
	}
	e.assertGone("npchain3", id, pid)
}

// TestChainPluginsNeedingAKernelInterface documents the reference plugins
// that cannot follow netprov: they look up CNI_IFNAME as a kernel device
// in the sandbox netns, and netprov's sandbox interface lives in the
// userspace stack (the sandbox's kernel netns has only lo; the host end
// is a TAP, not a veth peer). bandwidth (v1.1.1) finds its host device
// as the veth peer of CNI_IFNAME, so it cannot shape the TAP; tuning's
// mac (like mtu, promisc, allmulti) changes CNI_IFNAME itself. Each ADD
// fails with the plugin's "eth0 not found" error, and the DEL the runtime
// sends after a failed ADD (podman does) leaves nothing behind.
func TestChainPluginsNeedingAKernelInterface(t *testing.T) {
	requirePlugins(t, "tuning", "bandwidth")
	e := newEnv(t)
	for _, c := range []struct {
		name   string
		plugin map[string]any
		errMsg string
	}{
		{"bandwidth", map[string]any{"type": "bandwidth", "ingressRate": 8000000, "ingressBurst": 100000,
			"egressRate": 8000000, "egressBurst": 100000}, `container interface eth0 has no veth peer`},
		{"tuning-mac", map[string]any{"type": "tuning", "mac": "02:11:22:33:44:55"}, `failed to get "eth0"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "npk" + strings.ReplaceAll(c.name, "-", "")
			l := e.confListVersion("1.0.0", name, e.netprovConf(nil), c.plugin)
			id := uniqueID("kif")
			rt := e.rt(id)
			t.Cleanup(func() { e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, l, rt) }) })
			err := e.inHost(func(ctx context.Context) error { _, err := e.cni.AddNetworkList(ctx, l, rt); return err })
			if err == nil {
				t.Fatalf("ADD with %s succeeded; netprov's sandbox has no kernel eth0 for it to act on", c.name)
			}
			if !strings.Contains(err.Error(), c.errMsg) {
				t.Errorf("ADD error %q, want one containing %q", err, c.errMsg)
			}
			pid := readPID(control.SandboxDir(e.stateDir, id))
			if qd := string(e.host.Run(t, "tc", "qdisc", "show")); strings.Contains(qd, "tbf") || strings.Contains(qd, "ingress") {
				t.Errorf("a shaping qdisc appeared although ADD failed:\n%s", qd)
			}
			if err := e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, l, rt) }); err != nil {
				t.Fatalf("DEL after the failed ADD: %v", err)
			}
			e.assertGone(name, id, pid)
		})
	}
}

// addRT is add with a caller-built RuntimeConf (capability args).
func (e *testEnv) addRT(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *types100.Result {
	e.t.Helper()
	e.t.Cleanup(func() {
		e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, l, rt) })
		if dir := control.SandboxDir(e.stateDir, rt.ContainerID); stackAlive(readPID(dir), dir) {
			stopStack(dir, time.Second)
		}
	})
	var res types.Result
	if err := e.inHost(func(ctx context.Context) (err error) { res, err = e.cni.AddNetworkList(ctx, l, rt); return }); err != nil {
		e.t.Fatalf("ADD %s: %v", rt.ContainerID, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		b, _ := json.Marshal(res)
		e.t.Fatalf("result %s: %v", b, err)
	}
	return r
}
