package podman

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/cni/stackd"
)

// Attach mode under podman: netprov chained after an interface plugin
// (`{"type": "netprov", "mode": "attach"}`), so the stack takes over the
// interface the plugin put into the container's netns. The conflists go
// into the environment's CNI config dir next to the TAP-mode network.

// attachNetwork is a conflist the test installed.
type attachNetwork struct {
	name, subnet, gateway string
}

// addressOn returns the address container id has on n (checked to be in
// n's subnet) and its network namespace's path.
func (e *env) addressOn(t *testing.T, id string, n attachNetwork) (ip, netnsPath string) {
	t.Helper()
	ip = e.inspect(t, id, "{{(index .NetworkSettings.Networks \""+n.name+"\").IPAddress}}")
	if !inSubnet(ip, n.subnet) {
		t.Fatalf("container address %q, want one in %s.0/24", ip, n.subnet)
	}
	return ip, e.inspect(t, id, "{{.NetworkSettings.SandboxKey}}")
}

// installConflist writes a 1.0.0 conflist named name with plugins and
// removes it, its IPAM leases and (if bridge) its bridge at cleanup
// (registered first: it runs after the containers' removal).
func (e *env) installConflist(t *testing.T, name string, plugins ...map[string]any) {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"cniVersion": "1.0.0", "name": name, "plugins": plugins}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.work, "cni/net.d", name+".conflist")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(path)
		exec.Command("ip", "-n", e.nsName, "link", "del", name).Run()
		os.RemoveAll(filepath.Join("/var/lib/cni/networks", name))
	})
}

// netprovAttach is netprov's entry in attach mode, with the environment's
// agent and state directory (the agent finds the sandbox by netns).
func (e *env) netprovAttach() map[string]any {
	return map[string]any{"type": "netprov", "mode": "attach", "agentSocket": e.agentSock, "stateDir": e.stateDir}
}

// assertNetnsReleased: the container's netns file (podman's SandboxKey)
// is gone, or at least holds no ingress drop of netprov.
func assertNetnsReleased(t *testing.T, netnsPath string) {
	t.Helper()
	if netnsPath == "" {
		return
	}
	if _, err := os.Stat(netnsPath); err != nil {
		return
	}
	var fs unix.Statfs_t
	if unix.Statfs(netnsPath, &fs) != nil || fs.Type != unix.NSFS_MAGIC {
		return
	}
	if on, err := kernelnet.Installed(context.Background(), netnsPath, "eth0"); err == nil && on {
		t.Errorf("ingress drop %s left in %s", kernelnet.TableName("eth0"), netnsPath)
	}
}

// assertAttached: container id's sandbox is in attach mode on eth0, with
// the address podman reports.
func (e *env) assertAttached(t *testing.T, id, ip string) {
	t.Helper()
	a, err := stackd.ReadAttachConfig(filepath.Join(e.stateDir, id))
	if err != nil || a == nil || a.Interface != "eth0" {
		t.Fatalf("sandbox %s: attach config %+v (%v), want one on eth0", id[:12], a, err)
	}
	out, err := exec.Command(e.bin, "ls", "--state-dir", e.stateDir).CombinedOutput()
	if err != nil {
		t.Fatalf("netprov ls: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == id[:12] && f[3] == "running" && strings.HasPrefix(f[4], ip+"/") {
			return
		}
	}
	t.Errorf("netprov ls does not list %s as running with %s:\n%s", id[:12], ip, out)
}

