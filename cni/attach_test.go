package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/cni/stackd"
	"github.com/netprov/netprov/integration/netns"
)

// attachConf is netprov's conflist entry in attach mode.
func (e *testEnv) attachConf(extra map[string]any) map[string]any {
	c := map[string]any{"type": "netprov", "mode": "attach", "stateDir": e.stateDir, "handoffWarnSeconds": 1}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// bridgeConf is the reference bridge plugin's entry (host-local IPAM on
// the env's subnet, the bridge's gateway address in the host namespace).
func (e *testEnv) bridgeConf() map[string]any {
	return map[string]any{
		"type": "bridge", "bridge": e.bridge, "isGateway": true, "isDefaultGateway": true,
		"ipam": map[string]any{
			"type": "host-local", "dataDir": e.ipamDir,
			"ranges": [][]map[string]any{{{"subnet": e.subnet, "gateway": e.gateway}}},
		},
	}
}

// execPlugin runs the plugin binary (in the host namespace) with command
// cmd, stdin conf (name and cniVersion added) and the env's attachment
// (container id); it returns stdout or the CNI error it printed.
func (e *testEnv) execPlugin(cmd, id string, conf map[string]any) ([]byte, *types.Error) {
	e.t.Helper()
	stdin, err := json.Marshal(withKeys(conf, map[string]any{"cniVersion": "1.0.0", "name": "npatt"}))
	if err != nil {
		e.t.Fatal(err)
	}
	if v, ok := conf["cniVersion"]; ok {
		stdin, _ = json.Marshal(withKeys(conf, map[string]any{"cniVersion": v, "name": "npatt"}))
	}
	var out bytes.Buffer
	runErr := e.host.Do(func() error {
		c := exec.Command(filepath.Join(e.pluginDir, "netprov"))
		c.Stdin = bytes.NewReader(stdin)
		c.Stdout = &out
		c.Env = []string{"PATH=" + os.Getenv("PATH"), "CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + id,
			"CNI_NETNS=" + e.sandbox.Path(), "CNI_IFNAME=eth0", "CNI_PATH=" + e.pluginDir + ":" + systemCNIPath}
		return c.Run()
	})
	if runErr == nil {
		return out.Bytes(), nil
	}
	var ce types.Error
	if err := json.Unmarshal(out.Bytes(), &ce); err != nil {
		e.t.Fatalf("%s failed (%v) without CNI error JSON: %q", cmd, runErr, out.String())
	}
	return nil, &ce
}

// TestAttachConfigErrors: configuration mistakes of attach mode are CNI
// errors with the spec's codes and a message that says what to change,
// and they leave nothing behind:
//   - attach without an interface plugin before it (no prevResult): 4,
//   - a prevResult without CNI_IFNAME in CNI_NETNS: 4,
//   - a cniVersion without chaining (0.2.0): 1,
//   - an unknown mode, attach with an ipam section or provider host: 7.
func TestAttachConfigErrors(t *testing.T) {
	e := newEnv(t)
	otherNS := netns.New(t, "o")
	foreign := map[string]any{"cniVersion": "1.0.0",
		"interfaces": []map[string]any{{"name": "eth0", "mac": "02:00:00:00:00:01", "sandbox": otherNS.Path()}},
		"ips":        []map[string]any{{"address": "10.213.9.2/24", "interface": 0}}}
	cases := []struct {
		name string
		conf map[string]any
		code uint
		msg  string
	}{
		{"no prevResult", e.attachConf(nil), types.ErrInvalidEnvironmentVariables, "chained plugin"},
		{"interface not in prevResult", e.attachConf(map[string]any{"prevResult": foreign}), types.ErrInvalidEnvironmentVariables, "no interface eth0"},
		{"old cniVersion", e.attachConf(map[string]any{"cniVersion": "0.2.0"}), types.ErrIncompatibleCNIVersion, "0.3.0"},
		{"unknown mode", e.attachConf(map[string]any{"mode": "borrow"}), types.ErrInvalidNetworkConfig, `unknown mode "borrow"`},
		{"attach with ipam", e.attachConf(map[string]any{"ipam": map[string]any{"type": "host-local"}}), types.ErrInvalidNetworkConfig, "ipam"},
		{"attach with provider host", e.attachConf(map[string]any{"provider": "host"}), types.ErrInvalidNetworkConfig, "provider"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ce := e.execPlugin("ADD", "attbad1", c.conf)
			if ce == nil {
				t.Fatal("ADD succeeded")
			}
			if ce.Code != c.code || !strings.Contains(ce.Msg, c.msg) {
				t.Errorf("error %+v, want code %d with a message containing %q", ce, c.code, c.msg)
			}
		})
	}
	// As a runtime sees it: netprov attach first in a conflist.
	err := e.inHost(func(ctx context.Context) error {
		_, err := e.cni.AddNetworkList(ctx, e.confListVersion("1.0.0", "npatt", e.attachConf(nil)), e.rt("attbad2"))
		return err
	})
	assertCode(t, err, types.ErrInvalidEnvironmentVariables, "prevResult")
	if ents, _ := os.ReadDir(e.stateDir); len(ents) > 1 { // .lock only
		t.Errorf("state dir has leftovers: %v", ents)
	}
}

