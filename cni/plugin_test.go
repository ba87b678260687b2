package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/integration/netns"
)

// TestAddCheckDel: ADD returns the bridge, the TAP and a sandbox interface
// with the stack's MAC in the sandbox netns, a host-local address with the
// gateway and a default route; the stack process runs, answers status with
// the same MAC and address and owns a TAP on the bridge; the stack log
// warns that no seccomp fd arrived; CHECK passes; DEL leaves nothing; a
// second DEL succeeds.
func TestAddCheckDel(t *testing.T) {
	e := newEnv(t)
	l := e.confList("npnet", e.netprovConf(nil))
	id := uniqueID("acd")
	r := e.add(l, id)

	if len(r.Interfaces) != 3 {
		t.Fatalf("interfaces = %d, want 3 (bridge, TAP, sandbox): %+v", len(r.Interfaces), r.Interfaces)
	}
	br, tap, sb := r.Interfaces[0], r.Interfaces[1], r.Interfaces[2]
	if br.Name != e.bridge || tap.Name != tapName(id, "eth0") || sb.Name != "eth0" || sb.Sandbox != e.sandbox.Path() {
		t.Errorf("interfaces = %+v %+v %+v", br, tap, sb)
	}
	for _, itf := range r.Interfaces {
		if _, err := net.ParseMAC(itf.Mac); err != nil {
			t.Errorf("interface %s has no valid MAC (%q): podman rejects that", itf.Name, itf.Mac)
		}
	}
	if len(r.IPs) != 1 || r.IPs[0].Interface == nil || *r.IPs[0].Interface != 2 {
		t.Fatalf("ips = %+v, want one on interface 2", r.IPs)
	}
	_, subnet, _ := net.ParseCIDR(e.subnet)
	if !subnet.Contains(r.IPs[0].Address.IP) || r.IPs[0].Gateway.String() != e.gateway {
		t.Errorf("ip %v gw %v, want in %s via %s", r.IPs[0].Address, r.IPs[0].Gateway, e.subnet, e.gateway)
	}
	if !slices.ContainsFunc(r.Routes, func(rt *types.Route) bool { return rt.Dst.String() == "0.0.0.0/0" && rt.GW.String() == e.gateway }) {
		t.Errorf("routes %v lack the default route via %s", r.Routes, e.gateway)
	}
	if leases := e.leases("npnet"); !slices.Contains(leases, r.IPs[0].Address.IP.String()) {
		t.Errorf("host-local leases %v lack %v", leases, r.IPs[0].Address.IP)
	}

	dir := control.SandboxDir(e.stateDir, id)
	pid := readPID(dir)
	if !stackAlive(pid, dir) {
		t.Fatalf("stack process %d not running", pid)
	}
	for _, f := range []string{control.PIDFile, control.SocketFile, control.LogFile, control.ConfigFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("state file: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := control.GetStatus(ctx, control.SocketPath(e.stateDir, id))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.PID != pid || st.ContainerID != id || st.MAC != sb.Mac || st.Provider != "netstack" ||
		len(st.Addresses) != 1 || st.Addresses[0].String() != r.IPs[0].Address.String() {
		t.Errorf("status = %+v; want ready pid %d mac %s address %v", st, pid, sb.Mac, r.IPs[0].Address.String())
	}
	if links := e.hostLinks(); !strings.Contains(links, tap.Name+": ") || !strings.Contains(links, "master "+e.bridge) {
		t.Errorf("TAP %s not on bridge %s:\n%s", tap.Name, e.bridge, links)
	}
	netns.WaitFor(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, control.LogFile))
		return bytes.Contains(b, []byte("no seccomp fd handed off")) && bytes.Contains(b, []byte(id))
	})

	if err := e.inHost(func(ctx context.Context) error { return e.cni.CheckNetworkList(ctx, l, e.rt(id)) }); err != nil {
		t.Errorf("CHECK: %v", err)
	}

	if err := e.del(l, id); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	e.assertGone("npnet", id, pid)
	if err := e.del(l, id); err != nil {
		t.Errorf("second DEL: %v (must be idempotent)", err)
	}
}

