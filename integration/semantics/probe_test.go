package semantics

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/netprov/netprov/integration/netns"
)

// Addresses of the probe's topology (HELPERS.md: 10.213.x.x inside test
// namespaces only). The probe prints them as SELF and PEER.
const (
	selfAddr   = "10.213.50.2"
	peerAddr   = "10.213.50.1"
	prefixLen  = "/24"
	narrowPort = "40000" // the one-port ip_local_port_range of the narrow group
)

const (
	// minScenarios is issue 3's floor for the main and narrow groups together.
	minScenarios = 150
	// probeTimeout bounds one whole probe run (each scenario is bounded
	// by the probe itself at 20 s; a normal run takes about 10 s).
	probeTimeout = 3 * time.Minute
	// serveReadyTimeout bounds the wait for the peer services.
	serveReadyTimeout = 10 * time.Second
)

// buildProbe compiles probe.c (with its headers) into a temporary directory
// and returns the binary's path.
func buildProbe(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is needed to build the semantics probe (apt-get install gcc): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "probe")
	cmd := exec.Command(gcc, "-O1", "-Wall", "-Werror", "-o", bin, filepath.Join("probe", "probe.c"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
	return bin
}

// topology is where one probe run happens: the peer namespace running the
// kernel peer services (probe -serve) on peerAddr, the sandbox namespace
// the main group runs in, and a namespace with a one-port ephemeral range
// for the narrow group.
//
// Without bridge (kernel, host and none runners) the sandbox has loopback
// plus a veth to the peer with selfAddr, and no default route. With bridge
// (netstack runner) `netprov run` is started in the peer namespace itself:
// peerAddr sits on a bridge there (the sandbox's gateway) and the stack's
// TAP joins it with --ip selfAddr; the narrow namespace gets its own bridge.
type topology struct {
	sandbox, narrow, peer *netns.NS
}

// bridgeName is the bridge `netprov run` attaches its TAP to, inside the
// test's own namespaces.
const bridgeName = "npsembr"

// Addresses of the narrow namespace's bridge (netstack runner only).
const (
	narrowSubnet = "10.213.51.0/24"
	narrowGW     = "10.213.51.1"
	narrowSelf   = "10.213.51.2"
	peerSubnet   = "10.213.50.0/24"
)

func newTopology(t *testing.T, probe string, bridged bool) *topology {
	t.Helper()
	tp := &topology{
		narrow: netns.New(t, "semn"),
		peer:   netns.New(t, "semp"),
	}
	tp.narrow.Sysctl(t, "net.ipv4.ip_local_port_range", narrowPort+" "+narrowPort)
	if bridged {
		addBridge(t, tp.peer, peerAddr+prefixLen)
		addBridge(t, tp.narrow, narrowGW+prefixLen)
	} else {
		tp.sandbox = netns.New(t, "sem")
		netns.Veth(t, tp.sandbox, "veth0", tp.peer, "veth0")
		tp.sandbox.AddAddr(t, "veth0", selfAddr+prefixLen)
		tp.peer.AddAddr(t, "veth0", peerAddr+prefixLen)
	}
	startServe(t, tp.peer, probe)
	return tp
}

func addBridge(t *testing.T, ns *netns.NS, cidr string) {
	t.Helper()
	ns.IP(t, "link", "add", bridgeName, "type", "bridge")
	ns.AddAddr(t, bridgeName, cidr)
	ns.LinkUp(t, bridgeName)
}

// startServe runs the peer services and waits until they are bound.
func startServe(t *testing.T, peer *netns.NS, probe string) {
	t.Helper()
	cmd := peer.Command(probe, "-serve", peerAddr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("serve stdout: %v", err)
	}
	peer.StartCmd(t, cmd)
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("probe -serve in %s did not start (first line %q)", peer, line)
		}
	case <-time.After(serveReadyTimeout):
		t.Fatalf("probe -serve in %s not ready after %v", peer, serveReadyTimeout)
	}
}

// output is one probe run: scenario name → its lines (without the name).
type output map[string][]string

// runGroup runs argv (the runner's command line around the probe) inside
// ns and parses the output.
func runGroup(t *testing.T, ns *netns.NS, argv []string) output {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name()}, argv...)...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s in %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(argv, " "), ns, err, stderr.String(), out)
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("%s stderr:\n%s", strings.Join(argv, " "), s)
	}
	o, err := parseOutput(string(out))
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return o
}

// parseOutput splits "name: k=v ..." lines by scenario. Lines starting with
// '#' are the probe's own notes.
func parseOutput(s string) (output, error) {
	o := output{}
	for _, line := range strings.Split(s, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("malformed probe line %q", line)
		}
		o[name] = append(o[name], strings.TrimSpace(rest))
	}
	return o, nil
}

// merge adds the scenarios of b to a; a name in both is an error.
func (a output) merge(b output) error {
	for k, v := range b {
		if _, dup := a[k]; dup {
			return fmt.Errorf("scenario %s printed by two groups", k)
		}
		a[k] = v
	}
	return nil
}

func (a output) names() []string {
	names := make([]string, 0, len(a))
	for k := range a {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// listing is the probe's own list of scenarios (probe -list).
type listing struct {
	name, group, ref string
}

func listScenarios(t *testing.T, probe string) []listing {
	t.Helper()
	out, err := exec.Command(probe, "-list").Output()
	if err != nil {
		t.Fatalf("probe -list: %v", err)
	}
	var l []listing
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 {
			t.Fatalf("probe -list: malformed line %q", line)
		}
		l = append(l, listing{f[0], f[1], f[2]})
	}
	return l
}

// diffLines renders want and got side by side for a failure message.
func diffLines(want, got []string) string {
	var b strings.Builder
	n := max(len(want), len(got))
	for i := range n {
		w, g := "<none>", "<none>"
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w == g {
			fmt.Fprintf(&b, "  same:   %s\n", w)
			continue
		}
		fmt.Fprintf(&b, "  kernel: %s\n  got:    %s\n", w, g)
		if wf, gf := strings.Fields(w), strings.Fields(g); len(wf) == len(gf) {
			for j := range wf {
				if wf[j] != gf[j] {
					fmt.Fprintf(&b, "          first difference: kernel %s, got %s\n", wf[j], gf[j])
					break
				}
			}
		}
	}
	return b.String()
}