// attachEnv is a sandbox whose eth0 the reference bridge plugin made.
type attachEnv struct {
	*testEnv
	bridgeList *libcni.NetworkConfigList
	prev       map[string]any // the bridge plugin's result, as JSON
	ip         string
}

// newAttachEnv runs the bridge plugin for the sandbox (DEL at cleanup).
func newAttachEnv(t *testing.T) *attachEnv {
	requirePlugins(t, "bridge", "host-local")
	e := &attachEnv{testEnv: newEnv(t)}
	e.bridgeList = e.confListVersion("1.0.0", "npatt", e.bridgeConf())
	const id = "attbridge"
	t.Cleanup(func() {
		e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, e.bridgeList, e.rt(id)) })
	})
	var res types.Result
	if err := e.inHost(func(ctx context.Context) (err error) {
		res, err = e.cni.AddNetworkList(ctx, e.bridgeList, e.rt(id))
		return
	}); err != nil {
		t.Fatalf("bridge ADD: %v", err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil || len(r.IPs) != 1 {
		t.Fatalf("bridge result %+v: %v", res, err)
	}
	e.ip = r.IPs[0].Address.IP.String()
	b, _ := json.Marshal(r)
	json.Unmarshal(b, &e.prev)
	return e
}

// view is the sandbox kernel's view of eth0.
func (e *attachEnv) view(t *testing.T) *kernelnet.View {
	t.Helper()
	v, err := kernelnet.Read(context.Background(), e.sandbox.Path(), "eth0")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *attachEnv) dropInstalled(t *testing.T) bool {
	t.Helper()
	on, err := kernelnet.Installed(context.Background(), e.sandbox.Path(), "eth0")
	if err != nil {
		t.Fatal(err)
	}
	return on
}

// addAttach runs netprov's ADD with the bridge's prevResult and a DEL at
// cleanup; it returns the result.
func (e *attachEnv) addAttach(t *testing.T, id string) *types100.Result {
	t.Helper()
	conf := e.attachConf(map[string]any{"prevResult": e.prev})
	t.Cleanup(func() {
		e.execPlugin("DEL", id, e.attachConf(nil))
		if dir := control.SandboxDir(e.stateDir, id); stackAlive(readPID(dir), dir) {
			stopStack(dir, time.Second)
		}
	})
	out, ce := e.execPlugin("ADD", id, conf)
	if ce != nil {
		t.Fatalf("attach ADD: %+v\nstack log: %s", ce, logTail(control.SandboxDir(e.stateDir, id)))
	}
	var r types100.Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ADD result %q: %v", out, err)
	}
	return &r
}

