package socket

import (
	"os"
	"sync"
	"time"
)

// deadline is a net.Conn-style deadline usable as the context of blocking
// socket calls: its Done channel closes when the deadline passes. It is
// one long-lived object per direction, so calls do not allocate.
type deadline struct {
	mu     sync.Mutex
	ch     chan struct{}
	closed bool
	gen    uint64
	timer  *time.Timer
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

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
		d.ch = make(chan struct{})
		d.closed = false
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		d.closed = true
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !d.closed {
			close(d.ch)
			d.closed = true
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
