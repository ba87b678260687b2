package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netprov/netprov/cni/kernelnet"
	tcpcap "github.com/netprov/netprov/integration/capture"
	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/stack/header"
)

// Attach-mode tests: a namespace X with veth0 (10.213.70.2/24) whose
// other end is in a peer namespace (10.213.70.1/24, plus 10.213.71.1 on
// its loopback, reached from X by a route with mtu and advmss). `netprov
// run --netns X --attach veth0` must serve veth0 from the stack while X's
// kernel stays silent, and give veth0 back unchanged.

const (
	attachIface    = "veth0"
	attachPeerIf   = "veth1"
	attachAddr     = "10.213.70.2"
	attachPeerAddr = "10.213.70.1"
	attachFarAddr  = "10.213.71.1"
)

type attachEnv struct {
	t       *testing.T
	bin     string
	x, peer *netns.NS
}

func newAttachEnv(t *testing.T) *attachEnv {
	t.Helper()
	requireRunRoot(t)
	for _, tool := range []string{"nft", "curl", "python3", "ss"} {
		needTool(t, tool)
	}
	e := &attachEnv{t: t, bin: buildNetprov(t), x: netns.New(t, "npax"), peer: netns.New(t, "nppx")}
	netns.Veth(t, e.x, attachIface, e.peer, attachPeerIf)
	e.x.LinkUp(t, "lo")
	e.peer.LinkUp(t, "lo")
	e.x.AddAddr(t, attachIface, attachAddr+"/24")
	e.peer.AddAddr(t, attachPeerIf, attachPeerAddr+"/24")
	e.peer.AddAddr(t, "lo", attachFarAddr+"/32")
	e.x.AddRoute(t, "10.213.71.0/24", "via", attachPeerAddr, "mtu", "1400", "advmss", "1300")
	e.x.WaitOperUp(t, attachIface)
	e.peer.WaitOperUp(t, attachPeerIf)
	return e
}

// kernelView is what must be unchanged after the sandbox: veth0's
// addresses and X's main table.
func (e *attachEnv) kernelView() string {
	e.t.Helper()
	addrs := e.x.IP(e.t, "-4", "-o", "addr", "show", "dev", attachIface)
	routes := e.x.IP(e.t, "route", "show", "table", "main")
	return string(addrs) + string(routes)
}

// netprov starts `netprov run --netns X --attach veth0 FLAGS -- CMD`.
func (e *attachEnv) netprov(ctx context.Context, flags []string, cmd ...string) *exec.Cmd {
	args := append([]string{"run", "--netns", e.x.Path(), "--attach", attachIface}, flags...)
	c := exec.CommandContext(ctx, e.bin, append(append(args, "--"), cmd...)...)
	c.WaitDelay = 5 * time.Second
	return c
}

func (e *attachEnv) assertRestored(before string) {
	e.t.Helper()
	on, err := kernelnet.Installed(context.Background(), e.x.Path(), attachIface)
	if err != nil {
		e.t.Fatal(err)
	}
	if on {
		e.t.Errorf("ingress drop table %s still in X after the sandbox ended", kernelnet.TableName(attachIface))
	}
	if after := e.kernelView(); after != before {
		e.t.Errorf("kernel's view of %s changed:\nbefore:\n%s\nafter:\n%s", attachIface, before, after)
	}
}

// sandboxServer is python's http.server running under `netprov run
// --netns X --attach veth0`.
type sandboxServer struct {
	e      *attachEnv
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{} // closed when netprov has been waited for
}

// startServer starts the sandboxed server on port, serving dir, and
// returns once it listens. It says "ready" then: the peer connects only
// after that, so no connection is refused (a refusal is a legitimate RST
// from the stack, which the capture checks would not tell from the
// kernel's).
func (e *attachEnv) startServer(ctx context.Context, dir string, port int) *sandboxServer {
	t := e.t
	t.Helper()
	srv := &sandboxServer{e: e, cmd: e.netprov(ctx, nil, "python3", "-c", httpServerPy, dir, strconv.Itoa(port)),
		stderr: &bytes.Buffer{}, done: make(chan struct{})}
	stdout, err := srv.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.cmd.Stderr = srv.stderr
	if err := srv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				ready <- true
				io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- false
	}()
	go func() { srv.cmd.Wait(); close(srv.done) }()
	t.Cleanup(func() {
		srv.cmd.Process.Kill()
		<-srv.done // bounded: WaitDelay closes the pipes 5 s after exit
	})
	select {
	case ok := <-ready:
		if !ok {
			<-srv.done
			t.Fatalf("server in the sandbox ended before it was ready; stderr:\n%s", srv.stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("server in the sandbox not ready in time")
	}
	return srv
}

// stop ends the sandbox with SIGTERM and waits for netprov to exit.
func (srv *sandboxServer) stop(ctx context.Context) {
	srv.e.t.Helper()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.done:
	case <-ctx.Done():
		srv.e.t.Fatalf("netprov run did not end after SIGTERM; stderr:\n%s", srv.stderr.String())
	}
}