// assertAttachGone: no stack process, state directory or ingress drop of
// id is left, and eth0 is as the kernel had it before ADD.
func (e *attachEnv) assertAttachGone(t *testing.T, id string, pid int, before *kernelnet.View) {
	t.Helper()
	dir := control.SandboxDir(e.stateDir, id)
	if pid > 0 && stackAlive(pid, dir) {
		t.Errorf("stack process %d still running", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir %s still exists (%v)", dir, err)
	}
	if e.dropInstalled(t) {
		t.Errorf("ingress drop %s still in the sandbox netns", kernelnet.TableName("eth0"))
	}
	if after := e.view(t); !reflect.DeepEqual(after, before) {
		t.Errorf("eth0 after DEL:\n%+v\nbefore ADD:\n%+v", after, before)
	}
}

// TestAttachAddCheckDel: after the bridge plugin made eth0 (with a
// permanent neighbour added by hand), netprov attach's ADD returns the
// bridge's result unchanged, starts the stack process on eth0 with the
// ingress drop installed and the kernel's addresses untouched; a program
// in the sandbox whose seccomp fd the stack serves fetches a page from a
// server on the bridge's gateway (so the stack, not the kernel, carries
// eth0); CHECK passes, and fails once the drop is gone. DEL stops the
// process, removes the drop and the state: eth0's kernel view is as
// before ADD; a second DEL succeeds.
func TestAttachAddCheckDel(t *testing.T) {
	e := newAttachEnv(t)
	e.sandbox.IP(t, "neigh", "add", e.gateway[:strings.LastIndex(e.gateway, ".")]+".77", "lladdr", "02:00:00:00:00:77", "dev", "eth0", "nud", "permanent")
	before := e.view(t)
	id := uniqueID("att")
	r := e.addAttach(t, id)
	dir := control.SandboxDir(e.stateDir, id)
	pid := readPID(dir)

	got, _ := json.Marshal(r)
	want, _ := json.Marshal(e.prev)
	var g, w map[string]any
	json.Unmarshal(got, &g)
	json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g["interfaces"], w["interfaces"]) || !reflect.DeepEqual(g["ips"], w["ips"]) || !reflect.DeepEqual(g["routes"], w["routes"]) {
		t.Errorf("ADD result %s, want prevResult %s", got, want)
	}
	if !stackAlive(pid, dir) {
		t.Fatalf("no stack process after ADD")
	}
	if !e.dropInstalled(t) {
		t.Errorf("no ingress drop on eth0 after ADD")
	}
	if v := e.view(t); !reflect.DeepEqual(v, before) {
		t.Errorf("ADD changed the kernel's eth0:\n%+v\nbefore:\n%+v", v, before)
	}
	a, err := stackd.ReadAttachConfig(dir)
	if err != nil || a == nil || a.Interface != "eth0" || len(a.Neighbors) != 1 || a.MAC != before.MAC.String() {
		t.Errorf("attach config %+v (%v): want eth0, its MAC and the permanent neighbour", a, err)
	}
	st, err := control.GetStatus(context.Background(), control.SocketPath(e.stateDir, id))
	if err != nil || st.MAC != before.MAC.String() || len(st.Addresses) != 1 || st.Addresses[0].Addr().String() != e.ip {
		t.Errorf("stack status %+v (%v): want eth0's MAC %s and %s", st, err, before.MAC, e.ip)
	}

	body := fmt.Sprintf("attach-%08x", rand.Uint32())
	var ln net.Listener
	if err := e.host.Do(func() (err error) { ln, err = net.Listen("tcp4", e.gateway+":0"); return }); err != nil {
		t.Fatal(err)
	}
	var peer string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { peer = r.RemoteAddr; fmt.Fprint(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if out := e.sandboxFetch(t, id, "http://"+ln.Addr().String()+"/"); out != body {
		t.Errorf("sandboxed fetch got %q, want %q", out, body)
	}
	if h, _, _ := net.SplitHostPort(peer); h != e.ip {
		t.Errorf("server saw the request from %q, want the sandbox's %s", peer, e.ip)
	}

	check := e.attachConf(map[string]any{"prevResult": e.prev})
	if _, ce := e.execPlugin("CHECK", id, check); ce != nil {
		t.Errorf("CHECK: %+v", ce)
	}
	kernelnet.ExistingIngressDrop(e.sandbox.Path(), "eth0").Remove(context.Background())
	if _, ce := e.execPlugin("CHECK", id, check); ce == nil || !strings.Contains(ce.Msg, "ingress drop") {
		t.Errorf("CHECK without the drop: %+v, want an error naming the ingress drop", ce)
	}
	kernelnet.InstallIngressDrop(context.Background(), e.sandbox.Path(), "eth0")

	if _, ce := e.execPlugin("DEL", id, e.attachConf(nil)); ce != nil {
		t.Fatalf("DEL: %+v", ce)
	}
	e.assertAttachGone(t, id, pid, before)
	if _, ce := e.execPlugin("DEL", id, e.attachConf(nil)); ce != nil {
		t.Errorf("second DEL: %+v (must be idempotent)", ce)
	}
}

// TestAttachNoARPInterface: an interface without ARP (ipvlan l3 makes
// those; here `arp off` on the bridge plugin's eth0) is refused with an
// invalid-config error naming the cause, and nothing is left.
func TestAttachNoARPInterface(t *testing.T) {
	e := newAttachEnv(t)
	e.sandbox.IP(t, "link", "set", "eth0", "arp", "off")
	_, ce := e.execPlugin("ADD", "attnoarp", e.attachConf(map[string]any{"prevResult": e.prev}))
	if ce == nil || ce.Code != types.ErrInvalidNetworkConfig || !strings.Contains(ce.Msg, "NOARP") {
		t.Errorf("ADD on a NOARP interface: %+v, want code 7 naming NOARP", ce)
	}
	if e.dropInstalled(t) {
		t.Errorf("ingress drop installed by the refused ADD")
	}
	if _, err := os.Stat(control.SandboxDir(e.stateDir, "attnoarp")); !os.IsNotExist(err) {
		t.Errorf("state dir left by the refused ADD (%v)", err)
	}
}

// TestAttachDelAfterKillAndGC: a stack process killed with SIGKILL leaves
// its ingress drop; DEL removes it and the interface is the kernel's
// again. GC removes an attach sandbox that is no longer valid the same
// way.
func TestAttachDelAfterKillAndGC(t *testing.T) {
	e := newAttachEnv(t)
	before := e.view(t)

	id := uniqueID("attk")
	e.addAttach(t, id)
	dir := control.SandboxDir(e.stateDir, id)
	pid := readPID(dir)
	if err := syscallKill(pid); err != nil {
		t.Fatal(err)
	}
	netns.WaitFor(t, 5*time.Second, func() bool { return !stackAlive(pid, dir) })
	if !e.dropInstalled(t) {
		t.Fatalf("the killed stack process's drop is gone already; nothing left for DEL to test")
	}
	if _, ce := e.execPlugin("DEL", id, e.attachConf(nil)); ce != nil {
		t.Fatalf("DEL after kill: %+v", ce)
	}
	e.assertAttachGone(t, id, pid, before)

	id = uniqueID("attg")
	e.addAttach(t, id)
	dir = control.SandboxDir(e.stateDir, id)
	pid = readPID(dir)
	gc := e.attachConf(map[string]any{"cniVersion": "1.1.0", "cni.dev/valid-attachments": []map[string]string{{"containerID": "other", "ifname": "eth0"}}})
	if _, ce := e.execPlugin("GC", "", gc); ce != nil {
		t.Fatalf("GC: %+v", ce)
	}
	e.assertAttachGone(t, id, pid, before)
}

// TestAttachRoutes: prevResult's routes come first, a route without a
// gateway takes the address's gateway (as ipam.ConfigureIface), the
// kernel's copy of the same route lends its mtu and advmss, kernel-only
// routes are added, and IPv6 routes are dropped without an IPv6 address.
func TestAttachRoutes(t *testing.T) {
	_, dst, _ := net.ParseCIDR("10.213.99.0/24")
	_, def, _ := net.ParseCIDR("0.0.0.0/0")
	_, def6, _ := net.ParseCIDR("::/0")
	gw := net.ParseIP("10.213.7.1")
	_, addrNet, _ := net.ParseCIDR("10.213.7.2/24")
	addrNet.IP = net.ParseIP("10.213.7.2")
	ips := []*types100.IPConfig{{Address: *addrNet, Gateway: gw}}
	prev := []*types.Route{{Dst: *def}, {Dst: *dst, GW: net.ParseIP("10.213.7.9")}, {Dst: *def6, GW: net.ParseIP("fd00:213::1")}}
	kernel := []kernelnet.Route{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.213.7.1"), MTU: 1400, AdvMSS: 1300},
		{Dst: netip.MustParsePrefix("10.213.98.0/24"), Gateway: netip.MustParseAddr("10.213.7.1"), Metric: 5},
	}
	got := attachRoutes(prev, ips, kernel, []netip.Prefix{netip.MustParsePrefix("10.213.7.2/24")})
	want := []stackd.AttachRoute{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.213.7.1"), MTU: 1400, AdvMSS: 1300},
		{Dst: netip.MustParsePrefix("10.213.99.0/24"), Gateway: netip.MustParseAddr("10.213.7.9")},
		{Dst: netip.MustParsePrefix("10.213.98.0/24"), Gateway: netip.MustParseAddr("10.213.7.1"), Metric: 5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes\n%+v\nwant\n%+v", got, want)
	}
}

// TestAttachPTP: conflist ptp + netprov (attach), run by libcni as a
// runtime does. ptp gives the sandbox an address whose subnet is routed
// via the gateway (the kernel's connected route deleted) and makes the
// host route between its veths, so a second, kernel-only ptp sandbox in
// the same subnet is reachable only through the gateway: a program in the
// attached sandbox fetches from a server there, which needs the stack to
// route the subnet as the kernel did instead of resolving the peer on
// the link. DEL of the list leaves no stack, state or lease.
func TestAttachPTP(t *testing.T) {
	requirePlugins(t, "ptp", "host-local")
	e := newEnv(t)
	ptp := map[string]any{"type": "ptp", "ipMasq": false, "ipam": map[string]any{
		"type": "host-local", "dataDir": e.ipamDir, "routes": []map[string]string{{"dst": "0.0.0.0/0"}},
		"ranges": [][]map[string]any{{{"subnet": e.subnet, "gateway": e.gateway}}},
	}}
	kernelOnly := e.confListVersion("1.0.0", "npptp", ptp)
	other := netns.New(t, "q")
	otherRT := &libcni.RuntimeConf{ContainerID: "ptpother", NetNS: other.Path(), IfName: "eth0"}
	t.Cleanup(func() {
		e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, kernelOnly, otherRT) })
	})
	var res types.Result
	if err := e.inHost(func(ctx context.Context) (err error) {
		res, err = e.cni.AddNetworkList(ctx, kernelOnly, otherRT)
		return
	}); err != nil {
		t.Fatalf("ptp ADD of the kernel-only sandbox: %v", err)
	}
	or, err := types100.NewResultFromResult(res)
	if err != nil || len(or.IPs) != 1 {
		t.Fatalf("ptp result %+v: %v", res, err)
	}
	otherIP := or.IPs[0].Address.IP.String()
	var ln net.Listener
	if err := other.Do(func() (err error) { ln, err = net.Listen("tcp4", otherIP+":0"); return }); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("ptp-%08x", rand.Uint32())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	l := e.confListVersion("1.0.0", "npptp", ptp, e.attachConf(nil))
	id := uniqueID("ptp")
	r := e.add(l, id)
	if len(r.IPs) != 1 || r.IPs[0].Address.IP.String() == otherIP {
		t.Fatalf("chained result ips %+v", r.IPs)
	}
	a, err := stackd.ReadAttachConfig(control.SandboxDir(e.stateDir, id))
	if err != nil || a == nil || len(a.Unconnected) != 1 {
		t.Errorf("attach config %+v (%v): want the ptp subnet as unconnected", a, err)
	}
	if out := e.sandboxFetch(t, id, "http://"+ln.Addr().String()+"/"); out != body {
		t.Errorf("fetch from the other ptp sandbox got %q, want %q", out, body)
	}
	pid := readPID(control.SandboxDir(e.stateDir, id))
	if err := e.del(l, id); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	e.assertGone("npptp", id, pid)
}

