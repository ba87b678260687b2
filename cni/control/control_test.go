package control

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeHandler records handoffs; its fds are real (a pipe) so the test sees
// SCM_RIGHTS deliver one.
type fakeHandler struct {
	mu      sync.Mutex
	handoff []Request
	fdIno   []uint64
}

func (h *fakeHandler) Status() Status {
	return Status{Version: Version, ContainerID: "c1", Ready: true, Addresses: []netip.Prefix{netip.MustParsePrefix("10.213.1.2/24")}}
}

func (h *fakeHandler) Connections() []Connection {
	return []Connection{{Protocol: "tcp", State: "LISTEN", Local: netip.MustParseAddrPort("0.0.0.0:80")}}
}

func (h *fakeHandler) Handoff(req Request, fd int) error {
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handoff = append(h.handoff, req)
	h.fdIno = append(h.fdIno, st.Ino)
	return nil
}

func serveFake(t *testing.T) (string, *fakeHandler) {
	t.Helper()
	dir, err := os.MkdirTemp("", "npctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, SocketFile)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path, h
}

// TestRoundTrip drives every op through a real unix socket: status and
// connections answer, handoff delivers the very file that was sent (same
// inode) with the request's fields, and a handoff without fd, an unknown
// op and garbage fail with OK=false instead of breaking the server.
func TestRoundTrip(t *testing.T) {
	path, h := serveFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	st, err := GetStatus(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.ContainerID != "c1" || len(st.Addresses) != 1 || st.Addresses[0].String() != "10.213.1.2/24" {
		t.Errorf("status = %+v", st)
	}
	conns, err := GetConnections(ctx, path)
	if err != nil || len(conns) != 1 || conns[0].State != "LISTEN" || conns[0].Local.Port() != 80 {
		t.Errorf("connections = %+v, %v", conns, err)
	}

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	var want unix.Stat_t
	unix.Fstat(p[0], &want)
	if err := Handoff(ctx, path, "c1", 4242, "meta", p[0]); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	if len(h.handoff) != 1 || h.handoff[0].PID != 4242 || h.handoff[0].ContainerID != "c1" || h.handoff[0].Metadata != "meta" || h.fdIno[0] != want.Ino {
		t.Errorf("handoff got %+v inodes %v, want pid 4242 c1 meta inode %d", h.handoff, h.fdIno, want.Ino)
	}
	h.mu.Unlock()

	if _, err := Call(ctx, path, Request{Op: OpHandoff, ContainerID: "c1"}, -1); err == nil || !strings.Contains(err.Error(), "no fd") {
		t.Errorf("handoff without fd: %v, want an error naming the missing fd", err)
	}
	if _, err := Call(ctx, path, Request{Op: "reboot"}, -1); err == nil || !strings.Contains(err.Error(), "unknown op") {
		t.Errorf("unknown op: %v", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("{not json\n"))
	buf := make([]byte, 512)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := c.Read(buf)
	c.Close()
	if !strings.Contains(string(buf[:n]), `"ok":false`) {
		t.Errorf("garbage got %q, want ok:false", buf[:n])
	}
	if _, err := GetStatus(ctx, path); err != nil {
		t.Errorf("server broken after bad requests: %v", err)
	}
}

// TestCallNoServer: a missing socket is an error naming the path.
func TestCallNoServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketFile)
	if _, err := GetStatus(context.Background(), path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("GetStatus without server: %v", err)
	}
}

// captureHandler streams a fixed "pcap" and then waits for the client to
// go away, like a stack process's sniffer.
type captureHandler struct {
	fakeHandler
	ended chan struct{}
}

func (h *captureHandler) Capture(ctx context.Context, w io.Writer) error {
	if _, err := w.Write([]byte("PCAPDATA")); err != nil {
		return err
	}
	<-ctx.Done()
	close(h.ended)
	return nil
}

func TestCaptureStreamsUntilClientCloses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketFile)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	h := &captureHandler{ended: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, ln, h, nil)

	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(`{"op":"capture"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, 64)
	buf := make([]byte, 64)
	for !strings.Contains(string(got), "PCAPDATA") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if want := "{\"ok\":true}\nPCAPDATA"; string(got) != want {
		t.Fatalf("stream = %q, want %q", got, want)
	}
	c.Close()
	select {
	case <-h.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("capture did not end when the client closed")
	}
}

func TestCaptureRefusedWithoutCapturer(t *testing.T) {
	path, _ := serveFake(t)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(`{"op":"capture"}` + "\n"))
	line, err := io.ReadAll(c)
	if err != nil || !strings.Contains(string(line), "cannot capture") {
		t.Fatalf("answer %q, %v; want a refusal", line, err)
	}
}
