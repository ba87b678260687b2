// Package link defines the interface between the stack and the devices that
// move its frames: TAP devices, AF_PACKET sockets on existing interfaces,
// loopback, and in-memory pipes for tests and benchmarks. The endpoint
// implementations live in the subpackages.
package link

import (
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
)

// Capabilities describe what an endpoint does for the stack.
type Capabilities uint32

const (
	// CapEthernet: frames carry an Ethernet header and neighbours must be
	// resolved (ARP/NDP). Without it, frames are bare IP packets.
	CapEthernet Capabilities = 1 << iota
	// CapLoopback: every frame written is received again by the same stack.
	CapLoopback
	// CapRXChecksumOffload: received transport checksums were verified.
	CapRXChecksumOffload
	// CapTXChecksumOffload: the endpoint completes transport checksums
	// (packets carry only the pseudo-header sum, see buffer.GSO.NeedsCsum).
	CapTXChecksumOffload
	// CapGSO: the endpoint accepts TCP super-segments up to GSOMaxSize and
	// segments them (virtio-net header on TAP/AF_PACKET).
	CapGSO
)

// GSOMaxSize is the largest super-segment an endpoint with CapGSO accepts.
const GSOMaxSize = 65535

// Endpoint is a network device as the stack sees it.
type Endpoint interface {
	// MTU is the largest network-layer packet (IP header included) the
	// device carries.
	MTU() int
	// LinkAddress is the device's MAC; zero for endpoints without CapEthernet.
	LinkAddress() header.MAC
	// Capabilities tells what the device does.
	Capabilities() Capabilities
	// Attach starts delivering received frames to d (nil stops delivery).
	// Delivery happens on the endpoint's own goroutine(s).
	Attach(d Dispatcher)
	// WritePackets sends whole frames (link header included, built by the
	// stack). It takes ownership of every packet, sent or not, and returns
	// how many were sent.
	WritePackets(pkts []*buffer.Packet) (int, error)
	// Close stops the endpoint and releases its resources.
	Close() error
}

// Dispatcher receives frames from an endpoint.
type Dispatcher interface {
	// DeliverLinkPacket hands over one received frame (link header included
	// when the endpoint has CapEthernet) and its ownership.
	DeliverLinkPacket(pkt *buffer.Packet)
}

// Stats are the counters every endpoint keeps (like /sys/class/net/*/statistics).
type Stats struct {
	RxPackets, RxBytes, RxDropped uint64
	TxPackets, TxBytes, TxDropped uint64
}
