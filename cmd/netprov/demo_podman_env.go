package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/agent"
)

// demoPodmanSubnet is the podman demo's network, inside its own namespace.
var demoPodmanSubnet = netip.MustParsePrefix("10.213.97.0/24")

// demoPodmanTools are the programs the podman demo runs.
var demoPodmanTools = []string{"podman", "runc", "busybox", "nsenter", "ip", "chroot", "findmnt"}

// podmanDemoEnv is everything the podman demo creates: a temp dir (CNI
// plugin dir and conflist, seccomp profile, containers.conf,
// storage.conf, podman storage, busybox rootfs, sandbox state), a
// network namespace where podman, the bridge and the kernel server run,
// and the seccomp agent. close removes all of it.
type podmanDemoEnv struct {
	work     string
	nsName   string
	nsPath   string
	network  string // CNI network name = bridge name
	gateway  netip.Addr
	netprov  string
	profile  string
	rootfs   string
	stateDir string
	sock     string
	confEnv  []string
	agent    *exec.Cmd
}

func newPodmanDemoEnv(ctx context.Context, netprov string) (*podmanDemoEnv, error) {
	b := make([]byte, 4)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	// Short: sandbox control sockets under it must fit sun_path.
	work, err := os.MkdirTemp("", "npdp")
	if err != nil {
		return nil, err
	}
	e := &podmanDemoEnv{
		work: work, nsName: "npdp" + sfx, network: "npdp" + sfx, gateway: demoPodmanSubnet.Addr().Next(),
		netprov: netprov, profile: filepath.Join(work, "seccomp.json"), rootfs: filepath.Join(work, "rootfs"),
		stateDir: filepath.Join(work, "s"), sock: filepath.Join(work, "agent.sock"),
	}
	e.nsPath = "/run/netns/" + e.nsName
	if err := e.build(ctx); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func demoCmd(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (e *podmanDemoEnv) build(ctx context.Context) error {
	if err := demoCmd(ctx, "ip", "netns", "add", e.nsName); err != nil {
		return err
	}
	// The bridge with the gateway address exists before the first
	// container (netprov's ADD keeps an existing bridge), so the kernel
	// server can listen on the gateway first.
	gw := netip.PrefixFrom(e.gateway, demoPodmanSubnet.Bits()).String()
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", e.network, "type", "bridge"},
		{"addr", "add", gw, "dev", e.network},
		{"link", "set", e.network, "up"},
	} {
		if err := demoCmd(ctx, "ip", append([]string{"-n", e.nsName}, args...)...); err != nil {
			return err
		}
	}
	o, err := parseInstallFlags([]string{
		"--cni-bin-dir", filepath.Join(e.work, "cni/bin"), "--cni-conf-dir", filepath.Join(e.work, "cni/net.d"),
		"--seccomp-profile", e.profile, "--name", e.network, "--subnet", demoPodmanSubnet.String(),
		"--agent-socket", e.sock, "--state-dir", e.stateDir, "--ipmasq=false"})
	if err != nil {
		return err
	}
	o.binary = e.netprov
	if err := install(o, io.Discard); err != nil {
		return err
	}
	if err := e.writeConfig(o); err != nil {
		return err
	}
	if err := e.makeRootfs(ctx); err != nil {
		return err
	}
	return e.startAgent()
}

// writeConfig writes containers.conf and storage.conf (feasibility notes
// §1: runc, CNI, cgroupfs, file events, k8s-file logs, ulimits this
// machine can grant) and selects them with CONTAINERS_CONF and
// CONTAINERS_STORAGE_CONF.
func (e *podmanDemoEnv) writeConfig(o *installOptions) error {
	containersConf := fmt.Sprintf(`[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_backend = "cni"
cni_plugin_dirs = [%q, "/usr/lib/cni"]
network_config_dir = %q
default_network = %q

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q
runtime = "runc"
tmp_dir = %q
`, o.cniBinDir, o.cniConfDir, e.network, filepath.Join(e.work, "run/events.log"), filepath.Join(e.work, "run/libpod"))
	storageConf := fmt.Sprintf("[storage]\ndriver = \"overlay\"\nrunroot = %q\ngraphroot = %q\n",
		filepath.Join(e.work, "run/storage"), filepath.Join(e.work, "storage"))
	conf := filepath.Join(e.work, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(conf, "containers.conf"), []byte(containersConf), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(conf, "storage.conf"), []byte(storageConf), 0o644); err != nil {
		return err
	}
	e.confEnv = []string{"CONTAINERS_CONF=" + filepath.Join(conf, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(conf, "storage.conf")}
	return nil
}

// makeRootfs builds a busybox root filesystem: no image registry needed.
func (e *podmanDemoEnv) makeRootfs(ctx context.Context) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root"} {
		if err := os.MkdirAll(filepath.Join(e.rootfs, d), 0o755); err != nil {
			return err
		}
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return err
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.rootfs, "bin/busybox"), data, 0o755); err != nil {
		return err
	}
	if err := demoCmd(ctx, "chroot", e.rootfs, "/bin/busybox", "--install", "-s"); err != nil {
		return fmt.Errorf("busybox rootfs (busybox-static needed): %w", err)
	}
	if err := os.WriteFile(filepath.Join(e.rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.rootfs, "etc/group"), []byte("root:x:0:\n"), 0o644)
}

