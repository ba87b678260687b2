package header

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv6MinLen is the length of the ICMPv6 header including the 4-byte
// message-specific word (echo ident/seq, MTU, pointer).
const ICMPv6MinLen = 8

// ICMPv6 message types (RFC 4443, RFC 4861).
const (
	ICMPv6DstUnreachable  uint8 = 1
	ICMPv6PacketTooBig    uint8 = 2
	ICMPv6TimeExceeded    uint8 = 3
	ICMPv6ParamProblem    uint8 = 4
	ICMPv6EchoRequest     uint8 = 128
	ICMPv6EchoReply       uint8 = 129
	ICMPv6RouterSolicit   uint8 = 133
	ICMPv6RouterAdvert    uint8 = 134
	ICMPv6NeighborSolicit uint8 = 135
	ICMPv6NeighborAdvert  uint8 = 136
)

// ICMPv6 destination-unreachable codes.
const (
	ICMPv6CodeNoRoute            uint8 = 0
	ICMPv6CodeAdminProhibited    uint8 = 1
	ICMPv6CodeBeyondScope        uint8 = 2
	ICMPv6CodeAddressUnreachable uint8 = 3
	ICMPv6CodePortUnreachable    uint8 = 4
)

// ICMPv6 time-exceeded codes.
const (
	ICMPv6CodeHopLimitExceeded   uint8 = 0
	ICMPv6CodeReassemblyExceeded uint8 = 1
)

// ICMPv6 parameter-problem codes.
const (
	ICMPv6CodeErroneousHeader    uint8 = 0
	ICMPv6CodeUnknownNextHeader  uint8 = 1
	ICMPv6CodeUnrecognizedOption uint8 = 2
)

// ICMPv6 is a view of an ICMPv6 message. Accessors do not validate; call
// ParseICMPv6 first.
type ICMPv6 []byte

// Type returns the message type.
func (h ICMPv6) Type() uint8 { return h[0] }

// Code returns the message code.
func (h ICMPv6) Code() uint8 { return h[1] }

// Checksum returns the checksum field.
func (h ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// Ident returns the echo identifier.
func (h ICMPv6) Ident() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// Seq returns the echo sequence number.
func (h ICMPv6) Seq() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// MTU returns the MTU of a packet-too-big message.
func (h ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(h[4:8]) }

// Pointer returns the pointer of a parameter-problem message.
func (h ICMPv6) Pointer() uint32 { return binary.BigEndian.Uint32(h[4:8]) }

// Body returns the message after the type, code and checksum (the form the
// NDP parsers take).
func (h ICMPv6) Body() []byte { return h[4:] }

// Payload returns the bytes after the 8-byte header.
func (h ICMPv6) Payload() []byte { return h[ICMPv6MinLen:] }

// SetType sets the message type.
func (h ICMPv6) SetType(t uint8) { h[0] = t }

// SetCode sets the message code.
func (h ICMPv6) SetCode(c uint8) { h[1] = c }

// SetChecksum sets the checksum field.
func (h ICMPv6) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[2:4], c) }

// ICMPv6Checksum returns the value to store in the checksum field of the
// complete message msg sent from src to dst, computed with the checksum
// field as zero.
func ICMPv6Checksum(msg []byte, src, dst netip.Addr) uint16 {
	sum := PseudoHeaderChecksum(ProtoICMPv6, src, dst, uint16(len(msg)))
	return ^Checksum(msg[4:], Checksum(msg[:2], sum))
}

// EmitICMPv6Header writes type and code into the complete message msg (whose
// body, e.g. an NDP message, is already in msg[4:]) and sets its checksum.
func EmitICMPv6Header(msg []byte, typ, code uint8, src, dst netip.Addr) {
	msg[0], msg[1] = typ, code
	ICMPv6(msg).SetChecksum(ICMPv6Checksum(msg, src, dst))
}

// ICMPv6Fields is the parsed ICMPv6 header. Ident and Seq are always bytes
// 4-5 and 6-7; MTU is set for packet too big and Pointer for parameter
// problem, both aliasing bytes 4-7.
type ICMPv6Fields struct {
	Type, Code uint8
	Ident, Seq uint16
	MTU        uint32
	Pointer    uint32
}

// ParseICMPv6 parses the ICMPv6 message b (header and payload, exactly the
// upper-layer length) sent from src to dst and verifies its checksum.
func ParseICMPv6(b []byte, src, dst netip.Addr) (ICMPv6Fields, error) {
	if len(b) < ICMPv6MinLen {
		return ICMPv6Fields{}, ErrTruncated
	}
	if len(b) > 0xffff {
		return ICMPv6Fields{}, ErrMalformed
	}
	if Checksum(b, PseudoHeaderChecksum(ProtoICMPv6, src, dst, uint16(len(b)))) != 0xffff {
		return ICMPv6Fields{}, ErrBadChecksum
	}
	h := ICMPv6(b)
	f := ICMPv6Fields{Type: h.Type(), Code: h.Code(), Ident: h.Ident(), Seq: h.Seq()}
	switch f.Type {
	case ICMPv6PacketTooBig:
		f.MTU = h.MTU()
	case ICMPv6ParamProblem:
		f.Pointer = h.Pointer()
	}
	return f, nil
}

// Emit writes the 8-byte header into b[:8] with the checksum computed over
// the pseudo header, the header and payload (the bytes that follow).
func (f ICMPv6Fields) Emit(b []byte, payload []byte, src, dst netip.Addr) {
	_ = b[ICMPv6MinLen-1]
	b[0], b[1], b[2], b[3] = f.Type, f.Code, 0, 0
	binary.BigEndian.PutUint16(b[4:6], f.Ident)
	binary.BigEndian.PutUint16(b[6:8], f.Seq)
	switch f.Type {
	case ICMPv6PacketTooBig:
		binary.BigEndian.PutUint32(b[4:8], f.MTU)
	case ICMPv6ParamProblem:
		binary.BigEndian.PutUint32(b[4:8], f.Pointer)
	}
	sum := PseudoHeaderChecksum(ProtoICMPv6, src, dst, uint16(ICMPv6MinLen+len(payload)))
	ICMPv6(b).SetChecksum(^Checksum(payload, Checksum(b[:ICMPv6MinLen], sum)))
}

// SolicitedNodeMulticast returns the solicited-node multicast address
// ff02::1:ffXX:XXXX of a (RFC 4291 §2.7.1).
func SolicitedNodeMulticast(a netip.Addr) netip.Addr {
	s := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: s[13], 14: s[14], 15: s[15]})
}

// IPv6MulticastMAC returns the Ethernet address 33:33:xx:xx:xx:xx of the
// IPv6 multicast address a (RFC 2464 §7).
func IPv6MulticastMAC(a netip.Addr) MAC {
	s := a.As16()
	return MAC{0x33, 0x33, s[12], s[13], s[14], s[15]}
}
