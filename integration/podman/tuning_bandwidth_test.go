package podman

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/stackd"
)

// Shaping of TestAttachTuningBandwidth: both directions at bwRate with a
// bwBurst bucket; a transfer of bwBytes then takes at least
// (bwBytes-bwBurst/8)*8/bwRate seconds (about 1 s) however loaded the
// machine is, against milliseconds unshaped.
const (
	bwRate  = 2000000 // bit/s
	bwBurst = 131072  // bits (16 KiB)
	bwBytes = 256 << 10
	tunMTU  = 1400
)

// bwMinDuration is the shortest time tbf lets bwBytes of payload through:
// the full bucket goes at once, the rest at bwRate (tbf counts the frame
// headers too, so the real time is longer).
func bwMinDuration() time.Duration {
	bits := float64(bwBytes*8 - bwBurst)
	return time.Duration(bits / bwRate * float64(time.Second))
}

// TestAttachTuningBandwidth: a podman network whose conflist is bridge →
// tuning (a fixed mac, mtu 1400, net.ipv4.conf.eth0.arp_filter) →
// netprov (attach) → bandwidth (ingressRate/egressRate in its config:
// podman 4.3 has no option that passes runtimeConfig "bandwidth") →
// portmap, the order cni/doc.go prescribes. In attach mode the sandbox has
// the bridge plugin's kernel veth, so tuning and bandwidth have a device
// to act on (in TAP mode both fail: cni/chain_test.go).
//   - the container works: container → host HTTP, host → container by IP
//     and by published port;
//   - the stack uses tuning's MAC (the host's neighbour entry for the
//     container's address, podman's report, attach.json) and MTU (the
//     MSS a host-side listener sees on the container's connection is at
//     most 1400-40; an MTU 1500 stack would announce 1460);
//   - tuning's sysctl is set in the container's netns;
//   - bandwidth's tbf and ingress qdiscs sit on the host veth and its ifb
//     has a tbf while the container runs, and they shape the traffic the
//     stack sends and receives: bwBytes each way take at least
//     bwMinDuration;
//   - podman rm leaves no ifb device, qdisc, stack process, state
//     directory, lease, veth, nft ingress drop or DNAT rule.
func TestAttachTuningBandwidth(t *testing.T) {
	e := setup(t)
	r := randHex(3)
	mac := "02:42:0a:" + r[0:2] + ":" + r[2:4] + ":" + r[4:6]
	n := attachNetwork{name: "np" + randHex(4) + "t", subnet: "10.213.67"}
	n.gateway = n.subnet + ".1"
	e.installConflist(t, n.name,
		map[string]any{"type": "bridge", "bridge": n.name, "isGateway": true, "ipMasq": false, "hairpinMode": true,
			"ipam": map[string]any{"type": "host-local", "routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				"ranges": [][]map[string]string{{{"subnet": n.subnet + ".0/24", "gateway": n.gateway}}}}},
		map[string]any{"type": "tuning", "mac": mac, "mtu": tunMTU, "sysctl": map[string]string{"net.ipv4.conf.eth0.arp_filter": "1"}},
		e.netprovAttach(),
		map[string]any{"type": "bandwidth", "ingressRate": bwRate, "ingressBurst": bwBurst, "egressRate": bwRate, "egressBurst": bwBurst},
		map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	before := e.netSnapshot(t, n.name)
	ifbBefore := e.ifbDevices(t)

	content := "tunbw-" + randHex(4)
	hostPort := 30000 + int(time.Now().UnixNano()%10000)
	// index.html, a bwBytes file to download, and a CGI that reads a
	// POSTed body and says how many bytes arrived.
	cgi := `n=$(head -c "$CONTENT_LENGTH" | wc -c); printf "Content-Type: text/plain\r\n\r\nreceived=%s\n" "$n"`
	script := fmt.Sprintf(`mkdir -p /tmp/www/cgi-bin && echo %s > /tmp/www/index.html && head -c %d /dev/zero > /tmp/www/big && `+
		`printf '%%s\n' '#!/bin/sh' '%s' > /tmp/www/cgi-bin/sink && chmod +x /tmp/www/cgi-bin/sink && exec httpd -f -p 80 -h /tmp/www`,
		content, bwBytes, cgi)
	web := e.start(t, []string{"--network", n.name, "-p", fmt.Sprintf("%d:80", hostPort)}, "/bin/sh", "-c", script)
	ip, netnsPath := e.addressOn(t, web, n)
	if got := e.hostGet(t, ip+":80", "/index.html"); strings.TrimSpace(got) != content {
		t.Fatalf("host to container by IP %s: %q, want %q", ip, got, content)
	}
	e.assertAttached(t, web, ip)
	veth := e.onlyPort(t, n.name)

	t.Run("host to container by published port", func(t *testing.T) {
		if got := e.hostGet(t, fmt.Sprintf("%s:%d", n.gateway, hostPort), "/index.html"); strings.TrimSpace(got) != content {
			t.Fatalf("by published port %d: %q, want %q", hostPort, got, content)
		}
	})
	t.Run("tuned MAC", func(t *testing.T) {
		out, err := exec.Command("ip", "-n", e.nsName, "neigh", "show", ip, "dev", n.name).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "lladdr "+mac) {
			t.Errorf("host's neighbour entry for %s: %q (%v), want lladdr %s (tuning's mac, answered by the stack)", ip, out, err, mac)
		}
		if got := e.inspect(t, web, "{{(index .NetworkSettings.Networks \""+n.name+"\").MacAddress}}"); got != mac {
			t.Errorf("podman reports MAC %q, want tuning's %s", got, mac)
		}
		a, err := stackd.ReadAttachConfig(filepath.Join(e.stateDir, web))
		if err != nil || a == nil || a.MAC != mac || a.MTU != tunMTU {
			t.Errorf("attach config %+v (%v), want MAC %s and MTU %d", a, err, mac, tunMTU)
		}
	})
	t.Run("tuning sysctl", func(t *testing.T) {
		out, err := exec.Command("nsenter", "--net="+netnsPath, "cat", "/proc/sys/net/ipv4/conf/eth0/arp_filter").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Errorf("net.ipv4.conf.eth0.arp_filter in the container's netns: %q (%v), want 1", out, err)
		}
	})
	t.Run("container to host with tuned MTU", func(t *testing.T) {
		ln := e.hostListen(t, n.gateway+":0")
		fromHost := "host-" + randHex(4)
		type seen struct {
			mss  int
			peer string
			err  error
		}
		got := make(chan seen, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- seen{err: err}
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			s := seen{peer: c.RemoteAddr().String()}
			s.mss, s.err = tcpMaxSeg(c.(*net.TCPConn))
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil || strings.TrimSpace(line) == "" {
					break
				}
			}
			fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n", fromHost)
			got <- s
		}()
		out := e.runOn(t, n.name, "/bin/sh", "-c", httpGetScript(n.gateway, ln.Addr().(*net.TCPAddr).Port, "/"))
		if !strings.Contains(out, fromHost) {
			t.Fatalf("container got %q, want %q", out, fromHost)
		}
		var s seen
		select {
		case s = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the host-side server saw no connection")
		}
		if s.err != nil {
			t.Fatal(s.err)
		}
		if !strings.HasPrefix(s.peer, n.subnet+".") || strings.HasPrefix(s.peer, ip+":") {
			t.Errorf("server saw %q, want the client container's own address in %s.0/24", s.peer, n.subnet)
		}
		// The host's MSS for the connection is the container's announced
		// MSS (MTU-40) less the TCP options in use (timestamps: 12).
		t.Logf("host side's MSS for the container's connection: %d", s.mss)
		if s.mss > tunMTU-40 || s.mss < tunMTU-40-40 {
			t.Errorf("host side's MSS for the container's connection = %d, want %d less options: the stack's MTU must be tuning's %d", s.mss, tunMTU-40, tunMTU)
		}
	})
	t.Run("qdiscs", func(t *testing.T) {
		qd := e.nsOutput(t, "tc", "qdisc", "show", "dev", veth)
		if !strings.Contains(qd, "qdisc tbf") || !strings.Contains(qd, "qdisc ingress") {
			t.Errorf("qdiscs of host veth %s:\n%s\nwant bandwidth's tbf (ingressRate) and ingress qdisc (egressRate's redirect)", veth, qd)
		}
		ifbs := newNames(e.ifbDevices(t), ifbBefore)
		if len(ifbs) != 1 {
			t.Fatalf("new ifb devices %v, want bandwidth's one", ifbs)
		}
		if qd := e.nsOutput(t, "tc", "qdisc", "show", "dev", ifbs[0]); !strings.Contains(qd, "qdisc tbf") {
			t.Errorf("qdiscs of ifb %s:\n%s\nwant a tbf (egressRate)", ifbs[0], qd)
		}
	})
	t.Run("bandwidth from container", func(t *testing.T) {
		start := time.Now()
		body := e.hostGetRaw(t, ip+":80", "GET /big HTTP/1.0\r\nHost: x\r\n\r\n", nil)
		took := time.Since(start)
		if len(body) != bwBytes {
			t.Fatalf("downloaded %d bytes, want %d", len(body), bwBytes)
		}
		t.Logf("%d bytes container → host in %v (egressRate %d bit/s)", bwBytes, took, bwRate)
		if took < bwMinDuration() {
			t.Errorf("%d bytes from the container took %v, want at least %v at %d bit/s: egressRate does not shape the stack's traffic", bwBytes, took, bwMinDuration(), bwRate)
		}
	})
	t.Run("bandwidth to container", func(t *testing.T) {
		payload := make([]byte, bwBytes)
		start := time.Now()
		body := e.hostGetRaw(t, ip+":80", fmt.Sprintf("POST /cgi-bin/sink HTTP/1.0\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", bwBytes), payload)
		took := time.Since(start)
		if strings.TrimSpace(string(body)) != "received="+strconv.Itoa(bwBytes) {
			t.Fatalf("the container's CGI answered %q, want received=%d", body, bwBytes)
		}
		t.Logf("%d bytes host → container in %v (ingressRate %d bit/s)", bwBytes, took, bwRate)
		if took < bwMinDuration() {
			t.Errorf("%d bytes to the container took %v, want at least %v at %d bit/s: ingressRate does not shape the stack's traffic", bwBytes, took, bwMinDuration(), bwRate)
		}
	})

	if _, err := e.podman(context.Background(), "rm", "-f", "-t", "0", web); err != nil {
		t.Fatal(err)
	}
	if got := e.netSnapshot(t, n.name); got != before {
		t.Errorf("after rm: %+v, before: %+v", got, before)
	}
	if left := newNames(e.ifbDevices(t), ifbBefore); len(left) > 0 {
		t.Errorf("ifb devices left after rm: %v", left)
	}
	if qd := e.nsOutput(t, "tc", "qdisc", "show"); strings.Contains(qd, "tbf") {
		t.Errorf("tbf qdisc left after rm:\n%s", qd)
	}
	assertNetnsReleased(t, netnsPath)
	if nat, err := exec.Command("ip", "netns", "exec", e.nsName, "iptables", "-w", "5", "-t", "nat", "-S").Output(); err == nil && strings.Contains(string(nat), strconv.Itoa(hostPort)) {
		t.Errorf("portmap's DNAT for %d left after rm:\n%s", hostPort, nat)
	}
}