// TestCheckFailsWhenStackDies: CHECK reports a killed stack process, and
// DEL still cleans up after it.
func TestCheckFailsWhenStackDies(t *testing.T) {
	e := newEnv(t)
	l := e.confList("npnet", e.netprovConf(nil))
	id := uniqueID("die")
	e.add(l, id)
	dir := control.SandboxDir(e.stateDir, id)
	pid := readPID(dir)
	if err := syscallKill(pid); err != nil {
		t.Fatal(err)
	}
	netns.WaitFor(t, 5*time.Second, func() bool { return !stackAlive(pid, dir) })
	err := e.inHost(func(ctx context.Context) error { return e.cni.CheckNetworkList(ctx, l, e.rt(id)) })
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("CHECK after kill: %v, want 'not running'", err)
	}
	if err := e.del(l, id); err != nil {
		t.Fatalf("DEL after kill: %v", err)
	}
	e.assertGone("npnet", id, pid)
}

// TestGC: with two sandboxes and only the first valid, GC removes the
// second (process, TAP, state, lease) and keeps the first. libcni gets an
// empty cache so that only the plugin's GC can do the work.
func TestGC(t *testing.T) {
	e := newEnv(t)
	l := e.confList("npgc", e.netprovConf(nil))
	keep, drop := uniqueID("keep"), uniqueID("drop")
	e.add(l, keep)
	e.add(l, drop)
	keepDir, dropDir := control.SandboxDir(e.stateDir, keep), control.SandboxDir(e.stateDir, drop)
	keepPID, dropPID := readPID(keepDir), readPID(dropDir)

	gcCNI := libcni.NewCNIConfigWithCacheDir([]string{e.pluginDir, systemCNIPath}, t.TempDir(), nil)
	err := e.inHost(func(ctx context.Context) error {
		return gcCNI.GCNetworkList(ctx, l, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: keep, IfName: "eth0"}}})
	})
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	e.assertGone("npgc", drop, dropPID)
	if !stackAlive(keepPID, keepDir) {
		t.Errorf("GC stopped the valid sandbox %s", keep)
	}
	if err := e.inHost(func(ctx context.Context) error { return e.cni.CheckNetworkList(ctx, l, e.rt(keep)) }); err != nil {
		t.Errorf("CHECK of kept sandbox after GC: %v", err)
	}
}

// TestStatus: STATUS succeeds with host-local on CNI_PATH, fails with code
// 50 (plugin not available) naming a missing IPAM plugin or an agent
// socket nobody listens on.
func TestStatus(t *testing.T) {
	e := newEnv(t)
	ok := e.confList("npst", e.netprovConf(nil))
	if err := e.inHost(func(ctx context.Context) error { return e.cni.GetStatusNetworkList(ctx, ok) }); err != nil {
		t.Errorf("STATUS: %v", err)
	}
	c := e.netprovConf(nil)
	c["ipam"].(map[string]any)["type"] = "no-such-ipam"
	assertCode(t, e.inHost(func(ctx context.Context) error { return e.cni.GetStatusNetworkList(ctx, e.confList("npst", c)) }),
		types.ErrPluginNotAvailable, "no-such-ipam")
	agent := filepath.Join(t.TempDir(), "agent.sock")
	c = e.netprovConf(map[string]any{"agentSocket": agent})
	assertCode(t, e.inHost(func(ctx context.Context) error { return e.cni.GetStatusNetworkList(ctx, e.confList("npst", c)) }),
		types.ErrPluginNotAvailable, "agent")
}

