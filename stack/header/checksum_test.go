package header

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// referenceChecksum is the textbook RFC 1071 loop, 16 bits at a time.
func referenceChecksum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// TestChecksumRFC1071Example uses the worked example of RFC 1071 §3:
// the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
func TestChecksumRFC1071Example(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Checksum(b, 0); got != 0xddf2 {
		t.Fatalf("Checksum = %#04x, want 0xddf2", got)
	}
	// Storing the complement makes the whole verify to 0xffff.
	withSum := append(append([]byte(nil), b...), 0, 0)
	binary.BigEndian.PutUint16(withSum[8:], ^Checksum(b, 0))
	if got := Checksum(withSum, 0); got != 0xffff {
		t.Fatalf("verify = %#04x, want 0xffff", got)
	}
}

// TestChecksumMatchesReference compares the 64-bit implementation with the
// 16-bit loop on random data of every length up to 300 and every initial
// value class, plus all-0xff data that maximises carries.
func TestChecksumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 301)
	for n := 0; n <= 300; n++ {
		for trial := 0; trial < 8; trial++ {
			b := buf[trial%2 : trial%2+n] // also odd start addresses
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if trial == 7 {
				for i := range b {
					b[i] = 0xff
				}
			}
			init := uint16(rng.Uint32())
			if trial == 0 {
				init = 0xffff
			}
			if got, want := Checksum(b, init), referenceChecksum(b, init); got != want {
				t.Fatalf("len %d init %#x: Checksum = %#04x, reference %#04x", n, init, got, want)
			}
		}
	}
}

// TestChecksumChaining checks that summing pieces through initial equals
// summing the whole, and that ChecksumCombine is ones'-complement addition.
func TestChecksumChaining(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 1000)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	whole := Checksum(b, 0)
	for _, cut := range []int{0, 2, 10, 64, 998, 1000} {
		if got := Checksum(b[cut:], Checksum(b[:cut], 0)); got != whole {
			t.Errorf("cut %d: chained %#04x, whole %#04x", cut, got, whole)
		}
		if got := ChecksumCombine(Checksum(b[:cut], 0), Checksum(b[cut:], 0)); got != whole {
			t.Errorf("cut %d: combined %#04x, whole %#04x", cut, got, whole)
		}
	}
	if got := ChecksumCombine(0xffff, 0x0001); got != 0x0001 {
		t.Errorf("ChecksumCombine(0xffff, 1) = %#x, want 1 (end-around carry)", got)
	}
	if got := ChecksumCombine(0x8000, 0x8000); got != 0x0001 {
		t.Errorf("ChecksumCombine(0x8000, 0x8000) = %#x, want 1", got)
	}
}

// TestPseudoHeaderChecksum compares with the pseudo headers of RFC 793 and
// RFC 8200 §8.1 built as bytes and summed by the reference loop.
func TestPseudoHeaderChecksum(t *testing.T) {
	s4, d4 := netip.MustParseAddr("10.213.0.1"), netip.MustParseAddr("192.168.255.254")
	a, b := s4.As4(), d4.As4()
	ph4 := append(append(a[:], b[:]...), 0, ProtoTCP, 0x05, 0xdc)
	if got, want := PseudoHeaderChecksum(ProtoTCP, s4, d4, 1500), referenceChecksum(ph4, 0); got != want {
		t.Errorf("IPv4: %#04x, want %#04x", got, want)
	}
	s6, d6 := netip.MustParseAddr("fd00:213::1"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")
	c, d := s6.As16(), d6.As16()
	ph6 := append(append(c[:], d[:]...), 0, 0, 0xff, 0xff, 0, 0, 0, ProtoUDP)
	if got, want := PseudoHeaderChecksum(ProtoUDP, s6, d6, 0xffff), referenceChecksum(ph6, 0); got != want {
		t.Errorf("IPv6: %#04x, want %#04x", got, want)
	}
}

func TestChecksumNoAllocs(t *testing.T) {
	b := make([]byte, 1500)
	src, dst := netip.MustParseAddr("fd00:213::1"), netip.MustParseAddr("fd00:213::2")
	if n := testing.AllocsPerRun(100, func() {
		_ = Checksum(b, PseudoHeaderChecksum(ProtoTCP, src, dst, 1500))
	}); n != 0 {
		t.Errorf("%v allocs per checksum, want 0", n)
	}
}

func benchmarkChecksum(b *testing.B, n int) {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	var sink uint16
	for b.Loop() {
		sink += Checksum(buf, 0)
	}
	_ = sink
}

func BenchmarkChecksum1500(b *testing.B) { benchmarkChecksum(b, 1500) }
func BenchmarkChecksum64K(b *testing.B)  { benchmarkChecksum(b, 65536) }
