package tcp

import (
	"math/rand/v2"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// tupleKey identifies a connection: the addresses as they appear on the
// wire (IPv4 peers of dual-stack sockets unmapped) and the ports.
type tupleKey struct {
	laddr, raddr netip.Addr
	lport, rport uint16
}

// bindOwner is a socket's entry in a bind bucket. Its fields are read and
// written only under portTable.mu, so conflict checks never touch another
// endpoint's lock.
type bindOwner struct {
	ep *endpoint
	// addr is the bound address, unmapped; wild4 and wild6 say which
	// families a wildcard bind covers (a dual-stack "::" covers both).
	addr         netip.Addr
	wild4, wild6 bool
	reuse        bool
	reusePort    bool
	listening    bool
	timeWait     bool
	// slot is the owner's index in its bucket's owners while it is in
	// one: a listening port's bucket holds every accepted and TIME_WAIT
	// child, so removal and membership must not scan it (Linux's owners
	// list is an hlist, unlinked in O(1)).
	slot int
}

func (o *bindOwner) spec4() bool { return !o.wild4 && o.addr.Is4() }
func (o *bindOwner) spec6() bool { return !o.wild6 && o.addr.Is6() }

// overlaps is inet_rcv_saddr_equal with wildcards matching.
func (o *bindOwner) overlaps(x *bindOwner) bool {
	if (o.wild4 && (x.wild4 || x.spec4())) || (x.wild4 && o.spec4()) || (o.spec4() && x.spec4() && o.addr == x.addr) {
		return true
	}
	return (o.wild6 && (x.wild6 || x.spec6())) || (x.wild6 && o.spec6()) || (o.spec6() && x.spec6() && o.addr == x.addr)
}

// conflicts is inet_bind_conflict for an explicit bind (relax, reuseport
// allowed): SO_REUSEADDR on both sides shares a port unless the old socket
// listens; SO_REUSEPORT on both sides shares it always (one user here).
func (o *bindOwner) conflicts(old *bindOwner) bool {
	if o.reuse && old.reuse && !old.listening {
		return false
	}
	if o.reusePort && old.reusePort {
		return false
	}
	return o.overlaps(old)
}

// bindBucket is the inet_bind_bucket of one local port.
type bindBucket struct {
	owners []*bindOwner
	// first is owners' initial storage: most ports have one owner.
	first [1]*bindOwner
	// fromConnect marks a bucket created by the ephemeral search of
	// connect (fastreuse = -1): bind() users never share it and connect
	// shares it only with unique 4-tuples (spec 26).
	fromConnect bool
}

// portTable holds the bind hash, the established hash (connected,
// connecting and TIME_WAIT sockets) and the listening hash (spec 12).
type portTable struct {
	mu          sync.RWMutex
	established map[tupleKey]*endpoint
	listeners   map[uint16][]*endpoint
	binds       map[uint16]*bindBucket
	// freeBuckets recycles emptied buckets (a connect takes and gives back
	// one per connection); at most maxFreeBuckets are kept.
	freeBuckets []*bindBucket
	// perturb is table_perturb: per-destination hints that make
	// consecutive connects walk through the range.
	perturb [256]uint32
}

func newPortTable() *portTable {
	return &portTable{
		established: make(map[tupleKey]*endpoint),
		listeners:   make(map[uint16][]*endpoint),
		binds:       make(map[uint16]*bindBucket),
	}
}

// bind adds o to the bucket of port, or picks an ephemeral port when port
// is 0 (inet_csk_get_port). It returns the port.
func (p *Protocol) bind(o *bindOwner, port uint16) (uint16, error) {
	t := p.ports
	t.mu.Lock()
	defer t.mu.Unlock()
	if port != 0 {
		if !t.canBindLocked(o, port) {
			return 0, unix.EADDRINUSE
		}
		t.addOwnerLocked(o, port, false)
		return port, nil
	}
	lo, hi := p.portRange()
	remaining := uint32(hi) - uint32(lo) + 1
	// inet_csk_find_open_port: bind prefers the parity opposite to
	// connect's (odd offsets first), from a random start.
	offset := rand.Uint32N(remaining) | 1
	if remaining == 1 {
		offset = 0
	}
	for pass := 0; pass < 2; pass++ {
		for i := uint32(0); i < remaining; i += 2 {
			cand := uint16(uint32(lo) + (offset+i)%remaining)
			if p.stack.Config().IsReservedPort(cand) {
				continue
			}
			b := t.binds[cand]
			if b == nil || (!b.fromConnect && t.canBindLocked(o, cand)) {
				t.addOwnerLocked(o, cand, false)
				return cand, nil
			}
		}
		offset++
	}
	return 0, unix.EADDRINUSE
}

func (t *portTable) canBindLocked(o *bindOwner, port uint16) bool {
	b := t.binds[port]
	if b == nil {
		return true
	}
	for _, old := range b.owners {
		if old != o && o.conflicts(old) {
			return false
		}
	}
	return true
}

func (t *portTable) addOwnerLocked(o *bindOwner, port uint16, fromConnect bool) {
	b := t.binds[port]
	if b == nil {
		b = t.newBucketLocked(fromConnect)
		t.binds[port] = b
	}
	o.slot = len(b.owners)
	b.owners = append(b.owners, o)
}

// ownerIndexLocked returns o's index in b.owners, or -1.
func ownerIndexLocked(b *bindBucket, o *bindOwner) int {
	if o.slot >= 0 && o.slot < len(b.owners) && b.owners[o.slot] == o {
		return o.slot
	}
	return -1
}

// unbindLocked removes o from port's bucket.
func (t *portTable) unbindLocked(o *bindOwner, port uint16) {
	b := t.binds[port]
	if b == nil {
		return
	}
	if i := ownerIndexLocked(b, o); i >= 0 {
		// Owners are a set (every reader only asks whether any owner
		// conflicts), so the last one takes the removed one's slot.
		last := len(b.owners) - 1
		b.owners[i] = b.owners[last]
		b.owners[i].slot = i
		b.owners[last] = nil
		b.owners = b.owners[:last]
	}
	if len(b.owners) == 0 {
		delete(t.binds, port)
		t.freeBucketLocked(b)
	}
}

// maxFreeBuckets bounds the bucket free list: enough for bursts of
// connections, small enough not to matter when idle.
const maxFreeBuckets = 64

// newBucketLocked returns an empty bucket, recycled when one is free.
func (t *portTable) newBucketLocked(fromConnect bool) *bindBucket {
	var b *bindBucket
	if n := len(t.freeBuckets); n > 0 {
		b = t.freeBuckets[n-1]
		t.freeBuckets[n-1] = nil
		t.freeBuckets = t.freeBuckets[:n-1]
	} else {
		b = new(bindBucket)
	}
	b.fromConnect = fromConnect
	b.owners = b.first[:0]
	return b
}

// freeBucketLocked keeps an emptied bucket, which is in no map any more
// (only the table, under mu, ever held it), for the next newBucketLocked.
func (t *portTable) freeBucketLocked(b *bindBucket) {
	b.first[0] = nil
	b.owners = nil
	if len(t.freeBuckets) < maxFreeBuckets {
		t.freeBuckets = append(t.freeBuckets, b)
	}
}

func (t *portTable) hasOwnerLocked(o *bindOwner, port uint16) bool {
	b := t.binds[port]
	return b != nil && ownerIndexLocked(b, o) >= 0
}

// startListen re-checks the bucket with the socket as a listener (listen
// after two SO_REUSEADDR binds: the second listen fails) and hashes it.
func (p *Protocol) startListen(e *endpoint) error {
	t := p.ports
	t.mu.Lock()
	defer t.mu.Unlock()
	o := e.owner
	b := t.binds[e.lport]
	if b != nil {
		for _, old := range b.owners {
			if old == o || !old.listening {
				continue
			}
			if o.reusePort && old.reusePort {
				continue
			}
			if o.overlaps(old) {
				return unix.EADDRINUSE
			}
		}
	}
	o.listening = true
	t.listeners[e.lport] = append(t.listeners[e.lport], e)
	return nil
}

func (t *portTable) unlistenLocked(e *endpoint) {
	l := t.listeners[e.lport]
	for i, x := range l {
		if x == e {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(t.listeners, e.lport)
	} else {
		t.listeners[e.lport] = l
	}
	if e.owner != nil {
		e.owner.listening = false
	}
}

// lookupEstablished finds the connection for a received segment.
func (t *portTable) lookupEstablished(k tupleKey) *endpoint {
	t.mu.RLock()
	e := t.established[k]
	t.mu.RUnlock()
	return e
}

// lookupListener finds the listener for a segment to dst:dport from
// src:sport: exact address before wildcard, AF_INET before dual-stack,
// and an SO_REUSEPORT group member chosen by the flow hash.
func (p *Protocol) lookupListener(dst netip.Addr, dport uint16, src netip.Addr, sport uint16) *endpoint {
	t := p.ports
	t.mu.RLock()
	defer t.mu.RUnlock()
	var best *endpoint
	bestScore, n := -1, 0
	for _, e := range t.listeners[dport] {
		s := e.owner.listenScore(dst)
		if s < 0 {
			continue
		}
		switch {
		case s > bestScore:
			best, bestScore, n = e, s, 1
		case s == bestScore && e.owner.reusePort && best.owner.reusePort:
			n++
			// Reservoir choice keyed by the flow: one flow always lands on
			// the same member while the group is unchanged.
			var buf [5]uint64
			h := siphash(p.secrets.port, tupleWords(&buf, src, dst, sport, dport, uint32(n)))
			if h%uint64(n) == 0 {
				best = e
			}
		}
	}
	return best
}

// listenScore says how well a listener bound like o matches a segment to
// dst: -1 no match, higher is better (compute_score).
func (o *bindOwner) listenScore(dst netip.Addr) int {
	if dst.Is4() {
		switch {
		case o.spec4() && o.addr == dst:
			return 4
		case o.wild4 && o.addr.Is4():
			return 3 // AF_INET wildcard
		case o.wild4:
			return 2 // dual-stack ::
		}
		return -1
	}
	switch {
	case o.spec6() && o.addr == dst:
		return 4
	case o.wild6:
		return 2
	}
	return -1
}

// hashConnect picks a local port for a connecting socket and inserts it
// into the established hash (__inet_hash_connect with
// __inet_check_established; spec 25-29). e.lport is 0 when unbound.
func (p *Protocol) hashConnect(e *endpoint, k tupleKey) (uint16, error) {
	t := p.ports
	t.mu.Lock()
	defer t.mu.Unlock()
	if k.lport != 0 {
		// Explicitly bound: check the 4-tuple unless we are the only owner.
		if !t.uniqueLocked(p, k) {
			return 0, unix.EADDRNOTAVAIL
		}
		t.established[k] = e
		e.hashed = true
		e.key = k
		return k.lport, nil
	}
	lo, hi := p.portRange()
	remaining := uint32(hi) - uint32(lo) + 1
	portOffset := p.portOffset(k.laddr, k.raddr, k.rport)
	idx := portOffset & uint32(len(t.perturb)-1)
	offset := (portOffset + t.perturb[idx]) % remaining
	step := uint32(2)
	if remaining > 1 {
		offset &^= 1 // connect prefers the parity of low
	} else {
		step = 1
	}
	for {
		port := uint32(lo) + offset
		for i := uint32(0); i < remaining; i, port = i+step, port+step {
			if port > uint32(hi) {
				port -= remaining
			}
			cand := uint16(port)
			if p.stack.Config().IsReservedPort(cand) {
				continue
			}
			b := t.binds[cand]
			if b != nil {
				if !b.fromConnect {
					continue
				}
				k.lport = cand
				if !t.uniqueLocked(p, k) {
					continue
				}
			}
			k.lport = cand
			t.addOwnerLocked(e.owner, cand, true)
			t.established[k] = e
			e.hashed = true
			e.key = k
			t.perturb[idx] += i + step
			return cand, nil
		}
		offset++
		if offset&1 == 0 || remaining <= 1 {
			return 0, unix.EADDRNOTAVAIL
		}
	}
}

// uniqueLocked is __inet_check_established: a TIME_WAIT socket on the same
// 4-tuple is taken over when tcp_tw_reuse allows it (spec 28).
func (t *portTable) uniqueLocked(p *Protocol, k tupleKey) bool {
	old := t.established[k]
	if old == nil {
		return true
	}
	if old.twReusable(p) {
		t.evictLocked(old)
		p.stack.Stats().TCPExt.TWRecycled.Add(1)
		return true
	}
	return false
}

// insertLocked hashes an accepted child.
func (t *portTable) insertLocked(e *endpoint, k tupleKey) bool {
	if old := t.established[k]; old != nil {
		return false
	}
	t.established[k] = e
	e.hashed = true
	e.key = k
	return true
}

// evictLocked takes a TIME_WAIT socket out of the tables for a connect
// that reuses its 4-tuple. Only table-guarded state is touched: the
// socket's own timer later finds itself unhashed and just closes.
func (t *portTable) evictLocked(old *endpoint) {
	if t.established[old.key] == old {
		delete(t.established, old.key)
	}
	if old.owner != nil {
		t.unbindLocked(old.owner, old.key.lport)
	}
}

func (p *Protocol) portRange() (uint16, uint16) {
	r := p.stack.Config().LocalPortRange
	lo, hi := r[0], r[1]
	if lo == 0 || hi < lo {
		lo, hi = 32768, 60999
	}
	return lo, hi
}
