package tcp

// ring is a byte ring buffer: the send buffer (bytes from snd_una to the
// end of the written data) and the receive buffer (bytes from the
// application's read position to rcv_nxt, plus out-of-order data stored at
// its final offset). Its storage is allocated once and only reallocated
// when the buffer grows (autotuning), so the data path does not allocate.
type ring struct {
	buf  []byte
	head int // index of the first valid byte
	n    int // number of valid (in-order) bytes
}

func (r *ring) capacity() int { return len(r.buf) }
func (r *ring) free() int     { return len(r.buf) - r.n }

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

// resize changes the capacity to size (at least the bytes held, and
// keeping extra bytes beyond n up to keep, for out-of-order data).
func (r *ring) resize(size, keep int) {
	if size == len(r.buf) {
		return
	}
	if keep < r.n {
		keep = r.n
	}
	if size < keep {
		size = keep
	}
	nb := make([]byte, size)
	if len(r.buf) > 0 && keep > 0 {
		c := len(r.buf)
		k := min(keep, c)
		m := copy(nb, r.buf[r.head:min(c, r.head+k)])
		copy(nb[m:k], r.buf)
	}
	r.buf, r.head = nb, 0
}
