// Package pipe is an in-memory Ethernet cable between two endpoints, for
// tests and benchmarks. Each direction can lose, duplicate, corrupt,
// reorder, delay and rate-limit frames, with reproducible randomness.
// Delivery is always asynchronous: WritePackets only queues, and a
// goroutine per direction hands the frames to the receiver in batches.
package pipe

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/internal/counters"
	"github.com/netprov/netprov/stack/link/internal/linkbase"
)

// Endpoint is one end of a pipe.
type Endpoint struct {
	mtu  int
	mac  header.MAC
	caps link.Capabilities
	gso  bool

	out  *direction // frames this end writes
	pair *pair

	dispatch linkbase.Dispatch
	stats    counters.Counters
}

// pair is the shared state of the two ends.
type pair struct {
	closeOnce sync.Once
	closed    atomic.Bool
	ab, ba    *direction
}

var _ link.Endpoint = (*Endpoint)(nil)

// New returns the two ends of a pipe. Close on either end closes both.
func New(cfg Config) (a, b *Endpoint) {
	cfg.setDefaults()
	caps := link.CapEthernet
	if cfg.GSO {
		caps |= link.CapGSO | link.CapTXChecksumOffload | link.CapRXChecksumOffload
	}
	a = &Endpoint{mtu: cfg.MTU, mac: cfg.MACA, caps: caps, gso: cfg.GSO}
	b = &Endpoint{mtu: cfg.MTU, mac: cfg.MACB, caps: caps, gso: cfg.GSO}
	p := &pair{}
	p.ab = newDirection(cfg.AToB, cfg.Clock, cfg.Seed, 1, b.deliver)
	p.ba = newDirection(cfg.BToA, cfg.Clock, cfg.Seed, 2, a.deliver)
	a.out, a.pair = p.ab, p
	b.out, b.pair = p.ba, p
	return a, b
}

// MTU implements link.Endpoint.
func (e *Endpoint) MTU() int { return e.mtu }

// LinkAddress implements link.Endpoint.
func (e *Endpoint) LinkAddress() header.MAC { return e.mac }

// Capabilities implements link.Endpoint.
func (e *Endpoint) Capabilities() link.Capabilities { return e.caps }

// Attach implements link.Endpoint.
func (e *Endpoint) Attach(d link.Dispatcher) { e.dispatch.Attach(d) }

// maxFrame is the largest frame the pipe carries from this end.
func (e *Endpoint) maxFrame() int { return linkbase.MaxFrame(e.gso, e.mtu) }

// WritePackets implements link.Endpoint. Frames shorter than an Ethernet
// header or longer than the MTU allows are dropped and counted.
func (e *Endpoint) WritePackets(pkts []*buffer.Packet) (int, error) {
	if e.pair.closed.Load() {
		linkbase.DropWrites(pkts, &e.stats)
		return 0, unix.ENETDOWN
	}
	maxFrame := e.maxFrame()
	sent := 0
	var bytes uint64
	for _, p := range pkts {
		n := p.Len()
		if n < header.EthernetLen || n > maxFrame {
			e.stats.TxDropped.Add(1)
			p.Release()
			continue
		}
		if !e.out.send(p) {
			e.stats.TxDropped.Add(1)
			continue
		}
		sent++
		bytes += uint64(n)
	}
	e.stats.TxPackets.Add(uint64(sent))
	e.stats.TxBytes.Add(bytes)
	return sent, nil
}

// deliver runs on the delivery goroutine of the direction towards e.
func (e *Endpoint) deliver(batch []*buffer.Packet) {
	for _, p := range batch {
		gso := p.Meta.GSO
		p.Meta = buffer.Meta{}
		if e.gso {
			// The sender's offload request becomes the receiver's
			// coalesced-input description, as virtio-net does.
			p.Meta.GSO = gso
			p.Meta.ChecksumVerified = true
		}
	}
	e.dispatch.Deliver(batch, &e.stats)
}

// Close implements link.Endpoint: it stops both directions and releases the
// frames in flight. It is idempotent.
func (e *Endpoint) Close() error {
	e.pair.closeOnce.Do(func() {
		e.pair.closed.Store(true)
		e.pair.ab.close()
		e.pair.ba.close()
	})
	return nil
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() link.Stats { return e.stats.Snapshot() }

// ImpairmentStats returns what the impairments did to the frames this end
// wrote.
func (e *Endpoint) ImpairmentStats() ImpairmentStats { return e.out.impairmentStats() }
