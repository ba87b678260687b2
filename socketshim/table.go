package socketshim

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/netprov/netprov/provider"
)

// entry is one served socket, found by its conduit's inode.
type entry struct {
	sock                     provider.Socket
	family, sotype, protocol int
	released                 atomic.Bool // ReleaseConduit was called
	// connectUndelivered: a connect completed (returned 0) after its
	// target had been interrupted; the restarted connect, which the
	// provider now answers EISCONN, gets the 0 instead (see call.connect).
	connectUndelivered atomic.Bool
	// installed: the conduit is in the target's fd table (AddFD
	// returned), so its absence from every process's fds means the
	// target closed it (see sweepNow).
	installed atomic.Bool
	// listenPort is the port of a listening stream socket (0 otherwise).
	listenPort listenPortVar
	added      time.Time

	mu sync.Mutex
	// Results a call produced after its target had gone (a signal
	// interrupted it): the next call on the socket gets them first, so
	// nothing is lost.
	accepted []acceptedConn
	dgrams   []datagram
}

type acceptedConn struct {
	sock provider.Socket
	peer []byte
}

type datagram struct {
	data     []byte
	n        int // the provider's return value (full length with MSG_TRUNC)
	from     []byte
	msgFlags int
	// ctl holds the datagram's control messages, encoded in full (not
	// for any call's buffer; see putControl); ctlTrunc: even a buffer of
	// maxControl bytes did not hold them all.
	ctl      []byte
	ctlTrunc bool
}

func (e *entry) pushAccepted(a acceptedConn) {
	e.mu.Lock()
	e.accepted = append(e.accepted, a)
	e.mu.Unlock()
}

func (e *entry) popAccepted() (acceptedConn, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.accepted) == 0 {
		return acceptedConn{}, false
	}
	a := e.accepted[0]
	e.accepted = e.accepted[1:]
	return a, true
}

func (e *entry) pushDatagram(d datagram) {
	e.mu.Lock()
	e.dgrams = append(e.dgrams, d)
	e.mu.Unlock()
}

func (e *entry) popDatagram(peek bool) (datagram, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.dgrams) == 0 {
		return datagram{}, false
	}
	d := e.dgrams[0]
	if !peek {
		e.dgrams = e.dgrams[1:]
	}
	return d, true
}

// listenPortVar is an entry's listening port. Storing one also records
// the entry among its table's listeners, so that socketTable.listeners
// (on every stream connect) looks at listeners only, not at every socket
// the sweep has not removed yet.
type listenPortVar struct {
	v   atomic.Uint32
	t   *socketTable // set by socketTable.add
	ino uint64
	e   *entry
}

func (p *listenPortVar) Load() uint32 { return p.v.Load() }

func (p *listenPortVar) Store(port uint32) {
	p.v.Store(port)
	if port != 0 && p.t != nil {
		p.t.noteListener(p.ino, p.e)
	}
}

// socketTable maps conduit inodes to served sockets.
type socketTable struct {
	mu sync.RWMutex
	m  map[uint64]*entry
	// lst holds the entries of m that have had a listening port.
	lst map[uint64]*entry
	// total counts every socket ever added; entries themselves go away
	// when the sweep finds them closed.
	total atomic.Uint64
}

// empty reports whether no socket is served: then no fd of the target can
// be one (a socket is added before its fd is installed), so a call on any
// fd continues without a look at the target's fd table (the host
// provider's passthrough sockets are never added).
func (t *socketTable) empty() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m) == 0
}

func (t *socketTable) get(ino uint64) *entry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[ino]
}

func (t *socketTable) add(ino uint64, e *entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.added = time.Now()
	e.listenPort.t, e.listenPort.ino, e.listenPort.e = t, ino, e
	t.m[ino] = e
	t.total.Add(1)
}

func (t *socketTable) noteListener(ino uint64, e *entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[ino] != e {
		return // removed meanwhile
	}
	if t.lst == nil {
		t.lst = map[uint64]*entry{}
	}
	t.lst[ino] = e
}

func (t *socketTable) remove(ino uint64) {
	t.take(ino)
}

// take removes ino's entry and reports whether it was there, so that two
// sweeps racing for a closed socket close it once.
func (t *socketTable) take(ino uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[ino]
	delete(t.m, ino)
	delete(t.lst, ino)
	return ok
}

// served is the number of sockets ever served, for tests.
func (t *socketTable) served() uint64 { return t.total.Load() }

// installedEntries returns the entries whose conduit is in the target.
func (t *socketTable) installedEntries() map[uint64]*entry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out map[uint64]*entry
	for ino, e := range t.m {
		if e.installed.Load() {
			if out == nil {
				out = map[uint64]*entry{}
			}
			out[ino] = e
		}
	}
	return out
}

// listeners returns the installed listeners the provider still serves
// (not released) on port.
func (t *socketTable) listeners(port uint16) map[uint64]*entry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out map[uint64]*entry
	for ino, e := range t.lst {
		if e.listenPort.Load() == uint32(port) && e.installed.Load() && !e.released.Load() {
			if out == nil {
				out = map[uint64]*entry{}
			}
			out[ino] = e
		}
	}
	return out
}

// olderThan returns the entries added before t.
func (t *socketTable) olderThan(before time.Time) map[uint64]*entry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out map[uint64]*entry
	for ino, e := range t.m {
		if e.added.Before(before) {
			if out == nil {
				out = map[uint64]*entry{}
			}
			out[ino] = e
		}
	}
	return out
}
