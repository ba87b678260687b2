package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// testBaseProfile is podman's default profile when installed, else a
// small profile of the same shape (socket's arg-conditional rules included).
func testBaseProfile(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(defaultBaseProfile); err == nil {
		return defaultBaseProfile
	}
	p := filepath.Join(t.TempDir(), "base.json")
	base := `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
	 {"names":["read","write","connect","bind","sendto","recvfrom","io_uring_setup","ioctl"],"action":"SCMP_ACT_ALLOW"},
	 {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":22,"args":[{"index":0,"value":16,"op":"SCMP_CMP_EQ"},{"index":2,"value":9,"op":"SCMP_CMP_EQ"}]},
	 {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":9,"op":"SCMP_CMP_NE"}]},
	 {"names":["socket"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_AUDIT_WRITE"]}}]}`
	if err := os.WriteFile(p, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type profileRule struct {
	Names  []string `json:"names"`
	Action string   `json:"action"`
	Args   []struct {
		Index int    `json:"index"`
		Value uint64 `json:"value"`
		Op    string `json:"op"`
	} `json:"args"`
}

type profileFile struct {
	DefaultAction    string        `json:"defaultAction"`
	ListenerPath     string        `json:"listenerPath"`
	ListenerMetadata string        `json:"listenerMetadata"`
	Syscalls         []profileRule `json:"syscalls"`
}

func testInstallOptions(t *testing.T, extra ...string) *installOptions {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{
		"--cni-bin-dir", filepath.Join(dir, "bin"),
		"--cni-conf-dir", filepath.Join(dir, "net.d"),
		"--seccomp-profile", filepath.Join(dir, "etc/seccomp.json"),
		"--base-profile", testBaseProfile(t),
		"--agent-socket", filepath.Join(dir, "run/agent.sock"),
		"--name", "nptest", "--subnet", "10.213.7.0/24",
	}, extra...)
	o, err := parseInstallFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestInstallWritesConflistProfileAndBinary(t *testing.T) {
	o := testInstallOptions(t)
	var out bytes.Buffer
	if err := install(o, &out); err != nil {
		t.Fatal(err)
	}
	// Binary: an executable copy of this test binary.
	st, err := os.Stat(filepath.Join(o.cniBinDir, "netprov"))
	if err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("binary: %v, mode %v", err, st)
	}

	// Conflist: netprov with host-local IPAM, chained with portmap.
	var cl struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	b, err := os.ReadFile(filepath.Join(o.cniConfDir, "nptest.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cl); err != nil {
		t.Fatalf("conflist is not JSON: %v", err)
	}
	if cl.Name != "nptest" || cl.CNIVersion != "1.0.0" || len(cl.Plugins) != 2 {
		t.Fatalf("conflist: %s", b)
	}
	np, pm := cl.Plugins[0], cl.Plugins[1]
	if np["type"] != "netprov" || np["bridge"] != "nptest" || np["agentSocket"] != o.agentSocket || np["isGateway"] != true {
		t.Fatalf("netprov plugin: %v", np)
	}
	ipam, _ := json.Marshal(np["ipam"])
	if !strings.Contains(string(ipam), `"subnet":"10.213.7.0/24"`) || !strings.Contains(string(ipam), `"gateway":"10.213.7.1"`) ||
		!strings.Contains(string(ipam), `"type":"host-local"`) {
		t.Fatalf("ipam: %s", ipam)
	}
	if pm["type"] != "portmap" || !strings.Contains(mustJSON(pm["capabilities"]), `"portMappings":true`) {
		t.Fatalf("portmap plugin: %v", pm)
	}

	// Profile: the served calls are NOTIFY and in no other rule.
	var prof profileFile
	b, err = os.ReadFile(o.profilePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &prof); err != nil {
		t.Fatalf("profile is not JSON: %v", err)
	}
	if prof.ListenerPath != o.agentSocket || prof.ListenerMetadata != "netprov" || prof.DefaultAction != "SCMP_ACT_ERRNO" {
		t.Fatalf("profile header: listenerPath %q metadata %q default %q", prof.ListenerPath, prof.ListenerMetadata, prof.DefaultAction)
	}
	rulesOf := func(name string) []profileRule {
		var rs []profileRule
		for _, r := range prof.Syscalls {
			if slices.Contains(r.Names, name) {
				rs = append(rs, r)
			}
		}
		return rs
	}
	for _, name := range []string{"socket", "connect", "bind"} {
		rs := rulesOf(name)
		if len(rs) != 1 || rs[0].Action != "SCMP_ACT_NOTIFY" || len(rs[0].Args) != 0 {
			t.Errorf("%s: rules %+v, want exactly one unconditional NOTIFY", name, rs)
		}
	}
	for _, name := range []string{"sendto", "recvfrom"} {
		rs := rulesOf(name)
		acts := map[string]string{}
		for _, r := range rs {
			if len(r.Args) != 1 || r.Args[0].Index != 4 || r.Args[0].Value != 0 {
				t.Errorf("%s: rule %+v, want a condition on arg 4 == / != 0", name, r)
				continue
			}
			acts[r.Args[0].Op] = r.Action
		}
		if len(rs) != 2 || acts["SCMP_CMP_EQ"] != "SCMP_ACT_ALLOW" || acts["SCMP_CMP_NE"] != "SCMP_ACT_NOTIFY" {
			t.Errorf("%s: rules %+v, want ALLOW if no address, NOTIFY otherwise", name, rs)
		}
	}
	if rs := rulesOf("io_uring_setup"); len(rs) != 0 {
		t.Errorf("io_uring_setup still allowed: %+v", rs)
	}
	// Everything else is kept.
	for _, name := range []string{"read", "write", "ioctl"} {
		if rs := rulesOf(name); len(rs) == 0 || rs[0].Action != "SCMP_ACT_ALLOW" {
			t.Errorf("%s: rules %+v, want it still allowed", name, rs)
		}
	}
	// The printed containers.conf lines select both files.
	for _, want := range []string{`seccomp_profile = "` + o.profilePath + `"`, `network_backend = "cni"`,
		`cni_plugin_dirs = ["` + o.cniBinDir + `"]`, `default_network = "nptest"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}

	// Installing again is idempotent.
	if err := install(o, &bytes.Buffer{}); err != nil {
		t.Fatalf("second install: %v", err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestUninstallReverses(t *testing.T) {
	o := testInstallOptions(t)
	if err := install(o, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	// Another netprov network keeps the binary.
	other := filepath.Join(o.cniConfDir, "other.conflist")
	os.WriteFile(other, []byte(`{"name":"other","plugins":[{"type":"netprov"}]}`), 0o644)
	var out bytes.Buffer
	if err := uninstall(o, &out); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{o.conflistPath(), o.profilePath} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(o.cniBinDir, "netprov")); err != nil {
		t.Errorf("binary removed although other.conflist uses it: %v", err)
	}
	os.Remove(other)
	if err := uninstall(o, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(o.cniBinDir, "netprov")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("binary still there after the last network went: %v", err)
	}
	// A profile netprov did not write is left alone.
	os.MkdirAll(filepath.Dir(o.profilePath), 0o755)
	os.WriteFile(o.profilePath, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644)
	if err := uninstall(o, &out); err == nil {
		t.Error("uninstall removed or accepted a foreign profile without an error")
	}
	if _, err := os.Stat(o.profilePath); err != nil {
		t.Errorf("foreign profile removed: %v", err)
	}
}

func TestInstallRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--subnet", "10.0.0.0/31"}, {"--subnet", "fd00::/64"}, {"--subnet", "nope"},
		{"--name", "a/b"}, {"--cni-conf-dir", "relative"}, {"--name", "averyveryverylongname"},
		{"extra"},
	} {
		if _, err := parseInstallFlags(args); !errors.As(err, new(usageError)) {
			t.Errorf("install %q = %v, want a usageError", args, err)
		}
	}
	o, err := parseInstallFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.name != "netprov" || o.bridge != "netprov0" || o.subnet.String() != "10.214.0.0/24" || o.gateway.String() != "10.214.0.1" ||
		o.profilePath != "/etc/netprov/seccomp.json" || o.cniConfDir != "/etc/cni/net.d" || o.agentSocket != "/run/netprov/agent.sock" {
		t.Errorf("defaults: %+v", o)
	}
}

// TestInstallAttachMode: --mode attach writes bridge (the same bridge
// name, subnet, gateway and host-local IPAM as tap mode, the "mac"
// capability for podman run --mac-address) + netprov in attach mode (no
// IPAM or bridge of its own) + portmap, a list libcni accepts; uninstall
// removes it and the binary with it.
func TestInstallAttachMode(t *testing.T) {
	o := testInstallOptions(t, "--mode", "attach", "--ipmasq=false")
	var out bytes.Buffer
	if err := install(o, &out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.conflistPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := libcni.ConfListFromBytes(b); err != nil {
		t.Fatalf("libcni rejects the conflist: %v\n%s", err, b)
	}
	var cl struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &cl); err != nil {
		t.Fatal(err)
	}
	if cl.Name != "nptest" || cl.CNIVersion != "1.0.0" || len(cl.Plugins) != 3 {
		t.Fatalf("conflist: %s", b)
	}
	br, np, pm := cl.Plugins[0], cl.Plugins[1], cl.Plugins[2]
	if br["type"] != "bridge" || br["bridge"] != "nptest" || br["isGateway"] != true || br["ipMasq"] != false ||
		mustJSON(br["capabilities"]) != `{"mac":true}` {
		t.Errorf("bridge plugin: %v", br)
	}
	ipam := mustJSON(br["ipam"])
	if !strings.Contains(ipam, `"subnet":"10.213.7.0/24"`) || !strings.Contains(ipam, `"gateway":"10.213.7.1"`) ||
		!strings.Contains(ipam, `"type":"host-local"`) || !strings.Contains(ipam, `"dst":"0.0.0.0/0"`) {
		t.Errorf("bridge's ipam: %s", ipam)
	}
	if np["type"] != "netprov" || np["mode"] != "attach" || np["agentSocket"] != o.agentSocket {
		t.Errorf("netprov plugin: %v", np)
	}
	for _, k := range []string{"ipam", "bridge", "mtu", "ipMasq", "capabilities"} {
		if _, ok := np[k]; ok {
			t.Errorf("netprov's attach entry has %q (the bridge plugin's job): %v", k, np)
		}
	}
	if pm["type"] != "portmap" || mustJSON(pm["capabilities"]) != `{"portMappings":true}` {
		t.Errorf("portmap plugin: %v", pm)
	}
	if !strings.Contains(out.String(), "mode attach") || !strings.Contains(out.String(), "tuning") {
		t.Errorf("output does not name the mode and where tuning goes:\n%s", out.String())
	}
	if err := uninstall(o, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{o.conflistPath(), filepath.Join(o.cniBinDir, "netprov")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after uninstall (%v)", p, err)
		}
	}
}

// TestInstallModeFlag: tap is the default; anything but tap or attach is
// a usage error.
func TestInstallModeFlag(t *testing.T) {
	if o := testInstallOptions(t); o.mode != "tap" {
		t.Errorf("default mode %q, want tap", o.mode)
	}
	for _, m := range []string{"", "TAP", "veth"} {
		if _, err := parseInstallFlags([]string{"--mode", m}); !errors.As(err, new(usageError)) {
			t.Errorf("--mode %q = %v, want a usageError", m, err)
		}
	}
}
