package socket

import (
	"errors"
	"os"
	"testing"
	"time"
)

// The deadline's channel is made only when a call waits on it, and every
// way of reaching Done agrees with Err: a deadline already passed gives a
// closed channel, a waiter's channel is closed when the deadline is moved
// into the past, and moving it back gives an open channel again.
func TestDeadlineLazyChannel(t *testing.T) {
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	var d deadline
	if d.ch != nil || d.Err() != nil {
		t.Fatalf("zero deadline: channel %v, err %v; want none", d.ch, d.Err())
	}
	d.set(time.Unix(1, 0))
	if d.ch != nil {
		t.Error("a deadline nobody waits on made a channel")
	}
	if !closed(d.Done()) || !errors.Is(d.Err(), os.ErrDeadlineExceeded) {
		t.Errorf("passed deadline: Done closed %v, err %v", closed(d.Done()), d.Err())
	}
	d.set(time.Time{})
	w := d.Done()
	if closed(w) || d.Err() != nil {
		t.Fatalf("cleared deadline: Done closed %v, err %v", closed(w), d.Err())
	}
	d.set(time.Unix(1, 0))
	if !closed(w) {
		t.Error("a waiter's channel stayed open when the deadline passed")
	}
	d.set(time.Now().Add(time.Hour))
	if closed(d.Done()) || d.Err() != nil {
		t.Errorf("future deadline: Done closed %v, err %v", closed(d.Done()), d.Err())
	}
	d.set(time.Time{}) // stops the timer
}
