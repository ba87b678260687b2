package neighbor

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
)

// reachableRecompute is how often the randomized reachable time is drawn
// again (Linux: every 300 s in neigh_periodic_work).
const reachableRecompute = 300 * time.Second

// minTimer is the shortest delay the entry timer is set to.
const minTimer = 10 * time.Millisecond

// gcThresh1 is gc_thresh1: below this many entries the periodic garbage
// collection leaves the table alone, as Linux does.
const gcThresh1 = 128

// Table is the neighbour table of one NIC for one protocol. It is safe for
// concurrent use. Sending to a resolved neighbour takes a read lock and a
// map lookup and does not allocate.
type Table struct {
	cfg    Config
	clk    clock.Clock
	prober Prober
	out    func(mac header.MAC, pkt *buffer.Packet)

	unreachable atomic.Pointer[func(pkt *buffer.Packet)]

	mu              sync.RWMutex
	entries         map[netip.Addr]*entry
	reachableTime   time.Duration
	reachableChosen int64
	gcTimer         clock.Timer
	gcPending       bool
	closed          bool
}

// entry is one neighbour. state and mac change under the table's write
// lock and are read under its read lock.
type entry struct {
	addr   netip.Addr
	state  State
	mac    header.MAC
	probes int
	// Times are clock nanoseconds (UnixNano of the table's clock).
	updated   int64
	confirmed atomic.Int64
	used      atomic.Int64

	queue      []*buffer.Packet
	queueBytes int
	// flushing is set while the packets queued during resolution are being
	// sent: new packets queue behind them so that order is kept.
	flushing bool

	timer    clock.Timer
	timerGen uint64
}

// NewTable returns an empty table. prober sends solicitations; out sends a
// packet (network header included) to a resolved link address and owns it.
func NewTable(cfg Config, clk clock.Clock, prober Prober, out func(mac header.MAC, pkt *buffer.Packet)) *Table {
	t := &Table{
		cfg:     cfg.withDefaults(),
		clk:     clk,
		prober:  prober,
		out:     out,
		entries: make(map[netip.Addr]*entry),
	}
	t.reachableTime = randomReachableTime(t.cfg.BaseReachableTime)
	t.reachableChosen = t.now()
	return t
}

// randomReachableTime is neigh_rand_reach_time: uniform in [base/2, 3base/2).
func randomReachableTime(base time.Duration) time.Duration {
	return base/2 + time.Duration(rand.Int64N(int64(base)))
}

// SetUnreachableHandler sets the function that receives each packet still
// queued when resolution fails (Linux's neigh->ops->error_report: IPv4
// turns it into an ICMP host unreachable for the sending transport). The
// handler owns the packet. Without a handler the packets are dropped.
func (t *Table) SetUnreachableHandler(f func(pkt *buffer.Packet)) {
	t.unreachable.Store(&f)
}

// ReachableTime is the current randomized reachable time.
func (t *Table) ReachableTime() time.Duration {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.reachableTime
}

func (t *Table) now() int64 { return t.clk.Now().UnixNano() }

// actions are the side effects of a state change, run after the lock is
// released so that a synchronous link cannot re-enter the table under it.
type actions struct {
	probe        bool
	probeTarget  netip.Addr
	probeUnicast bool
	probeMAC     header.MAC

	flush  *entry
	failed []*buffer.Packet
}

func (t *Table) run(a *actions) {
	if a.probe {
		if a.probeUnicast {
			mac := a.probeMAC
			t.prober.Probe(a.probeTarget, &mac)
		} else {
			t.prober.Probe(a.probeTarget, nil)
		}
	}
	if a.flush != nil {
		t.drain(a.flush)
	}
	if len(a.failed) > 0 {
		h := t.unreachable.Load()
		for _, p := range a.failed {
			if h != nil && *h != nil {
				(*h)(p)
			} else {
				p.Release()
			}
		}
	}
}

// drain sends the packets queued on e, including any queued while it
// runs, in order. It runs without the lock held while sending.
func (t *Table) drain(e *entry) {
	for {
		t.mu.Lock()
		if t.entries[e.addr] != e || !e.state.Valid() || len(e.queue) == 0 {
			// Deleted (queue already dropped), no longer valid (the state
			// machine owns the queue again) or done.
			e.flushing = false
			t.mu.Unlock()
			return
		}
		q, mac := e.queue, e.mac
		e.queue, e.queueBytes = nil, 0
		t.mu.Unlock()
		for _, p := range q {
			t.out(mac, p)
		}
	}
}

