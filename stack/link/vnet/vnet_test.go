package vnet

import (
	"testing"

	"github.com/netprov/netprov/stack/buffer"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	h := Header{Flags: FlagNeedsCsum, GSOType: GSOTCPv6, HdrLen: 86, GSOSize: 1440, CsumStart: 54, CsumOffset: 16}
	var b [LenMrg]byte
	h.Encode(b[:])
	if got := Decode(b[:]); got != h {
		t.Fatalf("Decode(Encode(%+v)) = %+v", h, got)
	}
	if b[0] != FlagNeedsCsum || b[1] != GSOTCPv6 {
		t.Fatalf("flags/type bytes %x", b[:2])
	}
}

func TestForOutputSuperSegment(t *testing.T) {
	frame := make([]byte, 14+20+32)
	frame[14] = 0x45
	m := buffer.Meta{GSO: buffer.GSO{Type: buffer.GSOTCPv4, HeaderLen: 52, MSS: 1448, NeedsCsum: true}}
	h := ForOutput(&m, frame, 14)
	want := Header{Flags: FlagNeedsCsum, GSOType: GSOTCPv4, HdrLen: 66, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	if h != want {
		t.Fatalf("ForOutput = %+v, want %+v", h, want)
	}
	// Explicit offsets from the stack win over the fallback.
	m.GSO.CsumStart, m.GSO.CsumOffset = 24, 16
	if h := ForOutput(&m, frame, 14); h.CsumStart != 38 {
		t.Fatalf("CsumStart = %d, want 38", h.CsumStart)
	}
}

func TestForOutputPlainPacketHasEmptyHeader(t *testing.T) {
	m := buffer.Meta{}
	if h := ForOutput(&m, make([]byte, 60), 14); h != (Header{}) {
		t.Fatalf("header %+v for a plain packet", h)
	}
	m.GSO.NeedsCsum = true
	frame := make([]byte, 74)
	frame[14] = 0x60
	if h := ForOutput(&m, frame, 14); h != (Header{Flags: FlagNeedsCsum, CsumStart: 54, CsumOffset: 16}) {
		t.Fatalf("checksum-only header %+v", h)
	}
}

func TestApplyInput(t *testing.T) {
	var m buffer.Meta
	Header{Flags: FlagDataValid}.ApplyInput(&m, 14)
	if !m.ChecksumVerified || m.GSO.Type != buffer.GSONone {
		t.Fatalf("DATA_VALID meta %+v", m)
	}
	m = buffer.Meta{}
	Header{Flags: FlagNeedsCsum, GSOType: GSOTCPv4 | GSOECN, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}.ApplyInput(&m, 14)
	if !m.ChecksumVerified || m.GSO.Type != buffer.GSOTCPv4 || m.GSO.MSS != 1448 || m.GSO.CsumStart != 20 || !m.GSO.NeedsCsum {
		t.Fatalf("coalesced meta %+v", m)
	}
	m = buffer.Meta{}
	Header{}.ApplyInput(&m, 14)
	if m.ChecksumVerified {
		t.Fatal("no flags must not mark the checksum verified")
	}
}
