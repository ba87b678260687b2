package header

import (
	"encoding/binary"
	"fmt"
)

// MAC is an Ethernet (EUI-48) address.
type MAC [6]byte

// Well-known link addresses.
var (
	BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// String formats the address as aa:bb:cc:dd:ee:ff.
func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// EtherType values the stack understands.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeIPv6 uint16 = 0x86dd
)

// EthernetLen is the length of an Ethernet II header (no VLAN tag).
const EthernetLen = 14

// Ethernet is a view of an Ethernet II frame.
type Ethernet []byte

// Dst returns the destination address.
func (e Ethernet) Dst() (m MAC) { copy(m[:], e[0:6]); return }

// Src returns the source address.
func (e Ethernet) Src() (m MAC) { copy(m[:], e[6:12]); return }

// EtherType returns the protocol of the payload.
func (e Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(e[12:14]) }

// Payload returns the bytes after the header.
func (e Ethernet) Payload() []byte { return e[EthernetLen:] }

// EthernetFields is the parsed representation of an Ethernet header.
type EthernetFields struct {
	Dst, Src  MAC
	EtherType uint16
}

// ParseEthernet checks that b holds an Ethernet header and returns its fields.
func ParseEthernet(b []byte) (EthernetFields, error) {
	if len(b) < EthernetLen {
		return EthernetFields{}, ErrTruncated
	}
	e := Ethernet(b)
	return EthernetFields{Dst: e.Dst(), Src: e.Src(), EtherType: e.EtherType()}, nil
}

// Emit writes the header into b[:EthernetLen].
func (f EthernetFields) Emit(b []byte) {
	copy(b[0:6], f.Dst[:])
	copy(b[6:12], f.Src[:])
	binary.BigEndian.PutUint16(b[12:14], f.EtherType)
}
