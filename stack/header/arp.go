package header

import (
	"encoding/binary"
	"net/netip"
)

// ARPLen is the length of an Ethernet/IPv4 ARP packet.
const ARPLen = 28

// ARP operations.
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

// ARPFields is a parsed Ethernet/IPv4 ARP packet (RFC 826).
type ARPFields struct {
	Op        uint16
	SenderMAC MAC
	SenderIP  netip.Addr
	TargetMAC MAC
	TargetIP  netip.Addr
}

// ParseARP parses an ARP packet. Only hardware type Ethernet (1) with
// 6-byte addresses and protocol type IPv4 with 4-byte addresses are
// accepted; anything else is ErrMalformed. The operation is not checked.
func ParseARP(b []byte) (ARPFields, error) {
	if len(b) < ARPLen {
		return ARPFields{}, ErrTruncated
	}
	if binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != EtherTypeIPv4 ||
		b[4] != 6 || b[5] != 4 {
		return ARPFields{}, ErrMalformed
	}
	return ARPFields{
		Op:        binary.BigEndian.Uint16(b[6:8]),
		SenderMAC: MAC(b[8:14]),
		SenderIP:  netip.AddrFrom4([4]byte(b[14:18])),
		TargetMAC: MAC(b[18:24]),
		TargetIP:  netip.AddrFrom4([4]byte(b[24:28])),
	}, nil
}

// Emit writes the packet into b[:ARPLen]. The IPs must be IPv4 addresses.
func (f ARPFields) Emit(b []byte) {
	_ = b[ARPLen-1]
	binary.BigEndian.PutUint16(b[0:2], 1)
	binary.BigEndian.PutUint16(b[2:4], EtherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], f.Op)
	copy(b[8:14], f.SenderMAC[:])
	sip, tip := f.SenderIP.As4(), f.TargetIP.As4()
	copy(b[14:18], sip[:])
	copy(b[18:24], f.TargetMAC[:])
	copy(b[24:28], tip[:])
}
