package semantics

import (
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/netprov/netprov/integration/netns"
)

// gateNetprovRunners keeps the netprov runners skipping while `netprov run`
// does not exist yet. When run lands, the runners start by themselves (the
// gate only matters while run is missing); set this to false then, so that
// a missing or broken run command fails the suite instead of skipping it.
const gateNetprovRunners = true

// runner is one way of running the probe.
type runner struct {
	name string
	// usesNetprov: the runner needs the netprov binary (./cmd/netprov).
	usesNetprov bool
	// withPeer: the runner reaches the kernel peer, so the r-* scenarios
	// run; without it they are left out on both sides.
	withPeer bool
	// bridged: the topology for `netprov run --provider netstack` (see
	// topology).
	bridged bool
	// command returns where and how to run one probe group: probeArgv is
	// the probe's own command line, narrow says which group it is.
	command func(netprov string, tp *topology, narrow bool, probeArgv []string) (*netns.NS, []string)
}

// kernelCommand runs the probe directly on the kernel.
func kernelCommand(_ string, tp *topology, narrow bool, probeArgv []string) (*netns.NS, []string) {
	if narrow {
		return tp.narrow, probeArgv
	}
	return tp.sandbox, probeArgv
}

// hostCommand: kernel sockets in the same namespaces the oracle uses.
func hostCommand(netprov string, tp *topology, narrow bool, probeArgv []string) (*netns.NS, []string) {
	ns := tp.sandbox
	if narrow {
		ns = tp.narrow
	}
	return ns, append([]string{netprov, "run", "--provider", "host", "--host-netns", ns.Path(), "--"}, probeArgv...)
}

// noneCommand: loopback only (the r-* scenarios are left out). The stack
// takes ping_group_range from the namespace, like the oracle's sockets.
func noneCommand(netprov string, tp *topology, narrow bool, probeArgv []string) (*netns.NS, []string) {
	ns := tp.sandbox
	if narrow {
		ns = tp.narrow
	}
	return ns, append([]string{netprov, "run", "--provider", "none", "--ping-group-range", "inherit", "--"}, probeArgv...)
}

// netstackCommand: the userspace stack on a TAP bridged with the peer,
// without a default route, like the oracle's sandbox namespace (an address
// on the peer's subnet and no gateway), with the namespace's
// ping_group_range.
func netstackCommand(netprov string, tp *topology, narrow bool, probeArgv []string) (*netns.NS, []string) {
	ns, subnet, ip := tp.peer, peerSubnet, selfAddr
	if narrow {
		ns, subnet, ip = tp.narrow, narrowSubnet, narrowSelf
	}
	return ns, append([]string{netprov, "run", "--provider", "netstack", "--host-netns", ns.Path(),
		"--bridge", bridgeName, "--subnet", subnet, "--ip", ip, "--no-default-route", "--ping-group-range", "inherit", "--"}, probeArgv...)
}

// runners lists every way the probe runs; each is compared with the
// kernel oracle scenario by scenario. "kernel" is a second kernel run in
// fresh namespaces: it is what makes a flaky scenario fail.
var runners = []runner{
	{name: "kernel", withPeer: true, command: kernelCommand},
	{name: "netprov-netstack", usesNetprov: true, withPeer: true, bridged: true, command: netstackCommand},
	{name: "netprov-host", usesNetprov: true, withPeer: true, command: hostCommand},
	{name: "netprov-none", usesNetprov: true, command: noneCommand},
}

