package header

import (
	"errors"
	"net/netip"
	"testing"
)

func TestTCPFlagsString(t *testing.T) {
	for f, want := range map[TCPFlags]string{
		0:                                    "[none]",
		TCPFlagSyn:                           "[S]",
		TCPFlagSyn | TCPFlagAck:              "[S.]",
		TCPFlagFin | TCPFlagAck:              "[F.]",
		TCPFlagPsh | TCPFlagAck:              "[P.]",
		TCPFlagRst:                           "[R]",
		TCPFlagRst | TCPFlagAck:              "[R.]",
		TCPFlagSyn | TCPFlagEce | TCPFlagCwr: "[SEW]",
		0xff:                                 "[FSRP.UEW]",
	} {
		if got := f.String(); got != want {
			t.Errorf("%#x: %q, want %q", uint8(f), got, want)
		}
	}
}

func TestTCPEmitParseAndSetters(t *testing.T) {
	src, dst := netip.MustParseAddr("10.213.0.1"), netip.MustParseAddr("10.213.0.2")
	b := make([]byte, 24+3)
	f := TCPFields{SrcPort: 40000, DstPort: 80, Seq: 0xfffffff0, Ack: 7, DataOffset: 24, Flags: TCPFlagAck | TCPFlagPsh, Window: 512, Urgent: 0}
	f.Emit(b)
	copy(b[20:], []byte{TCPOptNOP, TCPOptNOP, TCPOptNOP, TCPOptEOL})
	copy(b[24:], "abc")
	TCP(b).SetChecksum(TCPChecksum(b, src, dst))
	if !TCPChecksumValid(b, src, dst) {
		t.Fatal("checksum does not verify")
	}
	g, err := ParseTCP(b)
	f.Checksum = TCP(b).Checksum()
	if err != nil || g != f {
		t.Fatalf("parsed %+v %v, want %+v", g, err, f)
	}
	h := TCP(b)
	if string(h.Payload()) != "abc" || len(h.Options()) != 4 {
		t.Errorf("payload %q options % x", h.Payload(), h.Options())
	}
	h.SetSrcPort(1)
	h.SetDstPort(2)
	h.SetSeq(3)
	h.SetAck(4)
	h.SetFlags(TCPFlagRst)
	h.SetWindow(5)
	h.SetUrgent(6)
	if h.SrcPort() != 1 || h.DstPort() != 2 || h.Seq() != 3 || h.Ack() != 4 || h.Flags() != TCPFlagRst || h.Window() != 5 || h.Urgent() != 6 {
		t.Error("setters did not stick")
	}
	if TCPChecksumValid(b, src, dst) {
		t.Error("stale checksum still verifies")
	}
}

func TestTCPParseErrors(t *testing.T) {
	b := make([]byte, 20)
	TCPFields{DataOffset: 20}.Emit(b)
	if _, err := ParseTCP(b[:19]); !errors.Is(err, ErrTruncated) {
		t.Errorf("short: %v", err)
	}
	b[12] = 4 << 4
	if _, err := ParseTCP(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("data offset 16: %v", err)
	}
	b[12] = 6 << 4
	if _, err := ParseTCP(b); !errors.Is(err, ErrTruncated) {
		t.Errorf("data offset beyond segment: %v", err)
	}
}

func TestParseTCPNoAllocs(t *testing.T) {
	seg := make([]byte, 40)
	TCPFields{DataOffset: 40, Flags: TCPFlagSyn}.Emit(seg)
	EncodeSYNOptions(seg[20:], TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamps: true, WindowScale: 7})
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseTCP(seg); err != nil {
			t.Fatal(err)
		}
		_ = ParseTCPOptions(TCP(seg).Options())
	}); n != 0 {
		t.Errorf("%v allocs, want 0", n)
	}
}

func BenchmarkParseTCP(b *testing.B) {
	seg := make([]byte, 40+1448)
	TCPFields{DataOffset: 32, Flags: TCPFlagAck}.Emit(seg)
	EncodeOptions(seg[20:], TCPOptions{HasTimestamps: true, TSVal: 1, TSEcr: 2, WindowScale: -1})
	b.ReportAllocs()
	for b.Loop() {
		f, err := ParseTCP(seg)
		if err != nil || f.DataOffset != 32 {
			b.Fatal(err)
		}
		if o := ParseTCPOptions(TCP(seg).Options()); !o.HasTimestamps {
			b.Fatal("no timestamps")
		}
	}
}
