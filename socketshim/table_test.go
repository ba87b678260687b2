package socketshim

import "testing"

// TestTableListeners: listeners(port) finds the installed, unreleased
// entries that stored that listening port, and no others; an entry taken
// from the table (closed by a sweep) is no longer one; a listening port
// stored on an entry that was never added registers nothing.
func TestTableListeners(t *testing.T) {
	tb := socketTable{m: map[uint64]*entry{}}
	a, b, c, d := &entry{}, &entry{}, &entry{}, &entry{}
	for ino, e := range map[uint64]*entry{1: a, 2: b, 3: c} {
		tb.add(ino, e)
		e.installed.Store(true)
	}
	a.listenPort.Store(80)
	b.listenPort.Store(80)
	c.listenPort.Store(81)
	b.released.Store(true)
	d.listenPort.Store(80) // not in the table
	got := tb.listeners(80)
	if len(got) != 1 || got[1] != a {
		t.Errorf("listeners(80) = %v, want only inode 1", got)
	}
	if got := tb.listeners(81); len(got) != 1 || got[3] != c {
		t.Errorf("listeners(81) = %v, want only inode 3", got)
	}
	if got := tb.listeners(82); len(got) != 0 {
		t.Errorf("listeners(82) = %v, want none", got)
	}
	if !tb.take(1) || tb.take(1) {
		t.Errorf("take(1) twice: want true then false")
	}
	if got := tb.listeners(80); len(got) != 0 {
		t.Errorf("listeners(80) after take = %v, want none", got)
	}
	if tb.empty() {
		t.Errorf("empty() with two entries")
	}
	tb.take(2)
	tb.take(3)
	if !tb.empty() || len(tb.lst) != 0 {
		t.Errorf("after taking all: empty()=%t, %d listeners left", tb.empty(), len(tb.lst))
	}
}
