package afpacket

import "github.com/netprov/netprov/stack/header"

// DefaultBatchSize is how many frames one recvmmsg/sendmmsg moves at most.
const DefaultBatchSize = 64

// Config describes an AF_PACKET endpoint.
type Config struct {
	// Interface is the name of the existing interface to bind to.
	Interface string
	// NetNS is the network namespace file (/run/netns/NAME,
	// /proc/PID/ns/net) the interface lives in; "" means the current one.
	NetNS string
	// MAC is the stack's link address (default: the interface's own MAC).
	// A different MAC usually needs Promiscuous on a real NIC.
	MAC header.MAC
	// MTU is the stack's MTU (default: the interface's MTU).
	MTU int
	// VnetHdr enables PACKET_VNET_HDR: TCP segmentation and checksum
	// offload (CapGSO, CapTXChecksumOffload) and coalesced input up to
	// 64 KiB. Without it, received frames larger than MTU (a peer with TSO
	// on a veth) are dropped and counted: turn offloads off on the peer
	// (ethtool -K PEER tso off gso off) or enable VnetHdr.
	VnetHdr bool
	// Promiscuous puts the interface in promiscuous mode while the
	// endpoint is open (PACKET_MR_PROMISC).
	Promiscuous bool
	// BatchSize bounds the frames per recvmmsg/sendmmsg (default 64).
	BatchSize int
	// SocketBuffer sets SO_RCVBUFFORCE and SO_SNDBUFFORCE in bytes (0: the
	// kernel's default, net.core.rmem_default).
	SocketBuffer int
}