// peerGet fetches url from the peer namespace with curl and fails the
// test unless the body is want.
func (e *attachEnv) peerGet(url, want string) {
	e.t.Helper()
	got, err := e.peer.Exec("curl", "-sS", "-m", "10", url)
	if err != nil {
		e.t.Fatalf("peer's curl of %s: %v: %s", url, err, got)
	}
	if string(got) != want {
		e.t.Fatalf("peer's curl of %s got %q, want %q", url, got, want)
	}
}

// assertNoRSTFromX fails the test for any RST from X's address in frames
// and returns how many segments came from addr:port (the sandbox's
// server) and how many of those were SYN-ACKs.
func (e *attachEnv) assertNoRSTFromX(frames []tcpcap.Frame, addr string, port int) (fromServer, synAcks int) {
	e.t.Helper()
	for _, f := range frames {
		seg, ok := tcpcap.ParseTCP(f.Data)
		if !ok || !strings.HasPrefix(seg.Src, attachAddr+":") {
			continue
		}
		if seg.Flags&header.TCPFlagRst != 0 {
			e.t.Errorf("RST from X's address: %+v", seg)
		}
		if seg.Src != addr+":"+strconv.Itoa(port) {
			continue
		}
		fromServer++
		if seg.Flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn|header.TCPFlagAck {
			synAcks++
		}
	}
	return fromServer, synAcks
}

// kernelTCPSockets is X's kernel TCP sockets (ss -tan, no header).
func (e *attachEnv) kernelTCPSockets() string {
	e.t.Helper()
	return strings.TrimSpace(string(e.x.Run(e.t, "ss", "-Htan")))
}

// TestRunAttachCurlBothWays: curl in the sandbox fetches from a kernel
// server on the veth peer, and curl on the peer fetches from python's
// http.server in the sandbox. X's kernel has no TCP socket for either
// connection and sends nothing for them (no RST in a capture on the
// peer's end: every segment from X's address is the stack's, and the
// stack closes with FIN); afterwards the drop is gone and veth0's
// addresses and X's routes are as before.
func TestRunAttachCurlBothWays(t *testing.T) {
	e := newAttachEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	before := e.kernelView()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "page"), []byte("served-by-peer-kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const peerPort, sandboxPort = 8070, 8071
	e.peer.Start(t, "python3", "-c", httpServerPy, dir, strconv.Itoa(peerPort))
	e.peer.WaitListening(t, peerPort)
	dump := tcpcap.Start(t, e.peer, attachPeerIf, "tcp")

	// Outbound: sandbox → kernel server.
	var out, errb bytes.Buffer
	c := e.netprov(ctx, nil, "curl", "-sS", "-m", "10", "http://"+attachPeerAddr+":"+strconv.Itoa(peerPort)+"/page")
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("netprov run curl: %v\nstdout %s\nstderr %s", err, out.String(), errb.String())
	}
	if out.String() != "served-by-peer-kernel\n" {
		t.Fatalf("curl in the sandbox got %q, want the peer's page", out.String())
	}
	if s := e.kernelTCPSockets(); strings.Contains(s, ":"+strconv.Itoa(peerPort)) {
		t.Errorf("X's kernel has a TCP socket for the sandbox's connection:\n%s", s)
	}
	e.assertRestored(before)

	// Inbound: peer → server in the sandbox.
	sdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(sdir, "page"), []byte("served-by-sandbox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := e.startServer(ctx, sdir, sandboxPort)
	e.peerGet("http://"+attachAddr+":"+strconv.Itoa(sandboxPort)+"/page", "served-by-sandbox\n")
	if s := e.kernelTCPSockets(); strings.Contains(s, ":"+strconv.Itoa(sandboxPort)) {
		t.Errorf("X's kernel has a TCP socket for the sandbox's server:\n%s", s)
	}
	on, err := kernelnet.Installed(ctx, e.x.Path(), attachIface)
	if err != nil || !on {
		t.Errorf("ingress drop not installed while the sandbox runs (err %v)", err)
	}
	srv.stop(ctx)
	e.assertRestored(before)

	fromServer, synAcks := e.assertNoRSTFromX(dump.Stop(t), attachAddr, sandboxPort)
	if fromServer == 0 || synAcks == 0 {
		t.Errorf("capture saw %d segments from the sandbox's server, %d SYN-ACKs; want both > 0", fromServer, synAcks)
	}
}

