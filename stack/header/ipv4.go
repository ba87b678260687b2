package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header sizes.
const (
	IPv4MinLen = 20
	IPv4MaxLen = 60
)

// IP protocol numbers (also IPv6 next-header values).
const (
	ProtoHopByHop uint8 = 0
	ProtoICMP     uint8 = 1
	ProtoTCP      uint8 = 6
	ProtoUDP      uint8 = 17
	ProtoRouting  uint8 = 43
	ProtoFragment uint8 = 44
	ProtoICMPv6   uint8 = 58
	ProtoNoNext   uint8 = 59
	ProtoDestOpts uint8 = 60
)

// IPv4 flag bits as returned by IPv4.Flags (the top 3 bits of byte 6).
const (
	IPv4FlagMF uint8 = 1 // more fragments
	IPv4FlagDF uint8 = 2 // don't fragment
)

// IPv4 is a view of an IPv4 header followed by its payload. Accessors do not
// validate; call ParseIPv4 first.
type IPv4 []byte

// HeaderLen returns the header length in bytes (IHL*4).
func (h IPv4) HeaderLen() int { return int(h[0]&0x0f) * 4 }

// TOS returns the type-of-service (DSCP+ECN) byte.
func (h IPv4) TOS() uint8 { return h[1] }

// TotalLen returns the length of header plus payload.
func (h IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// ID returns the identification field.
func (h IPv4) ID() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// Flags returns the 3 flag bits (reserved, DF, MF).
func (h IPv4) Flags() uint8 { return h[6] >> 5 }

// FragmentOffset returns the fragment offset in bytes.
func (h IPv4) FragmentOffset() uint16 { return (binary.BigEndian.Uint16(h[6:8]) & 0x1fff) << 3 }

// TTL returns the time to live.
func (h IPv4) TTL() uint8 { return h[8] }

// Protocol returns the payload protocol number.
func (h IPv4) Protocol() uint8 { return h[9] }

// Checksum returns the header checksum field.
func (h IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(h[10:12]) }

// Src returns the source address.
func (h IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(h[12:16])) }

// Dst returns the destination address.
func (h IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(h[16:20])) }

// Options returns the options area (between byte 20 and HeaderLen).
func (h IPv4) Options() []byte { return h[IPv4MinLen:h.HeaderLen()] }

// Payload returns the bytes after the header up to TotalLen.
func (h IPv4) Payload() []byte { return h[h.HeaderLen():h.TotalLen()] }

// SetTTL sets the time to live (the checksum is not updated).
func (h IPv4) SetTTL(ttl uint8) { h[8] = ttl }

// SetChecksum sets the header checksum field.
func (h IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[10:12], c) }

// SetTotalLen sets the total length field.
func (h IPv4) SetTotalLen(n uint16) { binary.BigEndian.PutUint16(h[2:4], n) }

// SetID sets the identification field.
func (h IPv4) SetID(id uint16) { binary.BigEndian.PutUint16(h[4:6], id) }

// SetFlagsFragmentOffset sets the 3 flag bits and the fragment offset given
// in bytes (must be a multiple of 8).
func (h IPv4) SetFlagsFragmentOffset(flags uint8, offset uint16) {
	binary.BigEndian.PutUint16(h[6:8], uint16(flags&7)<<13|(offset>>3)&0x1fff)
}

// ComputeChecksum returns the value to store in the checksum field, computed
// over the header with the checksum field treated as zero.
func (h IPv4) ComputeChecksum() uint16 {
	return ^Checksum(h[12:h.HeaderLen()], Checksum(h[:10], 0))
}

// IPv4Fields is the parsed representation of an IPv4 header.
type IPv4Fields struct {
	TOS            uint8
	TotalLen       uint16
	ID             uint16
	Flags          uint8  // IPv4FlagDF, IPv4FlagMF (and the reserved bit 4)
	FragmentOffset uint16 // in bytes
	TTL            uint8
	Protocol       uint8
	Src, Dst       netip.Addr
	Options        []byte // at most 40 bytes; Emit pads to a multiple of 4
}

// ParseIPv4 validates the IPv4 header at the start of b (version, IHL,
// lengths and header checksum) and returns its fields. b is not truncated to
// TotalLen; the caller does that. Options is a sub-slice of b.
func ParseIPv4(b []byte) (IPv4Fields, error) {
	if len(b) < IPv4MinLen {
		return IPv4Fields{}, ErrTruncated
	}
	if b[0]>>4 != 4 {
		return IPv4Fields{}, ErrVersion
	}
	h := IPv4(b)
	hl := h.HeaderLen()
	if hl < IPv4MinLen {
		return IPv4Fields{}, ErrMalformed
	}
	if len(b) < hl {
		return IPv4Fields{}, ErrTruncated
	}
	tl := int(h.TotalLen())
	if tl < hl {
		return IPv4Fields{}, ErrMalformed
	}
	if len(b) < tl {
		return IPv4Fields{}, ErrTruncated
	}
	if Checksum(b[:hl], 0) != 0xffff {
		return IPv4Fields{}, ErrBadChecksum
	}
	f := IPv4Fields{
		TOS:            h.TOS(),
		TotalLen:       h.TotalLen(),
		ID:             h.ID(),
		Flags:          h.Flags(),
		FragmentOffset: h.FragmentOffset(),
		TTL:            h.TTL(),
		Protocol:       h.Protocol(),
		Src:            h.Src(),
		Dst:            h.Dst(),
	}
	if hl > IPv4MinLen {
		f.Options = b[IPv4MinLen:hl:hl]
	}
	return f, nil
}

// HeaderLen returns the length Emit writes: 20 plus the options padded to 4.
func (f IPv4Fields) HeaderLen() int { return IPv4MinLen + (len(f.Options)+3)&^3 }

// Emit writes the header, options (zero padded) and a correct checksum into
// b[:f.HeaderLen()]. Src and Dst must be IPv4 addresses.
func (f IPv4Fields) Emit(b []byte) {
	hl := f.HeaderLen()
	_ = b[hl-1]
	b[0] = 0x40 | uint8(hl/4)
	b[1] = f.TOS
	binary.BigEndian.PutUint16(b[2:4], f.TotalLen)
	binary.BigEndian.PutUint16(b[4:6], f.ID)
	binary.BigEndian.PutUint16(b[6:8], uint16(f.Flags&7)<<13|(f.FragmentOffset>>3)&0x1fff)
	b[8] = f.TTL
	b[9] = f.Protocol
	b[10], b[11] = 0, 0
	src, dst := f.Src.As4(), f.Dst.As4()
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	n := copy(b[IPv4MinLen:hl], f.Options)
	clear(b[IPv4MinLen+n : hl])
	IPv4(b).SetChecksum(IPv4(b).ComputeChecksum())
}
