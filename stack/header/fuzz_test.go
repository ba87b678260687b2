package header

import (
	"bytes"
	"net/netip"
	"testing"
)

// Fuzz targets: every parser must survive any input, and where a parse
// succeeds, emitting the parsed value must reproduce the header bytes.
// Seeds are the layers of the Linux capture plus hand-made edge cases.

// layerSeeds returns the Linux frames split at the given layer.
func layerSeeds(f *testing.F, pick func(fr []byte) []byte) {
	for _, fr := range linuxFrames(f) {
		if b := pick(fr); b != nil {
			f.Add(b)
		}
	}
}

func l3(fr []byte) []byte { return fr[EthernetLen:] }

func l4(fr []byte) []byte {
	p := fr[EthernetLen:]
	switch Ethernet(fr).EtherType() {
	case EtherTypeIPv4:
		return IPv4(p).Payload()
	case EtherTypeIPv6:
		pl := IPv6(p).Payload()
		if info, err := WalkIPv6Extensions(IPv6(p).NextHeader(), pl); err == nil {
			return pl[info.Offset:]
		}
	}
	return nil
}

func FuzzParseEthernet(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte { return fr })
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEthernet(b)
		if err != nil {
			return
		}
		var out [EthernetLen]byte
		e.Emit(out[:])
		if !bytes.Equal(out[:], b[:EthernetLen]) {
			t.Fatalf("round trip % x != % x", out, b[:EthernetLen])
		}
	})
}

func FuzzParseIPv4(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte {
		if Ethernet(fr).EtherType() == EtherTypeIPv4 {
			return l3(fr)
		}
		return nil
	})
	f.Add([]byte{0x4f, 0, 0, 60})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkIPv4(t, b)
		// Most random inputs fail the checksum; also try with it fixed.
		if len(b) >= IPv4MinLen && int(b[0]&0xf)*4 >= IPv4MinLen && int(b[0]&0xf)*4 <= len(b) {
			c := append([]byte(nil), b...)
			IPv4(c).SetChecksum(IPv4(c).ComputeChecksum())
			checkIPv4(t, c)
		}
	})
}

func checkIPv4(t *testing.T, b []byte) {
	f, err := ParseIPv4(b)
	if err != nil {
		return
	}
	hl := f.HeaderLen()
	if hl != IPv4(b).HeaderLen() || len(IPv4(b).Payload()) != int(f.TotalLen)-hl {
		t.Fatalf("HeaderLen %d vs view %d, payload %d", hl, IPv4(b).HeaderLen(), len(IPv4(b).Payload()))
	}
	out := make([]byte, hl)
	f.Emit(out)
	if !equalModChecksum(out, b[:hl], 10) {
		t.Fatalf("round trip\n got % x\nwant % x", out, b[:hl])
	}
}

// equalModChecksum compares an emitted header with the received one. A
// checksum field of 0x0000 or 0xffff verifies the same data (the two
// ones'-complement zeros); Emit writes 0x0000 like Linux's csum_fold, so a
// received 0xffff there is an equivalent encoding, not a mismatch.
func equalModChecksum(got, want []byte, off int) bool {
	if bytes.Equal(got, want) {
		return true
	}
	if got[off] != 0 || got[off+1] != 0 || want[off] != 0xff || want[off+1] != 0xff {
		return false
	}
	return bytes.Equal(got[:off], want[:off]) && bytes.Equal(got[off+2:], want[off+2:])
}

func FuzzParseIPv6(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte {
		if Ethernet(fr).EtherType() == EtherTypeIPv6 {
			return l3(fr)
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseIPv6(b)
		if err != nil {
			return
		}
		var out [IPv6Len]byte
		h.Emit(out[:])
		if !bytes.Equal(out[:], b[:IPv6Len]) {
			t.Fatalf("round trip\n got % x\nwant % x", out, b[:IPv6Len])
		}
		checkWalk(t, h.NextHeader, IPv6(b).Payload())
	})
}

func FuzzWalkIPv6Extensions(f *testing.F) {
	f.Add(uint8(ProtoHopByHop), []byte{ProtoRouting, 0, 0, 0, 0, 0, 0, 0, ProtoFragment, 0, 0, 0, 0, 0, 0, 0, ProtoTCP, 0, 0, 9, 0, 0, 0, 1})
	f.Add(uint8(ProtoDestOpts), []byte{ProtoDestOpts, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, nh uint8, b []byte) { checkWalk(t, nh, b) })
}

