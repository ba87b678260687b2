package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/integration/netns"
)

// systemCNIPath is where Debian's containernetworking-plugins installs
// host-local, portmap and the others.
const systemCNIPath = "/usr/lib/cni"

// testEnv is one test's world: a "host" namespace where the plugin runs
// (bridge, TAPs, iptables), a sandbox namespace, a plugin directory with
// the test binary as "netprov", and private IPAM, state and cache dirs.
type testEnv struct {
	t         *testing.T
	host      *netns.NS
	sandbox   *netns.NS
	bridge    string
	subnet    string // 10.213.N.0/24
	gateway   string
	pluginDir string
	stateDir  string
	ipamDir   string
	cacheDir  string
	cni       *libcni.CNIConfig
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	netns.RequireRoot(t)
	for _, p := range []string{"host-local", "portmap"} {
		if _, err := os.Stat(filepath.Join(systemCNIPath, p)); err != nil {
			t.Skipf("%s/%s missing (install containernetworking-plugins: scripts/setup)", systemCNIPath, p)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	n := rand.IntN(200) + 20
	e := &testEnv{
		t:         t,
		host:      netns.New(t, "h"),
		sandbox:   netns.New(t, "c"),
		bridge:    netns.UniqueName("br"),
		subnet:    fmt.Sprintf("10.213.%d.0/24", n),
		gateway:   fmt.Sprintf("10.213.%d.1", n),
		pluginDir: t.TempDir(),
		ipamDir:   t.TempDir(),
		cacheDir:  t.TempDir(),
	}
	// Short: the control socket's path must fit sun_path (108 bytes).
	e.stateDir, err = os.MkdirTemp("", "npst")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(e.stateDir) })
	if err := os.Symlink(self, filepath.Join(e.pluginDir, "netprov")); err != nil {
		t.Fatal(err)
	}
	e.host.LinkUp(t, "lo")
	e.cni = libcni.NewCNIConfigWithCacheDir([]string{e.pluginDir, systemCNIPath}, e.cacheDir, nil)
	return e
}

// netprovConf is the plugin's entry of a conflist; extra overrides keys.
func (e *testEnv) netprovConf(extra map[string]any) map[string]any {
	c := map[string]any{
		"type":               "netprov",
		"bridge":             e.bridge,
		"isGateway":          true,
		"isDefaultGateway":   true,
		"stateDir":           e.stateDir,
		"handoffWarnSeconds": 1,
		"ipam": map[string]any{
			"type":    "host-local",
			"dataDir": e.ipamDir,
			"ranges":  [][]map[string]any{{{"subnet": e.subnet, "gateway": e.gateway}}},
		},
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// confList builds a conflist with cniVersion 1.1.0.
func (e *testEnv) confList(name string, plugins ...map[string]any) *libcni.NetworkConfigList {
	e.t.Helper()
	return e.confListVersion("1.1.0", name, plugins...)
}

// confListVersion builds a conflist with cniVersion v.
func (e *testEnv) confListVersion(v, name string, plugins ...map[string]any) *libcni.NetworkConfigList {
	e.t.Helper()
	b, err := json.Marshal(map[string]any{"cniVersion": v, "name": name, "plugins": plugins})
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

func (e *testEnv) rt(id string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: e.sandbox.Path(), IfName: "eth0"}
}

// inHost runs f (a libcni call) with the plugin started in the host
// namespace.
func (e *testEnv) inHost(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.host.Do(func() error { return f(ctx) })
}

// add runs ADD and registers a DEL for the end of the test (also on
// failure) so that no stack process outlives it.
func (e *testEnv) add(l *libcni.NetworkConfigList, id string) *types100.Result {
	e.t.Helper()
	e.t.Cleanup(func() {
		e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, l, e.rt(id)) })
		if dir := control.SandboxDir(e.stateDir, id); stackAlive(readPID(dir), dir) {
			stopStack(dir, time.Second)
		}
	})
	var res types.Result
	err := e.inHost(func(ctx context.Context) (err error) {
		res, err = e.cni.AddNetworkList(ctx, l, e.rt(id))
		return err
	})
	if err != nil {
		e.t.Fatalf("ADD %s: %v", id, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *testEnv) del(l *libcni.NetworkConfigList, id string) error {
	return e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, l, e.rt(id)) })
}

// hostLinks lists the host namespace's devices.
func (e *testEnv) hostLinks() string {
	out, err := e.host.Exec("ip", "-o", "link", "show")
	if err != nil {
		e.t.Fatalf("ip link: %v", err)
	}
	return string(out)
}

// leases lists host-local's lease files (addresses) for network name.
func (e *testEnv) leases(name string) []string {
	ents, _ := os.ReadDir(filepath.Join(e.ipamDir, name))
	var out []string
	for _, d := range ents {
		if strings.Count(d.Name(), ".") == 3 {
			out = append(out, d.Name())
		}
	}
	return out
}

// assertGone checks that nothing of container id is left: stack process,
// TAP, state directory, IPAM lease.
func (e *testEnv) assertGone(name, id string, pid int) {
	e.t.Helper()
	dir := control.SandboxDir(e.stateDir, id)
	if pid > 0 && stackAlive(pid, dir) {
		e.t.Errorf("stack process %d of %s still running", pid, id)
	}
	if tap := tapName(id, "eth0"); strings.Contains(e.hostLinks(), tap) {
		e.t.Errorf("TAP %s of %s still exists", tap, id)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		e.t.Errorf("state dir %s still exists (%v)", dir, err)
	}
	for _, l := range e.leases(name) {
		b, _ := os.ReadFile(filepath.Join(e.ipamDir, name, l))
		if strings.Contains(string(b), id) {
			e.t.Errorf("IPAM lease %s still held by %s", l, id)
		}
	}
}

func uniqueID(prefix string) string {
	return fmt.Sprintf("%s%08x", prefix, rand.Uint32())
}
