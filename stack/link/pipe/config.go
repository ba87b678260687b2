package pipe

import (
	"time"

	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
)

// Config describes a pipe. The zero value is a clean 1500-byte Ethernet
// cable with real time.
type Config struct {
	// MTU of both ends (default 1500, at most 65535).
	MTU int
	// MACA and MACB are the link addresses of the two ends (defaults
	// 02:00:00:00:00:01 and 02:00:00:00:00:02).
	MACA, MACB header.MAC
	// GSO makes both ends accept super-segments up to link.GSOMaxSize and
	// offload checksums: frames are delivered whole, with their GSO metadata
	// and ChecksumVerified set, like a veth pair between two GRO stacks.
	GSO bool
	// AToB and BToA impair the frames written by A (received by B) and by
	// B (received by A).
	AToB, BToA Impairments
	// Clock times delays and the rate limit (default clock.Real{}). It is
	// not touched when neither is configured.
	Clock clock.Clock
	// Seed seeds the random sources of the impairments (one PCG per
	// direction), so a run is reproducible.
	Seed uint64
}

// Impairments of one direction, applied in this order: queue limit, loss,
// corruption, duplication, reordering, rate limit, delay.
type Impairments struct {
	// Loss is the probability that a frame is dropped on the wire.
	Loss float64
	// Duplicate is the probability that a frame is delivered twice.
	Duplicate float64
	// Corrupt is the probability that one random byte of a frame is
	// inverted.
	Corrupt float64
	// Reorder is the probability that a frame is held back and delivered
	// after the next ReorderGap frames (or when the direction goes idle,
	// whichever comes first).
	Reorder float64
	// ReorderGap is how many later frames overtake a reordered one
	// (default 1).
	ReorderGap int
	// Delay is the fixed one-way latency.
	Delay time.Duration
	// Rate limits the direction to this many bytes per second (0:
	// unlimited). Frames are serialized one after another at this rate.
	Rate int64
	// QueueLimit is the largest number of frames in flight (waiting for
	// delivery); more are dropped at the tail (default 1000, like a Linux
	// txqueuelen).
	QueueLimit int
}

// Defaults.
const (
	DefaultMTU        = 1500
	DefaultQueueLimit = 1000
	maxMTU            = 65535
)

func (c *Config) setDefaults() {
	if c.MTU <= 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU > maxMTU {
		c.MTU = maxMTU
	}
	if c.MACA == (header.MAC{}) {
		c.MACA = header.MAC{0x02, 0, 0, 0, 0, 0x01}
	}
	if c.MACB == (header.MAC{}) {
		c.MACB = header.MAC{0x02, 0, 0, 0, 0, 0x02}
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	c.AToB.setDefaults()
	c.BToA.setDefaults()
}

func (im *Impairments) setDefaults() {
	if im.ReorderGap <= 0 {
		im.ReorderGap = 1
	}
	if im.QueueLimit <= 0 {
		im.QueueLimit = DefaultQueueLimit
	}
}