// tcpMaxSeg is TCP_MAXSEG of c: for a connection, the MSS the kernel
// sends with (the peer's announced MSS less the options in use).
func tcpMaxSeg(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var mss int
	var serr error
	if err := rc.Control(func(fd uintptr) { mss, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) }); err != nil {
		return 0, err
	}
	return mss, serr
}

// hostGetRaw sends request (and body) to addr from the host side and
// returns the response body of a 200 answer. The connection is bounded
// to 30 s.
func (e *env) hostGetRaw(t *testing.T, addr, request string, body []byte) []byte {
	t.Helper()
	var resp []byte
	err := e.inNetns(func() error {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c, request); err != nil {
			return err
		}
		if _, err := c.Write(body); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		head, rest, ok := strings.Cut(string(b), "\r\n\r\n")
		if !ok || !strings.Contains(strings.SplitN(head, "\r\n", 2)[0], " 200 ") {
			return fmt.Errorf("response %.200q", b)
		}
		resp = []byte(rest)
		return nil
	})
	if err != nil {
		t.Fatalf("%s to %s from the host side: %v", strings.SplitN(request, "\r\n", 2)[0], addr, err)
	}
	return resp
}

// nsOutput runs a command in the test's network namespace and returns its
// output.
func (e *env) nsOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", e.nsName, name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ifbDevices lists the ifb devices of the test's network namespace.
func (e *env) ifbDevices(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-n", e.nsName, "-o", "link", "show", "type", "ifb").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show type ifb: %v: %s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			names = append(names, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
		}
	}
	return names
}

