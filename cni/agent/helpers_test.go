package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/socketshim/seccomp"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, runc)")
	}
}

func randSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newNetns creates a named network namespace with lo up and returns its
// path.
func newNetns(t *testing.T) string {
	t.Helper()
	name := "npag" + randSuffix()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return "/run/netns/" + name
}

// handoff is what a test stack process received.
type handoff struct {
	req control.Request
	fd  int // kept open for comparisons; closed by the test's cleanup
}

// testStack is a stack process stand-in: the real control server (package
// control) with a Handler that records handoffs and serves each fd in
// passthrough (CONTINUE), so that the container runs normally.
type testStack struct {
	mu       sync.Mutex
	handoffs []handoff
	got      chan control.Request
}

func (s *testStack) Status() control.Status            { return control.Status{Version: control.Version} }
func (s *testStack) Connections() []control.Connection { return nil }
func (s *testStack) Handoff(req control.Request, fd int) error {
	dup, err := unix.Dup(fd)
	if err != nil {
		unix.Close(fd)
		return err
	}
	s.mu.Lock()
	s.handoffs = append(s.handoffs, handoff{req: req, fd: dup})
	s.mu.Unlock()
	l, err := seccomp.NewListener(fd)
	if err != nil {
		return err
	}
	go func() {
		defer l.Close()
		for {
			n, err := l.Recv(context.Background())
			if err != nil {
				return
			}
			l.Continue(n.ID)
		}
	}()
	s.got <- req
	return nil
}

// newSandbox writes a sandbox state directory for id under stateDir with
// netns recorded, and (if serve) a control socket served by a testStack.
func newSandbox(t *testing.T, stateDir, id, netns string, serve bool) *testStack {
	t.Helper()
	dir := control.SandboxDir(stateDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := control.WriteSandboxConfig(dir, &control.SandboxConfig{ContainerID: id, Netns: netns, Provider: "netstack"}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, control.SocketFile)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	st := &testStack{got: make(chan control.Request, 8)}
	if !serve {
		// A crashed stack process: the socket file stays, nobody accepts.
		ln.SetUnlinkOnClose(false)
		ln.Close()
		return st
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		control.Serve(ctx, ln, st, slog.Default())
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		st.mu.Lock()
		for _, h := range st.handoffs {
			unix.Close(h.fd)
		}
		st.mu.Unlock()
	})
	return st
}

// startAgent runs an Agent on a socket in a temp dir.
func startAgent(t *testing.T, stateDir, unmatched string) (*Agent, string) {
	t.Helper()
	a, err := New(Config{StateDir: stateDir, Unmatched: unmatched, HandoffTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return a, sock
}

// busyboxRootfs builds a minimal root filesystem from busybox-static.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed (scripts/setup installs busybox-static)")
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chroot", root, "/bin/busybox", "--install", "-s").CombinedOutput(); err != nil {
		t.Fatalf("busybox --install: %v: %s", err, out)
	}
	return root
}

// runcResult is a finished container.
type runcResult struct {
	id     string
	output string
	err    error
}

// runcRun runs script in a runc container whose network namespace is netns
// and whose seccomp profile notifies socket calls to listenerPath. It
// returns the container's output.
func runcRun(t *testing.T, rootfs, netns, listenerPath, script string) runcResult {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not installed (scripts/setup installs it)")
	}
	bundle := t.TempDir()
	id := "npag" + randSuffix()
	cfg := map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal": false, "user": map[string]int{"uid": 0, "gid": 0},
			"args": []string{"/bin/sh", "-c", script},
			"env":  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			"cwd":  "/",
			"capabilities": map[string][]string{
				"bounding": {"CAP_KILL"}, "effective": {"CAP_KILL"}, "permitted": {"CAP_KILL"},
			},
			"noNewPrivileges": true,
		},
		"root":     map[string]any{"path": rootfs, "readonly": true},
		"hostname": "npag",
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev"}},
		},
		"linux": map[string]any{
			"namespaces": []map[string]string{
				{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
				{"type": "network", "path": netns},
			},
			"seccomp": map[string]any{
				"defaultAction": "SCMP_ACT_ALLOW",
				"architectures": []string{"SCMP_ARCH_X86_64"},
				"listenerPath":  listenerPath, "listenerMetadata": "netprov-test",
				"syscalls": []map[string]any{{
					"names":  []string{"socket", "connect", "bind", "listen", "accept", "accept4"},
					"action": "SCMP_ACT_NOTIFY",
				}},
			},
		},
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runc, "--root", root, "run", "--bundle", bundle, id)
	out, err := cmd.CombinedOutput()
	exec.Command(runc, "--root", root, "delete", "--force", id).Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("runc did not finish: %w", ctx.Err())
	}
	return runcResult{id: id, output: strings.TrimSpace(string(out)), err: err}
}

// loopbackScript serves one line on 127.0.0.1 inside the container and
// fetches it: it works only if socket/bind/listen/accept/connect work.
const loopbackScript = `nc -l -p 7070 -e echo served-line & sleep 0.3; nc 127.0.0.1 7070 </dev/null; wait`
