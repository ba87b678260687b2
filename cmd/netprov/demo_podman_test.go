package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// podmanDemoLeftovers lists what a podman demo may leave: temp dirs,
// namespaces, IPAM lease dirs, processes running from a demo temp dir.
func podmanDemoLeftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{filepath.Join(os.TempDir(), "npdp*"), "/run/netns/npdp*", "/var/lib/cni/networks/npdp*"} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if strings.Contains(string(cmd), filepath.Join(os.TempDir(), "npdp")) {
			out = append(out, "process "+p.Name()+": "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	slices.Sort(out)
	return out
}

// TestDemoPodman runs `netprov demo --podman`: the container fetched the
// kernel server's page through netprov, `netprov ss` showed its open
// connection, and afterwards no temp dir, namespace, lease directory or
// process of the demo is left.
func TestDemoPodman(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (rootful podman, network namespaces)")
	}
	for _, tool := range demoPodmanTools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/setup installs the container_runtime group)", tool)
		}
	}
	for _, f := range []string{"/usr/lib/cni/host-local", "/usr/lib/cni/portmap", defaultBaseProfile} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s missing (containernetworking-plugins, golang-github-containers-common)", f)
		}
	}
	before := podmanDemoLeftovers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := demoMain(ctx, []string{"--podman"}, &out, buildNetprov(t))
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo --podman: %v", err)
	}
	text := out.String()
	if !strings.Contains(text, "Hello from the Linux kernel's TCP") || !strings.Contains(text, "You are "+strings.TrimSuffix(demoPodmanSubnet.Addr().String(), "0")) {
		t.Errorf("the page from the kernel server (requested from %v) is missing", demoPodmanSubnet)
	}
	if !strings.Contains(text, "ESTAB") {
		t.Errorf("netprov ss output lacks the open connection")
	}
	if after := podmanDemoLeftovers(t); !slices.Equal(after, before) {
		t.Errorf("left behind: %v (before: %v)", after, before)
	}
}

// TestDemoPodmanRejectsArguments: --podman takes no further arguments.
func TestDemoPodmanRejectsArguments(t *testing.T) {
	err := demoMain(context.Background(), []string{"--podman", "extra"}, &bytes.Buffer{}, "")
	if err == nil || !strings.Contains(err.Error(), "no arguments") {
		t.Errorf("demo --podman extra: %v, want a usage error", err)
	}
}
