package ipv6

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
)

// Duplicate address detection (RFC 4862 §5.4), opt-in with
// Config.DADTransmits > 0, after Linux's addrconf_dad_*: after a random
// delay of up to rtr_solicit_delay the NIC sends DADTransmits solicitations
// from the unspecified address, one retrans time apart; one retrans time
// after the last the address is valid. While tentative the address accepts
// no packets and answers no solicitations; a solicitation from another
// DAD prober or an advertisement for it marks it failed (Linux's
// "dadfailed tentative"), and it stays unusable until it is removed and
// added again.
//
// The stack's route lookup does not know about tentative addresses, so a
// transport may still pick one as its source: NIC set-up code that enables
// DAD should wait for AddressReady before using the address.

// rtrSolicitDelay is net.ipv6.conf.default.rtr_solicit_delay, which also
// bounds the random delay before the first DAD probe.
const rtrSolicitDelay = time.Second

// dadState is the DAD progress of one address.
type dadState struct {
	addr       netip.Addr
	probesLeft int
	failed     bool
	timer      clock.Timer
}

// startDAD begins duplicate address detection for a, if enabled.
func (e *Endpoint) startDAD(a netip.Addr) {
	n := e.proto.cfg.DADTransmits
	if n <= 0 || !e.ethernet || a.IsLoopback() || a.IsMulticast() {
		return
	}
	e.dadMu.Lock()
	defer e.dadMu.Unlock()
	if old := e.dad[a]; old != nil && old.timer != nil {
		old.timer.Stop()
	}
	st := &dadState{addr: a, probesLeft: n}
	e.dad[a] = st
	e.publishTentativeLocked()
	delay := time.Duration(rand.Int64N(int64(rtrSolicitDelay)))
	st.timer = e.proto.s.Clock().AfterFunc(delay, func() { e.dadTimer(st) })
}

// dadTimer sends the next probe or, when all were sent without an answer,
// makes the address valid.
func (e *Endpoint) dadTimer(st *dadState) {
	e.dadMu.Lock()
	if e.dad[st.addr] != st || st.failed || e.closed {
		e.dadMu.Unlock()
		return
	}
	if st.probesLeft == 0 {
		delete(e.dad, st.addr)
		e.publishTentativeLocked()
		e.dadMu.Unlock()
		return
	}
	st.probesLeft--
	st.timer = e.proto.s.Clock().AfterFunc(e.retransTime(), func() { e.dadTimer(st) })
	e.dadMu.Unlock()
	e.sendDADProbe(st.addr)
}

// retransTime is the neighbour retrans_time, the interval of DAD probes.
func (e *Endpoint) retransTime() time.Duration {
	if d := e.proto.cfg.Neighbor.RetransTime; d > 0 {
		return d
	}
	return time.Second
}

// sendDADProbe sends a solicitation for a from the unspecified address,
// without a source link-layer option (RFC 4861 §7.2.2).
func (e *Endpoint) sendDADProbe(a netip.Addr) {
	ns := header.NDPNeighborSolicit{Target: a}
	dst := header.SolicitedNodeMulticast(a)
	pkt := e.buildNDP(netip.IPv6Unspecified(), dst, header.ICMPv6NeighborSolicit, ns.Len(), ns.Emit)
	e.stats().ICMPv6.OutMsgs.Add(1)
	e.stats().NDP.RequestsSent.Add(1)
	if err := e.nic.WriteFrame(header.IPv6MulticastMAC(dst), header.EtherTypeIPv6, pkt); err != nil {
		e.stats().ICMPv6.OutErrors.Add(1)
	}
}

// dadConflict records that another node uses or probes a, and reports
// whether a was tentative here (the message is then fully handled).
func (e *Endpoint) dadConflict(a netip.Addr, from netip.Addr) bool {
	if !e.isTentative(a) {
		return false
	}
	e.dadMu.Lock()
	st := e.dad[a]
	if st == nil {
		e.dadMu.Unlock()
		return false
	}
	first := !st.failed
	if first {
		st.failed = true
		st.timer.Stop()
	}
	e.dadMu.Unlock()
	if first {
		e.proto.Stats.DADConflicts.Add(1)
		e.proto.s.Logger().Warn("ipv6: duplicate address detected",
			"nic", e.nic.Name(), "addr", a, "from", from)
		// The stack's address table has no tentative flag, so a failed
		// address would still be chosen as a source and treated as
		// local; it is removed instead.
		_ = e.nic.RemoveAddress(a)
	}
	return true
}

func (e *Endpoint) publishTentativeLocked() {
	ts := make([]netip.Addr, 0, len(e.dad))
	for a := range e.dad {
		ts = append(ts, a)
	}
	slices.SortFunc(ts, func(a, b netip.Addr) int { return a.Compare(b) })
	e.tentative.Store(&ts)
}

// isTentative reports whether a is still being checked or failed DAD.
func (e *Endpoint) isTentative(a netip.Addr) bool {
	for _, t := range *e.tentative.Load() {
		if t == a {
			return true
		}
	}
	return false
}

// AddressReady reports whether the NIC's address a passed duplicate
// address detection (always, with DAD disabled), and whether it failed.
func (e *Endpoint) AddressReady(a netip.Addr) (ready, failed bool) {
	if !e.isTentative(a) {
		return e.nic.HasAddress(a), false
	}
	e.dadMu.Lock()
	defer e.dadMu.Unlock()
	st := e.dad[a]
	return false, st != nil && st.failed
}

// stopDAD stops every DAD timer (the NIC is closing).
func (e *Endpoint) stopDAD() {
	e.dadMu.Lock()
	defer e.dadMu.Unlock()
	e.closed = true
	for _, st := range e.dad {
		if st.timer != nil {
			st.timer.Stop()
		}
	}
}