// startAgent runs `netprov agent` on the profile's listener socket.
func (e *podmanDemoEnv) startAgent() error {
	logf, err := os.Create(filepath.Join(e.work, "agent.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(e.netprov, "agent", "--socket", e.sock, "--state-dir", e.stateDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the agent: %w", err)
	}
	e.agent = cmd
	for i := 0; i < 250; i++ {
		if _, err := os.Stat(e.sock); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the agent did not create %s (log %s)", e.sock, logf.Name())
}

// podman runs podman in the demo's namespace with the demo's config.
func (e *podmanDemoEnv) podman(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + e.nsPath, "podman"}, args...)...)
	cmd.Env = append(os.Environ(), e.confEnv...)
	cmd.Dir = e.work
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// listen opens a kernel TCP listener in the demo's namespace: the
// socket stays there whatever thread serves it.
func (e *podmanDemoEnv) listen(addr netip.AddrPort) (net.Listener, error) {
	type res struct {
		ln  net.Listener
		err error
	}
	c := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		fd, err := unix.Open(e.nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			c <- res{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			c <- res{err: fmt.Errorf("setns %s: %w", e.nsPath, err)}
			return
		}
		ln, err := net.Listen("tcp4", addr.String())
		c <- res{ln, err}
	}()
	r := <-c
	return r.ln, r.err
}

// close removes the containers, the agent, the namespace (bridge, TAPs),
// the IPAM leases and the temp dir (podman storage included).
func (e *podmanDemoEnv) close() error {
	var errs []string
	if e.confEnv != nil {
		if _, err := e.podman(context.Background(), "rm", "-a", "-f", "-t", "0"); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if e.agent != nil {
		e.agent.Process.Kill()
		e.agent.Wait()
	}
	// An agent a CNI ADD started (had ours died): its pid file is ours.
	if pid, err := agent.PID(e.sock); err == nil && pid > 0 && (e.agent == nil || pid != e.agent.Process.Pid) {
		unix.Kill(pid, unix.SIGKILL)
	}
	if err := demoCmd(context.Background(), "ip", "netns", "del", e.nsName); err != nil && !strings.Contains(err.Error(), "No such file") {
		errs = append(errs, err.Error())
	}
	os.RemoveAll(filepath.Join("/var/lib/cni/networks", e.network))
	// Podman's storage may leave overlay and shm mounts under work.
	if out, err := exec.Command("findmnt", "-rn", "-o", "TARGET").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], e.work+"/") {
				unix.Unmount(lines[i], unix.MNT_DETACH)
			}
		}
	}
	if err := os.RemoveAll(e.work); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("podman demo teardown: %s", strings.Join(errs, "; "))
	}
	return nil
}
