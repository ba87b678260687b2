package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv6Len is the length of the fixed IPv6 header.
const IPv6Len = 40

// IPv6 is a view of an IPv6 header followed by its payload. Accessors do not
// validate; call ParseIPv6 first.
type IPv6 []byte

// TrafficClass returns the traffic class (DSCP+ECN).
func (h IPv6) TrafficClass() uint8 { return uint8(binary.BigEndian.Uint16(h[0:2]) >> 4) }

// FlowLabel returns the 20-bit flow label.
func (h IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(h[0:4]) & 0xfffff }

// PayloadLen returns the length of everything after the fixed header.
func (h IPv6) PayloadLen() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// NextHeader returns the type of the first header after the fixed header.
func (h IPv6) NextHeader() uint8 { return h[6] }

// HopLimit returns the hop limit.
func (h IPv6) HopLimit() uint8 { return h[7] }

// Src returns the source address.
func (h IPv6) Src() netip.Addr { return netip.AddrFrom16([16]byte(h[8:24])) }

// Dst returns the destination address.
func (h IPv6) Dst() netip.Addr { return netip.AddrFrom16([16]byte(h[24:40])) }

// Payload returns the bytes after the fixed header up to PayloadLen.
func (h IPv6) Payload() []byte { return h[IPv6Len : IPv6Len+int(h.PayloadLen())] }

// SetPayloadLen sets the payload length field.
func (h IPv6) SetPayloadLen(n uint16) { binary.BigEndian.PutUint16(h[4:6], n) }

// SetHopLimit sets the hop limit.
func (h IPv6) SetHopLimit(hl uint8) { h[7] = hl }

// IPv6Fields is the parsed representation of the fixed IPv6 header.
type IPv6Fields struct {
	TrafficClass uint8
	FlowLabel    uint32
	PayloadLen   uint16
	NextHeader   uint8
	HopLimit     uint8
	Src, Dst     netip.Addr
}

// ParseIPv6 validates the fixed IPv6 header at the start of b (version and
// lengths) and returns its fields. b is not truncated to the payload length.
func ParseIPv6(b []byte) (IPv6Fields, error) {
	if len(b) < IPv6Len {
		return IPv6Fields{}, ErrTruncated
	}
	if b[0]>>4 != 6 {
		return IPv6Fields{}, ErrVersion
	}
	h := IPv6(b)
	if len(b)-IPv6Len < int(h.PayloadLen()) {
		return IPv6Fields{}, ErrTruncated
	}
	return IPv6Fields{
		TrafficClass: h.TrafficClass(),
		FlowLabel:    h.FlowLabel(),
		PayloadLen:   h.PayloadLen(),
		NextHeader:   h.NextHeader(),
		HopLimit:     h.HopLimit(),
		Src:          h.Src(),
		Dst:          h.Dst(),
	}, nil
}

// Emit writes the fixed header into b[:IPv6Len]. Src and Dst must be IPv6
// addresses (an IPv4 address is written in its v4-mapped form).
func (f IPv6Fields) Emit(b []byte) {
	_ = b[IPv6Len-1]
	binary.BigEndian.PutUint32(b[0:4], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[4:6], f.PayloadLen)
	b[6] = f.NextHeader
	b[7] = f.HopLimit
	src, dst := f.Src.As16(), f.Dst.As16()
	copy(b[8:24], src[:])
	copy(b[24:40], dst[:])
}

// IPv6FragmentLen is the length of the fragment extension header.
const IPv6FragmentLen = 8

// IPv6Fragment is the parsed fragment extension header (RFC 8200 §4.5).
type IPv6Fragment struct {
	NextHeader uint8
	Offset     uint16 // in bytes, a multiple of 8
	More       bool
	ID         uint32
}

// ParseIPv6Fragment parses a fragment header at the start of b.
func ParseIPv6Fragment(b []byte) (IPv6Fragment, error) {
	if len(b) < IPv6FragmentLen {
		return IPv6Fragment{}, ErrTruncated
	}
	om := binary.BigEndian.Uint16(b[2:4])
	return IPv6Fragment{
		NextHeader: b[0],
		Offset:     om &^ 7,
		More:       om&1 != 0,
		ID:         binary.BigEndian.Uint32(b[4:8]),
	}, nil
}

// Emit writes the fragment header into b[:IPv6FragmentLen].
func (f IPv6Fragment) Emit(b []byte) {
	_ = b[IPv6FragmentLen-1]
	b[0] = f.NextHeader
	b[1] = 0
	om := f.Offset &^ 7
	if f.More {
		om |= 1
	}
	binary.BigEndian.PutUint16(b[2:4], om)
	binary.BigEndian.PutUint32(b[4:8], f.ID)
}

// maxIPv6ExtHeaders bounds the extension-header walk so a packet made of
// nothing but empty extension headers cannot cost unbounded work.
const maxIPv6ExtHeaders = 8

// IPv6ExtInfo is the result of WalkIPv6Extensions.
type IPv6ExtInfo struct {
	// Proto is the upper-layer protocol (or ProtoNoNext). When HasFragment
	// is set it is the fragment header's next header.
	Proto uint8
	// Offset is the offset in the payload of the upper-layer header; when
	// HasFragment is set, of the bytes following the fragment header.
	Offset               int
	HasFragment          bool
	Fragment             IPv6Fragment
	FragmentHeaderOffset int
}

// WalkIPv6Extensions skips the hop-by-hop, routing and destination options
// headers at the start of the IPv6 payload b (nextHeader is the fixed
// header's next header). It stops at a fragment header, which is parsed and
// reported, or at any other protocol. A hop-by-hop header that is not first
// is malformed (Linux answers it with a parameter problem). At most 8
// extension headers are walked.
func WalkIPv6Extensions(nextHeader uint8, b []byte) (IPv6ExtInfo, error) {
	off := 0
	nh := nextHeader
	for i := 0; ; i++ {
		switch nh {
		case ProtoHopByHop, ProtoRouting, ProtoDestOpts:
			if i >= maxIPv6ExtHeaders || (nh == ProtoHopByHop && i != 0) {
				return IPv6ExtInfo{}, ErrMalformed
			}
			if len(b)-off < 8 {
				return IPv6ExtInfo{}, ErrTruncated
			}
			n := (int(b[off+1]) + 1) * 8
			if len(b)-off < n {
				return IPv6ExtInfo{}, ErrTruncated
			}
			nh = b[off]
			off += n
		case ProtoFragment:
			if i >= maxIPv6ExtHeaders {
				return IPv6ExtInfo{}, ErrMalformed
			}
			frag, err := ParseIPv6Fragment(b[off:])
			if err != nil {
				return IPv6ExtInfo{}, err
			}
			return IPv6ExtInfo{
				Proto:                frag.NextHeader,
				Offset:               off + IPv6FragmentLen,
				HasFragment:          true,
				Fragment:             frag,
				FragmentHeaderOffset: off,
			}, nil
		default:
			return IPv6ExtInfo{Proto: nh, Offset: off}, nil
		}
	}
}
