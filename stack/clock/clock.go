// Package clock is the stack's source of time. Every timer in the stack
// (retransmission, delayed ACK, TIME_WAIT, keepalive, neighbour and
// reassembly timeouts) is made through a Clock so that tests can drive time
// with Fake instead of sleeping.
package clock

import "time"

// Clock tells the time and runs functions later.
type Clock interface {
	// Now returns the current time. Only differences between values matter.
	Now() time.Time
	// AfterFunc calls f in its own goroutine (Real) or from Advance (Fake)
	// once d has passed, unless the timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by AfterFunc.
type Timer interface {
	// Stop prevents the call; it reports whether the timer was pending.
	Stop() bool
	// Reset makes the timer fire d from now; it reports whether the timer
	// was pending.
	Reset(d time.Duration) bool
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
