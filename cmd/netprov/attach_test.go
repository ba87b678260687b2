package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
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
	srv := e.netprov(ctx, nil, "python3", "-c", httpServerPy, sdir, strconv.Itoa(sandboxPort))
	srvStdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var srvErr bytes.Buffer
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// The server says "ready" once it listens: the peer connects only
	// then, so no connection is refused (a refusal is a legitimate RST
	// from the stack, which the capture check below would not tell from
	// the kernel's).
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(srvStdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				ready <- true
				io.Copy(io.Discard, srvStdout)
				return
			}
		}
		ready <- false
	}()
	// srvDone closes when netprov has been waited for.
	srvDone := make(chan struct{})
	t.Cleanup(func() {
		srv.Process.Kill()
		<-srvDone // bounded: WaitDelay closes the pipes 5 s after exit
	})
	select {
	case ok := <-ready:
		if !ok {
			go func() { srv.Wait(); close(srvDone) }()
			t.Fatalf("server in the sandbox ended before it was ready; stderr:\n%s", srvErr.String())
		}
	case <-ctx.Done():
		go func() { srv.Wait(); close(srvDone) }()
		t.Fatal("server in the sandbox not ready in time")
	}
	go func() { srv.Wait(); close(srvDone) }()
	url := "http://" + attachAddr + ":" + strconv.Itoa(sandboxPort) + "/page"
	got, err := e.peer.Exec("curl", "-sS", "-m", "10", url)
	if err != nil {
		t.Fatalf("peer's curl of the sandbox's server: %v: %s", err, got)
	}
	if string(got) != "served-by-sandbox\n" {
		t.Fatalf("peer's curl got %q, want the sandbox's page", got)
	}
	if s := e.kernelTCPSockets(); strings.Contains(s, ":"+strconv.Itoa(sandboxPort)) {
		t.Errorf("X's kernel has a TCP socket for the sandbox's server:\n%s", s)
	}
	on, err := kernelnet.Installed(ctx, e.x.Path(), attachIface)
	if err != nil || !on {
		t.Errorf("ingress drop not installed while the sandbox runs (err %v)", err)
	}
	srv.Process.Signal(syscall.SIGTERM)
	select {
	case <-srvDone:
	case <-ctx.Done():
		t.Fatalf("netprov run did not end after SIGTERM; stderr:\n%s", srvErr.String())
	}
	e.assertRestored(before)

	frames := dump.Stop(t)
	var synAckFromSandbox, fromX int
	for _, f := range frames {
		seg, ok := tcpcap.ParseTCP(f.Data)
		if !ok || !strings.HasPrefix(seg.Src, attachAddr+":") {
			continue
		}
		fromX++
		if seg.Flags&header.TCPFlagRst != 0 {
			t.Errorf("RST from X's address: %+v", seg)
		}
		if seg.Flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn|header.TCPFlagAck && seg.Src == attachAddr+":"+strconv.Itoa(sandboxPort) {
			synAckFromSandbox++
		}
	}
	if fromX == 0 || synAckFromSandbox == 0 {
		t.Errorf("capture saw %d segments from X, %d SYN-ACKs from the sandbox's server; want both > 0", fromX, synAckFromSandbox)
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
