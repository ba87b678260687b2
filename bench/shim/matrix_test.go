package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netprov/netprov/integration/netns"
)

// matrixConfig sets how long each measurement runs.
type matrixConfig struct {
	reps int
	// iperfArgs bound one iperf3 run: "-t 3" (full) or "-n 64M" (smoke).
	iperfArgs []string
	rrDur     time.Duration
	cpsDur    time.Duration
	callN     int
	// metrics limits the run to these Metric keys (nil: all).
	metrics []string
}

// fullConfig is run.sh's measurement (NETPROV_BENCH_FULL=1): about
// 3 minutes. smokeConfig keeps CI's `-benchtime=1x` step short (about 9 s
// for all six setups on an idle 2-core machine; its numbers only show that
// every setup works).
var (
	fullConfig  = matrixConfig{reps: 3, iperfArgs: []string{"-t", "3"}, rrDur: 2 * time.Second, cpsDur: 2 * time.Second, callN: 100000}
	smokeConfig = matrixConfig{reps: 1, iperfArgs: []string{"-n", "32M"}, rrDur: 200 * time.Millisecond, cpsDur: 200 * time.Millisecond, callN: 20000}
)

const (
	peerHost   = 250 // peer's host number on the bridge subnet
	kernelHost = 251 // kernel client's host number
	attachHost = 252 // address of the veth `netprov run --attach` serves
	// attachIface is the attached veth's name inside its namespace.
	attachIface = "eth0"
	echoPort    = 7001
	oncePort    = 7002
	iperfPort   = 5201
	// cmdTimeout bounds one client command (netprov start-up included).
	cmdTimeout = 60 * time.Second
)

// topology is one run's namespaces and the commands that run a client
// program in each setup.
type topology struct {
	tb     testing.TB
	host   *netns.NS // bridge, TAP, NAT; the host provider's sockets
	peer   *netns.NS // kernel servers
	kernel *netns.NS // kernel client on a veth to the bridge
	// attach holds a veth to the bridge like kernel's, which `netprov run
	// --netns --attach` serves from the stack through a packet socket.
	attach   *netns.NS
	slirp    *netns.NS // slirp4netns client (nil if slirp4netns is missing)
	bridge   string
	subnet   string // 10.213.S.0/24
	peerAddr string
	netprov  string // binary
	shimload string // binary
}

// buildBinaries builds netprov (from the root module) and shimload into a
// temporary directory.
func buildBinaries(tb testing.TB) (netprov, shimload string) {
	tb.Helper()
	dir := tb.TempDir()
	root, err := filepath.Abs("../..")
	if err != nil {
		tb.Fatal(err)
	}
	build := func(out, dir, pkg string) {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	netprov = filepath.Join(dir, "netprov")
	shimload = filepath.Join(dir, "shimload")
	if bin := os.Getenv("NETPROV_BENCH_NETPROV"); bin != "" {
		// A prebuilt binary, e.g. an experimental build of another tree.
		netprov = bin
		tb.Logf("netprov binary from NETPROV_BENCH_NETPROV: %s", bin)
	} else {
		build(netprov, root, "./cmd/netprov")
	}
	build(shimload, ".", "./cmd/shimload")
	return netprov, shimload
}

func newTopology(tb testing.TB) *topology {
	tb.Helper()
	netns.RequireRoot(tb)
	for _, tool := range []string{"ip", "nsenter", "iptables", "sysctl", "iperf3"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s not installed (scripts/setup installs it)", tool)
		}
	}
	tp := &topology{tb: tb}
	tp.netprov, tp.shimload = buildBinaries(tb)
	s := 2 + rand.IntN(250)
	tp.subnet = fmt.Sprintf("10.213.%d.0/24", s)
	gw := fmt.Sprintf("10.213.%d.1", s)
	tp.peerAddr = fmt.Sprintf("10.213.%d.%d", s, peerHost)

	tp.host = netns.New(tb, "h")
	tp.peer = netns.New(tb, "p")
	tp.kernel = netns.New(tb, "k")
	tp.attach = netns.New(tb, "a")
	tp.bridge = netns.UniqueName("br")
	tp.host.IP(tb, "link", "add", tp.bridge, "type", "bridge")
	tp.host.AddAddr(tb, tp.bridge, gw+"/24")
	tp.host.LinkUp(tb, tp.bridge)
	for _, c := range []struct {
		ns   *netns.NS
		host int
	}{{tp.peer, peerHost}, {tp.kernel, kernelHost}, {tp.attach, attachHost}} {
		port := netns.UniqueName("v")
		netns.Veth(tb, tp.host, port, c.ns, "eth0")
		tp.host.IP(tb, "link", "set", port, "master", tp.bridge)
		c.ns.AddAddr(tb, "eth0", fmt.Sprintf("10.213.%d.%d/24", s, c.host))
		c.ns.AddRoute(tb, "default", "via", gw)
	}

	tp.peer.Start(tb, "iperf3", "-s", "-p", strconv.Itoa(iperfPort))
	tp.peer.Start(tb, tp.shimload, "serve", "-echo", fmt.Sprintf(":%d", echoPort), "-once", fmt.Sprintf(":%d", oncePort))
	for _, port := range []int{iperfPort, echoPort, oncePort} {
		tp.waitListening(port)
	}
	tp.startSlirp()
	return tp
}