// Output sends pkt to the neighbour addr: at once when its link address is
// known, otherwise after resolution (the packet is queued and a probe
// sent). It owns pkt. The error is ENOBUFS when the table is full and
// ENETDOWN after Close.
func (t *Table) Output(addr netip.Addr, pkt *buffer.Packet) error {
	t.mu.RLock()
	if e := t.entries[addr]; e != nil && !e.flushing {
		switch e.state {
		case Reachable, Permanent:
			// neigh_connected_output: no bookkeeping at all.
			mac := e.mac
			t.mu.RUnlock()
			t.out(mac, pkt)
			return nil
		case Delay, Probe:
			mac := e.mac
			e.used.Store(t.now())
			t.mu.RUnlock()
			t.out(mac, pkt)
			return nil
		}
	}
	t.mu.RUnlock()
	return t.outputSlow(addr, pkt)
}

// outputSlow is neigh_resolve_output / __neigh_event_send.
func (t *Table) outputSlow(addr netip.Addr, pkt *buffer.Packet) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		pkt.Release()
		return unix.ENETDOWN
	}
	e := t.entries[addr]
	if e == nil {
		if e = t.createLocked(addr); e == nil {
			t.mu.Unlock()
			pkt.Release()
			t.cfg.Stats.QueueDropped.Add(1)
			return unix.ENOBUFS
		}
	}
	now := t.now()
	e.used.Store(now)
	var a actions
	if e.flushing {
		// Queue behind the packets being flushed.
		if e.state == Stale {
			e.state = Delay
			e.updated = now
			t.scheduleLocked(e, t.cfg.DelayFirstProbeTime)
		}
		t.enqueueLocked(e, pkt)
		t.mu.Unlock()
		return nil
	}
	switch e.state {
	case Reachable, Permanent, Delay, Probe:
		mac := e.mac
		t.mu.Unlock()
		t.out(mac, pkt)
		return nil
	case Stale:
		e.state = Delay
		e.updated = now
		t.scheduleLocked(e, t.cfg.DelayFirstProbeTime)
		mac := e.mac
		t.mu.Unlock()
		t.out(mac, pkt)
		return nil
	case None, Failed:
		e.state = Incomplete
		e.updated = now
		e.probes = t.cfg.UcastSolicit
		t.scheduleLocked(e, t.cfg.RetransTime)
		t.probeLocked(e, &a)
	}
	t.enqueueLocked(e, pkt)
	t.mu.Unlock()
	t.run(&a)
	return nil
}

// enqueueLocked queues pkt on e, dropping the oldest packets to stay
// within UnresQLenBytes (the buffer size stands for skb->truesize).
func (t *Table) enqueueLocked(e *entry, pkt *buffer.Packet) {
	size := len(pkt.Raw())
	for e.queueBytes+size > t.cfg.UnresQLenBytes && len(e.queue) > 0 {
		old := e.queue[0]
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.queueBytes -= len(old.Raw())
		old.Release()
		t.cfg.Stats.QueueDropped.Add(1)
	}
	e.queue = append(e.queue, pkt)
	e.queueBytes += size
}

// createLocked adds a new entry in state None, making room by forced
// garbage collection when the table is full. It returns nil if the table
// stays full.
func (t *Table) createLocked(addr netip.Addr) *entry {
	if len(t.entries) >= t.cfg.GCThresh3 {
		t.collectLocked(true)
		if len(t.entries) >= t.cfg.GCThresh3 {
			return nil
		}
	}
	e := &entry{addr: addr, updated: t.now()}
	// A new entry has never been confirmed (Linux backdates confirmed).
	e.confirmed.Store(e.updated - int64(2*t.cfg.BaseReachableTime))
	t.entries[addr] = e
	if !t.gcPending {
		t.gcPending = true
		if t.gcTimer == nil {
			t.gcTimer = t.clk.AfterFunc(t.cfg.BaseReachableTime/2, t.periodic)
		} else {
			t.gcTimer.Reset(t.cfg.BaseReachableTime / 2)
		}
	}
	return e
}

// probeLocked records a solicitation to send once the lock is released
// (neigh_probe + arp_solicit): unicast to the cached address for the first
// UcastSolicit probes of a PROBE entry, broadcast otherwise.
func (t *Table) probeLocked(e *entry, a *actions) {
	a.probe = true
	a.probeTarget = e.addr
	if e.probes < t.cfg.UcastSolicit && e.state.Valid() {
		a.probeUnicast = true
		a.probeMAC = e.mac
	}
	e.probes++
}

// maxProbes is neigh_max_probes (app_solicit and mcast_resolicit are 0).
func (t *Table) maxProbes(e *entry) int {
	if e.state == Probe {
		return t.cfg.UcastSolicit
	}
	return t.cfg.UcastSolicit + t.cfg.McastSolicit
}

