package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// The ring against a model (a plain byte slice of the logical stream from
// the head): random in-order writes, out-of-order writes beyond the valid
// bytes (later made valid with extend, as processData does when a hole is
// filled), reads, discards and capacity growth. Storage starts small and
// doubles while bytes are wrapped around the end and held out of order, so
// every move must keep each byte at its offset.
func TestRingMatchesModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		var r ring
		r.resize(1000+rng.IntN(3000), 0)
		limit := r.capacity()
		model := make([]byte, 0, 1<<20) // bytes at offsets [0, len) from the head
		stored := 0                     // highest offset holding a byte (in order or not)
		next := byte(0)
		fill := func(p []byte) {
			for i := range p {
				p[i] = next
				next = next*7 + 3
			}
		}
		for op := 0; op < 3000; op++ {
			switch rng.IntN(6) {
			case 0: // in-order write
				p := make([]byte, rng.IntN(2*ringMinStore))
				fill(p)
				k := r.write(p)
				if want := min(len(p), limit-len(model)); k != want {
					t.Fatalf("seed %d op %d: write %d of %d, want %d", seed, op, k, len(p), want)
				}
				model = append(model[:len(model):len(model)], p[:k]...)
				stored = max(stored, len(model))
			case 1: // out-of-order data beyond the valid bytes, then the hole filled
				gap := rng.IntN(3000)
				p := make([]byte, 1+rng.IntN(3000))
				fill(p)
				off := len(model) + gap
				if off+len(p) > limit {
					continue
				}
				r.writeAt(off, p)
				hole := make([]byte, gap)
				fill(hole)
				r.writeAt(len(model), hole)
				r.extend(gap + len(p))
				model = append(append(model, hole...), p...)
				stored = max(stored, len(model))
			case 2: // read everything valid and compare
				got := make([]byte, len(model)+10)
				k := r.read(0, got)
				if k != len(model) || !bytes.Equal(got[:k], model) {
					t.Fatalf("seed %d op %d: read %d bytes, want %d; contents differ=%v", seed, op, k, len(model), !bytes.Equal(got[:k], model))
				}
			case 3: // discard some
				k := rng.IntN(len(model) + 1)
				r.discard(k)
				model = model[k:]
				stored = max(stored-k, 0)
			case 4: // grow the capacity (autotuning), keeping what is stored
				r.resize(limit+rng.IntN(8000), stored)
				limit = r.capacity()
			case 5: // slices view equals the model
				if len(model) == 0 {
					continue
				}
				off := rng.IntN(len(model))
				n := rng.IntN(len(model) - off + 1)
				a, b := r.slices(off, n)
				if !bytes.Equal(append(append([]byte(nil), a...), b...), model[off:off+n]) {
					t.Fatalf("seed %d op %d: slices(%d, %d) differ from the model", seed, op, off, n)
				}
			}
			if len(r.buf) > max(limit, ringMinStore) {
				t.Fatalf("seed %d op %d: storage %d beyond capacity %d", seed, op, len(r.buf), limit)
			}
		}
		r.release()
	}
}

// Storage is taken when the first byte arrives, not when the capacity is
// set, and is recycled through the pool when released.
func TestRingLazyStorage(t *testing.T) {
	var r ring
	r.resize(6<<20, 0)
	if r.buf != nil {
		t.Fatalf("resize allocated %d bytes of storage", len(r.buf))
	}
	r.write([]byte("hello"))
	if len(r.buf) != ringMinStore {
		t.Fatalf("storage after a 5-byte write = %d, want %d", len(r.buf), ringMinStore)
	}
	r.writeAt(5+3*ringMinStore, []byte("x"))
	if len(r.buf) != 4*ringMinStore {
		t.Fatalf("storage after an out-of-order byte at %d = %d, want %d", 5+3*ringMinStore, len(r.buf), 4*ringMinStore)
	}
	got := make([]byte, 5)
	if r.read(0, got); string(got) != "hello" {
		t.Fatalf("read %q after growth", got)
	}
	r.release()
	if r.buf != nil || r.n != 0 || r.capacity() != 6<<20 {
		t.Fatalf("after release: storage %d, n %d, capacity %d", len(r.buf), r.n, r.capacity())
	}
}

// Steady state: once the storage has grown, writing and discarding through
// it does not allocate.
func TestRingNoAllocsWhenGrown(t *testing.T) {
	var r ring
	r.resize(256<<10, 0)
	p := make([]byte, 64<<10)
	allocs := testing.AllocsPerRun(100, func() {
		for r.free() >= len(p) {
			r.write(p)
		}
		r.discard(r.n)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per run with grown storage", allocs)
	}
}
