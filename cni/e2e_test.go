package cni

import (
	"bytes"
	"fmt"
	"github.com/netprov/netprov/integration/capture"
	"github.com/netprov/netprov/stack/header"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/integration/netns"
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
	f := e.stageFetch(t, "http://"+peerIP.String()+":8080/")
	sock := control.SocketPath(e.stateDir, id)
	if err := f.handoff(sock, "someone-else"); err == nil {
		t.Errorf("handoff naming another container was accepted")
	}
	if err := f.handoff(sock, id); err != nil {
		t.Fatalf("handoff: %v", err)
	}
	// netprov capture: record the sandbox link while the target fetches.
	capt := startCapture(t, sock)
	out := f.finish(t, e, id)
	if out != body {
		t.Errorf("fetched %q, want %q", out, body)
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
	st, err := control.GetStatus(f.ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Handoffs != 1 {
		t.Errorf("status handoffs = %d, want 1", st.Handoffs)
	}
	if _, err := control.GetConnections(f.ctx, sock); err != nil {
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
