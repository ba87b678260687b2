package linktest

import (
	"encoding/binary"
	"net/netip"

	"github.com/netprov/netprov/stack/header"
)

// TCP flags used by the tests.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
)

// sum adds b to a one's complement running sum.
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// TCPv4Frame builds Ethernet + IPv4 + TCP (20-byte headers) with payload.
// With partial set, the TCP checksum holds only the folded pseudo-header
// sum, as a checksum-offload (NEEDS_CSUM) packet does.
func TCPv4Frame(dstMAC, srcMAC header.MAC, src, dst netip.Addr, sport, dport uint16, seq, ack uint32, flags uint8, payload []byte, partial bool) []byte {
	const ipLen, tcpLen = 20, 20
	b := make([]byte, header.EthernetLen+ipLen+tcpLen+len(payload))
	header.EthernetFields{Dst: dstMAC, Src: srcMAC, EtherType: header.EtherTypeIPv4}.Emit(b)
	ip := b[header.EthernetLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(ipLen+tcpLen+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], 1)
	ip[6] = 0x40 // DF
	ip[8] = 64
	ip[9] = 6
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum(0, ip[:ipLen])))
	tcp := ip[ipLen:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = tcpLen / 4 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[tcpLen:], payload)
	pseudo := sum(0, ip[12:20]) + 6 + uint32(len(tcp))
	if partial {
		binary.BigEndian.PutUint16(tcp[16:], fold(pseudo))
	} else {
		binary.BigEndian.PutUint16(tcp[16:], ^fold(sum(pseudo, tcp)))
	}
	return b
}

// TCPv4 is the part of a received IPv4/TCP frame the tests look at.
type TCPv4 struct {
	Src, Dst     netip.Addr
	Sport, Dport uint16
	Seq, Ack     uint32
	Flags        uint8
}

// ParseTCPv4Frame parses an Ethernet/IPv4/TCP frame; ok is false for
// anything else.
func ParseTCPv4Frame(frame []byte) (seg TCPv4, ok bool) {
	eth, err := header.ParseEthernet(frame)
	if err != nil || eth.EtherType != header.EtherTypeIPv4 || len(frame) < header.EthernetLen+20 {
		return seg, false
	}
	ip := frame[header.EthernetLen:]
	ihl := int(ip[0]&0xf) * 4
	if ip[0]>>4 != 4 || ip[9] != 6 || ihl < 20 || len(ip) < ihl+20 {
		return seg, false
	}
	seg.Src = netip.AddrFrom4([4]byte(ip[12:16]))
	seg.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
	tcp := ip[ihl:]
	seg.Sport = binary.BigEndian.Uint16(tcp[0:])
	seg.Dport = binary.BigEndian.Uint16(tcp[2:])
	seg.Seq = binary.BigEndian.Uint32(tcp[4:])
	seg.Ack = binary.BigEndian.Uint32(tcp[8:])
	seg.Flags = tcp[13]
	return seg, true
}
