// Package capture records the frames on an interface inside a test
// network namespace with tcpdump, and reads them back, so kernel-peer tests
// can compare what the userspace stack puts on the wire with what the Linux
// kernel does.
package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Frame is one captured frame.
type Frame struct {
	Time time.Time
	Data []byte
}

// Pcap link types.
const (
	LinkTypeEthernet = 1
	LinkTypeRaw      = 101
)

// ReadPcap parses a classic pcap file (microsecond or nanosecond, either
// byte order) and returns its link type and frames.
func ReadPcap(r io.Reader) (linkType uint32, frames []Frame, err error) {
	var gh [24]byte
	if _, err := io.ReadFull(r, gh[:]); err != nil {
		return 0, nil, fmt.Errorf("read pcap header: %w", err)
	}
	var bo binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(gh[0:4]) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return 0, nil, errors.New("read pcap: bad magic")
	}
	linkType = bo.Uint32(gh[20:24])
	for {
		var rh [16]byte
		if _, err := io.ReadFull(r, rh[:]); err == io.EOF {
			return linkType, frames, nil
		} else if err != nil {
			// tcpdump killed mid-record leaves a torn tail: keep what is whole.
			return linkType, frames, nil
		}
		sec, frac := int64(bo.Uint32(rh[0:4])), int64(bo.Uint32(rh[4:8]))
		if !nano {
			frac *= 1000
		}
		n := bo.Uint32(rh[8:12])
		if n > 1<<20 {
			return linkType, frames, fmt.Errorf("read pcap: record of %d bytes", n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return linkType, frames, nil
		}
		frames = append(frames, Frame{Time: time.Unix(sec, frac), Data: data})
	}
}
