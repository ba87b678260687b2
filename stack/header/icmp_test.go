package header

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// TestICMPv4FragNeeded builds a fragmentation-needed message and checks
// the MTU lands in bytes 6-7 (RFC 1191) and survives a parse.
func TestICMPv4FragNeeded(t *testing.T) {
	b := make([]byte, ICMPv4MinLen+28)
	for i := range b[8:] {
		b[8+i] = byte(i)
	}
	f := ICMPv4Fields{Type: ICMPv4DstUnreachable, Code: ICMPv4CodeFragmentationNeeded, MTU: 1400}
	f.Emit(b[:8], b[8:])
	if got := binary.BigEndian.Uint16(b[6:8]); got != 1400 || b[4] != 0 || b[5] != 0 {
		t.Errorf("header % x, want MTU 1400 in bytes 6-7", b[:8])
	}
	g, err := ParseICMPv4(b)
	if err != nil || g.MTU != 1400 || ICMPv4(b).MTU() != 1400 {
		t.Errorf("parsed %+v %v", g, err)
	}
	b[20]++
	if _, err := ParseICMPv4(b); !errors.Is(err, ErrBadChecksum) {
		t.Errorf("corrupted payload: err %v, want ErrBadChecksum", err)
	}
	if _, err := ParseICMPv4(b[:7]); !errors.Is(err, ErrTruncated) {
		t.Errorf("short: err %v, want ErrTruncated", err)
	}
}

func TestICMPv4ParamProblemAndOddLength(t *testing.T) {
	b := make([]byte, 9) // odd length exercises the zero pad
	b[8] = 0xab
	ICMPv4Fields{Type: ICMPv4ParamProblem, Pointer: 9}.Emit(b, b[8:])
	g, err := ParseICMPv4(b)
	if err != nil || g.Pointer != 9 || ICMPv4(b).Pointer() != 9 {
		t.Errorf("param problem: %+v %v", g, err)
	}
	if c := ICMPv4Checksum(b); c != ICMPv4(b).Checksum() {
		t.Errorf("ICMPv4Checksum %#x, field %#x", c, ICMPv4(b).Checksum())
	}
}

func TestICMPv6PacketTooBig(t *testing.T) {
	src, dst := netip.MustParseAddr("fd00:213::1"), netip.MustParseAddr("fd00:213::2")
	b := make([]byte, ICMPv6MinLen+48)
	f := ICMPv6Fields{Type: ICMPv6PacketTooBig, MTU: 1280}
	f.Emit(b, b[8:], src, dst)
	g, err := ParseICMPv6(b, src, dst)
	if err != nil || g.MTU != 1280 || ICMPv6(b).MTU() != 1280 {
		t.Errorf("parsed %+v %v", g, err)
	}
	// The pseudo header counts: the same bytes fail with another source.
	if _, err := ParseICMPv6(b, netip.MustParseAddr("fd00:213::3"), dst); !errors.Is(err, ErrBadChecksum) {
		t.Errorf("wrong source: err %v, want ErrBadChecksum", err)
	}
	if c := ICMPv6Checksum(b, src, dst); c != ICMPv6(b).Checksum() {
		t.Errorf("ICMPv6Checksum %#x, field %#x", c, ICMPv6(b).Checksum())
	}
}

func TestMulticastMappings(t *testing.T) {
	a := netip.MustParseAddr("fe80::2c37:d8ff:fe1f:d0a7")
	if got, want := SolicitedNodeMulticast(a), netip.MustParseAddr("ff02::1:ff1f:d0a7"); got != want {
		t.Errorf("SolicitedNodeMulticast = %v, want %v", got, want)
	}
	if got, want := IPv6MulticastMAC(netip.MustParseAddr("ff02::1:ff1f:d0a7")), (MAC{0x33, 0x33, 0xff, 0x1f, 0xd0, 0xa7}); got != want {
		t.Errorf("IPv6MulticastMAC = %v, want %v", got, want)
	}
}

func TestICMPNoAllocs(t *testing.T) {
	src, dst := netip.MustParseAddr("fd00:213::1"), netip.MustParseAddr("fd00:213::2")
	b := make([]byte, 64)
	if n := testing.AllocsPerRun(100, func() {
		ICMPv4Fields{Type: ICMPv4Echo, Ident: 1, Seq: 2}.Emit(b, b[8:])
		_, _ = ParseICMPv4(b)
		ICMPv6Fields{Type: ICMPv6EchoRequest, Ident: 1, Seq: 2}.Emit(b, b[8:], src, dst)
		_, _ = ParseICMPv6(b, src, dst)
	}); n != 0 {
		t.Errorf("%v allocs, want 0", n)
	}
}
