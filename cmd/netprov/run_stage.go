package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/socketshim"
	"github.com/netprov/netprov/socketshim/seccomp"
)

// stageConfigEnv carries the sandboxConfig (JSON) to the stage.
const stageConfigEnv = "NETPROV_RUN_SANDBOX"

// runStageMain is the stage: a re-exec of netprov in the sandbox's fresh
// network and mount namespaces. It configures the kernel namespace —
// loopback, and an inert dummy eth0 that mirrors the sandbox's address so
// `ip addr`, `hostname -I` and getaddrinfo(AI_ADDRCONFIG) see it (traffic
// never leaves through it: the sandbox's sockets are the stack's) — writes
// resolv.conf for --dns, then installs the filter and executes CMD.
func runStageMain(args []string) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	var cfg sandboxConfig
	if err := json.Unmarshal([]byte(os.Getenv(stageConfigEnv)), &cfg); err != nil {
		return fmt.Errorf("run stage: %s: %w", stageConfigEnv, err)
	}
	if cfg.AttachNetns != "" {
		if err := enterAttachNetns(cfg.AttachNetns); err != nil {
			return fmt.Errorf("run stage: %w", err)
		}
	} else if err := configureSandboxNetns(&cfg); err != nil {
		return fmt.Errorf("run stage: %w", err)
	}
	if len(cfg.DNS) > 0 {
		if err := writeResolvConf(cfg.DNS); err != nil {
			return fmt.Errorf("run stage: %w", err)
		}
	}
	filter := socketshim.Filter()
	if cfg.Provider == "host" {
		filter = socketshim.PassthroughFilter()
	}
	prog, err := filter.Build()
	if err != nil {
		return fmt.Errorf("run stage: %w", err)
	}
	env := withoutEnvVar(os.Environ(), stageConfigEnv)
	// Killable waits: a signal arriving while the supervisor serves a
	// call that never blocks on Linux (setsockopt, a non-blocking recvmsg)
	// no longer fails it with EINTR; blocking calls are interrupted by the
	// Server (see socketshim's package doc, "Interruption").
	return seccomp.RunStage(seccomp.StageConfig{Program: prog, Flags: seccomp.InstallWaitKillableRecv, Argv: args, Env: env})
}

func withoutEnvVar(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func configureSandboxNetns(cfg *sandboxConfig) error {
	cmds := [][]string{{"link", "set", "lo", "up"}}
	if cfg.Address != "" {
		// The inert device: dummy where the kernel has it, else ifb
		// (drops what is sent to it), else a bridge without ports.
		var err error
		for _, kind := range []string{"dummy", "ifb", "bridge"} {
			if err = runIP(context.Background(), "", "link", "add", sandboxIface, "mtu", strconv.Itoa(cfg.MTU), "type", kind); err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("sandbox %s: %w", sandboxIface, err)
		}
		cmds = append(cmds,
			[]string{"addr", "add", cfg.Address, "dev", sandboxIface},
			[]string{"link", "set", sandboxIface, "up"},
		)
		if !cfg.NoDefaultRoute {
			cmds = append(cmds, []string{"route", "add", "default", "via", cfg.Gateway, "dev", sandboxIface, "onlink"})
		}
		if cfg.Address6 != "" {
			cmds = append(cmds, []string{"-6", "addr", "add", cfg.Address6, "dev", sandboxIface, "nodad"})
			if !cfg.NoDefaultRoute {
				cmds = append(cmds, []string{"-6", "route", "add", "default", "via", cfg.Gateway6, "dev", sandboxIface, "onlink"})
			}
		}
	}
	for _, c := range cmds {
		if err := runIP(context.Background(), "", c...); err != nil {
			return err
		}
	}
	return nil
}

// writeResolvConf bind-mounts a resolv.conf naming servers over the
// sandbox's /etc/resolv.conf, in the stage's private mount namespace.
func writeResolvConf(servers []string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	var b strings.Builder
	for _, s := range servers {
		if _, err := netip.ParseAddr(s); err == nil {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
	}
	f, err := os.CreateTemp("", "netprov-resolv-*.conf")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // the bind mount keeps the inode
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	f.Chmod(0o644)
	f.Close()
	target := "/etc/resolv.conf"
	if t, err := filepath.EvalSymlinks(target); err == nil {
		target = t
	} else if _, lerr := os.Lstat(target); lerr != nil {
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			return fmt.Errorf("create %s: %w", target, err)
		}
	}
	if err := unix.Mount(f.Name(), target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount resolv.conf over %s: %w", target, err)
	}
	return nil
}

// runIP runs ip(8) in network namespace ns ("" = ours; a path otherwise).
func runIP(ctx context.Context, ns string, args ...string) error {
	_, err := nsCommand(ctx, ns, "ip", args...)
	return err
}

// nsCommand runs a command in network namespace ns (via nsenter when ns is
// set) and returns its output.
func nsCommand(ctx context.Context, ns string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ns != "" {
		args = append([]string{"--net=" + ns, "--", name}, args...)
		name = "nsenter"
	}
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
