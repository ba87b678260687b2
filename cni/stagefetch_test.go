package cni

import (
	"context"
	"net"
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

// stagedFetch is this test binary running as a seccomp stage in the
// sandbox netns, about to fetch a URL: its filter is installed and its
// listener received, and it waits for release before it runs.
type stagedFetch struct {
	sc          *seccomp.StageConn
	listenerFd  int // a copy of the stage's listener, for handoffs
	ctx         context.Context
	exited      chan error
	out, errOut *netns.SyncBuffer
}

// stageFetch starts the stage fetching url. Everything it holds is
// released when the test ends.
func (e *testEnv) stageFetch(t *testing.T, url string) *stagedFetch {
	t.Helper()
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
	f := &stagedFetch{exited: make(chan error, 1), out: &netns.SyncBuffer{}, errOut: &netns.SyncBuffer{}}
	cmd := exec.Command("nsenter", "--net="+e.sandbox.Path(), "--", self)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), envStage + "=1", seccomp.StageEnv + "=unix:" + supPath, envFetch + "=" + url}
	cmd.Stdout, cmd.Stderr = f.out, f.errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-f.exited
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	f.ctx = ctx
	sup.SetDeadline(time.Now().Add(20 * time.Second))
	conn, err := sup.AcceptUnix()
	if err != nil {
		t.Fatalf("stage did not connect: %v (stderr %s)", err, f.errOut.String())
	}
	t.Cleanup(func() { conn.Close() })
	if f.sc, err = seccomp.NewStageConn(conn); err != nil {
		t.Fatal(err)
	}
	lis, err := f.sc.ReceiveListener(ctx)
	if err != nil {
		t.Fatalf("listener: %v (stderr %s)", err, f.errOut.String())
	}
	defer lis.Close()
	if f.listenerFd, err = lis.Dup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(f.listenerFd) })
	return f
}

// handoff gives the stage's listener to the stack process at sock, naming
// container id (as `netprov agent` does).
func (f *stagedFetch) handoff(sock, id string) error {
	return control.Handoff(f.ctx, sock, id, f.sc.Pid(), "test", f.listenerFd)
}

// finish releases the stage, waits for the fetch to end and returns what
// it printed; the stack log of container id is shown on failure.
func (f *stagedFetch) finish(t *testing.T, e *testEnv, id string) string {
	t.Helper()
	if err := f.sc.Release(f.ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	select {
	case err := <-f.exited:
		f.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("sandboxed fetch failed: %v\nstderr: %s\nstack log: %s", err, f.errOut.String(), logTail(control.SandboxDir(e.stateDir, id)))
		}
	case <-f.ctx.Done():
		t.Fatalf("sandboxed fetch did not finish\nstack log: %s", logTail(control.SandboxDir(e.stateDir, id)))
	}
	return f.out.String()
}

// sandboxFetch runs this test binary as a seccomp stage in the sandbox
// netns fetching url, hands its listener to container id's stack process
// and returns what it printed.
func (e *testEnv) sandboxFetch(t *testing.T, id, url string) string {
	t.Helper()
	f := e.stageFetch(t, url)
	if err := f.handoff(control.SocketPath(e.stateDir, id), id); err != nil {
		t.Fatalf("handoff: %v", err)
	}
	return f.finish(t, e, id)
}
