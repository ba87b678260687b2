// Package podman runs netprov end to end under rootful podman 4.3 with the
// CNI backend: `netprov install` writes the conflist and the seccomp
// profile into a temp dir, podman's config and storage live there too
// (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), containers use a busybox
// rootfs built from busybox-static (no registry), the default runtime is
// runc (NETPROV_PODMAN_RUNTIME=crun makes it crun) and runtime "crun" is
// crun seeing cgroup v1 only (crun 1.8 refuses this machine's hybrid
// cgroups: env.crunWrapper), and podman itself runs in a
// network namespace the test creates (nsenter --net), so the bridge, the
// TAPs, portmap's rules and the host-side servers never touch the
// machine's own network.
package podman

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/agent"
)

// env is the package's shared podman environment (built once: podman and
// the first ADD are slow).
type env struct {
	work      string // temp dir: config, storage, rootfs, binaries
	netns     string // /run/netns/<name>: podman, bridge and host side
	nsName    string
	netName   string // CNI network name (= bridge name)
	subnet    string // "10.213.61" (the /24's first three octets)
	gateway   string
	bin       string // netprov
	stateDir  string
	agentSock string
	rootfs    string
	confEnv   []string

	agentMu  sync.Mutex
	agentCmd *exec.Cmd
}

var (
	theEnv     *env
	theEnvErr  error
	theEnvSkip string
	envOnce    sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theEnv != nil {
		theEnv.teardown()
	}
	os.Exit(code)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// setup returns the shared environment or skips the test.
func setup(t *testing.T) *env {
	t.Helper()
	envOnce.Do(func() { theEnv, theEnvSkip, theEnvErr = newEnv() })
	if theEnvSkip != "" {
		t.Skip(theEnvSkip)
	}
	if theEnvErr != nil {
		t.Fatalf("podman environment: %v", theEnvErr)
	}
	return theEnv
}

func newEnv() (*env, string, error) {
	if os.Geteuid() != 0 {
		return nil, "needs root (rootful podman, network namespaces)", nil
	}
	for _, p := range []string{"podman", "runc", "busybox", "nsenter", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Sprintf("%s not installed (scripts/setup installs the container_runtime group)", p), nil
		}
	}
	if _, err := os.Stat("/usr/lib/cni/portmap"); err != nil {
		return nil, "containernetworking-plugins not installed (/usr/lib/cni/portmap)", nil
	}
	if _, err := os.Stat("/usr/share/containers/seccomp.json"); err != nil {
		return nil, "golang-github-containers-common not installed (/usr/share/containers/seccomp.json)", nil
	}
	work, err := os.MkdirTemp("", "npp") // short: unix socket paths under it are limited to 108 bytes
	if err != nil {
		return nil, "", err
	}
	sfx := randHex(4)
	e := &env{
		work: work, nsName: "npod" + sfx, netName: "np" + sfx,
		subnet: "10.213.61", stateDir: filepath.Join(work, "s"),
		agentSock: filepath.Join(work, "agent.sock"),
	}
	e.gateway = e.subnet + ".1"
	e.netns = "/run/netns/" + e.nsName
	if err := e.build(); err != nil {
		e.teardown()
		return nil, "", err
	}
	return e, "", nil
}

