package linktest

import (
	"encoding/binary"
	"net/netip"

	"github.com/netprov/netprov/stack/header"
)

// ARP opcodes.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARPFrame builds an Ethernet frame carrying an IPv4-over-Ethernet ARP
// packet (RFC 826), padded to the 60-byte Ethernet minimum.
func ARPFrame(dst header.MAC, op uint16, sha header.MAC, spa netip.Addr, tha header.MAC, tpa netip.Addr) []byte {
	b := make([]byte, 60)
	header.EthernetFields{Dst: dst, Src: sha, EtherType: header.EtherTypeARP}.Emit(b)
	a := b[header.EthernetLen:]
	binary.BigEndian.PutUint16(a[0:], 1)      // hardware type Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // protocol IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:14], sha[:])
	s4 := spa.As4()
	copy(a[14:18], s4[:])
	copy(a[18:24], tha[:])
	t4 := tpa.As4()
	copy(a[24:28], t4[:])
	return b
}

// ARP is a parsed IPv4-over-Ethernet ARP packet.
type ARP struct {
	Op       uint16
	SHA, THA header.MAC
	SPA, TPA netip.Addr
}

// ParseARPFrame parses an Ethernet frame holding an ARP packet; ok is false
// for anything else.
func ParseARPFrame(frame []byte) (arp ARP, ok bool) {
	eth, err := header.ParseEthernet(frame)
	if err != nil || eth.EtherType != header.EtherTypeARP || len(frame) < header.EthernetLen+28 {
		return ARP{}, false
	}
	a := frame[header.EthernetLen:]
	if binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != 0x0800 || a[4] != 6 || a[5] != 4 {
		return ARP{}, false
	}
	arp.Op = binary.BigEndian.Uint16(a[6:])
	copy(arp.SHA[:], a[8:14])
	arp.SPA = netip.AddrFrom4([4]byte(a[14:18]))
	copy(arp.THA[:], a[18:24])
	arp.TPA = netip.AddrFrom4([4]byte(a[24:28]))
	return arp, true
}
