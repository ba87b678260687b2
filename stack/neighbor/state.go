package neighbor

import (
	"net/netip"

	"github.com/netprov/netprov/stack/header"
)

// State is the Neighbour Unreachability Detection state of an entry, as in
// Linux's NUD_* values and `ip neigh` output.
type State uint8

// Neighbour states.
const (
	// None is the state of an entry that was just created and never used.
	None State = iota
	// Incomplete: resolution is in progress; packets are queued.
	Incomplete
	// Reachable: the link address was confirmed recently.
	Reachable
	// Stale: the link address is known but unconfirmed; the next use
	// starts verification (DELAY).
	Stale
	// Delay: used while STALE; waiting for an upper-layer confirmation
	// before probing.
	Delay
	// Probe: unicast probes are being sent to the cached link address.
	Probe
	// Failed: resolution failed; the next use starts it again.
	Failed
	// Permanent: a static entry (`ip neigh add ... nud permanent`).
	Permanent
)

var stateNames = [...]string{"NONE", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "PERMANENT"}

// String returns the name `ip neigh` prints.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// Valid reports whether the entry has a usable link address (NUD_VALID).
func (s State) Valid() bool {
	switch s {
	case Reachable, Stale, Delay, Probe, Permanent:
		return true
	}
	return false
}

// connected is NUD_CONNECTED: the address is known good.
func (s State) connected() bool { return s == Reachable || s == Permanent }

// inTimer is NUD_IN_TIMER: the state runs the entry's timer.
func (s State) inTimer() bool {
	switch s {
	case Incomplete, Reachable, Delay, Probe:
		return true
	}
	return false
}

// Entry is a snapshot of one neighbour, for `ip neigh`.
type Entry struct {
	Addr  netip.Addr
	MAC   header.MAC
	State State
}

// Prober sends solicitations: an ARP request or an IPv6 neighbour
// solicitation for target. unicast is nil for a broadcast/multicast probe
// (resolving an INCOMPLETE entry) and the cached link address for a unicast
// probe (PROBE state). It is called without the table's lock held.
type Prober interface {
	Probe(target netip.Addr, unicast *header.MAC)
}

// UpdateFlags modify how Update treats an advertisement (Linux's
// NEIGH_UPDATE_F_*).
type UpdateFlags uint8

const (
	// Override replaces a different cached link address.
	Override UpdateFlags = 1 << iota
	// WeakOverride: without Override, a different link address on a
	// REACHABLE entry makes it STALE instead of being ignored (RFC 4861
	// 7.2.5, used by NDP).
	WeakOverride
	// OverrideIfUnlocked overrides only when the entry was last changed
	// more than Config.LockTime ago (ARP replies).
	OverrideIfUnlocked
)
