package podman

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestMACAddress: `podman run --mac-address` (CNI_ARGS MAC=...) is the
// container-side interface's MAC: podman reports it from ADD's result, and
// the stack uses it on the wire (the host side resolves the container's
// address to it by ARP while fetching from the container's server).
func TestMACAddress(t *testing.T) {
	e := setup(t)
	r := randHex(3)
	mac := "02:42:0a:" + r[0:2] + ":" + r[2:4] + ":" + r[4:6]
	content := "mac-" + randHex(4)
	id := e.webContainer(t, content, "--mac-address", mac)
	if got := e.inspect(t, id, "{{(index .NetworkSettings.Networks \""+e.netName+"\").MacAddress}}"); got != mac {
		t.Errorf("podman reports MAC %q, want %q", got, mac)
	}
	ip := e.containerIP(t, id)
	if got := e.hostGet(t, ip+":80", "/index.html"); strings.TrimSpace(got) != content {
		t.Fatalf("by IP %s: %q, want %q", ip, got, content)
	}
	out, err := exec.Command("ip", "-n", e.nsName, "neigh", "show", ip, "dev", e.netName).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lladdr "+mac) {
		t.Errorf("host side's neighbour entry for %s: %q (%v), want lladdr %s", ip, out, err, mac)
	}
}

// TestBadMACAddress: a multicast --mac-address is refused by the plugin's
// ADD with a message saying why; podman shows it, and nothing is left.
func TestBadMACAddress(t *testing.T) {
	e := setup(t)
	before := e.snapshot(t)
	out, err := e.podman(context.Background(), "run", "--rm", "--mac-address", "03:42:0a:00:00:01", "--rootfs", e.rootfs, "echo", "must-not-run")
	if err == nil {
		t.Fatalf("container with a multicast MAC started: %q", out)
	}
	if !strings.Contains(out, "multicast") || !strings.Contains(out, "03:42:0a:00:00:01") {
		t.Errorf("podman's error does not say the MAC is multicast: %q", out)
	}
	t.Logf("podman: %s", strings.TrimSpace(out))
	if got := e.snapshot(t); got != before {
		t.Fatalf("after the refused ADD: %+v, before: %+v", got, before)
	}
}
