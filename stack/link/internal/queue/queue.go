// Package queue is the asynchronous, batched frame delivery shared by the
// in-memory endpoints (pipe, loopback). Writers push frames under the
// stack's locks; a goroutine per queue hands them to the receiver in
// batches, so a write never calls back into the stack synchronously (that
// would deadlock on the locks the writer holds).
package queue

import (
	"sync"
	"time"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
)

// MaxBatch is the largest number of frames handed to Deliver at once.
const MaxBatch = 64

// entry is a queued frame and the earliest time it may be delivered (zero:
// at once).
type entry struct {
	pkt *buffer.Packet
	due time.Time
}

// Config describes a queue.
type Config struct {
	// Limit is the largest number of frames waiting (drop-tail beyond it).
	Limit int
	// Clock times delayed frames. It is only used when a frame has a due
	// time, so the undelayed fast path never touches timers.
	Clock clock.Clock
	// Deliver receives batches of frames with their ownership. The slice is
	// reused after Deliver returns.
	Deliver func(batch []*buffer.Packet)
	// Idle, if set, is called by the delivery goroutine each time it has
	// nothing due to deliver, before it waits (the pipe flushes frames held
	// back for reordering there). It reports whether it pushed frames.
	Idle func() bool
}

// Queue is a FIFO of frames drained by its own goroutine.
type Queue struct {
	cfg Config

	mu      sync.Mutex
	entries []entry // waiting frames are entries[head:]
	head    int
	closed  bool
	timer   clock.Timer

	wake chan struct{} // capacity 1: a pending wake-up
	done chan struct{}
	wg   sync.WaitGroup
}

// New starts a queue and its delivery goroutine.
func New(cfg Config) *Queue {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	q := &Queue{
		cfg:     cfg,
		entries: make([]entry, 0, 64),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	q.wg.Add(1)
	go q.run()
	return q
}

// Push queues pkt for delivery at due (zero: as soon as possible). It
// reports false, keeping ownership with the caller, when the queue is full
// or closed. Frames must be pushed in non-decreasing due order.
func (q *Queue) Push(pkt *buffer.Packet, due time.Time) bool {
	q.mu.Lock()
	if q.closed || len(q.entries)-q.head >= q.cfg.Limit {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.entries) == cap(q.entries) {
		// Reuse the consumed front before growing.
		n := copy(q.entries, q.entries[q.head:])
		clear(q.entries[n:])
		q.entries, q.head = q.entries[:n], 0
	}
	q.entries = append(q.entries, entry{pkt: pkt, due: due})
	q.mu.Unlock()
	q.signal()
	return true
}

// Len returns the number of waiting frames.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries) - q.head
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Close stops the goroutine, waits for it and releases the frames still
// waiting. It is idempotent.
func (q *Queue) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	if q.timer != nil {
		q.timer.Stop()
	}
	q.mu.Unlock()
	close(q.done)
	q.wg.Wait()
	q.mu.Lock()
	for _, e := range q.entries[q.head:] {
		e.pkt.Release()
	}
	clear(q.entries)
	q.entries, q.head = q.entries[:0], 0
	q.mu.Unlock()
}

func (q *Queue) run() {
	defer q.wg.Done()
	batch := make([]*buffer.Packet, 0, MaxBatch)
	for {
		batch = q.take(batch[:0])
		if len(batch) > 0 {
			q.cfg.Deliver(batch)
			clear(batch)
			continue
		}
		if q.cfg.Idle != nil && q.cfg.Idle() {
			continue
		}
		select {
		case <-q.wake:
		case <-q.done:
			return
		}
	}
}

// take moves the frames that are due into batch. When the first waiting
// frame is not yet due, it arms the timer that wakes the goroutine then.
func (q *Queue) take(batch []*buffer.Packet) []*buffer.Packet {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return batch
	}
	var now time.Time
	for q.head < len(q.entries) && len(batch) < cap(batch) {
		e := &q.entries[q.head]
		if !e.due.IsZero() {
			if now.IsZero() {
				now = q.cfg.Clock.Now()
			}
			if e.due.After(now) {
				if len(batch) == 0 {
					q.armLocked(e.due.Sub(now))
				}
				break
			}
		}
		batch = append(batch, e.pkt)
		*e = entry{}
		q.head++
	}
	if q.head == len(q.entries) {
		q.entries, q.head = q.entries[:0], 0
	}
	return batch
}

func (q *Queue) armLocked(d time.Duration) {
	if q.timer == nil {
		q.timer = q.cfg.Clock.AfterFunc(d, q.signal)
		return
	}
	q.timer.Reset(d)
}
