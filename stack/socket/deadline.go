package socket

import (
	"os"
	"sync"
	"time"
)

// deadline is a net.Conn-style deadline usable as the context of blocking
// socket calls: its Done channel closes when the deadline passes. It is
// one long-lived field per direction, so calls do not allocate; its zero
// value has no deadline, and the channel is made only when a call first
// blocks on it (most connections never do).
type deadline struct {
	mu     sync.Mutex
	ch     chan struct{} // nil until Done asks for it
	closed bool
	gen    uint64
	timer  *time.Timer
}

// passed is the Done channel of a deadline that passed before anyone
// waited on it: closed once, never written again.
var passed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// expire marks the deadline passed and wakes the waiters; d.mu is held.
func (d *deadline) expire() {
	if d.ch != nil {
		close(d.ch)
	}
	d.closed = true
}

// set moves the deadline to t (zero: none). A blocked call sees the
// change: an open channel stays the same and only its timer moves.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.closed {
		d.ch = nil // a fresh one when a call blocks again
		d.closed = false
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		d.expire()
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !d.closed {
			d.expire()
		}
	})
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// Deadline implements context.Context (the time is not exposed).
func (d *deadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (d *deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.ch != nil:
	case d.closed:
		return passed
	default:
		d.ch = make(chan struct{})
	}
	return d.ch
}

// Err implements context.Context.
func (d *deadline) Err() error {
	if d.expired() {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Value implements context.Context.
func (d *deadline) Value(any) any { return nil }
