package cni

import (
	"strings"
	"testing"
	"time"

	"github.com/netprov/netprov/integration/netns"
)

// TestAddAnnouncesReusedAddress: a host that still holds a neighbour
// entry for an address with an old MAC (the address's previous container)
// learns the new sandbox's MAC at ADD, before any traffic, from the
// gratuitous ARP the stack sends once its TAP is on the bridge (Linux
// overrides an existing entry from a gratuitous ARP even with
// arp_accept=0). Without it, host → container traffic would go to the old
// MAC until the entry failed its probes.
func TestAddAnnouncesReusedAddress(t *testing.T) {
	e := newEnv(t)
	l := e.confList("npgarp", e.netprovConf(nil))
	first := uniqueID("garp")
	r := e.add(l, first)
	ip := r.IPs[0].Address.IP.String()
	// A spare port (a veth, both ends up) keeps the bridge's carrier up
	// after DEL: when its last port goes, the carrier drops and linkwatch
	// flushes its neighbours a moment later, which could remove the entry
	// made below before the second ADD announces itself.
	spare := uniqueID("npv")
	for _, args := range [][]string{
		{"ip", "link", "add", spare, "type", "veth", "peer", "name", spare + "p"},
		{"ip", "link", "set", spare + "p", "up"},
		{"ip", "link", "set", spare, "master", e.bridge, "up"},
	} {
		if out, err := e.host.Exec(args...); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	if err := e.del(l, first); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	const oldMAC = "02:00:00:00:de:ad"
	// A bridge whose MAC is set keeps it when a port joins (else it takes
	// the lowest port MAC, and a changed address flushes its neighbours).
	if out, err := e.host.Exec("ip", "link", "set", e.bridge, "address", "02:00:00:00:be:ef"); err != nil {
		t.Fatalf("bridge address: %v: %s", err, out)
	}
	if out, err := e.host.Exec("ip", "neigh", "replace", ip, "lladdr", oldMAC, "dev", e.bridge, "nud", "stale"); err != nil {
		t.Fatalf("ip neigh replace: %v: %s", err, out)
	}
	rt := e.rt(uniqueID("garp"))
	rt.Args = [][2]string{{"IgnoreUnknown", "1"}, {"IP", ip}}
	r2 := e.addRT(l, rt)
	if got := r2.IPs[0].Address.IP.String(); got != ip {
		t.Fatalf("second sandbox got %s, want the reused %s", got, ip)
	}
	newMAC := r2.Interfaces[2].Mac
	var last string
	netns.WaitFor(t, 5*time.Second, func() bool {
		out, _ := e.host.Exec("ip", "neigh", "show", ip, "dev", e.bridge)
		last = string(out)
		return strings.Contains(last, "lladdr "+newMAC)
	})
	if strings.Contains(last, oldMAC) {
		t.Errorf("host neighbour entry still has the old MAC: %s", last)
	}
	t.Logf("host neighbour entry after ADD: %s", strings.TrimSpace(last))
}
