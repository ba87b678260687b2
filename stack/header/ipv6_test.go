package header

import (
	"errors"
	"net/netip"
	"testing"
)

func TestIPv6EmitParse(t *testing.T) {
	f := IPv6Fields{TrafficClass: 0xb8, FlowLabel: 0xabcde, PayloadLen: 4, NextHeader: ProtoUDP, HopLimit: 255,
		Src: netip.MustParseAddr("fd00:213::1"), Dst: netip.MustParseAddr("ff02::1")}
	b := make([]byte, IPv6Len+4)
	f.Emit(b)
	if b[0] != 0x6b || b[1] != 0x8a {
		t.Errorf("version/class/flow bytes % x, want 6b 8a", b[:4])
	}
	g, err := ParseIPv6(b)
	if err != nil || g != f {
		t.Fatalf("parsed %+v %v, want %+v", g, err, f)
	}
	h := IPv6(b)
	if h.TrafficClass() != 0xb8 || h.FlowLabel() != 0xabcde || len(h.Payload()) != 4 || h.HopLimit() != 255 {
		t.Errorf("view accessors wrong")
	}
	for _, c := range []struct {
		b    []byte
		want error
	}{
		{b[:39], ErrTruncated},
		{b[:43], ErrTruncated},
		{append([]byte{0x45}, b[1:]...), ErrVersion},
	} {
		if _, err := ParseIPv6(c.b); !errors.Is(err, c.want) {
			t.Errorf("len %d: err %v, want %v", len(c.b), err, c.want)
		}
	}
}

func TestIPv6FragmentEmitParse(t *testing.T) {
	f := IPv6Fragment{NextHeader: ProtoUDP, Offset: 1448, More: true, ID: 0xdeadbeef}
	var b [IPv6FragmentLen]byte
	f.Emit(b[:])
	// offset 1448/8 = 181 = 0xb5 -> 0xb5<<3 | M = 0x05a9.
	if want := [8]byte{17, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef}; b != want {
		t.Errorf("fragment header % x, want % x", b, want)
	}
	g, err := ParseIPv6Fragment(b[:])
	if err != nil || g != f {
		t.Errorf("parsed %+v %v", g, err)
	}
}

// ext builds an extension header of type-specific length n*8+8 bytes.
func ext(next uint8, units uint8) []byte {
	b := make([]byte, (int(units)+1)*8)
	b[0], b[1] = next, units
	return b
}

func TestWalkIPv6Extensions(t *testing.T) {
	var frag [8]byte
	IPv6Fragment{NextHeader: ProtoTCP, Offset: 8, ID: 9}.Emit(frag[:])
	chain := append(append(append(ext(ProtoRouting, 0), ext(ProtoDestOpts, 2)...), ext(ProtoFragment, 0)...), frag[:]...)
	info, err := WalkIPv6Extensions(ProtoHopByHop, chain)
	if err != nil {
		t.Fatal(err)
	}
	want := IPv6ExtInfo{Proto: ProtoTCP, Offset: 8 + 24 + 8 + 8, HasFragment: true,
		Fragment: IPv6Fragment{NextHeader: ProtoTCP, Offset: 8, ID: 9}, FragmentHeaderOffset: 40}
	if info != want {
		t.Errorf("walk = %+v, want %+v", info, want)
	}

	info, err = WalkIPv6Extensions(ProtoDestOpts, append(ext(ProtoUDP, 0), 1, 2, 3))
	if err != nil || info != (IPv6ExtInfo{Proto: ProtoUDP, Offset: 8}) {
		t.Errorf("destopts then UDP: %+v %v", info, err)
	}
	info, err = WalkIPv6Extensions(ProtoNoNext, nil)
	if err != nil || info != (IPv6ExtInfo{Proto: ProtoNoNext}) {
		t.Errorf("no next header: %+v %v", info, err)
	}

	var long []byte
	for i := 0; i < 9; i++ {
		long = append(long, ext(ProtoDestOpts, 0)...)
	}
	for _, c := range []struct {
		name string
		nh   uint8
		b    []byte
		want error
	}{
		{"header shorter than 8", ProtoRouting, make([]byte, 7), ErrTruncated},
		{"length beyond payload", ProtoRouting, ext(ProtoTCP, 3)[:24], ErrTruncated},
		{"truncated fragment", ProtoFragment, make([]byte, 7), ErrTruncated},
		{"hop-by-hop not first", ProtoDestOpts, ext(ProtoHopByHop, 0), ErrMalformed},
		{"more than 8 headers", ProtoDestOpts, long, ErrMalformed},
	} {
		if _, err := WalkIPv6Extensions(c.nh, c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}
