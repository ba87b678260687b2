package header

import (
	"encoding/binary"
	"net/netip"
)

// TCPMinLen is the length of the TCP header without options.
const TCPMinLen = 20

// TCPMaxLen is the largest TCP header (data offset 15).
const TCPMaxLen = 60

// TCPFlags are the 8 flag bits of byte 13 of the TCP header.
type TCPFlags uint8

// TCP flag bits.
const (
	TCPFlagFin TCPFlags = 0x01
	TCPFlagSyn TCPFlags = 0x02
	TCPFlagRst TCPFlags = 0x04
	TCPFlagPsh TCPFlags = 0x08
	TCPFlagAck TCPFlags = 0x10
	TCPFlagUrg TCPFlags = 0x20
	TCPFlagEce TCPFlags = 0x40
	TCPFlagCwr TCPFlags = 0x80
)

// Contains reports whether all bits of want are set.
func (f TCPFlags) Contains(want TCPFlags) bool { return f&want == want }

// String formats the flags like tcpdump: "[S.]" for SYN-ACK, "[P.]",
// "[none]" for no flags. Letters: F S R P . U E W, in that order.
func (f TCPFlags) String() string {
	const letters = "FSRP.UEW"
	if f == 0 {
		return "[none]"
	}
	var buf [10]byte
	buf[0] = '['
	n := 1
	for i := 0; i < 8; i++ {
		if f&(1<<i) != 0 {
			buf[n] = letters[i]
			n++
		}
	}
	buf[n] = ']'
	return string(buf[:n+1])
}

// TCP is a view of a TCP segment. Accessors do not validate; call ParseTCP
// first.
type TCP []byte

// SrcPort returns the source port.
func (h TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(h[0:2]) }

// DstPort returns the destination port.
func (h TCP) DstPort() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// Seq returns the sequence number.
func (h TCP) Seq() uint32 { return binary.BigEndian.Uint32(h[4:8]) }

// Ack returns the acknowledgment number.
func (h TCP) Ack() uint32 { return binary.BigEndian.Uint32(h[8:12]) }

// DataOffset returns the header length in bytes.
func (h TCP) DataOffset() int { return int(h[12]>>4) * 4 }

// Flags returns the flag bits.
func (h TCP) Flags() TCPFlags { return TCPFlags(h[13]) }

// Window returns the (unscaled) window field.
func (h TCP) Window() uint16 { return binary.BigEndian.Uint16(h[14:16]) }

// Checksum returns the checksum field.
func (h TCP) Checksum() uint16 { return binary.BigEndian.Uint16(h[16:18]) }

// Urgent returns the urgent pointer.
func (h TCP) Urgent() uint16 { return binary.BigEndian.Uint16(h[18:20]) }

// Options returns the options area.
func (h TCP) Options() []byte { return h[TCPMinLen:h.DataOffset()] }

// Payload returns the bytes after the header.
func (h TCP) Payload() []byte { return h[h.DataOffset():] }

// SetSrcPort sets the source port.
func (h TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(h[0:2], p) }

// SetDstPort sets the destination port.
func (h TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(h[2:4], p) }

// SetSeq sets the sequence number.
func (h TCP) SetSeq(s uint32) { binary.BigEndian.PutUint32(h[4:8], s) }

// SetAck sets the acknowledgment number.
func (h TCP) SetAck(a uint32) { binary.BigEndian.PutUint32(h[8:12], a) }

// SetFlags sets the flag bits.
func (h TCP) SetFlags(f TCPFlags) { h[13] = uint8(f) }

// SetWindow sets the window field.
func (h TCP) SetWindow(w uint16) { binary.BigEndian.PutUint16(h[14:16], w) }

// SetChecksum sets the checksum field.
func (h TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[16:18], c) }

// SetUrgent sets the urgent pointer.
func (h TCP) SetUrgent(u uint16) { binary.BigEndian.PutUint16(h[18:20], u) }

// TCPFields is the parsed fixed TCP header.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	DataOffset       uint8 // header length in bytes, a multiple of 4
	Flags            TCPFlags
	Window           uint16
	Checksum         uint16
	Urgent           uint16
}

// ParseTCP checks the segment b (20 <= data offset <= len(b)) and returns
// its fixed header. The checksum is verified by TCPChecksumValid; options
// are parsed by ParseTCPOptions(TCP(b).Options()).
func ParseTCP(b []byte) (TCPFields, error) {
	if len(b) < TCPMinLen {
		return TCPFields{}, ErrTruncated
	}
	h := TCP(b)
	doff := h.DataOffset()
	if doff < TCPMinLen {
		return TCPFields{}, ErrMalformed
	}
	if doff > len(b) {
		return TCPFields{}, ErrTruncated
	}
	return TCPFields{
		SrcPort:    h.SrcPort(),
		DstPort:    h.DstPort(),
		Seq:        h.Seq(),
		Ack:        h.Ack(),
		DataOffset: uint8(doff),
		Flags:      h.Flags(),
		Window:     h.Window(),
		Checksum:   h.Checksum(),
		Urgent:     h.Urgent(),
	}, nil
}

// Emit writes the 20-byte fixed header into b[:TCPMinLen] (the checksum as
// given; the reserved bits as zero). Options go into b[20:DataOffset],
// written separately (EncodeSYNOptions, EncodeOptions).
func (f TCPFields) Emit(b []byte) {
	_ = b[TCPMinLen-1]
	binary.BigEndian.PutUint16(b[0:2], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], f.DstPort)
	binary.BigEndian.PutUint32(b[4:8], f.Seq)
	binary.BigEndian.PutUint32(b[8:12], f.Ack)
	b[12] = (f.DataOffset / 4) << 4
	b[13] = uint8(f.Flags)
	binary.BigEndian.PutUint16(b[14:16], f.Window)
	binary.BigEndian.PutUint16(b[16:18], f.Checksum)
	binary.BigEndian.PutUint16(b[18:20], f.Urgent)
}

// TCPChecksum returns the value to store in the checksum field of the
// complete segment seg (header, options, payload) sent from src to dst,
// computed with the checksum field as zero.
func TCPChecksum(seg []byte, src, dst netip.Addr) uint16 {
	sum := PseudoHeaderChecksum(ProtoTCP, src, dst, uint16(len(seg)))
	return ^Checksum(seg[18:], Checksum(seg[:16], sum))
}

// TCPChecksumValid verifies the checksum of the complete segment seg
// received from src to dst.
func TCPChecksumValid(seg []byte, src, dst netip.Addr) bool {
	if len(seg) < TCPMinLen || len(seg) > 0xffff {
		return false
	}
	return Checksum(seg, PseudoHeaderChecksum(ProtoTCP, src, dst, uint16(len(seg)))) == 0xffff
}
