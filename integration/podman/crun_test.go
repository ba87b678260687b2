package podman

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netprov/netprov/cni/control"
)

// requireCrun skips when crun is not installed (scripts/setup installs it).
func requireCrun(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("crun"); err != nil {
		t.Skip("crun not installed (scripts/setup installs the container_runtime group)")
	}
}

// TestCrunContainer runs one container with `podman --runtime crun` (crun
// sees cgroup v1 only: env.crunWrapper) on the netprov network. crun, not
// runc, hands the seccomp notify fd to the agent (listenerPath) and the
// agent to the sandbox's stack process: the stack reports a handoff, the
// container fetches a page from a host-side server (which sees the
// container's address: the request left through the userspace stack, the
// container's kernel netns has loopback only), and serves one that the
// host side fetches by the container's IP. Removing it leaves nothing.
func TestCrunContainer(t *testing.T) {
	requireCrun(t)
	e := setup(t)
	before := e.snapshot(t)
	content := "crun-" + randHex(4)
	port, peers := e.hostServer(t, e.gateway, content)
	script := fmt.Sprintf(`mkdir -p /tmp/www && echo served-%s > /tmp/www/index.html && httpd -p 80 -h /tmp/www && %s; exec sleep 600`,
		content, httpGetScript(e.gateway, port, "/from-crun"))
	id := e.start(t, []string{"--runtime", "crun"}, "/bin/sh", "-c", script)
	if rt := e.inspect(t, id, "{{.OCIRuntime}}"); rt != "crun" {
		t.Fatalf("container runtime %q, want crun", rt)
	}
	ip := e.containerIP(t, id)
	select {
	case peer := <-peers:
		if h, _, _ := net.SplitHostPort(peer); h != ip {
			t.Errorf("host server saw the request from %s, want the container's %s", h, ip)
		}
	case <-time.After(20 * time.Second):
		logs, _ := e.podman(context.Background(), "logs", id)
		t.Fatalf("the crun container did not fetch from the host side; its log: %q\nagent log:\n%s", logs, e.agentLog())
	}
	if got := e.hostGet(t, ip+":80", "/index.html"); strings.TrimSpace(got) != "served-"+content {
		t.Errorf("host side got %q from the crun container's server, want %q", got, "served-"+content)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := control.GetStatus(ctx, filepath.Join(e.stateDir, id, control.SocketFile))
	if err != nil {
		t.Fatalf("status of the crun container's stack: %v", err)
	}
	if st.Handoffs < 1 {
		t.Errorf("stack of the crun container reports %d seccomp handoffs, want >= 1", st.Handoffs)
	}
	if _, err := e.podman(context.Background(), "rm", "-f", "-t", "0", id); err != nil {
		t.Fatal(err)
	}
	if got := e.snapshot(t); got != before {
		t.Fatalf("after rm of the crun container: %+v, before: %+v", got, before)
	}
}