// runAll runs both probe groups with r in fresh namespaces and returns the
// merged output.
func runAll(t *testing.T, r runner, netprov, probe string) output {
	t.Helper()
	tp := newTopology(t, probe, r.bridged)
	mainArgv := []string{probe}
	if r.withPeer {
		mainArgv = append(mainArgv, "-peer", peerAddr, "-self", selfAddr)
	}
	ns, argv := r.command(netprov, tp, false, mainArgv)
	out := runGroup(t, ns, argv)
	ns, argv = r.command(netprov, tp, true, []string{probe, "-narrow", narrowPort})
	if err := out.merge(runGroup(t, ns, argv)); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSemantics runs the probe on the kernel (the oracle), checks that the
// oracle run is complete and clean, then runs it with every runner and
// compares each scenario's lines with the oracle's: any difference fails
// that scenario's subtest with a diff.
func TestSemantics(t *testing.T) {
	netns.RequireRoot(t)
	probe := buildProbe(t)
	list := listScenarios(t, probe)
	oracle := runAll(t, runners[0], "", probe)
	checkOracle(t, list, oracle)

	netprovDir := t.TempDir()
	netprovBinary := sync.OnceValues(func() (string, string) { return buildNetprovRun(netprovDir) })
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			netprov := ""
			if r.usesNetprov {
				bin, missing := netprovBinary()
				if missing != "" {
					if gateNetprovRunners {
						t.Skipf("netprov run not available yet: %s", missing)
					}
					t.Fatalf("netprov run not available: %s", missing)
				}
				netprov = bin
			}
			got := runAll(t, r, netprov, probe)
			compare(t, oracle, got, r.withPeer)
		})
	}
}

// checkOracle asserts that the kernel run printed every listed scenario,
// at least minScenarios of them, and no PROBE-ERROR (the probe failing to
// set a scenario up is a bug in the probe, not a behaviour).
func checkOracle(t *testing.T, list []listing, oracle output) {
	t.Helper()
	perSection := map[string]int{}
	for _, s := range list {
		section, _, _ := strings.Cut(s.name, "-")
		perSection[section]++
		if _, ok := oracle[s.name]; !ok {
			t.Errorf("kernel run did not print scenario %s (%s)", s.name, s.ref)
		}
	}
	if len(oracle) < minScenarios {
		t.Errorf("kernel run printed %d scenarios, want at least %d", len(oracle), minScenarios)
	}
	for _, name := range oracle.names() {
		if !slices.ContainsFunc(list, func(l listing) bool { return l.name == name }) {
			t.Errorf("kernel run printed unlisted scenario %s", name)
		}
		for _, line := range oracle[name] {
			if strings.Contains(line, "PROBE-ERROR") {
				t.Errorf("kernel run: %s: %s", name, line)
			}
		}
	}
	sections := make([]string, 0, len(perSection))
	for s := range perSection {
		sections = append(sections, s)
	}
	sort.Strings(sections)
	var b strings.Builder
	for _, s := range sections {
		b.WriteString(" " + s + "=" + strconv.Itoa(perSection[s]))
	}
	t.Logf("kernel oracle: %d scenarios; per section:%s", len(oracle), b.String())
}

// compare fails one subtest per scenario whose lines differ from the
// oracle's, and the runner's test for scenarios only one side printed.
func compare(t *testing.T, oracle, got output, withPeer bool) {
	t.Helper()
	for _, name := range oracle.names() {
		if !withPeer && strings.HasPrefix(name, "r-") {
			continue
		}
		want := oracle[name]
		t.Run(name, func(t *testing.T) {
			lines, ok := got[name]
			if !ok {
				t.Fatalf("scenario not printed; kernel printed:\n%s", strings.Join(want, "\n"))
			}
			if !slices.Equal(want, lines) {
				t.Errorf("differs from the kernel:\n%s", diffLines(want, lines))
			}
		})
	}
	for _, name := range got.names() {
		if _, ok := oracle[name]; !ok {
			t.Errorf("scenario %s printed only by this runner: %q", name, got[name])
		}
	}
}

// buildNetprovRun builds ./cmd/netprov and reports whether it has the run
// command: it returns the binary, or "" and why run is not usable.
func buildNetprovRun(dir string) (bin, missing string) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", "go tool not in PATH: " + err.Error()
	}
	bin = filepath.Join(dir, "netprov")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/netprov")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		return "", "go build ./cmd/netprov: " + err.Error() + "\n" + string(out)
	}
	out, err := exec.Command(bin, "help").CombinedOutput()
	if err != nil {
		return "", "netprov help: " + err.Error() + "\n" + string(out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "run" {
			return bin, ""
		}
	}
	return "", "`netprov help` lists no run command"
}