func checkWalk(t *testing.T, nh uint8, b []byte) {
	info, err := WalkIPv6Extensions(nh, b)
	if err != nil {
		return
	}
	if info.Offset < 0 || info.Offset > len(b) {
		t.Fatalf("offset %d outside payload of %d", info.Offset, len(b))
	}
	if info.HasFragment {
		fo := info.FragmentHeaderOffset
		if fo+IPv6FragmentLen != info.Offset || info.Proto != info.Fragment.NextHeader {
			t.Fatalf("fragment info inconsistent: %+v", info)
		}
		var out [IPv6FragmentLen]byte
		info.Fragment.Emit(out[:])
		want := append([]byte(nil), b[fo:fo+IPv6FragmentLen]...)
		want[1] = 0     // reserved
		want[3] &^= 0x6 // reserved bits
		if !bytes.Equal(out[:], want) {
			t.Fatalf("fragment round trip % x != % x", out, want)
		}
	}
}

func FuzzParseARP(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte {
		if Ethernet(fr).EtherType() == EtherTypeARP {
			return l3(fr)
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseARP(b)
		if err != nil {
			return
		}
		var out [ARPLen]byte
		a.Emit(out[:])
		if !bytes.Equal(out[:], b[:ARPLen]) {
			t.Fatalf("round trip % x != % x", out, b[:ARPLen])
		}
	})
}

func FuzzParseICMPv4(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte {
		if Ethernet(fr).EtherType() == EtherTypeIPv4 && IPv4(l3(fr)).Protocol() == ProtoICMP {
			return l4(fr)
		}
		return nil
	})
	f.Add([]byte{3, 4, 0, 0, 0, 0, 5, 0xdc})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkICMPv4(t, b)
		if len(b) >= ICMPv4MinLen {
			c := append([]byte(nil), b...)
			ICMPv4(c).SetChecksum(ICMPv4Checksum(c))
			if _, err := ParseICMPv4(c); err != nil {
				t.Fatalf("fixed checksum still rejected: %v", err)
			}
			checkICMPv4(t, c)
		}
	})
}

func checkICMPv4(t *testing.T, b []byte) {
	h, err := ParseICMPv4(b)
	if err != nil {
		return
	}
	out := append([]byte(nil), b...)
	clear(out[:ICMPv4MinLen])
	h.Emit(out, out[ICMPv4MinLen:])
	if !equalModChecksum(out[:ICMPv4MinLen], b[:ICMPv4MinLen], 2) {
		t.Fatalf("round trip % x != % x", out[:8], b[:8])
	}
}

var fuzzSrc6, fuzzDst6 = netip.MustParseAddr("fd00:213::1"), netip.MustParseAddr("fd00:213::2")

func FuzzParseICMPv6(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte {
		if Ethernet(fr).EtherType() == EtherTypeIPv6 {
			return l4(fr)
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseICMPv6(b, fuzzSrc6, fuzzDst6)
		if len(b) < ICMPv6MinLen || len(b) > 0xffff {
			return
		}
		c := append([]byte(nil), b...)
		ICMPv6(c).SetChecksum(ICMPv6Checksum(c, fuzzSrc6, fuzzDst6))
		h, err := ParseICMPv6(c, fuzzSrc6, fuzzDst6)
		if err != nil {
			t.Fatalf("fixed checksum still rejected: %v", err)
		}
		out := append([]byte(nil), c...)
		clear(out[:ICMPv6MinLen])
		h.Emit(out, out[ICMPv6MinLen:], fuzzSrc6, fuzzDst6)
		if !equalModChecksum(out[:ICMPv6MinLen], c[:ICMPv6MinLen], 2) {
			t.Fatalf("round trip % x != % x", out[:8], c[:8])
		}
	})
}

func FuzzParseNDP(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte {
		if b := l4(fr); Ethernet(fr).EtherType() == EtherTypeIPv6 && len(b) >= 4 {
			return ICMPv6(b).Body()
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		if ns, err := ParseNDPNeighborSolicit(b); err == nil {
			out := make([]byte, ns.Len())
			ns.Emit(out)
			if again, err := ParseNDPNeighborSolicit(out); err != nil || again != ns {
				t.Fatalf("NS re-parse %+v %v, want %+v", again, err, ns)
			}
		}
		if na, err := ParseNDPNeighborAdvert(b); err == nil {
			out := make([]byte, na.Len())
			na.Emit(out)
			if again, err := ParseNDPNeighborAdvert(out); err != nil || again != na {
				t.Fatalf("NA re-parse %+v %v, want %+v", again, err, na)
			}
		}
	})
}

