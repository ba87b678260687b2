package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/netprov/netprov/stack"
)

// The demo's addresses (inside its own namespaces only).
var (
	demoKernelV4 = netip.MustParsePrefix("10.213.99.1/24")
	demoKernelV6 = netip.MustParsePrefix("fd00:213:99::1/64")
	demoStackV4  = netip.MustParsePrefix("10.213.99.2/24")
	demoStackV6  = netip.MustParsePrefix("fd00:213:99::2/64")
)

// demoTools are the programs the demo runs.
var demoTools = []string{"ip", "sysctl", "curl", "ping", "python3", "ss"}

// demo is one run of `netprov demo`: its topology and where it prints.
type demo struct {
	topo     *topology
	out      io.Writer
	bulkSize int
	// sockets are the stack sockets the demo keeps open (listeners), for
	// the connection list.
	sockets []any
	// cleanups run, last first, before the topology is removed.
	cleanups []func()
	// netprov is the binary step (f) runs `netprov run` with.
	netprov string
}

func runDemo(ctx context.Context, args []string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the netprov binary: %w", err)
	}
	return demoMain(ctx, args, os.Stdout, self)
}

// demoMain is `netprov demo ARGS` printing its narrative to out; netprov is
// the binary whose `run` command step (f) uses.
func demoMain(ctx context.Context, args []string, out io.Writer, netprov string) error {
	if len(args) > 0 && (args[0] == "--podman" || args[0] == "-podman") {
		return demoPodman(ctx, args[1:], out, netprov) // demo_podman.go
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	bulkMiB := fs.Int("bulk", 64, "MiB to move in each direction in the bulk transfer")
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: netprov demo [-bulk MiB]")
		fmt.Fprintln(os.Stderr, "Builds two throwaway network namespaces joined by a veth pair, runs the")
		fmt.Fprintln(os.Stderr, "userspace stack on one end (AF_PACKET) and the Linux kernel on the other,")
		fmt.Fprintln(os.Stderr, "shows them talking, and removes everything again. Needs root.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 || *bulkMiB < 1 || *bulkMiB > 4096 {
		fs.Usage()
		return usageError{"demo takes only -bulk MiB (1..4096)"}
	}
	if os.Geteuid() != 0 {
		return errors.New("demo needs root to create network namespaces and open AF_PACKET sockets: run it as root (scripts/demo)")
	}
	var missing []string
	for _, tool := range demoTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("demo needs %s, not found in PATH (scripts/setup installs them)", strings.Join(missing, ", "))
	}

	log := slog.Default()
	fmt.Fprintln(out, "== netprov demo: the userspace TCP/IP stack and the Linux kernel as peers")
	topo, err := newTopology(ctx, topologyConfig{
		kernelAddrs: []netip.Prefix{demoKernelV4, demoKernelV6},
		stackAddrs:  []netip.Prefix{demoStackV4, demoStackV6},
	}, log)
	if err != nil {
		return fmt.Errorf("build the demo topology: %w", err)
	}
	defer func() {
		fmt.Fprintf(out, "\n== teardown: stopping the stack, deleting namespaces %s and %s\n", topo.kernelNS, topo.stackNS)
		if err := topo.close(); err != nil {
			log.Error("teardown", "err", err)
		}
	}()
	fmt.Fprintf(out, "   kernel peer: namespace %s, %s with %v and %v\n", topo.kernelNS, topo.kernelDev, demoKernelV4, demoKernelV6)
	fmt.Fprintf(out, "   netprov:     userspace stack in this process (pid %d) on %s of namespace %s via AF_PACKET (+vnet header),\n", os.Getpid(), topo.stackDev, topo.stackNS)
	fmt.Fprintf(out, "                with %v and %v; the kernel there has no address on it\n", demoStackV4, demoStackV6)

	d := &demo{topo: topo, out: out, bulkSize: *bulkMiB << 20, netprov: netprov}
	defer func() {
		for i := len(d.cleanups) - 1; i >= 0; i-- {
			d.cleanups[i]()
		}
	}()
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"(a) kernel curl -> HTTP server on the userspace stack", d.curlToStack},
		{"(b) userspace stack HTTP client -> kernel python3 -m http.server", d.stackToPython},
		{"(c) kernel ping -> userspace stack", d.pingStack},
		{"(d) bulk transfer both ways", d.bulk},
		{"(e) the stack's connections and counters", d.connections},
		{"(f) an unmodified curl under `netprov run` -> kernel python3 http.server", d.runCurl},
	}
	for _, s := range steps {
		fmt.Fprintf(out, "\n== %s\n", s.title)
		if err := s.run(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during %s", s.title)
			}
			return fmt.Errorf("%s: %w", s.title, err)
		}
	}
	fmt.Fprintln(out, "\n== demo complete: every exchange above went through netprov's userspace stacks")
	return nil
}

// stackOptions configures the demo's stack.
func stackOptions(log *slog.Logger) stack.Options {
	return stack.Options{Logger: log.With("component", "stack")}
}

// indent prefixes every line of s for the narrative.
func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "   | " + strings.ReplaceAll(s, "\n", "\n   | ")
}
