package stackd

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/netprov/netprov/cni/kernelnet"
)

// TestAttachConfigRoundTrip: attach.json keeps routes (with mtu, advmss,
// metric), neighbours and unconnected subnets; a directory without it is
// a TAP sandbox (nil, nil).
func TestAttachConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if c, err := ReadAttachConfig(dir); c != nil || err != nil {
		t.Fatalf("no %s: %+v, %v; want nil, nil", AttachFile, c, err)
	}
	in := &AttachConfig{
		Interface: "eth0", Netns: "/run/netns/x", MAC: "02:00:00:00:00:01", MTU: 1400,
		Routes: []AttachRoute{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.213.1.1")},
			{Dst: netip.MustParsePrefix("10.213.9.0/24"), Gateway: netip.MustParseAddr("10.213.1.1"), MTU: 1300, AdvMSS: 1200, Metric: 7},
		},
		Neighbors:   []AttachNeighbor{{Addr: netip.MustParseAddr("10.213.1.9"), MAC: "02:00:00:00:00:09"}, {Addr: netip.MustParseAddr("10.213.1.10"), MAC: "bogus"}},
		Unconnected: []netip.Prefix{netip.MustParsePrefix("10.213.1.0/24")},
	}
	if err := WriteAttachConfig(dir, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadAttachConfig(dir)
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Fatalf("read back %+v (%v), want %+v", out, err, in)
	}
	if rs := out.KernelRoutes(); len(rs) != 2 || rs[1] != (kernelnet.Route{Dst: in.Routes[1].Dst, Gateway: in.Routes[1].Gateway, MTU: 1300, AdvMSS: 1200, Metric: 7}) {
		t.Errorf("kernel routes %+v", rs)
	}
	if nbs := out.KernelNeighbors(); len(nbs) != 1 || nbs[0].MAC.String() != "02:00:00:00:00:09" {
		t.Errorf("kernel neighbours %+v, want the valid one only", nbs)
	}
}
