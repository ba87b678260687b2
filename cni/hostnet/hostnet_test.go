package hostnet

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/netprov/netprov/integration/netns"
)

// TestBridgeAndMasq in a test namespace: EnsureBridge twice gives one
// bridge with the address once; AttachToBridge puts a device on it;
// SetUpMasq's rules appear and TearDownMasq removes all of them (twice is
// fine); DeleteLink of a missing device is fine.
func TestBridgeAndMasq(t *testing.T) {
	ns := netns.New(t, "hn")
	h := Host{NS: ns.Path()}
	ctx := context.Background()
	gw := netip.MustParsePrefix("10.213.9.1/24")
	for range 2 {
		if err := h.EnsureBridge(ctx, "npbr0", 1400, []netip.Prefix{gw}); err != nil {
			t.Fatal(err)
		}
	}
	if out := string(ns.IP(t, "-o", "addr", "show", "dev", "npbr0")); strings.Count(out, gw.String()) != 1 {
		t.Errorf("bridge addresses:\n%s", out)
	}
	ns.IP(t, "link", "add", "npdev0", "type", "veth", "peer", "name", "npdev1")
	if err := h.AttachToBridge(ctx, "npdev0", "npbr0"); err != nil {
		t.Fatal(err)
	}
	if l := h.LookupLink(ctx, "npdev0"); l == nil || l.Master != "npbr0" || l.MAC == "" {
		t.Errorf("npdev0 = %+v, want on npbr0 with a MAC", l)
	}
	if h.LookupLink(ctx, "npnothere") != nil {
		t.Errorf("LookupLink found a missing device")
	}
	if err := h.SetUpMasq(ctx, "NETPROV-TEST1", netip.MustParsePrefix("10.213.9.5/24"), "netprov:test1"); err != nil {
		t.Fatal(err)
	}
	nat := string(ns.Run(t, "iptables", "-w", "5", "-t", "nat", "-S"))
	for _, want := range []string{"-A POSTROUTING -s 10.213.9.5/32", "-j NETPROV-TEST1", "-d 10.213.9.0/24 -m comment --comment \"netprov:test1\" -j ACCEPT", "MASQUERADE"} {
		if !strings.Contains(nat, want) {
			t.Errorf("nat lacks %q:\n%s", want, nat)
		}
	}
	if err := h.SetUpMasq(ctx, "NETPROV-TEST2", netip.MustParsePrefix("10.213.9.6/24"), "has space"); err == nil {
		t.Errorf("comment with a space accepted")
	}
	for range 2 {
		if err := h.TearDownMasq(ctx, "NETPROV-TEST1"); err != nil {
			t.Fatal(err)
		}
	}
	if nat := string(ns.Run(t, "iptables", "-w", "5", "-t", "nat", "-S")); strings.Contains(nat, "NETPROV") {
		t.Errorf("rules left:\n%s", nat)
	}
	for _, dev := range []string{"npdev0", "npdev0", "npnothere"} {
		if err := h.DeleteLink(ctx, dev); err != nil {
			t.Errorf("DeleteLink %s: %v", dev, err)
		}
	}
}