func (e *env) build() error {
	run := func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("ip", "netns", "add", e.nsName); err != nil {
		return err
	}
	if err := run("ip", "-n", e.nsName, "link", "set", "lo", "up"); err != nil {
		return err
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	e.bin = filepath.Join(e.work, "netprov")
	build := exec.Command("go", "build", "-o", e.bin, "./cmd/netprov")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/netprov: %v: %s", err, out)
	}
	cniBin := filepath.Join(e.work, "cni/bin")
	cniConf := filepath.Join(e.work, "cni/net.d")
	profile := filepath.Join(e.work, "seccomp.json")
	if err := run(e.bin, "install", "--cni-bin-dir", cniBin, "--cni-conf-dir", cniConf,
		"--seccomp-profile", profile, "--name", e.netName, "--subnet", e.subnet+".0/24",
		"--agent-socket", e.agentSock, "--state-dir", e.stateDir, "--ipmasq=false"); err != nil {
		return err
	}
	conf := filepath.Join(e.work, "conf")
	os.MkdirAll(conf, 0o755)
	crun, err := e.crunWrapper()
	if err != nil {
		return fmt.Errorf("crun wrapper: %w", err)
	}
	containersConf := fmt.Sprintf(`[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
seccomp_profile = %q

[network]
network_backend = "cni"
cni_plugin_dirs = [%q, "/usr/lib/cni"]
network_config_dir = %q
default_network = %q

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q
runtime = %q
tmp_dir = %q

[engine.runtimes]
crun = [%q]
`, profile, cniBin, cniConf, e.netName, filepath.Join(e.work, "run/events.log"), defaultRuntime(), filepath.Join(e.work, "run/libpod"), crun)
	storageConf := fmt.Sprintf("[storage]\ndriver = \"overlay\"\nrunroot = %q\ngraphroot = %q\n",
		filepath.Join(e.work, "run/storage"), filepath.Join(e.work, "storage"))
	if err := os.WriteFile(filepath.Join(conf, "containers.conf"), []byte(containersConf), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(conf, "storage.conf"), []byte(storageConf), 0o644); err != nil {
		return err
	}
	e.confEnv = []string{"CONTAINERS_CONF=" + filepath.Join(conf, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(conf, "storage.conf")}
	if err := e.makeRootfs(); err != nil {
		return err
	}
	if err := e.startAgent(); err != nil {
		return err
	}
	// The bridge (and its gateway address, where host-side test servers
	// listen) exists once the first container joined the network.
	_, err = e.podman(context.Background(), "run", "-d", "--name", "anchor-"+e.netName, "--rootfs", e.rootfs, "sleep", "3600")
	return err
}

// makeRootfs builds the busybox root filesystem (see feasibility notes §1).
func (e *env) makeRootfs() error {
	e.rootfs = filepath.Join(e.work, "rootfs")
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root"} {
		if err := os.MkdirAll(filepath.Join(e.rootfs, d), 0o755); err != nil {
			return err
		}
	}
	bb, _ := exec.LookPath("busybox")
	data, err := os.ReadFile(bb)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.rootfs, "bin/busybox"), data, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("chroot", e.rootfs, "/bin/busybox", "--install", "-s").CombinedOutput(); err != nil {
		return fmt.Errorf("busybox --install: %v: %s", err, out)
	}
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", filepath.Join(e.rootfs, "bin/uploader"), ".")
	build.Dir = filepath.Join(filepath.Dir(file), "testdata/uploader")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build testdata/uploader: %v: %s", err, out)
	}
	os.WriteFile(filepath.Join(e.rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(e.rootfs, "etc/group"), []byte("root:x:0:\n"), 0o644)
	return nil
}

