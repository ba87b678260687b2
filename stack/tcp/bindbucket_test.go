package tcp

import (
	"net/netip"
	"testing"
)

// TestBindBucketOwnersAreASet checks the O(1) owner bookkeeping of a bind
// bucket (a listening port's bucket holds every accepted and TIME_WAIT
// child): removing owners in any order keeps every other owner findable,
// a removed owner is gone, and an emptied bucket leaves the table and is
// recycled empty for the next port.
func TestBindBucketOwnersAreASet(t *testing.T) {
	tab := newPortTable()
	const port = 8080
	owners := make([]*bindOwner, 7)
	for i := range owners {
		owners[i] = &bindOwner{addr: netip.AddrFrom4([4]byte{10, 213, 0, byte(i + 1)})}
		tab.addOwnerLocked(owners[i], port, false)
	}
	removed := map[int]bool{}
	for _, i := range []int{3, 0, 6, 2, 5, 1, 4} {
		tab.unbindLocked(owners[i], port)
		removed[i] = true
		// Removing twice is a no-op, as for an owner evicted earlier.
		tab.unbindLocked(owners[i], port)
		for j, o := range owners {
			if got := tab.hasOwnerLocked(o, port); got == removed[j] {
				t.Fatalf("after removing %v: hasOwner(owner %d) = %v", removed, j, got)
			}
		}
	}
	if tab.binds[port] != nil {
		t.Fatal("empty bucket still in the bind table")
	}
	if len(tab.freeBuckets) != 1 {
		t.Fatalf("free buckets = %d, want the emptied one", len(tab.freeBuckets))
	}
	o := &bindOwner{}
	tab.addOwnerLocked(o, port+1, true)
	b := tab.binds[port+1]
	if b == nil || !b.fromConnect || len(b.owners) != 1 || b.owners[0] != o || len(tab.freeBuckets) != 0 {
		t.Fatalf("recycled bucket = %+v, want just the new owner, fromConnect", b)
	}
	if tab.hasOwnerLocked(owners[0], port+1) {
		t.Fatal("a recycled bucket remembers an old owner")
	}
}