// TestVersion: VERSION lists the spec versions runtimes ask for.
func TestVersion(t *testing.T) {
	e := newEnv(t)
	var got []string
	err := e.inHost(func(ctx context.Context) error {
		info, err := e.cni.GetVersionInfo(ctx, "netprov")
		if err == nil {
			got = info.SupportedVersions()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		if !slices.Contains(got, v) {
			t.Errorf("VERSION %v lacks %s", got, v)
		}
	}
}

// TestBadInput runs the plugin binary directly with broken input: each
// case exits non-zero with CNI error JSON carrying the spec's code and a
// message, and nothing is left behind (no state, no TAP, no lease).
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	good, _ := json.Marshal(withKeys(e.netprovConf(nil), map[string]any{"cniVersion": "1.0.0", "name": "npbad"}))
	unknownProv, _ := json.Marshal(withKeys(e.netprovConf(map[string]any{"provider": "quantum"}), map[string]any{"cniVersion": "1.0.0", "name": "npbad"}))
	noIPAM := withKeys(e.netprovConf(nil), map[string]any{"cniVersion": "1.0.0", "name": "npbad"})
	delete(noIPAM, "ipam")
	noIPAMb, _ := json.Marshal(noIPAM)
	future, _ := json.Marshal(withKeys(e.netprovConf(nil), map[string]any{"cniVersion": "9.0.0", "name": "npbad"}))
	base := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "badinput1", "CNI_NETNS": e.sandbox.Path(),
		"CNI_IFNAME": "eth0", "CNI_PATH": e.pluginDir + ":" + systemCNIPath}
	cases := []struct {
		name  string
		stdin []byte
		unset string
		code  uint
		msg   string
	}{
		{"malformed JSON", []byte(`{"cniVersion": "1.0.0", "name": `), "", types.ErrDecodingFailure, ""},
		{"missing CNI_CONTAINERID", good, "CNI_CONTAINERID", types.ErrInvalidEnvironmentVariables, "CNI_CONTAINERID"},
		{"missing CNI_NETNS", good, "CNI_NETNS", types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"unknown provider", unknownProv, "", types.ErrInvalidNetworkConfig, "quantum"},
		{"no ipam", noIPAMb, "", types.ErrInvalidNetworkConfig, "ipam"},
		{"incompatible version", future, "", types.ErrIncompatibleCNIVersion, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := e.host.Do(func() error {
				cmd := exec.Command(filepath.Join(e.pluginDir, "netprov"))
				cmd.Stdin = bytes.NewReader(c.stdin)
				cmd.Stdout = &out
				cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
				for k, v := range base {
					if k != c.unset {
						cmd.Env = append(cmd.Env, k+"="+v)
					}
				}
				return cmd.Run()
			})
			if err == nil {
				t.Fatalf("plugin succeeded; output %s", out.String())
			}
			var ce types.Error
			if jerr := json.Unmarshal(out.Bytes(), &ce); jerr != nil {
				t.Fatalf("output is not CNI error JSON: %v: %q", jerr, out.String())
			}
			if ce.Code != c.code || ce.Msg == "" || !strings.Contains(ce.Msg+ce.Details, c.msg) {
				t.Errorf("error %+v, want code %d mentioning %q", ce, c.code, c.msg)
			}
		})
	}
	if ents, _ := os.ReadDir(e.stateDir); slices.ContainsFunc(ents, func(d os.DirEntry) bool { return d.IsDir() }) {
		t.Errorf("state dir has leftovers: %v", ents)
	}
	if strings.Contains(e.hostLinks(), tapName("badinput1", "eth0")) {
		t.Errorf("TAP left behind")
	}
	if l := e.leases("npbad"); len(l) > 0 {
		t.Errorf("leases left behind: %v", l)
	}
}

