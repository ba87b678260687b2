package header

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Checksum returns the 16-bit ones'-complement sum (RFC 1071) of b added to
// initial, folded to 16 bits but not complemented. An odd trailing byte is
// padded with zero. Chaining calls through initial sums a message kept in
// several pieces, as long as every piece but the last has even length.
//
// The value stored in a checksum field is ^Checksum(...); a received message
// (pseudo header folded in) verifies when Checksum over it returns 0xffff.
func Checksum(b []byte, initial uint16) uint16 {
	// Big-endian 64-bit words are sums of four 16-bit words modulo 2^16-1
	// (2^16 ≡ 1), so a 64-bit end-around-carry sum folds to the same result
	// while doing a quarter of the additions.
	sum := uint64(initial)
	var carry uint64
	for len(b) >= 32 {
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b[0:8]), carry)
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b[8:16]), carry)
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b[16:24]), carry)
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b[0:8]), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		sum, carry = bits.Add64(sum, uint64(binary.BigEndian.Uint32(b[0:4])), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		sum, carry = bits.Add64(sum, uint64(binary.BigEndian.Uint16(b[0:2])), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		sum, carry = bits.Add64(sum, uint64(b[0])<<8, carry)
	}
	sum, carry = bits.Add64(sum, carry, 0)
	sum += carry
	return fold64(sum)
}

// fold64 folds a 64-bit ones'-complement sum to 16 bits.
func fold64(sum uint64) uint16 {
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 16) + (sum & 0xffff)
	sum = (sum >> 16) + (sum & 0xffff)
	sum = (sum >> 16) + (sum & 0xffff)
	return uint16(sum)
}

// ChecksumCombine returns the ones'-complement sum of a and b.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s) + uint16(s>>16)
}

// PseudoHeaderChecksum returns the (not complemented) sum of the IPv4 (RFC
// 793/768) or IPv6 (RFC 8200 §8.1) pseudo header. length is the transport
// length (header plus payload); for IPv6 it is the 32-bit upper-layer length.
// The family is chosen by src; src and dst must be of the same family.
func PseudoHeaderChecksum(proto uint8, src, dst netip.Addr, length uint16) uint16 {
	sum := uint64(proto) + uint64(length)
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		sum += uint64(binary.BigEndian.Uint32(s[:]))
		sum += uint64(binary.BigEndian.Uint32(d[:]))
		return fold64(sum)
	}
	s, d := src.As16(), dst.As16()
	var carry uint64
	sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(s[0:8]), 0)
	sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(s[8:16]), carry)
	sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(d[0:8]), carry)
	sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(d[8:16]), carry)
	sum, carry = bits.Add64(sum, carry, 0)
	sum += carry
	return fold64(sum)
}
