// Package counters holds the atomic per-endpoint counters behind
// link.Stats.
package counters

import (
	"sync/atomic"

	"github.com/netprov/netprov/stack/link"
)

// Counters are updated concurrently by the receive goroutine and writers.
type Counters struct {
	RxPackets, RxBytes, RxDropped atomic.Uint64
	TxPackets, TxBytes, TxDropped atomic.Uint64
}

// Snapshot returns the current values.
func (c *Counters) Snapshot() link.Stats {
	return link.Stats{
		RxPackets: c.RxPackets.Load(), RxBytes: c.RxBytes.Load(), RxDropped: c.RxDropped.Load(),
		TxPackets: c.TxPackets.Load(), TxBytes: c.TxBytes.Load(), TxDropped: c.TxDropped.Load(),
	}
}