// onlyPort is the one device enslaved to bridge (the running container's
// host veth).
func (e *env) onlyPort(t *testing.T, bridge string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", e.nsName, "-o", "link", "show", "master", bridge).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show master %s: %v: %s", bridge, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || len(strings.Fields(lines[0])) < 2 {
		t.Fatalf("ports of %s: %q, want the one container's veth", bridge, out)
	}
	return strings.SplitN(strings.TrimSuffix(strings.Fields(lines[0])[1], ":"), "@", 2)[0]
}

// newNames is the names in now that are not in before.
func newNames(now, before []string) []string {
	var out []string
	for _, n := range now {
		found := false
		for _, b := range before {
			found = found || b == n
		}
		if !found {
			out = append(out, n)
		}
	}
	return out
}

// TestAttachInstalledNetwork: the network `netprov install --mode attach`
// writes (bridge + netprov attach + portmap) under podman: a container on
// it is an attach sandbox, serves by IP and by published port, fetches
// from the host side, gets the MAC asked for with --mac-address (the
// bridge plugin's "mac" capability, before netprov), and `install
// --uninstall` removes the conflist after the container is gone.
func TestAttachInstalledNetwork(t *testing.T) {
	e := setup(t)
	n := attachNetwork{name: "np" + randHex(4) + "i", subnet: "10.213.68"}
	n.gateway = n.subnet + ".1"
	dir := t.TempDir()
	args := []string{"--cni-bin-dir", filepath.Join(e.work, "cni/bin"), "--cni-conf-dir", filepath.Join(e.work, "cni/net.d"),
		"--seccomp-profile", filepath.Join(dir, "seccomp.json"), "--name", n.name, "--subnet", n.subnet + ".0/24",
		"--agent-socket", e.agentSock, "--state-dir", e.stateDir, "--ipmasq=false", "--mode", "attach"}
	if out, err := exec.Command(e.bin, append([]string{"install"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("netprov install --mode attach: %v: %s", err, out)
	}
	conflist := filepath.Join(e.work, "cni/net.d", n.name+".conflist")
	t.Cleanup(func() {
		exec.Command(e.bin, append([]string{"install", "--uninstall"}, args...)...).Run()
		exec.Command("ip", "-n", e.nsName, "link", "del", n.name).Run()
		os.RemoveAll(filepath.Join("/var/lib/cni/networks", n.name))
	})
	before := e.netSnapshot(t, n.name)

	r := randHex(3)
	mac := "02:42:0a:" + r[0:2] + ":" + r[2:4] + ":" + r[4:6]
	content := "installed-" + randHex(4)
	hostPort := 30000 + int(time.Now().UnixNano()%10000)
	web := e.webContainer(t, content, "--network", n.name, "--mac-address", mac, "-p", fmt.Sprintf("%d:80", hostPort))
	ip, netnsPath := e.addressOn(t, web, n)
	if got := e.hostGet(t, ip+":80", "/index.html"); strings.TrimSpace(got) != content {
		t.Fatalf("by IP %s: %q, want %q", ip, got, content)
	}
	e.assertAttached(t, web, ip)
	if got := e.hostGet(t, fmt.Sprintf("%s:%d", n.gateway, hostPort), "/index.html"); strings.TrimSpace(got) != content {
		t.Errorf("by published port %d: %q, want %q", hostPort, got, content)
	}
	if out, err := exec.Command("ip", "-n", e.nsName, "neigh", "show", ip, "dev", n.name).CombinedOutput(); err != nil || !strings.Contains(string(out), "lladdr "+mac) {
		t.Errorf("host's neighbour entry for %s: %q (%v), want lladdr %s (--mac-address)", ip, out, err, mac)
	}
	ln := e.hostListen(t, n.gateway+":0")
	fromHost := "host-" + randHex(4)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		for {
			if line, err := br.ReadString('\n'); err != nil || strings.TrimSpace(line) == "" {
				break
			}
		}
		fmt.Fprintf(c, "HTTP/1.0 200 OK\r\n\r\n%s\n", fromHost)
	}()
	if out := e.runOn(t, n.name, "/bin/sh", "-c", httpGetScript(n.gateway, ln.Addr().(*net.TCPAddr).Port, "/")); !strings.Contains(out, fromHost) {
		t.Errorf("container got %q from the host side, want %q", out, fromHost)
	}

	if _, err := e.podman(context.Background(), "rm", "-f", "-t", "0", web); err != nil {
		t.Fatal(err)
	}
	if got := e.netSnapshot(t, n.name); got != before {
		t.Errorf("after rm: %+v, before: %+v", got, before)
	}
	assertNetnsReleased(t, netnsPath)
	if out, err := exec.Command(e.bin, append([]string{"install", "--uninstall"}, args...)...).CombinedOutput(); err != nil {
		t.Errorf("netprov install --uninstall: %v: %s", err, out)
	}
	if _, err := os.Stat(conflist); !os.IsNotExist(err) {
		t.Errorf("%s still there after --uninstall (%v)", conflist, err)
	}
}
