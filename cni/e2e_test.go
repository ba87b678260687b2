package cni

import (
	"bytes"
	"context"
	"fmt"
	"github.com/netprov/netprov/integration/capture"
	"github.com/netprov/netprov/stack/header"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/socketshim/seccomp"
)

// TestEndToEndFetch: after ADD, a program in the sandbox netns (which
// has loopback only) fetches a page from a kernel HTTP server in a peer
// namespace on the bridge, through the stack process: the test starts the
// program as a seccomp stage, takes its listener and hands it to the stack
// process's control socket like `netprov agent` does.
func TestEndToEndFetch(t *testing.T) {
	e := newEnv(t)
	l := e.confList("npe2e", e.netprovConf(nil))
	id := uniqueID("e2e")
	r := e.add(l, id)
	if len(r.IPs) != 1 {
		t.Fatalf("ips: %+v", r.IPs)
	}

	// The peer: a kernel namespace on the bridge with a Go HTTP server
	// whose socket lives there.
	peer := netns.New(t, "p")
	netns.Veth(t, e.host, "nppeer0", peer, "veth0")
	e.host.IP(t, "link", "set", "nppeer0", "master", e.bridge)
	e.host.LinkUp(t, "nppeer0")
	peerIP := r.IPs[0].Address.IP.To4()
	peerIP = net.IPv4(peerIP[0], peerIP[1], peerIP[2], 250)
	peer.AddAddr(t, "veth0", peerIP.String()+"/24")
	peer.LinkUp(t, "veth0")
	peer.LinkUp(t, "lo")
	var ln net.Listener
	if err := peer.Do(func() (err error) { ln, err = net.Listen("tcp", peerIP.String()+":8080"); return }); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("hello-from-peer-%08x", rand.Uint32())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// The sandboxed program: this binary, as a stage in the sandbox netns.
	supDir, err := os.MkdirTemp("", "npsup")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(supDir) })
	supPath := filepath.Join(supDir, "s.sock")
	sup, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: supPath, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	self, _ := os.Executable()
	var out, errOut bytes.Buffer
	cmd := exec.Command("nsenter", "--net="+e.sandbox.Path(), "--", self)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), envStage + "=1", seccomp.StageEnv + "=unix:" + supPath,
		envFetch + "=http://" + peerIP.String() + ":8080/"}
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sup.SetDeadline(time.Now().Add(20 * time.Second))
	conn, err := sup.AcceptUnix()
	if err != nil {
		t.Fatalf("stage did not connect: %v (stderr %s)", err, errOut.String())
	}
	defer conn.Close()
	sc, err := seccomp.NewStageConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := sc.ReceiveListener(ctx)
	if err != nil {
		t.Fatalf("listener: %v (stderr %s)", err, errOut.String())
	}
	fd, err := lis.Dup()
	if err != nil {
		t.Fatal(err)
	}
	sock := control.SocketPath(e.stateDir, id)
	if err := control.Handoff(ctx, sock, "someone-else", sc.Pid(), "test", fd); err == nil {
		t.Errorf("handoff naming another container was accepted")
	}
	err = control.Handoff(ctx, sock, id, sc.Pid(), "test", fd)
	unix.Close(fd)
	lis.Close()
	if err != nil {
		t.Fatalf("handoff: %v", err)
	}
	// netprov capture: record the sandbox link while the target fetches.
	capt := startCapture(t, sock)
	if err := sc.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("sandboxed fetch failed: %v\nstderr: %s\nstack log: %s", err, errOut.String(), logTail(control.SandboxDir(e.stateDir, id)))
		}
	case <-ctx.Done():
		t.Fatalf("sandboxed fetch did not finish\nstack log: %s", logTail(control.SandboxDir(e.stateDir, id)))
	}
	if out.String() != body {
		t.Errorf("fetched %q, want %q", out.String(), body)
	}
	syn := false
	for _, f := range capt.stop(t) {
		if seg, ok := capture.ParseTCP(f.Data); ok && seg.Flags == header.TCPFlagSyn && seg.Dst == peerIP.String()+":8080" {
			syn = true
		}
	}
	if !syn {
		t.Errorf("the capture of the sandbox link has no SYN to %s:8080", peerIP)
	}
	st, err := control.GetStatus(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Handoffs != 1 {
		t.Errorf("status handoffs = %d, want 1", st.Handoffs)
	}
	if _, err := control.GetConnections(ctx, sock); err != nil {
		t.Errorf("connections: %v", err)
	}
	// The target is gone; the stack process must not be.
	if dir := control.SandboxDir(e.stateDir, id); !stackAlive(readPID(dir), dir) {
		t.Errorf("stack process ended with its target")
	}
}

// linkCapture is a running OpCapture stream from a stack process.
type linkCapture struct {
	conn net.Conn
	done chan []byte
}

func startCapture(t *testing.T, sock string) *linkCapture {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(`{"op":"` + control.OpCapture + `"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	lc := &linkCapture{conn: c, done: make(chan []byte, 1)}
	go func() {
		b, _ := io.ReadAll(c)
		lc.done <- b
	}()
	t.Cleanup(func() { c.Close() })
	return lc
}

// stop ends the capture and returns the frames after the answer line.
func (lc *linkCapture) stop(t *testing.T) []capture.Frame {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // frames still in flight to the sniffer
	lc.conn.(*net.UnixConn).CloseWrite()
	var b []byte
	select {
	case b = <-lc.done:
	case <-time.After(10 * time.Second):
		t.Fatal("capture stream did not end after the client closed")
	}
	answer, stream, ok := bytes.Cut(b, []byte("\n"))
	if !ok || string(answer) != `{"ok":true}` {
		t.Fatalf("capture answer %q", answer)
	}
	_, frames, err := capture.ReadPcap(bytes.NewReader(stream))
	if err != nil {
		t.Fatalf("capture stream is not pcap: %v", err)
	}
	return frames
}
