// Package loopback is the stack's lo device: every packet written is
// received again by the same stack, asynchronously (a queue drained by a
// goroutine, because the writer holds stack locks). Frames are bare IP
// packets, and checksums are neither computed nor verified, as on Linux lo.
package loopback

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/internal/counters"
	"github.com/netprov/netprov/stack/link/internal/linkbase"
	"github.com/netprov/netprov/stack/link/internal/queue"
)

// Defaults, as Linux lo.
const (
	DefaultMTU        = 65536
	DefaultQueueLimit = 1000
)

// Config describes a loopback endpoint. The zero value is Linux's lo.
type Config struct {
	// MTU (default 65536).
	MTU int
	// QueueLimit is the largest number of packets waiting to be received
	// again; more are dropped and counted (default 1000).
	QueueLimit int
}

// Endpoint is a loopback device.
type Endpoint struct {
	mtu       int
	q         *queue.Queue
	closeOnce sync.Once
	closed    atomic.Bool
	dispatch  linkbase.Dispatch
	stats     counters.Counters

	// pushed and delivered count the frames queued and the frames handed
	// to the stack (both only grow), so WaitDelivered can tell when every
	// frame written before a point was received: Linux's lo delivers
	// synchronously with the sender's system call, and the provider
	// uses this to make a loopback send look that way.
	pushed     atomic.Uint64
	delivered  atomic.Uint64
	waiters    atomic.Int32
	deliverMu  sync.Mutex
	deliveredC chan struct{} // closed (and replaced) after a delivery while waiters > 0
}

var _ link.Endpoint = (*Endpoint)(nil)

// New returns a loopback endpoint and starts its delivery goroutine.
func New(cfg Config) *Endpoint {
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = DefaultQueueLimit
	}
	e := &Endpoint{mtu: cfg.MTU}
	e.q = queue.New(queue.Config{Limit: cfg.QueueLimit, Clock: clock.Real{}, Deliver: e.deliver})
	return e
}

// MTU implements link.Endpoint.
func (e *Endpoint) MTU() int { return e.mtu }

// LinkAddress implements link.Endpoint: loopback has no link address.
func (e *Endpoint) LinkAddress() header.MAC { return header.MAC{} }

// Capabilities implements link.Endpoint.
func (e *Endpoint) Capabilities() link.Capabilities {
	return link.CapLoopback | link.CapRXChecksumOffload | link.CapTXChecksumOffload
}

// Attach implements link.Endpoint.
func (e *Endpoint) Attach(d link.Dispatcher) { e.dispatch.Attach(d) }

// WritePackets implements link.Endpoint. Empty packets and packets larger
// than the MTU are dropped and counted.
func (e *Endpoint) WritePackets(pkts []*buffer.Packet) (int, error) {
	if e.closed.Load() {
		linkbase.DropWrites(pkts, &e.stats)
		return 0, unix.ENETDOWN
	}
	sent := 0
	var bytes uint64
	for _, p := range pkts {
		n := p.Len()
		if n == 0 || n > e.mtu || !e.q.Push(p, time.Time{}) {
			p.Release()
			e.stats.TxDropped.Add(1)
			continue
		}
		e.pushed.Add(1)
		sent++
		bytes += uint64(n)
	}
	e.stats.TxPackets.Add(uint64(sent))
	e.stats.TxBytes.Add(bytes)
	return sent, nil
}

func (e *Endpoint) deliver(batch []*buffer.Packet) {
	for _, p := range batch {
		// The receiving side sees a fresh packet whose checksum needs no
		// verification (lo never corrupts, and a partial checksum written
		// with TX offload is never completed).
		p.Meta = buffer.Meta{ChecksumVerified: true}
	}
	e.dispatch.Deliver(batch, &e.stats)
	e.delivered.Add(uint64(len(batch)))
	if e.waiters.Load() > 0 {
		e.deliverMu.Lock()
		if e.deliveredC != nil {
			close(e.deliveredC)
			e.deliveredC = nil
		}
		e.deliverMu.Unlock()
	}
}

// Pushed returns the number of frames queued so far.
func (e *Endpoint) Pushed() uint64 { return e.pushed.Load() }

// WaitDelivered waits until the first n frames queued (see Pushed) have
// been handed to the stack, at most timeout. It reports whether they
// were (false also after Close, whose dropped frames are never
// delivered).
func (e *Endpoint) WaitDelivered(n uint64, timeout time.Duration) bool {
	if e.delivered.Load() >= n {
		return true
	}
	e.waiters.Add(1)
	defer e.waiters.Add(-1)
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		e.deliverMu.Lock()
		if e.deliveredC == nil {
			e.deliveredC = make(chan struct{})
		}
		ch := e.deliveredC
		e.deliverMu.Unlock()
		if e.delivered.Load() >= n {
			return true
		}
		if e.closed.Load() {
			return false
		}
		select {
		case <-ch:
		case <-t.C:
			return e.delivered.Load() >= n
		}
	}
}

// Close implements link.Endpoint. It is idempotent.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.q.Close()
	})
	return nil
}

// Stats returns the endpoint's counters (rx and tx are equal unless
// packets were dropped).
func (e *Endpoint) Stats() link.Stats { return e.stats.Snapshot() }
