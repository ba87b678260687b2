package podman

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// secondNetwork is a second netprov network installed next to the
// environment's: its own conflist (`netprov install --name --subnet` into
// the same CNI config dir), bridge and subnet, with ipMasq on.
type secondNetwork struct {
	name, subnet, gateway string
}

// addNetwork installs a second netprov network (ipMasq on, the install
// default) and removes it, its bridge and its IPAM leases at cleanup
// (registered first, so it runs after the containers' removal).
func (e *env) addNetwork(t *testing.T, subnet string) secondNetwork {
	t.Helper()
	n := secondNetwork{name: "np" + randHex(4) + "b", subnet: subnet, gateway: subnet + ".1"}
	dir := t.TempDir()
	args := []string{"--cni-bin-dir", filepath.Join(e.work, "cni/bin"), "--cni-conf-dir", filepath.Join(e.work, "cni/net.d"),
		"--seccomp-profile", filepath.Join(dir, "seccomp.json"), "--name", n.name, "--subnet", subnet + ".0/24",
		"--agent-socket", e.agentSock, "--state-dir", e.stateDir}
	if out, err := exec.Command(e.bin, append([]string{"install"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("netprov install --name %s: %v: %s", n.name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(e.bin, append([]string{"install", "--uninstall"}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("netprov install --uninstall --name %s: %v: %s", n.name, err, out)
		}
		exec.Command("ip", "-n", e.nsName, "link", "del", n.name).Run()
		os.RemoveAll(filepath.Join("/var/lib/cni/networks", n.name))
	})
	return n
}

// netSnapshot is snapshot with the leases and TAPs of network name (its
// bridge may not exist yet: no TAPs); state directories and stack
// processes are host-wide.
func (e *env) netSnapshot(t *testing.T, name string) snapshot {
	t.Helper()
	s := e.snapshot(t)
	s.leases, s.taps = 0, 0
	leases, _ := os.ReadDir(filepath.Join("/var/lib/cni/networks", name))
	for _, l := range leases {
		if net.ParseIP(l.Name()) != nil {
			s.leases++
		}
	}
	if exec.Command("ip", "-n", e.nsName, "link", "show", "dev", name).Run() != nil {
		return s
	}
	out, err := exec.Command("ip", "-n", e.nsName, "-o", "link", "show", "master", name).Output()
	if err != nil {
		t.Fatalf("ip link show master %s: %v", name, err)
	}
	if o := strings.TrimSpace(string(out)); o != "" {
		s.taps = len(strings.Split(o, "\n"))
	}
	return s
}

// peerWeb starts busybox httpd on port 80 of network net whose CGI
// /cgi-bin/peer answers "peer=<the client address the server sees>"
// (httpd listens on a dual-stack IPv6 socket: REMOTE_ADDR is
// "[::ffff:a.b.c.d]").
func (e *env) peerWeb(t *testing.T, network string) (id, ip string) {
	t.Helper()
	id, ip = e.startPeerWeb(t, network)
	e.hostGet(t, ip+":80", "/cgi-bin/peer") // wait until it serves
	return id, ip
}

// startPeerWeb starts peerWeb's server container and returns its id and
// address without waiting for it to serve.
func (e *env) startPeerWeb(t *testing.T, network string) (id, ip string) {
	t.Helper()
	cgi := `printf "Content-Type: text/plain\r\n\r\npeer=%s\n" "$REMOTE_ADDR"`
	script := `mkdir -p /tmp/www/cgi-bin && printf '%s\n' '#!/bin/sh' '` + cgi + `' >/tmp/www/cgi-bin/peer && chmod +x /tmp/www/cgi-bin/peer && exec httpd -f -p 80 -h /tmp/www`
	id = e.start(t, []string{"--network", network}, "/bin/sh", "-c", script)
	ip = e.inspect(t, id, "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}")
	if net.ParseIP(ip) == nil {
		t.Fatalf("container %s on %s has no address (%q)", id[:12], network, ip)
	}
	return id, ip
}

// runOn runs a throwaway container on network and returns its output.
func (e *env) runOn(t *testing.T, network string, cmd ...string) string {
	t.Helper()
	out, err := e.podman(context.Background(), append([]string{"run", "--rm", "--network", network, "--rootfs", e.rootfs}, cmd...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// peerSeen fetches /cgi-bin/peer of ip from a container on network and
// returns the address the server saw ("" if the fetch got nothing).
func (e *env) peerSeen(t *testing.T, network, ip string, wait int) (peer string) {
	t.Helper()
	defer func() { t.Logf("client on %s -> %s:80: server saw %q", network, ip, peer) }()
	script := fmt.Sprintf(`printf 'GET /cgi-bin/peer HTTP/1.0\r\nHost: x\r\n\r\n' | nc -w %d %s 80 | tail -n 1`, wait, ip)
	out := e.runOn(t, network, "/bin/sh", "-c", script)
	_, peer, ok := strings.Cut(strings.TrimSpace(out), "peer=")
	if !ok {
		peer = ""
		return ""
	}
	return strings.TrimPrefix(strings.Trim(strings.TrimSpace(peer), "[]"), "::ffff:")
}

func inSubnet(ip, subnet string) bool {
	return strings.HasPrefix(ip, subnet+".") && net.ParseIP(ip) != nil
}

// TestTwoNetworks: network A (the environment's, ipMasq off) and a second
// network B (ipMasq on) with their own bridges and subnets.
//   - a container on each network reaches a server on its own gateway;
//   - containers on the same network reach each other and the server
//     sees the client's own address;
//   - across networks the test namespace's kernel routes between the two
//     bridges: B's ipMasq sets net.ipv4.ip_forward=1 (like the bridge
//     plugin's ipMasq), and nothing filters FORWARD. A -> B arrives with
//     A's own address (A does not masquerade); B -> A arrives from A's
//     gateway (B's ipMasq chain masquerades everything leaving B's subnet
//     to the outgoing bridge's address). With forwarding off the kernel
//     drops the packets and A cannot reach B at all;
//   - `netprov ls` lists both sandboxes with their network and address;
//   - removing the containers leaves nothing of either network.
func TestTwoNetworks(t *testing.T) {
	e := setup(t)
	const subnetB = "10.213.62"
	b := e.addNetwork(t, subnetB)
	beforeA, beforeB := e.snapshot(t), e.netSnapshot(t, b.name)

	idA, ipA := e.peerWeb(t, e.netName)
	idB, ipB := e.peerWeb(t, b.name)
	if !inSubnet(ipA, e.subnet) || !inSubnet(ipB, subnetB) {
		t.Fatalf("addresses %s (want in %s.0/24) and %s (want in %s.0/24)", ipA, e.subnet, ipB, subnetB)
	}

	t.Run("own gateway", func(t *testing.T) {
		for _, c := range []struct{ network, gateway string }{{e.netName, e.gateway}, {b.name, b.gateway}} {
			content := "gw-" + randHex(4)
			ln := e.hostListen(t, c.gateway+":0")
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, content) })}
			go srv.Serve(ln)
			out := e.runOn(t, c.network, "/bin/sh", "-c", httpGetScript(c.gateway, ln.Addr().(*net.TCPAddr).Port, "/"))
			srv.Close()
			if !strings.Contains(out, content) {
				t.Errorf("container on %s fetching from its gateway %s: %q, want %q", c.network, c.gateway, out, content)
			}
		}
	})

	t.Run("same network", func(t *testing.T) {
		if p := e.peerSeen(t, e.netName, ipA, 10); !inSubnet(p, e.subnet) || p == e.gateway || p == ipA {
			t.Errorf("A -> A: server saw %q, want the client's own address in %s.0/24", p, e.subnet)
		}
		if p := e.peerSeen(t, b.name, ipB, 10); !inSubnet(p, subnetB) || p == b.gateway || p == ipB {
			t.Errorf("B -> B: server saw %q, want the client's own address in %s.0/24 (ipMasq leaves the subnet alone)", p, subnetB)
		}
	})

	t.Run("across networks", func(t *testing.T) {
		if f := e.sysctl(t, "net.ipv4.ip_forward"); f != "1" {
			t.Fatalf("ip_forward in the podman namespace = %q after an ipMasq network's ADD, want 1", f)
		}
		if p := e.peerSeen(t, e.netName, ipB, 10); !inSubnet(p, e.subnet) || p == e.gateway {
			t.Errorf("A -> B: server saw %q, want the A client's own address (routed, not masqueraded)", p)
		}
		if p := e.peerSeen(t, b.name, ipA, 10); p != e.gateway {
			t.Errorf("B -> A: server saw %q, want A's gateway %s (B's ipMasq)", p, e.gateway)
		}
		e.setSysctl(t, "net.ipv4.ip_forward", "0")
		defer e.setSysctl(t, "net.ipv4.ip_forward", "1")
		if p := e.peerSeen(t, e.netName, ipB, 3); p != "" {
			t.Errorf("A -> B with forwarding off: server saw %q, want no connection", p)
		}
	})

	t.Run("netprov ls", func(t *testing.T) {
		out, err := exec.Command(e.bin, "ls", "--state-dir", e.stateDir).CombinedOutput()
		if err != nil {
			t.Fatalf("netprov ls: %v: %s", err, out)
		}
		for _, c := range []struct{ id, network, ip string }{{idA, e.netName, ipA}, {idB, b.name, ipB}} {
			found := false
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) == 6 && f[0] == c.id[:12] && f[1] == c.network && f[3] == "running" && f[4] == c.ip+"/24" {
					found = true
				}
			}
			if !found {
				t.Errorf("netprov ls lacks %s on %s with %s/24:\n%s", c.id[:12], c.network, c.ip, out)
			}
		}
	})

	if _, err := e.podman(context.Background(), "rm", "-f", "-t", "0", idA, idB); err != nil {
		t.Fatal(err)
	}
	if got := e.snapshot(t); got != beforeA {
		t.Errorf("network A after removal: %+v, before: %+v", got, beforeA)
	}
	if got := e.netSnapshot(t, b.name); got != beforeB {
		t.Errorf("network B after removal: %+v, before: %+v", got, beforeB)
	}
}

// sysctl reads a sysctl of the podman namespace.
func (e *env) sysctl(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", e.nsName, "sysctl", "-n", key).CombinedOutput()
	if err != nil {
		t.Fatalf("sysctl %s: %v: %s", key, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (e *env) setSysctl(t *testing.T, key, value string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", e.nsName, "sysctl", "-q", "-w", key+"="+value).CombinedOutput(); err != nil {
		t.Fatalf("sysctl %s=%s: %v: %s", key, value, err, out)
	}
}
