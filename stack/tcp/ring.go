package tcp

import (
	"math/bits"
	"sync"
)

// ring is a byte ring buffer: the send buffer (bytes from snd_una to the
// end of the written data) and the receive buffer (bytes from the
// application's read position to rcv_nxt, plus out-of-order data stored at
// its final offset).
//
// Its capacity (the socket buffer size the windows are computed from) and
// its storage are separate: storage is taken from a size-classed pool only
// when bytes are stored, doubles as the data needs it (up to the
// capacity), and goes back to the pool when the connection no longer needs
// it. An idle or short connection holds a few KiB, not its full buffer;
// the bulk data path reaches its final storage after a few doublings and
// then no longer allocates.
type ring struct {
	store *ringStore // storage from ringPools; nil until the first byte
	buf   []byte     // store.b, possibly shortened to the capacity
	limit int        // capacity in bytes
	head  int        // index of the first valid byte
	n     int        // number of valid (in-order) bytes
}

func (r *ring) capacity() int { return r.limit }
func (r *ring) free() int     { return r.limit - r.n }

// write appends as much of p as fits and returns the count.
func (r *ring) write(p []byte) int {
	k := min(len(p), r.free())
	r.writeAt(r.n, p[:k])
	r.n += k
	return k
}

// writeAt stores p at offset off from the head without changing the
// length (out-of-order data). off+len(p) must not exceed the capacity.
func (r *ring) writeAt(off int, p []byte) {
	if len(p) == 0 {
		return
	}
	r.reserve(off + len(p))
	c := len(r.buf)
	pos := (r.head + off) % c
	k := copy(r.buf[pos:], p)
	copy(r.buf, p[k:])
}

// read copies from offset off into p and returns the count.
func (r *ring) read(off int, p []byte) int {
	avail := r.n - off
	if avail <= 0 {
		return 0
	}
	k := min(len(p), avail)
	c := len(r.buf)
	pos := (r.head + off) % c
	m := copy(p[:k], r.buf[pos:])
	copy(p[m:k], r.buf)
	return k
}

// slices returns the bytes [off, off+length) as up to two slices.
func (r *ring) slices(off, length int) ([]byte, []byte) {
	if length == 0 {
		return nil, nil
	}
	c := len(r.buf)
	pos := (r.head + off) % c
	if pos+length <= c {
		return r.buf[pos : pos+length], nil
	}
	return r.buf[pos:], r.buf[:length-(c-pos)]
}

// discard drops k bytes from the head.
func (r *ring) discard(k int) {
	if k > r.n {
		k = r.n
	}
	if k <= 0 {
		return
	}
	r.n -= k
	// The head moves even when the ring empties: out-of-order data may be
	// stored beyond it.
	r.head = (r.head + k) % len(r.buf)
}

// extend grows the valid length by k bytes already stored with writeAt.
func (r *ring) extend(k int) { r.n += k }

// resize changes the capacity to size (at least keep and the bytes held:
// out-of-order data up to keep stays where it is). Storage is not touched:
// it grows when bytes are written.
func (r *ring) resize(size, keep int) {
	r.limit = max(size, keep, r.n)
}

// reserve makes the storage hold offsets [0, end) from the head, doubling
// it (from ringMinStore, at most to the capacity) and moving the bytes it
// holds to the new storage in order.
func (r *ring) reserve(end int) {
	c := len(r.buf)
	if end <= c {
		return
	}
	size := max(c, ringMinStore)
	for size < end {
		size *= 2
	}
	size = min(size, max(r.limit, end))
	st := getRingStore(size)
	nb := st.b[:size]
	if c > 0 {
		// Every stored byte (in order or out of order) is at an offset
		// below the old storage size: move all of it, unwrapped.
		m := copy(nb, r.buf[r.head:])
		copy(nb[m:c], r.buf[:r.head])
		putRingStore(r.store)
	}
	r.store, r.buf, r.head = st, nb, 0
}

// release gives the storage back to the pool and drops whatever it held;
// the ring keeps its capacity and takes new storage when written again.
func (r *ring) release() {
	if r.store != nil {
		putRingStore(r.store)
	}
	r.store, r.buf, r.head, r.n = nil, nil, 0, 0
}

// ringStore is one pooled storage block. Pooling the pointer (not the
// slice) keeps Get and Put free of allocations.
type ringStore struct{ b []byte }

// Storage size classes: powers of two from ringMinStore to ringMaxStore.
// Larger storage (only with buffers beyond tcp_wmem/tcp_rmem defaults'
// maxima) is allocated and left to the garbage collector.
const (
	ringMinShift = 12 // 4 KiB
	ringMaxShift = 23 // 8 MiB
	ringMinStore = 1 << ringMinShift
)

// ringPools caches storage by size class across connections, so that
// short connections recycle their buffers instead of allocating and
// zeroing new ones.
var ringPools [ringMaxShift - ringMinShift + 1]sync.Pool

// ringClass is the smallest class holding size bytes.
func ringClass(size int) int {
	shift := max(bits.Len(uint(size-1)), ringMinShift)
	return shift - ringMinShift
}

func getRingStore(size int) *ringStore {
	cl := ringClass(size)
	if cl >= len(ringPools) {
		return &ringStore{b: make([]byte, size)}
	}
	if st, ok := ringPools[cl].Get().(*ringStore); ok {
		return st
	}
	return &ringStore{b: make([]byte, 1<<(cl+ringMinShift))}
}

func putRingStore(st *ringStore) {
	if st == nil {
		return
	}
	c := cap(st.b)
	if c < ringMinStore || c&(c-1) != 0 {
		return // not a class size (an oversized block): let it go
	}
	cl := ringClass(c)
	if cl >= len(ringPools) {
		return
	}
	st.b = st.b[:c]
	ringPools[cl].Put(st)
}
