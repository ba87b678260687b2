package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// demoRunSubnet is the bridge subnet of the `netprov run` step, inside the
// kernel peer's namespace.
var demoRunSubnet = netip.MustParsePrefix("10.213.98.0/24")

// runCurl runs an unmodified curl under `netprov run`: its socket calls
// are trapped with seccomp and served by a second userspace stack, whose
// NIC is a TAP on a bridge in the kernel peer's namespace, and it fetches
// the page of step (b)'s python3 http.server.
func (d *demo) runCurl(ctx context.Context) error {
	nsPath := "/run/netns/" + d.topo.kernelNS
	bridge := "npbr" + strings.TrimPrefix(d.topo.kernelNS, "npdk")
	d.cleanups = append(d.cleanups, func() { removeRunLeases(nsPath, bridge) })
	gw := demoRunSubnet.Addr().Next()
	url := "http://" + netip.AddrPortFrom(gw, kernelHTTPPort).String() + "/"
	args := []string{"run", "--host-netns", nsPath, "--bridge", bridge, "--subnet", demoRunSubnet.String(),
		"--", "curl", "-sS", "--max-time", "10", url}
	fmt.Fprintf(d.out, "   $ netprov run --bridge %s --subnet %s -- curl -sS %s\n", bridge, demoRunSubnet, url)
	fmt.Fprintf(d.out, "   (curl runs in its own network namespace with only lo; bridge %s is in %s)\n", bridge, d.topo.kernelNS)
	out, err := exec.CommandContext(ctx, d.netprov, args...).CombinedOutput()
	fmt.Fprintln(d.out, indent(string(out)))
	if err != nil {
		return fmt.Errorf("netprov run curl: %w", err)
	}
	if !strings.Contains(string(out), "Hello from the Linux kernel") {
		return fmt.Errorf("netprov run curl fetched something else: %q", out)
	}
	return nil
}

// removeRunLeases removes the address leases `netprov run` kept for the
// demo's bridge (the namespace that held the bridge is gone afterwards).
func removeRunLeases(nsPath, bridge string) {
	var st unix.Stat_t
	if unix.Stat(nsPath, &st) != nil {
		return
	}
	os.RemoveAll(filepath.Join(ipamDir, strconv.FormatUint(st.Ino, 10)+"-"+bridge))
}