// TestChainPortmap: netprov + the reference portmap plugin with
// runtimeConfig portMappings: portmap's DNAT to the sandbox's address
// appears in the host namespace's nat table and leaves with DEL. The
// conflist is 1.0.0 as podman 4.3 writes it (Debian 12's portmap stops
// at 1.0.0).
func TestChainPortmap(t *testing.T) {
	e := newEnv(t)
	l := e.confListVersion("1.0.0", "npchain", e.netprovConf(map[string]any{"ipMasq": true}),
		map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	id := uniqueID("pm")
	rt := e.rt(id)
	rt.CapabilityArgs = map[string]any{"portMappings": []map[string]any{{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}}}
	e.t.Cleanup(func() {
		e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, l, rt) })
	})
	var res types.Result
	if err := e.inHost(func(ctx context.Context) (err error) { res, err = e.cni.AddNetworkList(ctx, l, rt); return }); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	b, _ := json.Marshal(res)
	var r struct {
		IPs []struct{ Address string } `json:"ips"`
	}
	json.Unmarshal(b, &r)
	if len(r.IPs) != 1 {
		t.Fatalf("result %s", b)
	}
	ip, _, _ := net.ParseCIDR(r.IPs[0].Address)
	nat := string(e.host.Run(t, "iptables", "-w", "5", "-t", "nat", "-S"))
	if !strings.Contains(nat, "--to-destination "+ip.String()+":80") || !strings.Contains(nat, "--dport 18080") {
		t.Errorf("portmap DNAT to %s:80 for 18080 missing:\n%s", ip, nat)
	}
	if !strings.Contains(nat, masqChain(id, "eth0")) {
		t.Errorf("ipMasq chain %s missing:\n%s", masqChain(id, "eth0"), nat)
	}
	if err := e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, l, rt) }); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	nat = string(e.host.Run(t, "iptables", "-w", "5", "-t", "nat", "-S"))
	if strings.Contains(nat, ip.String()) || strings.Contains(nat, "18080") || strings.Contains(nat, masqChain(id, "eth0")) {
		t.Errorf("rules left after DEL:\n%s", nat)
	}
	e.assertGone("npchain", id, 0)
}

func withKeys(m map[string]any, kv map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range kv {
		out[k] = v
	}
	return out
}

func assertCode(t *testing.T, err error, code uint, msg string) {
	t.Helper()
	var ce *types.Error
	if err == nil {
		t.Errorf("succeeded, want CNI error %d", code)
		return
	}
	if !errorsAs(err, &ce) || ce.Code != code || !strings.Contains(ce.Msg+ce.Details, msg) {
		t.Errorf("error %v, want code %d mentioning %q", err, code, msg)
	}
}

// TestStackSIGTERM: the stack process ends cleanly on SIGTERM: it logs
// its stop, removes its control socket and pid file, and its TAP goes
// with it; DEL afterwards still succeeds.
func TestStackSIGTERM(t *testing.T) {
	e := newEnv(t)
	l := e.confList("npnet", e.netprovConf(nil))
	id := uniqueID("term")
	e.add(l, id)
	dir := control.SandboxDir(e.stateDir, id)
	pid := readPID(dir)
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	netns.WaitFor(t, 5*time.Second, func() bool { return !stackAlive(pid, dir) })
	b, _ := os.ReadFile(filepath.Join(dir, control.LogFile))
	if !bytes.Contains(b, []byte("stack stopped")) {
		t.Errorf("log lacks a clean stop:\n%s", b)
	}
	for _, f := range []string{control.SocketFile, control.PIDFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after SIGTERM (%v)", f, err)
		}
	}
	if strings.Contains(e.hostLinks(), tapName(id, "eth0")) {
		t.Errorf("TAP outlived its stack process")
	}
	if err := e.del(l, id); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	e.assertGone("npnet", id, pid)
}

// TestProviderHost: provider "host" needs no IPAM, bridge or TAP: the
// result is the sandbox interface with a MAC, and the stack process
// serves kernel sockets of the host namespace.
func TestProviderHost(t *testing.T) {
	e := newEnv(t)
	c := e.netprovConf(map[string]any{"provider": "host"})
	delete(c, "ipam")
	l := e.confList("nphost", c)
	id := uniqueID("host")
	r := e.add(l, id)
	if len(r.Interfaces) != 1 || r.Interfaces[0].Sandbox != e.sandbox.Path() || r.Interfaces[0].Mac == "" || len(r.IPs) != 0 {
		t.Errorf("result = %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := control.GetStatus(ctx, control.SocketPath(e.stateDir, id))
	if err != nil || st.Provider != "host" || !st.Ready {
		t.Errorf("status %+v, %v", st, err)
	}
	pid := st.PID
	if err := e.del(l, id); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	e.assertGone("nphost", id, pid)
}