// waitListening waits (bounded) until the peer accepts on port.
func (tp *topology) waitListening(port int) {
	tp.tb.Helper()
	addr := net.JoinHostPort(tp.peerAddr, strconv.Itoa(port))
	var last error
	for range 100 {
		last = tp.peer.Do(func() error {
			c, err := net.DialTimeout("tcp4", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if last == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tp.tb.Fatalf("peer not listening on %s: %v", addr, last)
}

// startSlirp attaches a namespace to slirp4netns running in the host
// namespace: its outbound connections become sockets in H, which reaches
// the peer over the bridge. MTU 1500, slirp4netns's default, like the
// other setups.
func (tp *topology) startSlirp() {
	tp.tb.Helper()
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		tp.tb.Logf("slirp4netns not installed: its column stays empty (scripts/setup installs it)")
		return
	}
	tp.slirp = netns.New(tp.tb, "l")
	tp.host.Start(tp.tb, "slirp4netns", "--configure", "--mtu=1500", "--disable-host-loopback",
		"--netns-type=path", tp.slirp.Path(), "tap0")
	for range 100 {
		out, _ := tp.slirp.Exec("ip", "-o", "-4", "addr", "show", "dev", "tap0")
		if bytes.Contains(out, []byte("10.0.2.100")) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tp.tb.Fatalf("slirp4netns did not configure tap0")
}

// setups returns the client setups of this topology in table order.
func (tp *topology) setups() []string {
	s := []string{setupKernel, setupKernelHost, setupNetstack, setupAttach, setupHost}
	if tp.slirp != nil {
		s = append(s, setupSlirp)
	}
	return s
}

// command returns argv run as a client in setup.
func (tp *topology) command(ctx context.Context, setup string, argv ...string) *exec.Cmd {
	var args []string
	switch setup {
	case setupKernel:
		args = append([]string{"netns", "exec", tp.kernel.Name()}, argv...)
	case setupKernelHost:
		args = append([]string{"netns", "exec", tp.host.Name()}, argv...)
	case setupSlirp:
		args = append([]string{"netns", "exec", tp.slirp.Name()}, argv...)
	case setupNetstack, setupHost:
		run := []string{"run", "--provider", setup, "--host-netns", tp.host.Path(),
			"--bridge", tp.bridge, "--subnet", tp.subnet, "--"}
		return exec.CommandContext(ctx, tp.netprov, append(run, argv...)...)
	case setupAttach:
		// The stack reads the veth's address and default route from the
		// kernel of A, and an nftables ingress drop keeps that kernel
		// silent while it runs (one netprov per client command, as for
		// the TAP setups).
		run := []string{"run", "--netns", tp.attach.Path(), "--attach", attachIface, "--"}
		return exec.CommandContext(ctx, tp.netprov, append(run, argv...)...)
	default:
		panic("unknown setup " + setup)
	}
	return exec.CommandContext(ctx, "ip", args...)
}

// output runs argv in setup and returns its stdout.
func (tp *topology) output(setup string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := tp.command(ctx, setup, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %s: %w\nstdout: %s\nstderr: %s", setup, strings.Join(argv, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

// bulk runs iperf3 against the peer (reverse: peer sends) and returns
// Gbit/s received. A server still busy with the previous test is retried.
func (tp *topology) bulk(cfg matrixConfig, setup string, reverse bool) (float64, error) {
	argv := append([]string{"iperf3", "-c", tp.peerAddr, "-p", strconv.Itoa(iperfPort), "-J"}, cfg.iperfArgs...)
	if reverse {
		argv = append(argv, "-R")
	}
	var err error
	for range 3 {
		var out []byte
		out, err = tp.output(setup, argv...)
		if err == nil || len(out) > 0 {
			var g float64
			if g, err = parseIperfGbits(out); err == nil {
				return g, nil
			}
		}
		if !strings.Contains(err.Error(), "busy") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	return 0, err
}

// shimload runs a shimload client in setup and returns its result.
func (tp *topology) shimloadResult(setup string, args ...string) (loadResult, error) {
	out, err := tp.output(setup, append([]string{tp.shimload}, args...)...)
	if err != nil {
		return loadResult{}, err
	}
	var r loadResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("%s: shimload output %q: %w", setup, out, err)
	}
	if r.Count == 0 {
		return r, fmt.Errorf("%s: shimload %v: no operations", setup, args)
	}
	return r, nil
}

// loadResult mirrors cmd/shimload's Result.
type loadResult struct {
	Op        string  `json:"op"`
	Count     int     `json:"count"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	NsPerOp   float64 `json:"ns_per_op"`
}

// runMatrix measures every metric in every setup cfg.reps times. Within a
// repetition one metric is measured in all setups back to back, so each
// ratio compares numbers taken under the same machine load.
func runMatrix(tb testing.TB, tp *topology, cfg matrixConfig) Samples {
	tb.Helper()
	s := Samples{}
	echo := net.JoinHostPort(tp.peerAddr, strconv.Itoa(echoPort))
	once := net.JoinHostPort(tp.peerAddr, strconv.Itoa(oncePort))
	check := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	for rep := range cfg.reps {
		for _, m := range metricOrder {
			if cfg.metrics != nil && !slices.Contains(cfg.metrics, m.Key) {
				continue
			}
			for _, setup := range tp.setups() {
				switch m {
				case metricBulkUp, metricBulkDown:
					g, err := tp.bulk(cfg, setup, m == metricBulkDown)
					check(err)
					s.Add(m.Key, setup, g)
				case metricRR:
					r, err := tp.shimloadResult(setup, "rr", "-addr", echo, "-d", cfg.rrDur.String())
					check(err)
					s.Add(m.Key, setup, r.PerSecond)
				case metricCPS:
					r, err := tp.shimloadResult(setup, "cps", "-addr", once, "-d", cfg.cpsDur.String())
					check(err)
					s.Add(m.Key, setup, r.PerSecond)
				case metricCall:
					if setup == setupSlirp {
						continue // nothing intercepted: the kernel's own call
					}
					r, err := tp.shimloadResult(setup, "call", "-n", strconv.Itoa(cfg.callN))
					check(err)
					s.Add(m.Key, setup, r.NsPerOp)
				}
			}
		}
		tb.Logf("repetition %d/%d done", rep+1, cfg.reps)
	}
	return s
}

// BenchmarkShimMatrix runs the whole matrix once per call (use
// -benchtime=1x). By default a short smoke version (one repetition, small
// transfers, ~9 s idle); NETPROV_BENCH_FULL=1 runs the measurement of
// RESULTS.md (3 repetitions, iperf3 -t 3 each way, 2 s of RR and CPS,
// 100k calls). It prints the Markdown table and the target verdicts and
// reports the main ratios as metrics. NETPROV_BENCH_REPS=N overrides the
// repetitions, NETPROV_BENCH_METRICS=bulk_up,rr,... limits the metrics
// (keys of metricOrder), NETPROV_BENCH_NETPROV=PATH uses a prebuilt
// netprov binary instead of building ../../cmd/netprov.
func BenchmarkShimMatrix(b *testing.B) {
	cfg := smokeConfig
	if os.Getenv("NETPROV_BENCH_FULL") == "1" {
		cfg = fullConfig
	}
	if v := os.Getenv("NETPROV_BENCH_REPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 20 {
			b.Fatalf("NETPROV_BENCH_REPS=%q: want 1..20", v)
		}
		cfg.reps = n
	}
	if v := os.Getenv("NETPROV_BENCH_METRICS"); v != "" {
		cfg.metrics = strings.Split(v, ",")
	}
	tp := newTopology(b)
	var s Samples
	for b.Loop() {
		s = runMatrix(b, tp, cfg)
	}
	fmt.Printf("\n%s\n", s.Table())
	for _, v := range s.Verdicts() {
		fmt.Println("target:", v)
	}
	for _, m := range metricOrder {
		for _, setup := range []string{setupNetstack, setupAttach, setupHost, setupSlirp} {
			if r := s.Ratio(m.Key, setup, setupKernel); r == r { // not NaN
				b.ReportMetric(r, m.Key+"_"+setup+"/kernel")
			}
		}
	}
}
