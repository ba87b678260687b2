package programs

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// gaiPy resolves argv[1] with getaddrinfo (glibc's resolver, UDP).
const gaiPy = `import socket, sys
print(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM)})[0])`

// TestDNS: dnsmasq on the kernel peer is the sandbox's --dns resolver.
// glibc (getent, python's getaddrinfo) and dig, over UDP and over TCP, get
// the configured address for example.test; a name under the local-only
// nx.test gets NXDOMAIN; dnsmasq logs the queries from the host side's
// masqueraded address.
func TestDNS(t *testing.T) {
	tp := newTopology(t)
	dnsmasq := needProgram(t, "dnsmasq", "dnsmasq-base")
	dig := needProgram(t, "dig", "bind9-dnsutils")
	getent := needProgram(t, "getent", "libc-bin")
	py := needProgram(t, "python3", "python3")
	ctx := bound(t)
	answer := netip.AddrFrom4([4]byte{10, 213, 0, 99})
	peerLog := tp.startPeer(t, dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts",
		"--listen-address="+tp.peerAddr.String(), "--bind-interfaces", "--port=53",
		"--address=/example.test/"+answer.String(), "--local=/nx.test/",
		"--log-queries", "--log-facility=-", "--user=root", "--pid-file="+filepath.Join(t.TempDir(), "dnsmasq.pid"))
	waitUDP(t, tp.peer, 53)
	tp.peer.WaitListening(t, 53)

	peer := tp.peerAddr.String()
	o := tp.run(t, ctx, []string{"--dns", peer}, "sh", "-c", fmt.Sprintf(`set -e
echo "getent: $(%[1]s ahostsv4 www.example.test | head -n 1)"
echo "python: $(%[2]s -c '%[3]s' api.example.test)"
echo "dig-udp: $(%[4]s +short +time=5 +tries=1 @%[5]s example.test A)"
echo "dig-tcp: $(%[4]s +tcp +short +time=5 +tries=1 @%[5]s tcp.example.test A)"
echo "dig-nx: $(%[4]s +time=5 +tries=1 @%[5]s missing.nx.test A | grep -o 'status: [A-Z]*')"`,
		getent, py, gaiPy, dig, peer))
	if o.code != 0 {
		t.Fatalf("resolvers in the sandbox: %v", o)
	}
	a := answer.String()
	for _, want := range []string{
		"getent: " + a + " ",
		"python: " + a + "\n",
		"dig-udp: " + a + "\n",
		"dig-tcp: " + a + "\n",
		"dig-nx: status: NXDOMAIN\n",
	} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("output lacks %q: %v", want, o)
		}
	}
	for _, name := range []string{"www.example.test", "api.example.test", "example.test", "tcp.example.test", "missing.nx.test"} {
		if want := fmt.Sprintf("query[A] %s from %s", name, tp.hostLink); !strings.Contains(peerLog.String(), want) {
			t.Errorf("dnsmasq log lacks %q:\n%s", want, peerLog)
		}
	}
}