// TestRunAttachRouteMetricsAndOverrides: the route X's kernel has for
// 10.213.71.0/24 (via the peer, advmss 1300) is the stack's too: the
// sandbox reaches 10.213.71.1 and its SYN advertises MSS 1300. With --ip
// the sandbox's address is the given one, not the kernel's.
func TestRunAttachRouteMetricsAndOverrides(t *testing.T) {
	e := newAttachEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	before := e.kernelView()
	const port = 8072
	e.peer.Start(t, "python3", "-c", httpServerPy, t.TempDir(), strconv.Itoa(port))
	e.peer.WaitListening(t, port)
	dump := tcpcap.Start(t, e.peer, attachPeerIf, "tcp[tcpflags] & tcp-syn != 0")

	// getsockname of a connection says which address the stack used.
	const connectPy = `import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print(s.getsockname()[0])`
	for _, tc := range []struct {
		flags []string
		dst   string
		want  string
	}{
		{nil, attachFarAddr, attachAddr},
		{[]string{"--ip", "10.213.70.7/24", "--route", "10.213.71.0/24 via " + attachPeerAddr + " advmss 1300"}, attachFarAddr, "10.213.70.7"},
	} {
		var out, errb bytes.Buffer
		c := e.netprov(ctx, tc.flags, "python3", "-c", connectPy, tc.dst, strconv.Itoa(port))
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil {
			t.Fatalf("%v: %v\nstdout %s\nstderr %s", tc.flags, err, out.String(), errb.String())
		}
		if got := strings.TrimSpace(out.String()); got != tc.want {
			t.Errorf("%v: connection's source address %q, want %q", tc.flags, got, tc.want)
		}
		e.assertRestored(before)
	}
	var syns int
	for _, f := range dump.Stop(t) {
		seg, ok := tcpcap.ParseTCP(f.Data)
		if !ok || seg.Flags&header.TCPFlagAck != 0 || !strings.HasSuffix(seg.Dst, ":"+strconv.Itoa(port)) {
			continue
		}
		syns++
		if mss := optionMSS(seg.Options); mss != 1300 {
			t.Errorf("SYN %s → %s advertises MSS %d, want the route's advmss 1300", seg.Src, seg.Dst, mss)
		}
	}
	if syns < 2 {
		t.Errorf("capture saw %d SYNs from the sandbox, want 2", syns)
	}
}

// TestRunAttachRestoresOnFailure: a command that does not exist ends the
// sandbox at once (exit 127); the drop goes with it.
func TestRunAttachRestoresOnFailure(t *testing.T) {
	e := newAttachEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	before := e.kernelView()
	c := e.netprov(ctx, nil, "netprov-no-such-command")
	var errb bytes.Buffer
	c.Stderr = &errb
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 {
		t.Errorf("exit: %v, want status 127; stderr %s", err, errb.String())
	}
	e.assertRestored(before)
	// An interface without an address and no --ip is refused before
	// anything is installed.
	e.x.IP(t, "addr", "flush", "dev", attachIface)
	before = e.kernelView()
	c = e.netprov(ctx, nil, "true")
	if out, err := c.CombinedOutput(); err == nil || !strings.Contains(string(out), "no address") {
		t.Errorf("attach to an interface without address: %v, %s; want a refusal", err, out)
	}
	e.assertRestored(before)
}

