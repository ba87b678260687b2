package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInDeadlineOrder(t *testing.T) {
	c := NewFake()
	start := c.Now()
	var got []time.Duration
	rec := func() { got = append(got, c.Now().Sub(start)) }
	c.AfterFunc(3*time.Second, rec)
	c.AfterFunc(1*time.Second, rec)
	stopped := c.AfterFunc(2*time.Second, rec)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	c.Advance(5 * time.Second)
	want := []time.Duration{time.Second, 3 * time.Second}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("fired at %v, want %v", got, want)
	}
	if c.Now().Sub(start) != 5*time.Second {
		t.Fatalf("now = +%v, want +5s", c.Now().Sub(start))
	}
}

func TestFakeTimerRearmedFromCallbackFiresInSameAdvance(t *testing.T) {
	c := NewFake()
	n := 0
	var tm Timer
	tm = c.AfterFunc(time.Second, func() {
		n++
		if n < 3 {
			tm.Reset(time.Second)
		}
	})
	c.Advance(10 * time.Second)
	if n != 3 {
		t.Fatalf("fired %d times, want 3", n)
	}
	if len(c.Pending()) != 0 {
		t.Fatalf("pending = %v, want none", c.Pending())
	}
}
