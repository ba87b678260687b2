package programs

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// benchRate matches redis-benchmark -q's summary lines.
var benchRate = regexp.MustCompile(`(SET|GET): ([0-9.]+) requests per second`)

// checkBenchmark asserts that redis-benchmark reported a rate for SET and
// GET and logs them.
func checkBenchmark(t *testing.T, out string) {
	t.Helper()
	got := map[string]string{}
	for _, m := range benchRate.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2]
	}
	if got["SET"] == "" || got["GET"] == "" || got["SET"] == "0.00" || got["GET"] == "0.00" {
		t.Errorf("redis-benchmark reported no SET and GET rates:\n%s", out)
		return
	}
	t.Logf("redis-benchmark: SET %s/s, GET %s/s", got["SET"], got["GET"])
}

// TestRedis: redis-server with redis-cli and redis-benchmark: all three on
// the sandbox's loopback, and the server in the sandbox for the kernel
// peer's redis-cli and redis-benchmark; SIGTERM shuts the server down
// cleanly (exit 0).
func TestRedis(t *testing.T) {
	tp := newTopology(t)
	server := needProgram(t, "redis-server", "redis-server")
	cli := needProgram(t, "redis-cli", "redis-tools")
	bench := needProgram(t, "redis-benchmark", "redis-tools")

	t.Run("Loopback", func(t *testing.T) {
		ctx := bound(t)
		dir := t.TempDir()
		o := tp.run(t, ctx, nil, "sh", "-c", fmt.Sprintf(`%[1]s --port 6380 --bind 127.0.0.1 --save '' --appendonly no --dir %[4]s --logfile %[4]s/redis.log & S=$!
i=0; until [ "$(%[2]s -p 6380 ping 2>/dev/null)" = PONG ]; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done
%[2]s -p 6380 ping && %[2]s -p 6380 set k netprov-value && %[2]s -p 6380 get k &&
%[3]s -p 6380 -n 2000 -q -t set,get && %[2]s -p 6380 shutdown nosave; wait $S; echo "server exit $?"`, server, cli, bench, dir))
		if o.code != 0 || !strings.HasPrefix(o.stdout, "PONG\nOK\nnetprov-value\n") || !strings.HasSuffix(o.stdout, "server exit 0\n") {
			t.Errorf("redis on loopback: want PONG, OK, netprov-value, server exit 0: %v", o)
		}
		checkBenchmark(t, o.stdout)
	})

	t.Run("ServerForKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		s := tp.start(t, ctx, []string{"--ip", tp.sandboxAddr.String()}, "Ready to accept connections",
			server, "--port", "6380", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
		host := tp.sandboxAddr.String()
		out, err := tp.peerRun(ctx, "sh", "-c", fmt.Sprintf("%[1]s -h %[2]s -p 6380 set k from-kernel && %[1]s -h %[2]s -p 6380 get k && %[1]s -h %[2]s -p 6380 client list", cli, host))
		if err != nil || !strings.HasPrefix(out, "OK\nfrom-kernel\n") || !strings.Contains(out, "addr="+tp.peerAddr.String()+":") {
			t.Errorf("peer redis-cli: %v: %q, want OK, from-kernel and a client at %s", err, out, tp.peerAddr)
		}
		out, err = tp.peerRun(ctx, bench, "-h", host, "-p", "6380", "-n", "2000", "-q", "-t", "set,get")
		if err != nil {
			t.Errorf("peer redis-benchmark: %v: %s", err, out)
		}
		checkBenchmark(t, out)
		if o := s.stop(t); o.code != 0 || !strings.Contains(o.stdout, "Redis is now ready to exit") {
			t.Errorf("redis-server after SIGTERM: want a clean exit 0: %v", o)
		}
	})
}
