package header

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv4MinLen is the length of the ICMPv4 header.
const ICMPv4MinLen = 8

// ICMPv4 message types.
const (
	ICMPv4EchoReply      uint8 = 0
	ICMPv4DstUnreachable uint8 = 3
	ICMPv4Redirect       uint8 = 5
	ICMPv4Echo           uint8 = 8
	ICMPv4TimeExceeded   uint8 = 11
	ICMPv4ParamProblem   uint8 = 12
)

// ICMPv4 destination-unreachable codes (RFC 792, RFC 1812).
const (
	ICMPv4CodeNetUnreachable      uint8 = 0
	ICMPv4CodeHostUnreachable     uint8 = 1
	ICMPv4CodeProtoUnreachable    uint8 = 2
	ICMPv4CodePortUnreachable     uint8 = 3
	ICMPv4CodeFragmentationNeeded uint8 = 4
	ICMPv4CodeSourceRouteFailed   uint8 = 5
	ICMPv4CodeNetUnknown          uint8 = 6
	ICMPv4CodeHostUnknown         uint8 = 7
	ICMPv4CodeHostIsolated        uint8 = 8
	ICMPv4CodeNetProhibited       uint8 = 9
	ICMPv4CodeHostProhibited      uint8 = 10
	ICMPv4CodeNetTOSUnreachable   uint8 = 11
	ICMPv4CodeHostTOSUnreachable  uint8 = 12
	ICMPv4CodeAdminProhibited     uint8 = 13
)

// ICMPv4 time-exceeded codes.
const (
	ICMPv4CodeTTLExceeded        uint8 = 0
	ICMPv4CodeReassemblyExceeded uint8 = 1
)

// ICMPv4 is a view of an ICMPv4 message. Accessors do not validate; call
// ParseICMPv4 first.
type ICMPv4 []byte

// Type returns the message type.
func (h ICMPv4) Type() uint8 { return h[0] }

// Code returns the message code.
func (h ICMPv4) Code() uint8 { return h[1] }

// Checksum returns the checksum field.
func (h ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// Ident returns the echo identifier (bytes 4-5).
func (h ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// Seq returns the echo sequence number (bytes 6-7).
func (h ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// MTU returns the next-hop MTU of a fragmentation-needed message (RFC 1191).
func (h ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// Pointer returns the pointer of a parameter-problem message.
func (h ICMPv4) Pointer() uint8 { return h[4] }

// Gateway returns the gateway address of a redirect message.
func (h ICMPv4) Gateway() netip.Addr { return netip.AddrFrom4([4]byte(h[4:8])) }

// Payload returns the bytes after the 8-byte header.
func (h ICMPv4) Payload() []byte { return h[ICMPv4MinLen:] }

// SetType sets the message type.
func (h ICMPv4) SetType(t uint8) { h[0] = t }

// SetCode sets the message code.
func (h ICMPv4) SetCode(c uint8) { h[1] = c }

// SetChecksum sets the checksum field.
func (h ICMPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[2:4], c) }

// SetIdent sets the echo identifier.
func (h ICMPv4) SetIdent(id uint16) { binary.BigEndian.PutUint16(h[4:6], id) }

// SetSeq sets the echo sequence number.
func (h ICMPv4) SetSeq(s uint16) { binary.BigEndian.PutUint16(h[6:8], s) }

// ICMPv4Checksum returns the value to store in the checksum field of the
// complete message msg, computed with the checksum field as zero.
func ICMPv4Checksum(msg []byte) uint16 {
	return ^Checksum(msg[4:], Checksum(msg[:2], 0))
}

// ICMPv4Fields is the parsed ICMPv4 header. Ident and Seq are always bytes
// 4-5 and 6-7 (the "rest of header"); MTU is set for fragmentation needed and
// Pointer for parameter problem, both aliasing those bytes.
type ICMPv4Fields struct {
	Type, Code uint8
	Ident, Seq uint16
	MTU        uint16
	Pointer    uint8
}

func (f ICMPv4Fields) isFragNeeded() bool {
	return f.Type == ICMPv4DstUnreachable && f.Code == ICMPv4CodeFragmentationNeeded
}

// ParseICMPv4 parses the ICMPv4 message b (header and payload) and verifies
// its checksum.
func ParseICMPv4(b []byte) (ICMPv4Fields, error) {
	if len(b) < ICMPv4MinLen {
		return ICMPv4Fields{}, ErrTruncated
	}
	if Checksum(b, 0) != 0xffff {
		return ICMPv4Fields{}, ErrBadChecksum
	}
	h := ICMPv4(b)
	f := ICMPv4Fields{Type: h.Type(), Code: h.Code(), Ident: h.Ident(), Seq: h.Seq()}
	if f.isFragNeeded() {
		f.MTU = h.MTU()
	}
	if f.Type == ICMPv4ParamProblem {
		f.Pointer = h.Pointer()
	}
	return f, nil
}

// Emit writes the 8-byte header into b[:8] with the checksum computed over
// the header and payload (the bytes that follow the header, passed
// separately so the caller may keep them anywhere).
func (f ICMPv4Fields) Emit(b []byte, payload []byte) {
	_ = b[ICMPv4MinLen-1]
	b[0], b[1], b[2], b[3] = f.Type, f.Code, 0, 0
	binary.BigEndian.PutUint16(b[4:6], f.Ident)
	binary.BigEndian.PutUint16(b[6:8], f.Seq)
	if f.isFragNeeded() {
		binary.BigEndian.PutUint16(b[6:8], f.MTU)
	}
	if f.Type == ICMPv4ParamProblem {
		b[4] = f.Pointer
	}
	ICMPv4(b).SetChecksum(^Checksum(payload, Checksum(b[:ICMPv4MinLen], 0)))
}