// optionMSS returns the MSS option's value (0 if absent).
func optionMSS(opts []byte) int {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0:
			return 0
		case 1:
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return 0
		}
		if opts[i] == 2 && opts[i+1] == 4 {
			return int(binary.BigEndian.Uint16(opts[i+2:]))
		}
		i += int(opts[i+1])
	}
	return 0
}

// IPv6 addresses of the attach tests (nodad: usable at once, the kernel's
// DAD would keep them tentative for a second).
const (
	attachAddr6     = "fd00:213:70::2"
	attachPeerAddr6 = "fd00:213:70::1"
	// attachSilent6 has a permanent neighbour entry in X with a MAC no
	// host has: nothing would answer a solicitation for it.
	attachSilent6    = "fd00:213:70::99"
	attachSilentMAC6 = "02:00:00:00:70:99"
)

// TestRunAttachIPv6PermanentNeighbor: X's kernel has `ip -6 neigh add
// fd00:213:70::99 lladdr 02:00:00:00:70:99 nud permanent` on veth0, and
// no host has that MAC. A UDP sender in the sandbox reaches it: the stack
// took the entry over, so every datagram leaves for that MAC at once, and
// no neighbour solicitation for the address is ever sent (a capture on the
// peer's end sees the datagrams and no NS). Afterwards the kernel's entry
// is still there.
func TestRunAttachIPv6PermanentNeighbor(t *testing.T) {
	e := newAttachEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	e.x.IP(t, "-6", "addr", "add", attachAddr6+"/64", "dev", attachIface, "nodad")
	e.peer.IP(t, "-6", "addr", "add", attachPeerAddr6+"/64", "dev", attachPeerIf, "nodad")
	e.x.IP(t, "-6", "neigh", "add", attachSilent6, "lladdr", attachSilentMAC6, "dev", attachIface, "nud", "permanent")
	neighBefore := string(e.x.IP(t, "-6", "neigh", "show", "dev", attachIface, "nud", "permanent"))
	before := e.kernelView()
	dump := tcpcap.Start(t, e.peer, attachPeerIf, "ip6")

	// connect fixes the source address, which getsockname then reports.
	const sendPy = `import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.connect((sys.argv[1], 9))
for i in range(3):
    s.send(b"netprov-%d" % i)
print(s.getsockname()[0])`
	var out, errb bytes.Buffer
	c := e.netprov(ctx, nil, "python3", "-c", sendPy, attachSilent6)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("netprov run: %v\nstdout %s\nstderr %s", err, out.String(), errb.String())
	}
	if got := strings.TrimSpace(out.String()); got != attachAddr6 {
		t.Errorf("datagrams' source address %q, want the address read from the kernel %s", got, attachAddr6)
	}
	frames := dump.Stop(t)
	e.assertRestored(before)
	if after := string(e.x.IP(t, "-6", "neigh", "show", "dev", attachIface, "nud", "permanent")); after != neighBefore {
		t.Errorf("X's permanent neighbours changed:\nbefore:\n%s\nafter:\n%s", neighBefore, after)
	}

	silent := netip.MustParseAddr(attachSilent6)
	silentMAC, err := net.ParseMAC(attachSilentMAC6)
	if err != nil {
		t.Fatal(err)
	}
	var toSilent, solicits int
	for _, f := range frames {
		eth, err := header.ParseEthernet(f.Data)
		if err != nil || eth.EtherType != header.EtherTypeIPv6 {
			continue
		}
		b := f.Data[header.EthernetLen:]
		ip, err := header.ParseIPv6(b)
		if err != nil || len(b) < header.IPv6Len+int(ip.PayloadLen) {
			continue
		}
		payload := b[header.IPv6Len : header.IPv6Len+int(ip.PayloadLen)]
		switch {
		case ip.Dst == silent && ip.NextHeader == header.ProtoUDP:
			toSilent++
			if !bytes.Equal(eth.Dst[:], silentMAC) {
				t.Errorf("datagram to %s sent to MAC %s, want the permanent entry's %s", silent, eth.Dst, silentMAC)
			}
		case ip.NextHeader == header.ProtoICMPv6 && len(payload) > 4 && payload[0] == header.ICMPv6NeighborSolicit:
			if ns, err := header.ParseNDPNeighborSolicit(payload[4:]); err == nil && ns.Target == silent {
				solicits++
			}
		}
	}
	if toSilent != 3 {
		t.Errorf("capture saw %d datagrams to %s, want 3", toSilent, silent)
	}
	if solicits != 0 {
		t.Errorf("capture saw %d neighbour solicitations for %s, want none (the entry is permanent)", solicits, silent)
	}
}

