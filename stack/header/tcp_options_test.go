package header

import (
	"bytes"
	"testing"
)

// TestEncodeSYNOptionsLinuxBytes checks the exact bytes Linux writes in a
// SYN with every option on (behaviour 36): MSS 1460, SACK-permitted packed
// with timestamps, NOP, window scale 7.
func TestEncodeSYNOptionsLinuxBytes(t *testing.T) {
	o := TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, HasTimestamps: true, TSVal: 0x01020304, TSEcr: 0x0a0b0c0d, WindowScale: 7}
	want := []byte{
		0x02, 0x04, 0x05, 0xb4,
		0x04, 0x02, 0x08, 0x0a, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d,
		0x01, 0x03, 0x03, 0x07,
	}
	b := make([]byte, TCPMaxOptionsLen)
	n := EncodeSYNOptions(b, o)
	if n != 20 || TCPOptionsLen(o, true) != 20 || !bytes.Equal(b[:n], want) {
		t.Fatalf("EncodeSYNOptions wrote %d bytes % x, want % x", n, b[:n], want)
	}
	if got := ParseTCPOptions(b[:n]); got != o {
		t.Errorf("parse back %+v, want %+v", got, o)
	}
}

// TestEncodeSYNOptionsVariants covers the packings when some options are
// off (behaviour 36: without TS it is MSS, NOP, NOP, SACK_PERM, NOP, WS).
func TestEncodeSYNOptionsVariants(t *testing.T) {
	for _, c := range []struct {
		name string
		o    TCPOptions
		want []byte
	}{
		{"no timestamps", TCPOptions{MSS: 536, HasMSS: true, SACKPermitted: true, WindowScale: 0},
			[]byte{2, 4, 2, 0x18, 1, 1, 4, 2, 1, 3, 3, 0}},
		{"no SACK", TCPOptions{MSS: 65495, HasMSS: true, HasTimestamps: true, TSVal: 1, WindowScale: -1},
			[]byte{2, 4, 0xff, 0xd7, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"MSS only", TCPOptions{MSS: 1460, HasMSS: true, WindowScale: -1}, []byte{2, 4, 5, 0xb4}},
		{"nothing", TCPOptions{WindowScale: -1}, []byte{}},
	} {
		b := make([]byte, TCPMaxOptionsLen)
		n := EncodeSYNOptions(b, c.o)
		if !bytes.Equal(b[:n], c.want) || TCPOptionsLen(c.o, true) != n || n%4 != 0 {
			t.Errorf("%s: % x (len fn %d), want % x", c.name, b[:n], TCPOptionsLen(c.o, true), c.want)
		}
		if got := ParseTCPOptions(b[:n]); got != c.o {
			t.Errorf("%s: parse back %+v, want %+v", c.name, got, c.o)
		}
	}
}

// TestEncodeOptionsSACK checks established-segment options: timestamps
// then NOP,NOP,SACK, limited to 3 blocks next to timestamps and 4 without
// (Linux tcp_established_options).
func TestEncodeOptionsSACK(t *testing.T) {
	o := TCPOptions{HasTimestamps: true, TSVal: 5, TSEcr: 6, WindowScale: -1, NumSACKBlocks: 4,
		SACKBlocks: [4]SACKBlock{{10, 20}, {30, 40}, {50, 60}, {70, 80}}}
	b := make([]byte, TCPMaxOptionsLen)
	n := EncodeOptions(b, o)
	want := []byte{1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 1, 5, 26,
		0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40, 0, 0, 0, 50, 0, 0, 0, 60}
	if n != 40 || TCPOptionsLen(o, false) != 40 || !bytes.Equal(b[:n], want) {
		t.Fatalf("with TS: % x, want % x", b[:n], want)
	}
	got := ParseTCPOptions(b[:n])
	if got.NumSACKBlocks != 3 || got.SACKBlocks[2] != (SACKBlock{50, 60}) || got.TSVal != 5 {
		t.Errorf("parse back %+v", got)
	}
	o.HasTimestamps = false
	n = EncodeOptions(b, o)
	if n != 36 || TCPOptionsLen(o, false) != 36 || b[3] != 34 {
		t.Errorf("without TS: %d bytes % x, want 4 blocks in 36", n, b[:n])
	}
	if got := ParseTCPOptions(b[:n]); got.NumSACKBlocks != 4 || got.SACKBlocks[3] != (SACKBlock{70, 80}) {
		t.Errorf("parse back %+v", got)
	}
	// MSS, WS and SACK-permitted are SYN-only and never written here.
	o = TCPOptions{HasMSS: true, MSS: 1, WindowScale: 3, SACKPermitted: true}
	if n := EncodeOptions(b, o); n != 0 || TCPOptionsLen(o, false) != 0 {
		t.Errorf("SYN-only options wrote %d bytes", n)
	}
}

// TestParseTCPOptionsLinuxSemantics follows tcp_parse_options edge cases.
func TestParseTCPOptionsLinuxSemantics(t *testing.T) {
	absent := TCPOptions{WindowScale: -1}
	for _, c := range []struct {
		name string
		b    []byte
		want TCPOptions
	}{
		{"empty", nil, absent},
		{"EOL stops", []byte{0, 2, 4, 5, 0xb4}, absent},
		{"NOPs then MSS", []byte{1, 1, 1, 2, 4, 5, 0xb4}, TCPOptions{MSS: 1460, HasMSS: true, WindowScale: -1}},
		{"length 1 stops", []byte{2, 4, 1, 0x80, 30, 1, 3, 3, 7}, TCPOptions{MSS: 0x180, HasMSS: true, WindowScale: -1}},
		{"length 0 stops", []byte{30, 0, 3, 3, 7}, absent},
		{"past the end stops", []byte{3, 3, 7, 8, 10, 0, 0}, TCPOptions{WindowScale: 7}},
		{"lone kind byte stops", []byte{3, 3, 7, 2}, TCPOptions{WindowScale: 7}},
		{"MSS wrong length ignored", []byte{2, 5, 5, 0xb4, 0, 3, 3, 1}, TCPOptions{WindowScale: 1}},
		{"MSS zero ignored", []byte{2, 4, 0, 0}, absent},
		{"window scale clamped to 14", []byte{3, 3, 200}, TCPOptions{WindowScale: 14}},
		{"window scale 14 kept", []byte{3, 3, 14}, TCPOptions{WindowScale: 14}},
		{"window scale wrong length", []byte{3, 4, 7, 0}, absent},
		{"SACK-permitted wrong length", []byte{4, 3, 0}, absent},
		{"timestamps wrong length", []byte{8, 9, 1, 1, 1, 1, 1, 1, 1}, absent},
		{"unknown option skipped", []byte{254, 6, 1, 2, 3, 4, 4, 2}, TCPOptions{WindowScale: -1, SACKPermitted: true}},
		{"SACK 9 bytes ignored", append([]byte{5, 9}, make([]byte, 7)...), absent},
		{"SACK 1 block", []byte{5, 10, 0, 0, 0, 1, 0, 0, 0, 2}, TCPOptions{WindowScale: -1, NumSACKBlocks: 1, SACKBlocks: [4]SACKBlock{{1, 2}}}},
		{"last MSS wins", []byte{2, 4, 0, 1, 2, 4, 0, 2}, TCPOptions{MSS: 2, HasMSS: true, WindowScale: -1}},
	} {
		if got := ParseTCPOptions(c.b); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	// More than 4 blocks in one option (possible only in a malformed
	// header) are capped at 4.
	long := append([]byte{5, 42}, make([]byte, 40)...)
	if got := ParseTCPOptions(long); got.NumSACKBlocks != 4 {
		t.Errorf("5-block SACK: %d blocks, want 4", got.NumSACKBlocks)
	}
}
