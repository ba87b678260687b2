package header

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func sampleIPv4(t *testing.T, opts []byte, payload int) ([]byte, IPv4Fields) {
	t.Helper()
	f := IPv4Fields{
		TOS: 0x10, ID: 0xbeef, Flags: IPv4FlagMF, FragmentOffset: 1480, TTL: 63, Protocol: ProtoUDP,
		Src: netip.MustParseAddr("10.213.0.1"), Dst: netip.MustParseAddr("10.213.0.2"), Options: opts,
	}
	f.TotalLen = uint16(f.HeaderLen() + payload)
	b := make([]byte, int(f.TotalLen))
	f.Emit(b)
	return b, f
}

// TestIPv4EmitParse emits a header with options that need padding and
// checks ParseIPv4 and every view accessor read it back.
func TestIPv4EmitParse(t *testing.T) {
	opts := []byte{0x94, 0x04, 0x00, 0x00, 0x01} // router alert + NOP, 5 bytes -> padded to 8
	b, f := sampleIPv4(t, opts, 10)
	if f.HeaderLen() != 28 || b[0] != 0x47 {
		t.Fatalf("HeaderLen %d, byte0 %#x; want 28, 0x47", f.HeaderLen(), b[0])
	}
	g, err := ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.Options, []byte{0x94, 0x04, 0x00, 0x00, 0x01, 0, 0, 0}) {
		t.Errorf("options % x", g.Options)
	}
	g.Options, f.Options = nil, nil
	if !reflect.DeepEqual(g, f) {
		t.Errorf("parsed %+v, want %+v", g, f)
	}
	h := IPv4(b)
	if h.HeaderLen() != 28 || h.TOS() != 0x10 || h.TotalLen() != 38 || h.ID() != 0xbeef || h.Flags() != IPv4FlagMF ||
		h.FragmentOffset() != 1480 || h.TTL() != 63 || h.Protocol() != ProtoUDP || len(h.Payload()) != 10 || len(h.Options()) != 8 {
		t.Errorf("view accessors wrong: % x", b[:28])
	}
	h.SetTTL(1)
	h.SetID(7)
	h.SetTotalLen(30)
	h.SetFlagsFragmentOffset(IPv4FlagDF, 0)
	h.SetChecksum(h.ComputeChecksum())
	g, err = ParseIPv4(b)
	if err != nil || g.TTL != 1 || g.ID != 7 || g.TotalLen != 30 || g.Flags != IPv4FlagDF || g.FragmentOffset != 0 {
		t.Errorf("after setters: %+v %v", g, err)
	}
}

// TestIPv4ParseErrors checks each rejection of ParseIPv4.
func TestIPv4ParseErrors(t *testing.T) {
	good, _ := sampleIPv4(t, nil, 4)
	fix := func(b []byte) { IPv4(b).SetChecksum(IPv4(b).ComputeChecksum()) }
	cases := []struct {
		name string
		mod  func([]byte) []byte
		want error
	}{
		{"short", func(b []byte) []byte { return b[:19] }, ErrTruncated},
		{"version 6", func(b []byte) []byte { b[0] = 0x65; return b }, ErrVersion},
		{"IHL 4", func(b []byte) []byte { b[0] = 0x44; fix(b); return b }, ErrMalformed},
		{"IHL beyond buffer", func(b []byte) []byte { b[0] = 0x46; return b[:23] }, ErrTruncated},
		{"total length below header", func(b []byte) []byte { IPv4(b).SetTotalLen(19); fix(b); return b }, ErrMalformed},
		{"total length beyond buffer", func(b []byte) []byte { IPv4(b).SetTotalLen(25); fix(b); return b }, ErrTruncated},
		{"bad checksum", func(b []byte) []byte { b[8]--; return b }, ErrBadChecksum},
	}
	for _, c := range cases {
		b := c.mod(append([]byte(nil), good...))
		if _, err := ParseIPv4(b); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	// A buffer longer than TotalLen (Ethernet padding) is fine.
	if _, err := ParseIPv4(append(append([]byte(nil), good...), 0, 0, 0)); err != nil {
		t.Errorf("padded frame: %v", err)
	}
}

func TestIPv4NoAllocs(t *testing.T) {
	b, f := sampleIPv4(t, []byte{1, 1, 1, 1}, 0)
	if n := testing.AllocsPerRun(100, func() {
		g, err := ParseIPv4(b)
		if err != nil {
			t.Fatal(err)
		}
		g.Emit(b)
		f.Emit(b)
	}); n != 0 {
		t.Errorf("%v allocs per parse+emit, want 0", n)
	}
}