// TestAttachBridgePortmap: conflist bridge + netprov (attach) + portmap.
// Container → host (the server sees the container's address), host →
// container by IP and by published port (portmap's DNAT from prevResult,
// which netprov passes on), container ↔ container; each sandbox is an
// attach sandbox served by its stack process. Removing the containers
// (CNI DEL) leaves no state directory, stack process, lease, veth or
// ingress drop.
func TestAttachBridgePortmap(t *testing.T) {
	e := setup(t)
	n := attachNetwork{name: "np" + randHex(4) + "a", subnet: "10.213.64"}
	n.gateway = n.subnet + ".1"
	e.installConflist(t, n.name,
		map[string]any{"type": "bridge", "bridge": n.name, "isGateway": true, "ipMasq": false, "hairpinMode": true,
			"ipam": map[string]any{"type": "host-local", "routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				"ranges": [][]map[string]string{{{"subnet": n.subnet + ".0/24", "gateway": n.gateway}}}}},
		e.netprovAttach(),
		map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	before := e.netSnapshot(t, n.name)

	content := "attach-" + randHex(4)
	hostPort := 30000 + int(time.Now().UnixNano()%10000)
	script := fmt.Sprintf(`mkdir -p /tmp/www && echo %s > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www`, content)
	web := e.start(t, []string{"--network", n.name, "-p", fmt.Sprintf("%d:80", hostPort)}, "/bin/sh", "-c", script)
	ip, netnsPath := e.addressOn(t, web, n)

	t.Run("host to container by IP", func(t *testing.T) {
		if got := e.hostGet(t, ip+":80", "/index.html"); strings.TrimSpace(got) != content {
			t.Fatalf("by IP %s: %q, want %q", ip, got, content)
		}
	})
	e.assertAttached(t, web, ip)
	assertNoKernelListener(t, e.inspect(t, web, "{{.State.Pid}}"), 80)
	t.Run("host to container by published port", func(t *testing.T) {
		if got := e.hostGet(t, fmt.Sprintf("%s:%d", n.gateway, hostPort), "/index.html"); strings.TrimSpace(got) != content {
			t.Fatalf("by published port %d: %q, want %q", hostPort, got, content)
		}
	})
	t.Run("container to host", func(t *testing.T) {
		fromHost := "host-" + randHex(4)
		port, peer := e.hostServer(t, n.gateway, fromHost)
		out := e.runOn(t, n.name, "/bin/sh", "-c", httpGetScript(n.gateway, port, "/"))
		if !strings.Contains(out, fromHost) {
			t.Fatalf("container got %q, want %q", out, fromHost)
		}
		if p := <-peer; !strings.HasPrefix(p, n.subnet+".") || strings.HasPrefix(p, ip+":") {
			t.Errorf("server saw %q, want the client container's own address in %s.0/24", p, n.subnet)
		}
	})
	t.Run("container to container", func(t *testing.T) {
		out := e.runOn(t, n.name, "/bin/sh", "-c", httpGetScript(ip, 80, "/index.html"))
		if !strings.Contains(out, content) {
			t.Fatalf("client container got %q, want %q", out, content)
		}
	})

	if _, err := e.podman(context.Background(), "rm", "-f", "-t", "0", web); err != nil {
		t.Fatal(err)
	}
	if got := e.netSnapshot(t, n.name); got != before {
		t.Errorf("after rm: %+v, before: %+v", got, before)
	}
	assertNetnsReleased(t, netnsPath)
	if nat, err := exec.Command("ip", "netns", "exec", e.nsName, "iptables", "-w", "5", "-t", "nat", "-S").Output(); err == nil && strings.Contains(string(nat), strconv.Itoa(hostPort)) {
		t.Errorf("portmap's DNAT for %d left after rm (netprov's DEL must pass the chain on):\n%s", hostPort, nat)
	}
}

// TestAttachRemoveLeavesNothing: 20 containers on an attach network
// (bridge + netprov attach), each removed with --rm, then one removed with
// rm -f while it runs: no state directory, stack process, lease or veth
// is left.
func TestAttachRemoveLeavesNothing(t *testing.T) {
	e := setup(t)
	n := attachNetwork{name: "np" + randHex(4) + "l", subnet: "10.213.66"}
	n.gateway = n.subnet + ".1"
	e.installConflist(t, n.name,
		map[string]any{"type": "bridge", "bridge": n.name, "isGateway": true, "ipMasq": false,
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": n.subnet + ".0/24", "gateway": n.gateway}}}}},
		e.netprovAttach())
	// The bridge exists from the first container on; count from there.
	e.runOn(t, n.name, "true")
	before := e.netSnapshot(t, n.name)
	deadline := time.Now().Add(60 * time.Second)
	rounds := 0
	for i := 0; i < 20 && time.Now().Before(deadline); i++ {
		out := e.runOn(t, n.name, "/bin/sh", "-c", "ip -4 -o addr show eth0; echo round-"+strconv.Itoa(i))
		if !strings.Contains(out, "round-"+strconv.Itoa(i)) || !strings.Contains(out, n.subnet+".") {
			t.Fatalf("round %d: output %q, want the round and an address in %s.0/24 on eth0", i, out, n.subnet)
		}
		rounds++
	}
	if rounds < 20 {
		t.Errorf("only %d of 20 rounds in 60 s", rounds)
	}
	if after := e.netSnapshot(t, n.name); after != before {
		t.Fatalf("after %d containers: %+v, before: %+v", rounds, after, before)
	}
	id := e.start(t, []string{"--network", n.name}, "sleep", "600")
	if mid := e.netSnapshot(t, n.name); mid.stateDirs != before.stateDirs+1 || mid.stacks != before.stacks+1 || mid.leases != before.leases+1 || mid.taps != before.taps+1 {
		t.Fatalf("running container: %+v, before %+v (want one more state dir, stack, lease, veth)", mid, before)
	}
	netnsPath := e.inspect(t, id, "{{.NetworkSettings.SandboxKey}}")
	if _, err := e.podman(context.Background(), "rm", "-f", "-t", "0", id); err != nil {
		t.Fatal(err)
	}
	if got := e.netSnapshot(t, n.name); got != before {
		t.Fatalf("after rm -f: %+v, before: %+v", got, before)
	}
	assertNetnsReleased(t, netnsPath)
}

// TestAttachMacvlan: conflist macvlan (bridge mode, parent a veth in the
// podman namespace whose other end is in a peer namespace with a kernel
// server) + netprov (attach). Container ↔ container (macvlan bridge mode
// switches between siblings), container → kernel peer and kernel peer →
// container through the parent. (The parent's own namespace cannot reach
// macvlan children in bridge mode, so the peer sits behind the veth.)
func TestAttachMacvlan(t *testing.T) {
	e := setup(t)
	sfx := randHex(3)
	n := attachNetwork{name: "np" + sfx + "mv", subnet: "10.213.65"}
	parent, peerNS := "npmv"+sfx, "npmvp"+sfx
	if out, err := exec.Command("ip", "netns", "add", peerNS).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", peerNS).Run() })
	for _, args := range [][]string{
		{"-n", e.nsName, "link", "add", parent, "type", "veth", "peer", "name", "eth0", "netns", peerNS},
		{"-n", e.nsName, "link", "set", parent, "up"},
		{"-n", peerNS, "link", "set", "lo", "up"},
		{"-n", peerNS, "addr", "add", n.subnet + ".200/24", "dev", "eth0"},
		{"-n", peerNS, "link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	e.installConflist(t, n.name,
		map[string]any{"type": "macvlan", "master": parent, "mode": "bridge",
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": n.subnet + ".0/24",
				"rangeStart": n.subnet + ".10", "rangeEnd": n.subnet + ".100"}}}}},
		e.netprovAttach())
	before := e.netSnapshot(t, n.name)
	peerPath := "/run/netns/" + peerNS
	peerIP := n.subnet + ".200"

	webID, webIP := e.peerWebFrom(t, n.name, peerPath)
	e.assertAttached(t, webID, webIP)
	netnsPath := e.inspect(t, webID, "{{.NetworkSettings.SandboxKey}}")

	t.Run("container to container", func(t *testing.T) {
		if p := e.peerSeen(t, n.name, webIP, 10); !inSubnet(p, n.subnet) || p == webIP || p == peerIP {
			t.Errorf("server saw %q, want the client container's own address in %s.0/24", p, n.subnet)
		}
	})
	t.Run("container to kernel peer", func(t *testing.T) {
		fromPeer := "peer-" + randHex(4)
		var ln net.Listener
		if err := inNS(peerPath, func() (err error) { ln, err = net.Listen("tcp4", peerIP+":0"); return }); err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, fromPeer) })}
		go srv.Serve(ln)
		defer srv.Close()
		out := e.runOn(t, n.name, "/bin/sh", "-c", httpGetScript(peerIP, ln.Addr().(*net.TCPAddr).Port, "/"))
		if !strings.Contains(out, fromPeer) {
			t.Fatalf("container got %q from the kernel peer, want %q", out, fromPeer)
		}
	})
	t.Run("kernel peer to container", func(t *testing.T) {
		got, err := getFrom(peerPath, webIP+":80", "/cgi-bin/peer")
		if err != nil {
			t.Fatal(err)
		}
		if p := cgiPeer(got); p != peerIP {
			t.Errorf("container's server saw %q, want the kernel peer %s", got, peerIP)
		}
	})

	if _, err := e.podman(context.Background(), "rm", "-f", "-t", "0", webID); err != nil {
		t.Fatal(err)
	}
	if got := e.netSnapshot(t, n.name); got != before {
		t.Errorf("after rm: %+v, before: %+v", got, before)
	}
	assertNetnsReleased(t, netnsPath)
}

