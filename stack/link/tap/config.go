package tap

import (
	"crypto/rand"
	"fmt"

	"github.com/netprov/netprov/stack/header"
)

// DefaultMTU is the MTU of a new TAP device.
const DefaultMTU = 1500

// Config describes a TAP endpoint.
type Config struct {
	// Name of the TAP device ("" lets the kernel choose tapN). An existing
	// persistent TAP device of that name is attached to.
	Name string
	// MTU of the stack's side; the kernel interface gets the same MTU
	// (default 1500).
	MTU int
	// MAC is the stack's own link address, different from the kernel
	// interface's (default: a random locally administered unicast address).
	MAC header.MAC
	// NetNS is the network namespace file (/run/netns/NAME,
	// /proc/PID/ns/net) to create the device in; "" means the current one.
	NetNS string
	// VnetHdr enables the virtio-net header (IFF_VNET_HDR): TCP
	// segmentation and checksum offload in both directions (CapGSO,
	// CapTXChecksumOffload), and coalesced input up to 64 KiB.
	VnetHdr bool
}

// RandomMAC returns a random locally administered unicast address.
func RandomMAC() (header.MAC, error) {
	var m header.MAC
	if _, err := rand.Read(m[:]); err != nil {
		return m, fmt.Errorf("random MAC: %w", err)
	}
	m[0] = m[0]&^0x01 | 0x02
	return m, nil
}

func (c *Config) setDefaults() error {
	if c.MTU <= 0 {
		c.MTU = DefaultMTU
	}
	if c.MAC == (header.MAC{}) {
		m, err := RandomMAC()
		if err != nil {
			return err
		}
		c.MAC = m
	}
	return nil
}
