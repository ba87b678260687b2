package header

import (
	"encoding/binary"
	"net/netip"
)

// UDPLen is the length of the UDP header.
const UDPLen = 8

// UDP is a view of a UDP datagram. Accessors do not validate; call ParseUDP
// first.
type UDP []byte

// SrcPort returns the source port.
func (h UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(h[0:2]) }

// DstPort returns the destination port.
func (h UDP) DstPort() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// Length returns the length field (header plus payload).
func (h UDP) Length() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// Checksum returns the checksum field.
func (h UDP) Checksum() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// Payload returns the bytes after the header up to Length.
func (h UDP) Payload() []byte { return h[UDPLen:h.Length()] }

// SetChecksum sets the checksum field.
func (h UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[6:8], c) }

// SetLength sets the length field.
func (h UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(h[4:6], n) }

// UDPFields is the parsed UDP header.
type UDPFields struct {
	SrcPort, DstPort, Length, Checksum uint16
}

// ParseUDP checks the lengths of the UDP datagram b (8 <= Length <= len(b))
// and returns its header. The checksum is verified by UDPChecksumValid.
func ParseUDP(b []byte) (UDPFields, error) {
	if len(b) < UDPLen {
		return UDPFields{}, ErrTruncated
	}
	h := UDP(b)
	if h.Length() < UDPLen {
		return UDPFields{}, ErrMalformed
	}
	if int(h.Length()) > len(b) {
		return UDPFields{}, ErrTruncated
	}
	return UDPFields{SrcPort: h.SrcPort(), DstPort: h.DstPort(), Length: h.Length(), Checksum: h.Checksum()}, nil
}

// Emit writes the header into b[:UDPLen] (the checksum as given).
func (f UDPFields) Emit(b []byte) {
	_ = b[UDPLen-1]
	binary.BigEndian.PutUint16(b[0:2], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], f.DstPort)
	binary.BigEndian.PutUint16(b[4:6], f.Length)
	binary.BigEndian.PutUint16(b[6:8], f.Checksum)
}

// UDPChecksum returns the value to store in the checksum field of the
// datagram b (header with its Length set, plus payload; the checksum field is
// treated as zero). A computed zero is sent as 0xffff (RFC 768).
func UDPChecksum(b []byte, src, dst netip.Addr) uint16 {
	sum := PseudoHeaderChecksum(ProtoUDP, src, dst, uint16(len(b)))
	c := ^Checksum(b[8:], Checksum(b[:6], sum))
	if c == 0 {
		c = 0xffff
	}
	return c
}

// UDPChecksumValid verifies the checksum of the datagram b (at least its
// Length bytes; bytes beyond Length are ignored) received from src to dst.
// Over IPv4 a zero checksum means none was sent; over IPv6 it is invalid
// (RFC 8200 §8.1, as Linux without no_check6_rx).
func UDPChecksumValid(b []byte, src, dst netip.Addr) bool {
	if len(b) < UDPLen {
		return false
	}
	h := UDP(b)
	n := int(h.Length())
	if n < UDPLen || n > len(b) {
		return false
	}
	if h.Checksum() == 0 {
		return src.Is4()
	}
	return Checksum(b[:n], PseudoHeaderChecksum(ProtoUDP, src, dst, uint16(n))) == 0xffff
}
