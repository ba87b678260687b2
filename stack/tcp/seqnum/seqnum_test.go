package seqnum

import "testing"

func TestComparisonsWrapAround(t *testing.T) {
	near := Value(0xffff_fff0)
	after := near.Add(0x20) // wraps past zero
	if after != 0x10 {
		t.Fatalf("Add wrapped to %#x, want 0x10", uint32(after))
	}
	if !near.LessThan(after) || after.LessThan(near) {
		t.Fatal("ordering across the wrap is wrong")
	}
	if !near.LessThanEq(near) || near.LessThan(near) {
		t.Fatal("equality handling is wrong")
	}
	if near.Size(after) != 0x20 {
		t.Fatalf("Size = %#x, want 0x20", near.Size(after))
	}
	if Max(near, after) != after || Min(near, after) != near {
		t.Fatal("Max/Min wrong across the wrap")
	}
}

func TestInWindow(t *testing.T) {
	first := Value(0xffff_fffe)
	cases := []struct {
		v    Value
		want bool
	}{{first, true}, {0, true}, {first.Add(9), true}, {first.Add(10), false}, {first - 1, false}}
	for _, c := range cases {
		if got := c.v.InWindow(first, 10); got != c.want {
			t.Errorf("InWindow(%#x) = %v, want %v", uint32(c.v), got, c.want)
		}
	}
	if Value(5).InWindow(5, 0) {
		t.Error("empty window contains its start")
	}
}
