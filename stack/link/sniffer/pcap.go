package sniffer

import (
	"encoding/binary"
	"time"
)

// pcap file format (https://www.tcpdump.org/manpages/pcap-savefile.5.html),
// nanosecond-resolution variant.
const (
	pcapMagicNanos   = 0xa1b23c4d
	pcapVersionMajor = 2
	pcapVersionMinor = 4
	pcapFileHdrLen   = 24
	pcapRecordHdrLen = 16

	// LinkTypeEthernet is LINKTYPE_ETHERNET.
	LinkTypeEthernet = 1
	// LinkTypeRaw is LINKTYPE_RAW: bare IPv4 or IPv6 packets.
	LinkTypeRaw = 101
)

// putFileHeader writes the pcap global header into b[:pcapFileHdrLen].
func putFileHeader(b []byte, snaplen uint32, linkType uint32) {
	binary.LittleEndian.PutUint32(b[0:], pcapMagicNanos)
	binary.LittleEndian.PutUint16(b[4:], pcapVersionMajor)
	binary.LittleEndian.PutUint16(b[6:], pcapVersionMinor)
	binary.LittleEndian.PutUint32(b[8:], 0)  // thiszone
	binary.LittleEndian.PutUint32(b[12:], 0) // sigfigs
	binary.LittleEndian.PutUint32(b[16:], snaplen)
	binary.LittleEndian.PutUint32(b[20:], linkType)
}

// putRecordHeader writes a record header into b[:pcapRecordHdrLen].
func putRecordHeader(b []byte, t time.Time, captured, original int) {
	ns := t.UnixNano()
	binary.LittleEndian.PutUint32(b[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(b[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(b[8:], uint32(captured))
	binary.LittleEndian.PutUint32(b[12:], uint32(original))
}
