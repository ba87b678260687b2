package buffer

import (
	"bytes"
	"runtime"
	"testing"
)

func TestPrependAppendTrim(t *testing.T) {
	p := New(20, 10)
	defer p.Release()
	copy(p.Append(3), "abc")
	copy(p.Prepend(2), "xy")
	if got := string(p.Data()); got != "xyabc" {
		t.Fatalf("data = %q, want xyabc", got)
	}
	if p.Headroom() != 18 {
		t.Fatalf("headroom = %d, want 18", p.Headroom())
	}
	p.TrimFront(2)
	p.Truncate(2)
	if got := string(p.Data()); got != "ab" {
		t.Fatalf("after trim: %q, want ab", got)
	}
	p.TrimFront(99)
	if p.Len() != 0 {
		t.Fatalf("len after over-trim = %d", p.Len())
	}
}

func TestPrependBeyondHeadroomPanics(t *testing.T) {
	p := New(1, 0)
	defer p.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("prepend beyond headroom did not panic")
		}
	}()
	p.Prepend(2)
}

func TestLargeAndOversizedPackets(t *testing.T) {
	for _, size := range []int{100, 60000, 200000} {
		p := New(Headroom, size)
		b := p.Append(size)
		b[len(b)-1] = 7
		c := p.Clone()
		if !bytes.Equal(c.Data(), p.Data()) || c.Headroom() != p.Headroom() {
			t.Fatalf("size %d: clone differs", size)
		}
		p.Release()
		c.Release()
	}
}

func TestPooledPacketsDoNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		p := New(Headroom, 1500)
		p.Append(1500)
		p.Release()
	})
	if allocs > 0 {
		t.Fatalf("allocations per pooled packet = %v, want 0", allocs)
	}
}

func TestPacketsReleasedOnAnotherGoroutineSurviveGC(t *testing.T) {
	// Warm the free list, then move packets between goroutines across
	// collections, as TCP (allocating) and a link (releasing) do.
	ch := make(chan *Packet, 64)
	done := make(chan struct{})
	go func() {
		for p := range ch {
			p.Release()
		}
		close(done)
	}()
	for i := 0; i < 256; i++ {
		ch <- New(Headroom, 1500)
	}
	allocs := testing.AllocsPerRun(50, func() {
		for i := 0; i < 32; i++ {
			ch <- New(Headroom, 1500)
		}
		runtime.GC()
	})
	close(ch)
	<-done
	if allocs > 1 {
		t.Fatalf("allocations per round of 32 packets across a GC = %v, want ~0", allocs)
	}
}

func TestDoubleReleasePanics(t *testing.T) {
	p := New(Headroom, 10)
	p.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("second Release did not panic")
		}
	}()
	p.Release()
}
