package header

import (
	"errors"
	"net/netip"
	"testing"
)

func TestUDPParseAndChecksum(t *testing.T) {
	src4, dst4 := netip.MustParseAddr("10.213.0.1"), netip.MustParseAddr("10.213.0.2")
	src6, dst6 := netip.MustParseAddr("fd00:213::1"), netip.MustParseAddr("fd00:213::2")
	b := make([]byte, UDPLen+5, UDPLen+8)
	copy(b[8:], "hello")
	f := UDPFields{SrcPort: 1000, DstPort: 53, Length: uint16(len(b))}
	f.Emit(b)
	UDP(b).SetChecksum(UDPChecksum(b, src4, dst4))
	if !UDPChecksumValid(b, src4, dst4) {
		t.Error("IPv4 checksum does not verify")
	}
	if UDPChecksumValid(b, dst4, dst4) {
		t.Error("IPv4 checksum verifies with the wrong source")
	}
	// Ethernet padding after Length is ignored.
	padded := append(b, 0xff, 0xff, 0xff)
	if !UDPChecksumValid(padded, src4, dst4) {
		t.Error("padding beyond Length broke verification")
	}
	if g, err := ParseUDP(padded); err != nil || g.Length != 13 || string(UDP(padded).Payload()) != "hello" {
		t.Errorf("ParseUDP: %+v %v", g, err)
	}
	// Zero checksum: "none" over IPv4, invalid over IPv6.
	UDP(b).SetChecksum(0)
	if !UDPChecksumValid(b, src4, dst4) || UDPChecksumValid(b, src6, dst6) {
		t.Error("zero checksum: want valid over IPv4, invalid over IPv6")
	}
	UDP(b).SetChecksum(UDPChecksum(b, src6, dst6))
	if !UDPChecksumValid(b, src6, dst6) {
		t.Error("IPv6 checksum does not verify")
	}
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", b[:7], ErrTruncated},
		{"length 7", []byte{0, 1, 0, 2, 0, 7, 0, 0}, ErrMalformed},
		{"length beyond buffer", []byte{0, 1, 0, 2, 0, 9, 0, 0}, ErrTruncated},
	} {
		if _, err := ParseUDP(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

// TestUDPChecksumZeroIsSentAsOnes finds a datagram whose checksum computes
// to zero and checks it is transmitted as 0xffff (RFC 768) and verifies.
func TestUDPChecksumZeroIsSentAsOnes(t *testing.T) {
	src, dst := netip.MustParseAddr("10.213.0.1"), netip.MustParseAddr("10.213.0.2")
	b := make([]byte, 10)
	UDPFields{SrcPort: 1, DstPort: 2, Length: 10}.Emit(b)
	// Choose the payload word so the sum is 0xffff and the complement 0.
	rest := Checksum(b[:6], PseudoHeaderChecksum(ProtoUDP, src, dst, 10))
	b[8], b[9] = byte(^rest>>8), byte(^rest)
	if got := UDPChecksum(b, src, dst); got != 0xffff {
		t.Fatalf("UDPChecksum = %#x, want 0xffff", got)
	}
	UDP(b).SetChecksum(0xffff)
	if !UDPChecksumValid(b, src, dst) {
		t.Error("0xffff checksum does not verify")
	}
}
