package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/netprov/netprov/stack/link/afpacket"
	"github.com/netprov/netprov/stack/node"
)

const (
	// commandTimeout bounds every foreground command the topology runs.
	commandTimeout = 30 * time.Second
	// operUpTimeout bounds the wait for a device to pass traffic.
	operUpTimeout = 5 * time.Second
	// netnsDir is where `ip netns add` mounts named namespaces.
	netnsDir = "/run/netns/"
)

// topologyConfig describes a throwaway topology: the kernel peer's
// namespace holds one veth end with kernelAddrs; the stack takes the other
// end, in a namespace of its own where the kernel has no address, with
// AF_PACKET and the virtio-net header (segmentation offload both ways).
type topologyConfig struct {
	kernelAddrs []netip.Prefix
	stackAddrs  []netip.Prefix
}

// topology is a running throwaway topology. close removes everything.
type topology struct {
	log       *slog.Logger
	kernelNS  string // the kernel peer's namespace
	stackNS   string // holds the veth end the stack owns
	kernelDev string
	stackDev  string
	node      *node.Node

	mu     sync.Mutex
	nsMade []string
	procs  []*exec.Cmd
}

// newTopology builds the namespaces, the veth pair and the stack. On error
// whatever was built is removed again.
func newTopology(ctx context.Context, cfg topologyConfig, log *slog.Logger) (_ *topology, err error) {
	suffix, err := randomSuffix()
	if err != nil {
		return nil, err
	}
	t := &topology{
		log:       log,
		kernelNS:  "npdk" + suffix,
		stackNS:   "npds" + suffix,
		kernelDev: "veth0",
		stackDev:  "veth1",
	}
	defer func() {
		if err != nil {
			if cerr := t.close(); cerr != nil {
				log.Warn("teardown after failed setup", "err", cerr)
			}
		}
	}()
	for _, ns := range []string{t.kernelNS, t.stackNS} {
		if err := t.ip(ctx, "netns", "add", ns); err != nil {
			return nil, err
		}
		t.mu.Lock()
		t.nsMade = append(t.nsMade, ns)
		t.mu.Unlock()
		if err := t.ip(ctx, "-n", ns, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
	}
	// The stack uses veth1's MAC, so its EUI-64 link-local address would
	// be the kernel's too: the kernel of the stack's namespace stays off
	// IPv6 (and has no IPv4 address), leaving the device to the stack.
	if _, err := t.run(ctx, t.stackNS, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		return nil, err
	}
	if err := t.ip(ctx, "-n", t.kernelNS, "link", "add", t.kernelDev, "type", "veth", "peer", "name", t.stackDev, "netns", t.stackNS); err != nil {
		return nil, err
	}
	for _, p := range cfg.kernelAddrs {
		args := []string{"-n", t.kernelNS, "addr", "add", p.String(), "dev", t.kernelDev}
		if p.Addr().Is6() {
			args = append(args, "nodad") // usable at once, not after DAD's second
		}
		if err := t.ip(ctx, args...); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct{ ns, dev string }{{t.kernelNS, t.kernelDev}, {t.stackNS, t.stackDev}} {
		if err := t.ip(ctx, "-n", d.ns, "link", "set", d.dev, "up"); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct{ ns, dev string }{{t.kernelNS, t.kernelDev}, {t.stackNS, t.stackDev}} {
		if err := t.waitOperUp(ctx, d.ns, d.dev); err != nil {
			return nil, err
		}
	}

	// With the virtio-net header the kernel's TSO/GSO super-segments
	// reach the stack whole and the stack sends its own (no need to turn
	// the veth's offloads off).
	ep, err := afpacket.New(afpacket.Config{Interface: t.stackDev, NetNS: netnsDir + t.stackNS, VnetHdr: true})
	if err != nil {
		return nil, fmt.Errorf("open %s in %s with AF_PACKET: %w", t.stackDev, t.stackNS, err)
	}
	n, err := node.New(node.Options{Stack: stackOptions(log)})
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("create the stack: %w", err)
	}
	t.node = n
	if _, err := n.AddNIC(ep, "eth0", cfg.stackAddrs...); err != nil {
		ep.Close()
		return nil, fmt.Errorf("attach %s to the stack: %w", t.stackDev, err)
	}
	return t, nil
}

func randomSuffix() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random name: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// waitOperUp waits until dev has carrier and a real qdisc: right after
// `ip link set up` the kernel may still have the noop qdisc, which drops
// every frame, until its link watcher runs (up to a second later).
func (t *topology) waitOperUp(ctx context.Context, ns, dev string) error {
	deadline := time.Now().Add(operUpTimeout)
	for {
		out, err := t.output(ctx, "ip", "-n", ns, "-o", "link", "show", dev)
		if err == nil && strings.Contains(out, "LOWER_UP") && !strings.Contains(out, "qdisc noop") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s in %s not up within %v: %s", dev, ns, operUpTimeout, out)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ip runs the ip tool.
func (t *topology) ip(ctx context.Context, args ...string) error {
	_, err := t.output(ctx, "ip", args...)
	return err
}

// run runs a command inside namespace ns and returns its combined output.
func (t *topology) run(ctx context.Context, ns string, args ...string) (string, error) {
	return t.output(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// output runs a command bounded by commandTimeout.
func (t *topology) output(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	t.log.Debug("run", "cmd", cmd.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// kernelCommand returns a command that runs inside the kernel peer's
// namespace, in its own process group, killed if netprov dies. Start it
// with start so close stops it.
func (t *topology) kernelCommand(args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", t.kernelNS}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	return cmd
}

// start starts a background command; close kills it if it still runs.
func (t *topology) start(cmd *exec.Cmd) error {
	t.log.Debug("start", "cmd", cmd.String())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd, err)
	}
	t.mu.Lock()
	t.procs = append(t.procs, cmd)
	t.mu.Unlock()
	return nil
}

// stop kills cmd's process group and reaps it.
func stop(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// close stops the stack and background commands and deletes the
// namespaces (which deletes the veth pair). It runs with a fresh context so
// that it also works after Ctrl-C.
func (t *topology) close() error {
	t.mu.Lock()
	procs, nsMade := t.procs, t.nsMade
	t.procs, t.nsMade = nil, nil
	t.mu.Unlock()
	for _, cmd := range procs {
		stop(cmd)
	}
	var errs []error
	if t.node != nil {
		if err := t.node.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the stack: %w", err))
		}
		t.node = nil
	}
	ctx := context.Background()
	for _, ns := range nsMade {
		// Stray processes would keep the namespace alive.
		if out, err := t.output(ctx, "ip", "netns", "pids", ns); err == nil {
			for _, f := range strings.Fields(out) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if err := t.ip(ctx, "netns", "delete", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