func FuzzParseUDP(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte {
		if b := l4(fr); b != nil && ((Ethernet(fr).EtherType() == EtherTypeIPv4 && IPv4(l3(fr)).Protocol() == ProtoUDP) ||
			(Ethernet(fr).EtherType() == EtherTypeIPv6 && IPv6(l3(fr)).NextHeader() == ProtoUDP)) {
			return b
		}
		return nil
	})
	src4, dst4 := netip.MustParseAddr("10.213.0.1"), netip.MustParseAddr("10.213.0.2")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseUDP(b)
		_ = UDPChecksumValid(b, src4, dst4)
		if err != nil {
			return
		}
		var out [UDPLen]byte
		h.Emit(out[:])
		if !bytes.Equal(out[:], b[:UDPLen]) {
			t.Fatalf("round trip % x != % x", out, b[:UDPLen])
		}
		c := append([]byte(nil), b[:h.Length]...)
		for _, a := range [][2]netip.Addr{{src4, dst4}, {fuzzSrc6, fuzzDst6}} {
			UDP(c).SetChecksum(UDPChecksum(c, a[0], a[1]))
			if !UDPChecksumValid(c, a[0], a[1]) {
				t.Fatalf("UDPChecksum does not verify for %v", a)
			}
		}
	})
}

func FuzzParseTCP(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte {
		if b := l4(fr); b != nil && ((Ethernet(fr).EtherType() == EtherTypeIPv4 && IPv4(l3(fr)).Protocol() == ProtoTCP) ||
			(Ethernet(fr).EtherType() == EtherTypeIPv6 && IPv6(l3(fr)).NextHeader() == ProtoTCP)) {
			return b
		}
		return nil
	})
	src4, dst4 := netip.MustParseAddr("10.213.0.1"), netip.MustParseAddr("10.213.0.2")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseTCP(b)
		if err != nil {
			return
		}
		var out [TCPMinLen]byte
		h.Emit(out[:])
		want := append([]byte(nil), b[:TCPMinLen]...)
		want[12] &= 0xf0 // reserved bits are not kept
		if !bytes.Equal(out[:], want) {
			t.Fatalf("round trip % x != % x", out, want)
		}
		_ = ParseTCPOptions(TCP(b).Options())
		if len(b) <= 0xffff {
			c := append([]byte(nil), b...)
			for _, a := range [][2]netip.Addr{{src4, dst4}, {fuzzSrc6, fuzzDst6}} {
				TCP(c).SetChecksum(TCPChecksum(c, a[0], a[1]))
				if !TCPChecksumValid(c, a[0], a[1]) {
					t.Fatalf("TCPChecksum does not verify for %v", a)
				}
			}
		}
	})
}

func FuzzParseTCPOptions(f *testing.F) {
	layerSeeds(f, func(fr []byte) []byte {
		if b := l4(fr); b != nil {
			if _, err := ParseTCP(b); err == nil {
				return TCP(b).Options()
			}
		}
		return nil
	})
	f.Add([]byte{5, 34, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8})
	f.Add([]byte{3, 3, 255, 1, 0, 2, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		o := ParseTCPOptions(b)
		if o.WindowScale < -1 || o.WindowScale > TCPMaxWindowScale || o.NumSACKBlocks < 0 || o.NumSACKBlocks > TCPMaxSACKBlocks ||
			(o.HasMSS && o.MSS == 0) {
			t.Fatalf("out-of-range result %+v", o)
		}
		// Re-encoding what was understood and parsing again is stable.
		var buf [TCPMaxOptionsLen]byte
		n := EncodeSYNOptions(buf[:], o)
		syn := o
		syn.SACKBlocks, syn.NumSACKBlocks = [4]SACKBlock{}, 0
		if got := ParseTCPOptions(buf[:n]); n != TCPOptionsLen(o, true) || got != syn {
			t.Fatalf("SYN re-encode: %+v, want %+v", got, syn)
		}
		n = EncodeOptions(buf[:], o)
		got := ParseTCPOptions(buf[:n])
		if n != TCPOptionsLen(o, false) || n > TCPMaxOptionsLen || got.HasTimestamps != o.HasTimestamps || got.TSVal != o.TSVal ||
			got.NumSACKBlocks > o.NumSACKBlocks || got.SACKBlocks[0] != o.SACKBlocks[0] {
			t.Fatalf("established re-encode: %+v from %+v", got, o)
		}
	})
}
