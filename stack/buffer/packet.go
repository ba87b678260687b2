// Package buffer holds the packet buffer that carries a frame through the
// stack's layers, and the pools that make the steady-state data path free of
// allocations.
//
// A Packet is one contiguous byte slice with headroom in front of the data,
// like a Linux sk_buff: on output each layer prepends its header into the
// headroom with Prepend; on input each layer consumes its header with
// TrimFront. Neither copies the payload.
package buffer

import "sync"

// Headroom is the space reserved in front of transport payloads: the largest
// Ethernet, IPv6 (with room for extension headers) and TCP headers together.
const Headroom = 14 + 80 + 60

// Size classes of the pools. Small packets (ACKs, MTU-sized frames) take the
// small class; GSO super-segments and 64 KiB loopback packets the large one.
const (
	smallSize = 2048
	largeSize = 65536 + 2*Headroom
)

// pool recycles packets of one size class. A bounded free list sits in
// front of a sync.Pool: sync.Pool drops its contents at every GC, and a
// packet released on another goroutine than the one that allocated it
// (the normal case: TCP allocates, the link's goroutine releases) then
// costs an allocation; the free list survives collections, so the
// steady-state data path allocates nothing.
type pool struct {
	free chan *Packet
	sp   sync.Pool
}

func newPool(size, keep int) *pool {
	return &pool{
		free: make(chan *Packet, keep),
		sp:   sync.Pool{New: func() any { return &Packet{buf: make([]byte, size)} }},
	}
}

func (p *pool) get() *Packet {
	select {
	case pkt := <-p.free:
		return pkt
	default:
		return p.sp.Get().(*Packet)
	}
}

func (p *pool) put(pkt *Packet) {
	select {
	case p.free <- pkt:
	default:
		p.sp.Put(pkt)
	}
}

// The free lists keep at most 8 MiB of each class between collections.
var (
	smallPool = newPool(smallSize, 4096)
	largePool = newPool(largeSize, 128)
)

// Packet is a network packet being built (output) or parsed (input). The
// valid bytes are buf[head:tail]; buf[:head] is headroom.
type Packet struct {
	buf  []byte
	head int
	tail int
	// pooled says which pool the buffer came from (0 none, 1 small, 2 large).
	pooled uint8
	// released catches a second Release, which would hand one buffer to
	// two users and corrupt data silently.
	released bool

	// Meta describes the packet as lower layers have seen it. It is filled in
	// on input by the NIC and network layer and read by the layers above.
	Meta Meta
}

// Meta is what the link and network layers learned about a received packet
// or decided for a packet being sent.
type Meta struct {
	// NIC is the identifier of the interface the packet arrived on (input)
	// or leaves by (output).
	NIC int
	// EtherType is the network protocol number (0x0800, 0x86dd, 0x0806).
	EtherType uint16
	// LinkBroadcast is set on input when the frame was sent to a broadcast or
	// multicast link address.
	LinkBroadcast bool
	// NetworkHeaderLen is the length of the IP header (with extension
	// headers) that was consumed on input.
	NetworkHeaderLen int
	// ChecksumVerified is set when the link already verified the transport
	// checksum (virtio-net header VIRTIO_NET_HDR_F_DATA_VALID, loopback).
	ChecksumVerified bool
	// GSO describes a super-segment the link must segment (output) or that
	// the link coalesced (input). Zero when unused.
	GSO GSO
}

// GSO is the generic segmentation offload request of an oversized TCP packet.
type GSO struct {
	// Type is GSONone, GSOTCPv4 or GSOTCPv6.
	Type uint8
	// HeaderLen is the length of all headers in front of the TCP payload.
	HeaderLen uint16
	// MSS is the size of the payload in each resulting segment.
	MSS uint16
	// CsumStart and CsumOffset locate the partial checksum (virtio-net).
	CsumStart, CsumOffset uint16
	// NeedsCsum is set when the TCP checksum holds only the pseudo-header sum.
	NeedsCsum bool
}

// GSO types.
const (
	GSONone  = 0
	GSOTCPv4 = 1
	GSOTCPv6 = 4
)

// New returns an empty packet with headroom bytes of headroom and room for
// at least size bytes after it. The packet comes from a pool; Release
// returns it.
func New(headroom, size int) *Packet {
	var p *Packet
	if headroom+size <= smallSize {
		p = smallPool.get()
		p.pooled = 1
	} else if headroom+size <= largeSize {
		p = largePool.get()
		p.pooled = 2
	} else {
		p = &Packet{buf: make([]byte, headroom+size)}
	}
	p.head, p.tail = headroom, headroom
	p.Meta = Meta{}
	p.released = false
	return p
}

// FromBytes returns a packet holding a copy of b, with Headroom in front.
func FromBytes(b []byte) *Packet {
	p := New(Headroom, len(b))
	copy(p.Append(len(b)), b)
	return p
}

// Release returns the packet to its pool. The packet must not be used after.
// Releasing a packet twice is a programming error and panics.
func (p *Packet) Release() {
	if p.released {
		panic("buffer: packet released twice")
	}
	p.released = true
	switch p.pooled {
	case 1:
		smallPool.put(p)
	case 2:
		largePool.put(p)
	}
}

// Data returns the valid bytes of the packet.
func (p *Packet) Data() []byte { return p.buf[p.head:p.tail] }

// Len is the number of valid bytes.
func (p *Packet) Len() int { return p.tail - p.head }

// Headroom is the number of bytes that can still be prepended.
func (p *Packet) Headroom() int { return p.head }

// Tailroom is the number of bytes that can still be appended.
func (p *Packet) Tailroom() int { return len(p.buf) - p.tail }

// Prepend grows the packet by n bytes at the front and returns them. It
// panics if the headroom is too small: headroom is sized by the caller that
// created the packet, so running out is a programming error.
func (p *Packet) Prepend(n int) []byte {
	if n > p.head {
		panic("buffer: prepend beyond headroom")
	}
	p.head -= n
	return p.buf[p.head : p.head+n]
}

// Append grows the packet by n bytes at the end and returns them.
func (p *Packet) Append(n int) []byte {
	if p.tail+n > len(p.buf) {
		panic("buffer: append beyond capacity")
	}
	p.tail += n
	return p.buf[p.tail-n : p.tail]
}

// TrimFront drops n bytes from the front (a consumed header). n larger than
// Len empties the packet.
func (p *Packet) TrimFront(n int) {
	if n > p.Len() {
		n = p.Len()
	}
	p.head += n
}

// Truncate keeps only the first n bytes (drops link padding, for example).
func (p *Packet) Truncate(n int) {
	if n < p.Len() {
		p.tail = p.head + n
	}
}

// Reset empties the packet and sets the headroom again, keeping the buffer.
func (p *Packet) Reset(headroom int) {
	p.head, p.tail = headroom, headroom
	p.Meta = Meta{}
}

// Raw returns the whole backing buffer, headroom included. Link endpoints
// read frames into it directly; SetBounds then marks the valid bytes.
func (p *Packet) Raw() []byte { return p.buf }

// SetBounds marks buf[head:tail] as the valid bytes.
func (p *Packet) SetBounds(head, tail int) {
	if head < 0 || tail < head || tail > len(p.buf) {
		panic("buffer: bounds out of range")
	}
	p.head, p.tail = head, tail
}

// Clone returns a copy of the packet (data, metadata and headroom) in a new
// pooled buffer.
func (p *Packet) Clone() *Packet {
	c := New(p.head, p.Len())
	copy(c.Append(p.Len()), p.Data())
	c.Meta = p.Meta
	return c
}