// scheduleLocked (re)starts the entry's timer. A generation number makes a
// timer that already fired for an earlier state a no-op.
func (t *Table) scheduleLocked(e *entry, d time.Duration) {
	// Like neigh_timer_handler, never less than 10 ms ahead (HZ/100), so
	// that a deadline of "now" cannot spin.
	d = max(d, minTimer)
	e.timerGen++
	gen := e.timerGen
	if e.timer != nil {
		e.timer.Stop()
	}
	e.timer = t.clk.AfterFunc(d, func() { t.timerFired(e, gen) })
}

func (t *Table) stopTimerLocked(e *entry) {
	e.timerGen++
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

// timerFired is neigh_timer_handler.
func (t *Table) timerFired(e *entry, gen uint64) {
	t.mu.Lock()
	if t.closed || t.entries[e.addr] != e || e.timerGen != gen {
		t.mu.Unlock()
		return
	}
	e.timer = nil
	now := t.now()
	var a actions
	switch e.state {
	case Reachable:
		confirmedUntil := e.confirmed.Load() + int64(t.reachableTime)
		if now <= confirmedUntil {
			t.scheduleLocked(e, time.Duration(confirmedUntil-now))
		} else if now <= e.used.Load()+int64(t.cfg.DelayFirstProbeTime) {
			e.state = Delay
			e.updated = now
			t.scheduleLocked(e, t.cfg.DelayFirstProbeTime)
		} else {
			e.state = Stale
			e.updated = now
		}
	case Delay:
		confirmed := e.confirmed.Load()
		if now <= confirmed+int64(t.cfg.DelayFirstProbeTime) {
			e.state = Reachable
			e.updated = now
			t.scheduleLocked(e, time.Duration(confirmed+int64(t.reachableTime)-now))
		} else {
			e.state = Probe
			e.updated = now
			e.probes = 0
		}
	}
	if e.state == Incomplete || e.state == Probe {
		if e.probes >= t.maxProbes(e) {
			e.state = Failed
			e.updated = now
			e.flushing = false
			a.failed = e.queue
			e.queue, e.queueBytes = nil, 0
			t.cfg.Stats.ResolutionFailed.Add(1)
		} else {
			t.scheduleLocked(e, t.cfg.RetransTime)
			t.probeLocked(e, &a)
		}
	}
	t.mu.Unlock()
	t.run(&a)
}

// Update applies an advertisement of addr's link address to an existing
// entry (Linux's neigh_update) and reports whether there was one. newState
// is Reachable for a confirmation of reachability, Stale otherwise.
func (t *Table) Update(addr netip.Addr, mac header.MAC, newState State, flags UpdateFlags) bool {
	t.mu.Lock()
	e := t.entries[addr]
	if e == nil || t.closed {
		t.mu.Unlock()
		return false
	}
	var a actions
	t.updateLocked(e, mac, newState, flags, false, &a)
	t.mu.Unlock()
	t.run(&a)
	return true
}

// HandleConfirmation applies a neighbour advertisement (RFC 4861 7.2.5):
// solicited advertisements confirm reachability, override replaces a
// different cached address. Only existing entries are updated; it reports
// whether there was one.
func (t *Table) HandleConfirmation(addr netip.Addr, mac header.MAC, solicited, override bool) bool {
	state, flags := Stale, WeakOverride
	if solicited {
		state = Reachable
	}
	if override {
		flags |= Override
	}
	return t.Update(addr, mac, state, flags)
}

// HandleProbe records the sender of a solicitation addressed to this host
// (neigh_event_ns): the entry is created if needed and made STALE with the
// sender's link address, flushing any queued packets.
func (t *Table) HandleProbe(addr netip.Addr, mac header.MAC) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	e := t.entries[addr]
	if e == nil {
		if e = t.createLocked(addr); e == nil {
			t.mu.Unlock()
			return
		}
	}
	var a actions
	t.updateLocked(e, mac, Stale, Override, false, &a)
	t.mu.Unlock()
	t.run(&a)
}

// updateLocked is __neigh_update.
func (t *Table) updateLocked(e *entry, mac header.MAC, newState State, flags UpdateFlags, admin bool, a *actions) {
	old := e.state
	if old == Permanent && !admin {
		return
	}
	now := t.now()
	if newState.connected() {
		e.confirmed.Store(now)
	}
	override := flags&Override != 0 ||
		(flags&OverrideIfUnlocked != 0 && now > e.updated+int64(t.cfg.LockTime))
	if old.Valid() {
		if mac != e.mac && !override {
			if flags&WeakOverride != 0 && old.connected() {
				mac = e.mac
				newState = Stale
			} else {
				return
			}
		} else if mac == e.mac && newState == Stale && !admin {
			newState = old
		}
	}
	if newState != old || mac != e.mac {
		e.updated = now
	}
	if newState != old {
		t.stopTimerLocked(e)
		if newState == Probe {
			e.probes = 0
		}
		if newState == Reachable {
			t.scheduleLocked(e, t.reachableTime)
		} else if newState.inTimer() {
			t.scheduleLocked(e, 0)
		}
		e.state = newState
	}
	if mac != e.mac {
		e.mac = mac
		if !newState.connected() {
			e.confirmed.Store(now - int64(2*t.cfg.BaseReachableTime))
		}
	}
	if newState != old && !old.Valid() && newState.Valid() && len(e.queue) > 0 && !e.flushing {
		e.flushing = true
		a.flush = e
	}
}

