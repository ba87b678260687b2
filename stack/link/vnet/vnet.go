// Package vnet builds and parses the virtio-net header (struct
// virtio_net_hdr, include/uapi/linux/virtio_net.h) that TAP devices with
// IFF_VNET_HDR and packet sockets with PACKET_VNET_HDR put in front of
// every frame. It carries the segmentation (GSO) and checksum offload
// state, which lets the stack write 64 KiB TCP super-segments that the
// kernel segments, and read coalesced ones.
//
// Offsets in buffer.GSO (HeaderLen, CsumStart) count from the network
// header, because the layer that fills them in does not know the link
// header; the virtio header counts from the frame start, so the functions
// here take the link header length.
package vnet

import (
	"encoding/binary"

	"github.com/netprov/netprov/stack/buffer"
)

// Header lengths: the basic header (packet sockets) and the one with
// num_buffers (TAP with TUNSETVNETHDRSZ 12, like virtio 1.0).
const (
	Len    = 10
	LenMrg = 12
)

// Flags and GSO types (virtio_net.h).
const (
	FlagNeedsCsum = 1
	FlagDataValid = 2

	GSONone  = 0
	GSOTCPv4 = 1
	GSOTCPv6 = 4
	GSOECN   = 0x80
)

// Header is struct virtio_net_hdr.
type Header struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// Encode writes h into b[:Len]. The legacy header that TAP and packet
// sockets use is in host byte binary.NativeEndian.
func (h Header) Encode(b []byte) {
	_ = b[Len-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
}

// Decode reads a header from b, which must hold at least Len bytes.
func Decode(b []byte) Header {
	_ = b[Len-1]
	return Header{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.NativeEndian.Uint16(b[2:]),
		GSOSize:    binary.NativeEndian.Uint16(b[4:]),
		CsumStart:  binary.NativeEndian.Uint16(b[6:]),
		CsumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// tcpCsumOffset is the offset of the checksum in the TCP header.
const tcpCsumOffset = 16

// ForOutput returns the header for frame (link header included, linkLen
// bytes long) described by m. A super-segment always gets NEEDS_CSUM: the
// kernel completes the checksum of every segment it cuts. When the stack
// left CsumStart zero, it is found from the IP header in frame.
func ForOutput(m *buffer.Meta, frame []byte, linkLen int) Header {
	var h Header
	g := &m.GSO
	if g.Type == buffer.GSONone && !g.NeedsCsum {
		return h
	}
	h.Flags = FlagNeedsCsum
	h.CsumStart = g.CsumStart
	if h.CsumStart == 0 {
		h.CsumStart = uint16(ipHeaderLen(frame[linkLen:]))
	}
	h.CsumStart += uint16(linkLen)
	h.CsumOffset = g.CsumOffset
	if h.CsumOffset == 0 {
		h.CsumOffset = tcpCsumOffset
	}
	switch g.Type {
	case buffer.GSOTCPv4:
		h.GSOType = GSOTCPv4
	case buffer.GSOTCPv6:
		h.GSOType = GSOTCPv6
	default:
		return h
	}
	h.HdrLen = g.HeaderLen + uint16(linkLen)
	h.GSOSize = g.MSS
	return h
}

// ipHeaderLen is the length of the IPv4 header (IHL) or the fixed IPv6
// header at the start of b; 0 when b is neither.
func ipHeaderLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] >> 4 {
	case 4:
		return int(b[0]&0xf) * 4
	case 6:
		return 40
	}
	return 0
}

// ApplyInput records in m what the header of a received frame says:
// DATA_VALID and NEEDS_CSUM (a packet from the local kernel whose checksum
// was never computed) both mean the checksum needs no verification; a GSO
// type means the frame is a coalesced super-segment of GSOSize segments.
// HeaderLen is left zero: the kernel's hdr_len is only a hint.
func (h Header) ApplyInput(m *buffer.Meta, linkLen int) {
	if h.Flags&(FlagDataValid|FlagNeedsCsum) != 0 {
		m.ChecksumVerified = true
	}
	if h.Flags&FlagNeedsCsum != 0 && int(h.CsumStart) >= linkLen {
		m.GSO.NeedsCsum = true
		m.GSO.CsumStart = h.CsumStart - uint16(linkLen)
		m.GSO.CsumOffset = h.CsumOffset
	}
	switch h.GSOType &^ GSOECN {
	case GSOTCPv4:
		m.GSO.Type = buffer.GSOTCPv4
		m.GSO.MSS = h.GSOSize
	case GSOTCPv6:
		m.GSO.Type = buffer.GSOTCPv6
		m.GSO.MSS = h.GSOSize
	}
}
