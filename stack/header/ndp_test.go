package header

import (
	"errors"
	"net/netip"
	"testing"
)

func nsBody(opts ...byte) []byte {
	b := make([]byte, 20, 20+len(opts))
	t := netip.MustParseAddr("fd00:213::2").As16()
	copy(b[4:], t[:])
	return append(b, opts...)
}

// TestNDPOptionWalk follows Linux ndisc_parse_options: zero-length or
// overrunning options make the message malformed, unknown options are
// skipped, the first of duplicated options counts, and a link-layer option
// of the wrong size is rejected.
func TestNDPOptionWalk(t *testing.T) {
	mac1 := []byte{1, 1, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf}
	mac2 := []byte{1, 1, 2, 2, 2, 2, 2, 2}
	unknown := []byte{14, 1, 0, 0, 0, 0, 0, 0} // nonce
	ns, err := ParseNDPNeighborSolicit(nsBody(append(append(unknown, mac1...), mac2...)...))
	if err != nil || !ns.HasSourceLL || ns.SourceLL != (MAC{0xa, 0xb, 0xc, 0xd, 0xe, 0xf}) {
		t.Errorf("unknown+dup: %+v %v", ns, err)
	}
	ns, err = ParseNDPNeighborSolicit(nsBody())
	if err != nil || ns.HasSourceLL || ns.Target != netip.MustParseAddr("fd00:213::2") {
		t.Errorf("no options: %+v %v", ns, err)
	}
	for _, c := range []struct {
		name string
		body []byte
		want error
	}{
		{"short body", nsBody()[:19], ErrTruncated},
		{"zero-length option", nsBody(1, 0, 0, 0, 0, 0, 0, 0), ErrMalformed},
		{"option past the end", nsBody(1, 2, 0, 0, 0, 0, 0, 0), ErrMalformed},
		{"lone option byte", nsBody(1), ErrMalformed},
		{"16-byte link-layer option", nsBody(append([]byte{1, 2}, make([]byte, 14)...)...), ErrMalformed},
	} {
		if _, err := ParseNDPNeighborSolicit(c.body); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	// A target link-layer option in a solicitation is ignored.
	ns, err = ParseNDPNeighborSolicit(nsBody(2, 1, 1, 2, 3, 4, 5, 6))
	if err != nil || ns.HasSourceLL {
		t.Errorf("TLL in NS: %+v %v", ns, err)
	}
}

func TestNDPAdvertFlags(t *testing.T) {
	for _, m := range []NDPNeighborAdvert{
		{Router: true, Target: netip.MustParseAddr("fe80::1")},
		{Solicited: true, Target: netip.MustParseAddr("fe80::1"), HasTargetLL: true, TargetLL: MAC{1, 2, 3, 4, 5, 6}},
		{Override: true, Router: true, Solicited: true, Target: netip.MustParseAddr("fd00:213::9")},
	} {
		b := make([]byte, m.Len())
		m.Emit(b)
		got, err := ParseNDPNeighborAdvert(b)
		if err != nil || got != m {
			t.Errorf("round trip %+v -> %+v %v", m, got, err)
		}
	}
}