// peerWeb is env.peerWeb for a network whose containers the podman
// namespace cannot reach (macvlan): it waits for the server from the
// namespace at from.
func (e *env) peerWebFrom(t *testing.T, network, from string) (id, ip string) {
	t.Helper()
	id, ip = e.startPeerWeb(t, network)
	var last error
	for i := 0; i < 50; i++ {
		if _, last = getFrom(from, ip+":80", "/cgi-bin/peer"); last == nil {
			return id, ip
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("container %s does not serve on %s:80: %v", id[:12], ip, last)
	return
}

// getFrom fetches http://addr/path with HTTP/1.0 from namespace ns and
// returns the body.
func getFrom(ns, addr, path string) (string, error) {
	var body string
	err := inNS(ns, func() error {
		var err error
		body, err = httpGet(addr, path)
		return err
	})
	return body, err
}

// inNS runs f on a thread in namespace path (discarded afterwards).
func inNS(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// assertNoKernelListener: the container's kernel netns (of its init, pid)
// has no TCP socket on port: the stack process holds the server's socket.
func assertNoKernelListener(t *testing.T, pid string, port int) {
	t.Helper()
	hexPort := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join("/proc", pid, "net", f))
		if err != nil {
			t.Fatalf("container's /proc/net/%s: %v", f, err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if fields := strings.Fields(line); len(fields) > 2 && strings.HasSuffix(fields[1], hexPort) {
				t.Errorf("the container's kernel netns has a TCP socket on port %d: %s", port, line)
			}
		}
	}
}

// cgiPeer is the address in peerWeb's "peer=[::ffff:a.b.c.d]" answer.
func cgiPeer(body string) string {
	_, p, _ := strings.Cut(strings.TrimSpace(body), "peer=")
	return strings.TrimPrefix(strings.Trim(strings.TrimSpace(p), "[]"), "::ffff:")
}
