package shim

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkShimProfile records perf CPU profiles (call graphs, all
// processes of the command: the netprov supervisor, the stage and the
// sandboxed program) of `netprov run` workloads into the directory named by
// NETPROV_BENCH_PROFILE; skipped without it or without perf. Read them
// with `perf report -i FILE --comm netprov --no-children`.
func BenchmarkShimProfile(b *testing.B) {
	dir := os.Getenv("NETPROV_BENCH_PROFILE")
	if dir == "" {
		b.Skip("set NETPROV_BENCH_PROFILE=DIR (bench/shim/run.sh PROFILE=DIR)")
	}
	if _, err := exec.LookPath("perf"); err != nil {
		b.Skip("perf not installed")
	}
	tp := newTopology(b)
	echo := net.JoinHostPort(tp.peerAddr, strconv.Itoa(echoPort))
	once := net.JoinHostPort(tp.peerAddr, strconv.Itoa(oncePort))
	iperf := []string{"iperf3", "-c", tp.peerAddr, "-p", strconv.Itoa(iperfPort), "-t", "5"}
	workloads := []struct {
		name, setup string
		argv        []string
	}{
		{"netstack-bulk-up", setupNetstack, iperf},
		{"netstack-bulk-down", setupNetstack, append(iperf, "-R")},
		{"netstack-rr", setupNetstack, []string{tp.shimload, "rr", "-addr", echo, "-d", "3s"}},
		{"netstack-cps", setupNetstack, []string{tp.shimload, "cps", "-addr", once, "-d", "3s"}},
		{"netstack-call", setupNetstack, []string{tp.shimload, "call", "-n", "100000"}},
		{"attach-bulk-up", setupAttach, iperf},
		{"attach-bulk-down", setupAttach, append(iperf, "-R")},
		{"attach-rr", setupAttach, []string{tp.shimload, "rr", "-addr", echo, "-d", "3s"}},
		{"host-cps", setupHost, []string{tp.shimload, "cps", "-addr", once, "-d", "3s"}},
		{"host-call", setupHost, []string{tp.shimload, "call", "-n", "100000"}},
	}
	for b.Loop() {
		for _, w := range workloads {
			out := filepath.Join(dir, w.name+".perf.data")
			argv := append([]string{"perf", "record", "-q", "-F", "999", "-g", "-o", out, "--"}, tp.command(b.Context(), w.setup, w.argv...).Args...)
			if o, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", w.name, err, o)
			}
			fmt.Printf("%s: %s\n", w.name, out)
		}
	}
}