// Confirm records an upper-layer confirmation that addr is reachable (TCP
// forward progress: Linux's dst_confirm_neigh), which keeps a REACHABLE
// entry from going STALE and a DELAY entry from probing.
func (t *Table) Confirm(addr netip.Addr) {
	t.mu.RLock()
	if e := t.entries[addr]; e != nil {
		e.confirmed.Store(t.now())
	}
	t.mu.RUnlock()
}

// AddStatic adds or replaces a PERMANENT entry (`ip neigh replace ... nud
// permanent`). Packets waiting for the address are sent.
func (t *Table) AddStatic(addr netip.Addr, mac header.MAC) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	e := t.entries[addr]
	if e == nil {
		e = &entry{addr: addr}
		t.entries[addr] = e
	}
	var a actions
	t.updateLocked(e, mac, Permanent, Override, true, &a)
	t.mu.Unlock()
	t.run(&a)
}

// Remove deletes the entry for addr (`ip neigh del`), dropping its queued
// packets. It fails with ENOENT if there is none.
func (t *Table) Remove(addr netip.Addr) error {
	t.mu.Lock()
	e := t.entries[addr]
	if e == nil {
		t.mu.Unlock()
		return unix.ENOENT
	}
	t.deleteLocked(e)
	t.mu.Unlock()
	return nil
}

// Flush deletes every entry that is not PERMANENT (`ip neigh flush`).
func (t *Table) Flush() {
	t.mu.Lock()
	for _, e := range t.entries {
		if e.state != Permanent {
			t.deleteLocked(e)
		}
	}
	t.mu.Unlock()
}

func (t *Table) deleteLocked(e *entry) {
	t.stopTimerLocked(e)
	for _, p := range e.queue {
		p.Release()
	}
	e.queue, e.queueBytes = nil, 0
	delete(t.entries, e.addr)
}

// Lookup returns the entry for addr.
func (t *Table) Lookup(addr netip.Addr) (Entry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e := t.entries[addr]
	if e == nil {
		return Entry{}, false
	}
	return Entry{Addr: e.addr, MAC: e.mac, State: e.state}, true
}

// Entries returns every entry, ordered by address.
func (t *Table) Entries() []Entry {
	t.mu.RLock()
	out := make([]Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, Entry{Addr: e.addr, MAC: e.mac, State: e.state})
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int { return a.Addr.Compare(b.Addr) })
	return out
}

// QueueLen returns the number of packets waiting for addr's resolution.
func (t *Table) QueueLen(addr netip.Addr) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e := t.entries[addr]; e != nil {
		return len(e.queue)
	}
	return 0
}

// periodic is neigh_periodic_work: it redraws the reachable time every
// 300 s and, once the table holds gc_thresh1 entries, removes FAILED
// entries and STALE ones unused for GCStaleTime.
func (t *Table) periodic() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gcPending = false
	if t.closed {
		return
	}
	now := t.now()
	if now-t.reachableChosen >= int64(reachableRecompute) {
		t.reachableTime = randomReachableTime(t.cfg.BaseReachableTime)
		t.reachableChosen = now
	}
	if len(t.entries) >= gcThresh1 {
		t.collectLocked(false)
	}
	for _, e := range t.entries {
		if e.state != Permanent {
			t.gcPending = true
			t.gcTimer.Reset(t.cfg.BaseReachableTime / 2)
			return
		}
	}
}

// collectLocked removes FAILED entries and STALE entries unused for
// GCStaleTime (or any STALE entry when forced because the table is full).
func (t *Table) collectLocked(forced bool) {
	now := t.now()
	for _, e := range t.entries {
		switch e.state {
		case Failed, None:
			t.deleteLocked(e)
		case Stale:
			if forced || now > e.used.Load()+int64(t.cfg.GCStaleTime) {
				t.deleteLocked(e)
			}
		}
	}
}

// Close stops every timer and drops every queued packet.
func (t *Table) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	for _, e := range t.entries {
		t.deleteLocked(e)
	}
	if t.gcTimer != nil {
		t.gcTimer.Stop()
	}
}
