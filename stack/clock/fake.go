package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a manually advanced clock for tests. Timers fire synchronously,
// in deadline order, from Advance; a callback may create or reset timers,
// and those fire in the same Advance if they fall due.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers map[*fakeTimer]struct{}
}

// NewFake returns a fake clock set to an arbitrary fixed instant.
func NewFake() *Fake {
	return &Fake{now: time.Unix(1_700_000_000, 0), timers: make(map[*fakeTimer]struct{})}
}

type fakeTimer struct {
	c    *Fake
	when time.Time
	seq  uint64 // creation/reset order breaks ties between equal deadlines
	f    func()
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, f: f}
	c.scheduleLocked(t, d)
	return t
}

func (c *Fake) scheduleLocked(t *fakeTimer, d time.Duration) {
	c.seq++
	t.when, t.seq = c.now.Add(d), c.seq
	c.timers[t] = struct{}{}
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, pending := t.c.timers[t]
	delete(t.c.timers, t)
	return pending
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, pending := t.c.timers[t]
	t.c.scheduleLocked(t, d)
	return pending
}

// Advance moves time forward by d, firing every timer that falls due, each
// with Now() equal to its deadline while it runs.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		t := c.nextDueLocked(end)
		if t == nil {
			break
		}
		delete(c.timers, t)
		if t.when.After(c.now) {
			c.now = t.when
		}
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

func (c *Fake) nextDueLocked(end time.Time) *fakeTimer {
	var next *fakeTimer
	for t := range c.timers {
		if t.when.After(end) {
			continue
		}
		if next == nil || t.when.Before(next.when) || (t.when.Equal(next.when) && t.seq < next.seq) {
			next = t
		}
	}
	return next
}

// Pending returns the delays from now of all pending timers, sorted; tests
// use it to assert what the stack has scheduled.
func (c *Fake) Pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Duration
	for t := range c.timers {
		ds = append(ds, t.when.Sub(c.now))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}
