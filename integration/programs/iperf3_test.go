package programs

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
)

// iperfResult is the part of iperf3 -J's report the test reads.
type iperfResult struct {
	End struct {
		SumSent struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// TestIperf3: iperf3 -c in the sandbox against iperf3 -s on the kernel
// peer, for 2 s in each direction (-R: the peer sends), and client and
// server on the sandbox's loopback for 1 s. Each run must move data (the
// receiver counts bytes) and end cleanly; the rates go to the test log.
func TestIperf3(t *testing.T) {
	tp := newTopology(t)
	iperf := needProgram(t, "iperf3", "iperf3")
	tp.startPeer(t, iperf, "-s", "-B", tp.peerAddr.String(), "-p", "5201")
	tp.peer.WaitListening(t, 5201)

	check := func(t *testing.T, o outcome) {
		t.Helper()
		var r iperfResult
		if err := json.Unmarshal([]byte(o.stdout), &r); err != nil {
			t.Fatalf("iperf3 -J output: %v: %v", err, o)
		}
		if o.code != 0 || r.Error != "" {
			t.Fatalf("iperf3: %q: %v", r.Error, o)
		}
		if r.End.SumReceived.Bytes <= 0 || r.End.SumReceived.BitsPerSecond <= 0 {
			t.Fatalf("iperf3 receiver got %v bytes at %v bit/s: %v", r.End.SumReceived.Bytes, r.End.SumReceived.BitsPerSecond, o)
		}
		t.Logf("sent %.0f MB, received %.0f MB at %.0f Mbit/s", r.End.SumSent.Bytes/1e6, r.End.SumReceived.Bytes/1e6, r.End.SumReceived.BitsPerSecond/1e6)
	}
	for _, c := range []struct {
		name  string
		flags []string
	}{{"SandboxSends", nil}, {"PeerSends", []string{"-R"}}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := bound(t)
			args := append([]string{iperf, "-J", "-c", tp.peerAddr.String(), "-p", "5201", "-t", "2"}, c.flags...)
			check(t, tp.run(t, ctx, nil, args...))
		})
	}
	// iperf3 3.12 -J exits 0 also when it cannot connect; the JSON's
	// "error" tells that the server was not listening yet.
	t.Run("Loopback", func(t *testing.T) {
		ctx := bound(t)
		out := filepath.Join(t.TempDir(), "out.json")
		check(t, tp.run(t, ctx, nil, "sh", "-c", fmt.Sprintf(
			"%[1]s -s -1 -B 127.0.0.1 -p 5202 >/dev/null & S=$!; i=0; until %[1]s -J -c 127.0.0.1 -p 5202 -t 1 >%[2]s && ! grep -q '\"error\"' %[2]s; do i=$((i+1)); [ $i -lt 50 ] || exit 9; sleep 0.1; done; wait $S; cat %[2]s",
			iperf, out)))
	})
}