// startAgent runs `netprov agent` on the profile's socket.
func (e *env) startAgent() error {
	e.agentMu.Lock()
	defer e.agentMu.Unlock()
	logf, err := os.OpenFile(filepath.Join(e.work, "agent.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(e.bin, "agent", "--socket", e.agentSock, "--state-dir", e.stateDir)
	cmd.Env = append(os.Environ(), "NETPROV_LOG=info")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	e.agentCmd = cmd
	for i := 0; i < 250; i++ {
		if _, err := os.Stat(e.agentSock); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("agent did not create %s", e.agentSock)
}

// killAgent kills the agent with SIGKILL (a crash) and reaps it.
func (e *env) killAgent() {
	e.agentMu.Lock()
	defer e.agentMu.Unlock()
	if e.agentCmd != nil {
		e.agentCmd.Process.Kill()
		e.agentCmd.Wait()
		e.agentCmd = nil
	}
	// An agent CNI ADD started for this environment: its pid file is in
	// our work dir, so it is ours to end.
	if pid, ok := agent.LivePID(e.agentSock); ok {
		unix.Kill(pid, unix.SIGKILL)
		for i := 0; i < 100 && unix.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// podman runs podman in the test's network namespace.
func (e *env) podman(ctx context.Context, args ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + e.netns, "podman"}, args...)...)
	cmd.Env = append(os.Environ(), e.confEnv...)
	cmd.Dir = e.work
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// run runs a throwaway container with the busybox rootfs.
func (e *env) run(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"run", "--rm", "--rootfs", e.rootfs}, args...)
	out, err := e.podman(context.Background(), full...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// start starts a detached container (podman options opts, then the
// command) and removes it at cleanup. It returns the full container id.
// (--rootfs is a switch: the first argument after the options is the
// rootfs path, so the options must come before it.)
func (e *env) start(t *testing.T, opts []string, cmd ...string) string {
	t.Helper()
	full := append(append(append([]string{"run", "-d"}, opts...), "--rootfs", e.rootfs), cmd...)
	out, err := e.podman(context.Background(), full...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	id := strings.TrimSpace(lines[len(lines)-1])
	t.Cleanup(func() { e.podman(context.Background(), "rm", "-f", "-t", "0", id) })
	return id
}

// inspect reads one field of a container with a Go template.
func (e *env) inspect(t *testing.T, id, format string) string {
	t.Helper()
	out, err := e.podman(context.Background(), "inspect", "--format", format, id)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) containerIP(t *testing.T, id string) string {
	return e.inspect(t, id, "{{(index .NetworkSettings.Networks \""+e.netName+"\").IPAddress}}")
}

// inNetns runs f on a thread in the test's network namespace: sockets f
// creates live there. The thread is discarded afterwards.
func (e *env) inNetns(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		fd, err := unix.Open(e.netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

func (e *env) agentLog() string {
	b, _ := os.ReadFile(filepath.Join(e.work, "agent.log"))
	return string(b)
}

func (e *env) teardown() {
	if e.confEnv != nil {
		e.podman(context.Background(), "rm", "-a", "-f", "-t", "0")
	}
	e.killAgent()
	exec.Command("ip", "netns", "del", e.nsName).Run()
	os.RemoveAll(filepath.Join("/var/lib/cni/networks", e.netName))
	// Storage may hold mounts (overlay, shm) under work.
	if out, err := exec.Command("findmnt", "-rn", "-o", "TARGET").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], e.work+"/") {
				unix.Unmount(lines[i], unix.MNT_DETACH)
			}
		}
	}
	os.RemoveAll(e.work)
}

// defaultRuntime is the OCI runtime of containers that do not pick one:
// NETPROV_PODMAN_RUNTIME ("runc" or "crun"; default runc). CI runs the
// package with runc; TestCrunContainer covers crun. Setting it to crun runs
// every test of the package with crun.
func defaultRuntime() string {
	if os.Getenv("NETPROV_PODMAN_RUNTIME") == "crun" {
		return "crun"
	}
	return "runc"
}

// crunWrapper writes the program podman runs as runtime "crun" and returns
// its path.
//
// crun 1.8.1 refuses hybrid cgroups whenever the cgroup2 hierarchy at
// /sys/fs/cgroup/unified has a controller ("cgroups in hybrid mode not
// supported, drop all controllers from cgroupv2", checked in
// libcrun_cgroup_enter for every cgroup manager, "disabled" included).
// These VMs boot with every controller on cgroup v1 except hugetlb, which
// no v1 hierarchy binds, so the kernel lists it in cgroup2's
// cgroup.controllers. runc 1.1 ignores that; crun does not. Mounting a v1
// hugetlb hierarchy fixes it too, but moves the controller host-wide.
//
// The wrapper instead runs crun in a private mount namespace whose
// /sys/fs/cgroup holds the v1 hierarchies only (a tmpfs with each of them
// bind-mounted, "unified" left out): crun then detects plain cgroup v1
// (statfs of /sys/fs/cgroup/unified fails with ENOENT) and puts the
// container in the same v1 cgroups runc uses here. Mounts podman made
// before (rootfs, shm) are copied into that namespace, nothing leaks out of
// it (unshare makes every mount private), and unshare and sh exec, so crun
// keeps the pid conmon started.
func (e *env) crunWrapper() (string, error) {
	dir := filepath.Join(e.work, "runtime")
	path := filepath.Join(dir, "crun")
	crun, err := exec.LookPath("crun")
	if err != nil {
		crun = "/usr/bin/crun" // not installed: the crun tests skip
	}
	host := filepath.Join(dir, "cgroup-host")
	if err := os.MkdirAll(host, 0o755); err != nil {
		return "", err
	}
	inner := `set -e
cg=/sys/fs/cgroup
mount --rbind "$cg" ` + host + `
mount -t tmpfs -o mode=755 cgroup-v1 "$cg"
for d in ` + host + `/*; do
	n=${d##*/}
	if [ "$n" = unified ]; then continue; fi
	if [ -L "$d" ]; then ln -s "$(readlink "$d")" "$cg/$n"; continue; fi
	mkdir "$cg/$n"
	mount --bind "$d" "$cg/$n"
done
mount -o remount,ro,bind "$cg"
exec ` + crun + ` "$@"`
	script := "#!/bin/sh\n# netprov integration/podman: crun seeing cgroup v1 only (see env_test.go crunWrapper).\n" +
		"exec unshare --mount --propagation private /bin/sh -c '" + inner + "' crun \"$@\"\n"
	return path, os.WriteFile(path, []byte(script), 0o755)
}
