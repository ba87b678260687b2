package stack

import (
	"net/netip"
	"sync/atomic"

	"github.com/netprov/netprov/stack/buffer"
)

// NetworkProtocol is a protocol above the link layer, identified by its
// EtherType: IPv4, IPv6 and ARP. It is registered with the stack before any
// NIC is added and gets one NetworkEndpoint per NIC.
type NetworkProtocol interface {
	// EtherType is the protocol's link-layer type.
	EtherType() uint16
	// NewEndpoint creates the protocol's state on nic (its neighbour table,
	// for example). Called once per NIC, when the NIC is added.
	NewEndpoint(nic *NIC) NetworkEndpoint
}

// NetworkEndpoint is a network protocol bound to one NIC.
type NetworkEndpoint interface {
	// HandlePacket processes a received packet whose link header has been
	// consumed. It owns pkt.
	HandlePacket(pkt *buffer.Packet)
	// Close releases timers and queued packets; the NIC is going away.
	Close()
}

// AddressObserver is implemented by network endpoints that act when an
// address is assigned to their NIC (gratuitous ARP, joining the
// solicited-node multicast group).
type AddressObserver interface {
	AddressAdded(p netip.Prefix)
}

// PacketWriter is implemented by the IPv4 and IPv6 network endpoints: it
// sends transport packets along a route, adding the IP header, fragmenting
// and resolving the next hop's link address.
type PacketWriter interface {
	// WritePacket sends pkt, whose data is the transport header and payload.
	// It owns pkt whether or not it returns an error.
	WritePacket(r *Route, pkt *buffer.Packet, p NetworkParams) error
}

// NetworkParams are the IP header fields a transport chooses per packet.
type NetworkParams struct {
	Protocol uint8
	TTL      uint8 // hop limit for IPv6; 0 means the protocol default
	TOS      uint8 // traffic class for IPv6
	// DontFragment sets DF (IPv4) and forbids local fragmentation: an
	// oversized packet then fails with EMSGSIZE.
	DontFragment bool
	// ID is a connected socket's IPv4 identification counter (Linux's
	// inet_id, seeded at random on connect and accept): the packet gets
	// its value and it advances by one per segment. Without it a DF packet
	// carries ID 0 and any other one an ID from the keyed per-destination
	// counters (ip_select_ident_segs). IPv6 ignores it.
	ID *atomic.Uint32
}

// TransportProtocol is a protocol above IP, identified by its IP protocol
// number: TCP, UDP, ICMP (echo sockets).
type TransportProtocol interface {
	// Number is the IP protocol number.
	Number() uint8
	// HandlePacket processes a packet addressed to this host. pkt's data
	// starts at the transport header and the network header is still in
	// the headroom. With the verdict Delivered the transport owns pkt; with
	// PortUnreachable it has not touched it, and the network layer quotes
	// it in an ICMP error and releases it.
	HandlePacket(pkt *buffer.Packet, ip IPInfo) Verdict
	// HandleError processes an ICMP error about a packet this host sent.
	// payload starts at the transport header of the offending packet (at
	// least 8 bytes) and is only valid during the call.
	HandleError(e ICMPError, ip IPInfo, payload []byte)
}

// Verdict is a transport protocol's answer to a received packet.
type Verdict uint8

const (
	// Delivered: the packet was taken (queued, answered, or dropped and
	// counted by the transport itself).
	Delivered Verdict = iota
	// PortUnreachable: no socket wants it; the network layer answers with
	// an ICMP port unreachable (UDP) if the destination was unicast.
	PortUnreachable
)

// IPInfo is what the network layer tells a transport about a packet.
// For ICMP errors it describes the offending packet: Src is this host and
// Dst the remote peer.
type IPInfo struct {
	Src, Dst netip.Addr
	// NIC is the interface the packet came in on.
	NIC int
	// TTL is the TTL or hop limit of the received packet.
	TTL uint8
	// TOS is the TOS or traffic class byte.
	TOS uint8
	// Multicast is set when Dst is a multicast or broadcast address.
	Multicast bool
}

// ICMPErrorKind is the class of an ICMP error, independent of IP version.
type ICMPErrorKind uint8

// ICMP error kinds, with the errno Linux's icmp_err_convert maps them to.
const (
	ICMPNetUnreachable   ICMPErrorKind = iota + 1 // ENETUNREACH
	ICMPHostUnreachable                           // EHOSTUNREACH
	ICMPProtoUnreachable                          // ENOPROTOOPT
	ICMPPortUnreachable                           // ECONNREFUSED
	ICMPFragNeeded                                // EMSGSIZE, carries MTU
	ICMPAdminProhibited                           // EHOSTUNREACH (ACCES for v6 admin)
	ICMPTimeExceeded                              // EHOSTUNREACH
	ICMPParamProblem                              // EPROTO
)

// ICMPError is a received ICMP error as transports see it.
type ICMPError struct {
	Kind ICMPErrorKind
	// MTU is the next-hop MTU of a fragmentation-needed / packet-too-big.
	MTU uint32
	// Code and Type are the raw ICMP values (for IP_RECVERR).
	Type, Code uint8
}