// TestAttachIPvlanL2: conflist ipvlan (l2, master a veth in the host
// namespace whose other end is a kernel peer) + netprov (attach): a
// program in the attached sandbox fetches from the peer's server, and DEL
// of the list leaves nothing. (ipvlan slaves share the master's MAC: the
// stack uses the slave's, so the master's demultiplexing by address
// delivers to the packet socket.)
func TestAttachIPvlanL2(t *testing.T) {
	requirePlugins(t, "ipvlan", "host-local")
	e := newEnv(t)
	peer := netns.New(t, "p")
	master := netns.UniqueName("iv")
	netns.Veth(t, e.host, master, peer, "eth0")
	if out, err := e.host.Exec("ip", "link", "add", "link", master, "name", "npivprobe", "type", "ipvlan", "mode", "l2"); err != nil {
		t.Skipf("this kernel has no ipvlan: %v: %s", err, out)
	}
	e.host.Exec("ip", "link", "del", "npivprobe")
	prefix := e.subnet[:strings.LastIndex(e.subnet, ".")]
	peerIP := prefix + ".200"
	peer.AddAddr(t, "eth0", peerIP+"/24")
	peer.LinkUp(t, "lo")
	var ln net.Listener
	if err := peer.Do(func() (err error) { ln, err = net.Listen("tcp4", peerIP+":0"); return }); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("ipvlan-%08x", rand.Uint32())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ipvlan := map[string]any{"type": "ipvlan", "master": master, "mode": "l2", "ipam": map[string]any{
		"type": "host-local", "dataDir": e.ipamDir,
		"ranges": [][]map[string]any{{{"subnet": e.subnet, "rangeStart": prefix + ".10", "rangeEnd": prefix + ".100"}}},
	}}
	l := e.confListVersion("1.0.0", "npipvl", ipvlan, e.attachConf(nil))
	id := uniqueID("ipv")
	r := e.add(l, id)
	if len(r.IPs) != 1 {
		t.Fatalf("chained result ips %+v", r.IPs)
	}
	if out := e.sandboxFetch(t, id, "http://"+ln.Addr().String()+"/"); out != body {
		t.Errorf("fetch from the kernel peer got %q, want %q", out, body)
	}
	pid := readPID(control.SandboxDir(e.stateDir, id))
	if err := e.del(l, id); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	e.assertGone("npipvl", id, pid)
}
