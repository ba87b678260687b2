package pipe

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/link/internal/queue"
)

// ImpairmentStats count what the impairments of one direction did.
type ImpairmentStats struct {
	Lost, Duplicated, Corrupted, Reordered, QueueDropped uint64
}

// direction is one way of the cable: the impairments and the delivery
// queue towards the receiving end.
type direction struct {
	im    Impairments
	clock clock.Clock
	q     *queue.Queue

	mu       sync.Mutex
	rng      *rand.Rand
	held     []heldFrame // frames held back for reordering
	nextFree time.Time   // when the rate-limited wire is free again
	stats    ImpairmentStats
}

type heldFrame struct {
	pkt       *buffer.Packet
	remaining int // frames still to overtake it
}

func newDirection(im Impairments, clk clock.Clock, seed, stream uint64, deliver func([]*buffer.Packet)) *direction {
	d := &direction{
		im:    im,
		clock: clk,
		rng:   rand.New(rand.NewPCG(seed, stream)),
		held:  make([]heldFrame, 0, 16),
	}
	cfg := queue.Config{Limit: im.QueueLimit, Clock: clk, Deliver: deliver}
	if im.Reorder > 0 {
		cfg.Idle = d.flushHeld
	}
	d.q = queue.New(cfg)
	return d
}

// send applies the impairments to pkt, taking its ownership. It reports
// whether the frame was accepted onto the wire (a frame lost on the wire
// counts as sent, a tail drop does not).
func (d *direction) send(pkt *buffer.Packet) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.q.Len() >= d.im.QueueLimit {
		d.stats.QueueDropped++
		pkt.Release()
		return false
	}
	if d.im.Loss > 0 && d.rng.Float64() < d.im.Loss {
		d.stats.Lost++
		pkt.Release()
		return true
	}
	if d.im.Corrupt > 0 && pkt.Len() > 0 && d.rng.Float64() < d.im.Corrupt {
		d.stats.Corrupted++
		b := pkt.Data()
		b[d.rng.IntN(len(b))] ^= 0xff
	}
	var dup *buffer.Packet
	if d.im.Duplicate > 0 && d.rng.Float64() < d.im.Duplicate {
		d.stats.Duplicated++
		dup = pkt.Clone()
	}
	if d.im.Reorder > 0 && d.rng.Float64() < d.im.Reorder {
		d.stats.Reordered++
		d.held = append(d.held, heldFrame{pkt: pkt, remaining: d.im.ReorderGap})
	} else {
		d.enqueueLocked(pkt)
		d.overtakeLocked()
	}
	if dup != nil {
		d.enqueueLocked(dup)
		d.overtakeLocked()
	}
	return true
}

// overtakeLocked notes that one frame overtook the held ones and releases
// those that have been overtaken often enough.
func (d *direction) overtakeLocked() {
	if len(d.held) == 0 {
		return
	}
	kept := d.held[:0]
	for _, h := range d.held {
		h.remaining--
		if h.remaining <= 0 {
			d.enqueueLocked(h.pkt)
			continue
		}
		kept = append(kept, h)
	}
	clear(d.held[len(kept):])
	d.held = kept
}

// flushHeld releases all held frames; the delivery goroutine calls it when
// it goes idle so that a held frame never waits for traffic that does not
// come.
func (d *direction) flushHeld() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.held) == 0 {
		return false
	}
	for _, h := range d.held {
		d.enqueueLocked(h.pkt)
	}
	clear(d.held)
	d.held = d.held[:0]
	return true
}

// enqueueLocked computes the delivery time (only when a rate or delay is
// configured, so the fast path never reads the clock) and queues the frame.
func (d *direction) enqueueLocked(pkt *buffer.Packet) {
	var due time.Time
	if d.im.Rate > 0 || d.im.Delay > 0 {
		now := d.clock.Now()
		due = now
		if d.im.Rate > 0 {
			if d.nextFree.After(due) {
				due = d.nextFree
			}
			due = due.Add(time.Duration(int64(pkt.Len()) * int64(time.Second) / d.im.Rate))
			d.nextFree = due
		}
		due = due.Add(d.im.Delay)
		if !due.After(now) {
			due = now
		}
	}
	if !d.q.Push(pkt, due) {
		d.stats.QueueDropped++
		pkt.Release()
	}
}

func (d *direction) impairmentStats() ImpairmentStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

func (d *direction) close() {
	d.q.Close()
	d.mu.Lock()
	for _, h := range d.held {
		h.pkt.Release()
	}
	clear(d.held)
	d.held = d.held[:0]
	d.mu.Unlock()
}