// attachUserAddr is the address a "test tool" adds to veth0 with netlink
// while the sandbox runs.
const attachUserAddr = "10.213.70.50"

// TestRunAttachKernelConfigChangesStayInert: while a server runs under
// `netprov run --netns X --attach veth0`, a program outside the sandbox
// changes X's kernel configuration of veth0 with netlink: `ip addr add
// 10.213.70.50/24`, `ip route add 10.213.72.0/24 via 10.213.70.1`, and
// `ip addr del 10.213.70.2/24` (the very address the stack serves). The
// stack keeps its own copy, read at start: the peer still fetches from
// 10.213.70.2, X's kernel has no TCP socket for it and sends no RST (a
// capture on the peer's end), and the kernel's copy is inert — it does
// not answer for the address just added (ping from the peer fails).
//
// When the sandbox ends, "restored" means the kernel serves veth0 again
// with its configuration as the user left it: netprov never writes the
// kernel's addresses or routes, it only removes its ingress drop, so the
// user's changes are kept, nothing else is changed (the view after the
// end equals the view taken after the changes), and the kernel now
// answers for 10.213.70.50 (ping succeeds).
func TestRunAttachKernelConfigChangesStayInert(t *testing.T) {
	e := newAttachEnv(t)
	needTool(t, "ping")
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	// Deleting the primary address keeps the secondary .50 (and its
	// connected route) instead of flushing it with the primary.
	e.x.Sysctl(t, "net.ipv4.conf."+attachIface+".promote_secondaries", "1")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "page"), []byte("served-by-sandbox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const port = 8073
	url := "http://" + attachAddr + ":" + strconv.Itoa(port) + "/page"
	dump := tcpcap.Start(t, e.peer, attachPeerIf, "tcp")
	srv := e.startServer(ctx, dir, port)
	e.peerGet(url, "served-by-sandbox\n")

	// The "test tool": netlink changes of veth0 from outside the sandbox.
	e.x.IP(t, "addr", "add", attachUserAddr+"/24", "dev", attachIface)
	e.x.IP(t, "route", "add", "10.213.72.0/24", "via", attachPeerAddr, "dev", attachIface)
	e.x.IP(t, "addr", "del", attachAddr+"/24", "dev", attachIface)
	changed := e.kernelView()
	if !strings.Contains(changed, attachUserAddr+"/24") || strings.Contains(changed, attachAddr+"/24") ||
		!strings.Contains(changed, "10.213.72.0/24 via "+attachPeerAddr) {
		t.Fatalf("X's kernel view after the changes is not what ip(8) was asked for:\n%s", changed)
	}

	// The sandbox keeps serving the address the kernel no longer has.
	for range 3 {
		e.peerGet(url, "served-by-sandbox\n")
	}
	if s := e.kernelTCPSockets(); strings.Contains(s, ":"+strconv.Itoa(port)) {
		t.Errorf("X's kernel has a TCP socket for the sandbox's server:\n%s", s)
	}
	if on, err := kernelnet.Installed(ctx, e.x.Path(), attachIface); err != nil || !on {
		t.Errorf("ingress drop not installed while the sandbox runs (err %v)", err)
	}
	// The kernel's copy is inert: no answer for the address just added.
	if out, err := e.peer.Exec("ping", "-c", "1", "-W", "1", attachUserAddr); err == nil {
		t.Errorf("X's kernel answered a ping for %s while the sandbox runs:\n%s", attachUserAddr, out)
	}

	srv.stop(ctx)
	e.assertRestored(changed)
	// veth0 is the kernel's again, with the user's address.
	if out, err := e.peer.Exec("ping", "-c", "1", "-W", "2", attachUserAddr); err != nil {
		t.Errorf("X's kernel does not answer for %s after the sandbox ended: %v\n%s", attachUserAddr, err, out)
	}
	fromServer, synAcks := e.assertNoRSTFromX(dump.Stop(t), attachAddr, port)
	if synAcks < 4 || fromServer == 0 {
		t.Errorf("capture saw %d SYN-ACKs from the sandbox's server (%d segments), want 4 (one per fetch)", synAcks, fromServer)
	}
}
