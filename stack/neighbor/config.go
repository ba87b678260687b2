// Package neighbor is the neighbour table of one NIC for one address
// family: the IPv4 ARP cache or the IPv6 neighbour cache. It follows Linux's
// generic neighbour code (net/core/neighbour.c): NUD states, timers, probe
// counts and the queue of packets waiting for resolution. The protocol that
// owns a table (stack/arp, the IPv6 NDP code) sends the actual solicitations
// through the Prober interface and feeds received advertisements back with
// Update, HandleConfirmation and HandleProbe.
package neighbor

import (
	"time"

	"github.com/netprov/netprov/stack"
)

// Config holds the net.ipv4.neigh.default.* (or net.ipv6.neigh.default.*)
// sysctls. DefaultConfig returns Linux's defaults.
type Config struct {
	// BaseReachableTime is base_reachable_time_ms: an entry confirmed
	// reachable stays REACHABLE for a random time between 0.5 and 1.5
	// times this value.
	BaseReachableTime time.Duration
	// RetransTime is retrans_time_ms: the interval between solicitations.
	RetransTime time.Duration
	// DelayFirstProbeTime is delay_first_probe_time: how long a used STALE
	// entry waits in DELAY for an upper-layer confirmation before probing.
	DelayFirstProbeTime time.Duration
	// UcastSolicit is ucast_solicit: unicast probes sent in PROBE state.
	UcastSolicit int
	// McastSolicit is mcast_solicit: broadcast/multicast probes sent while
	// resolving an INCOMPLETE entry.
	McastSolicit int
	// GCStaleTime is gc_stale_time: unused STALE entries older than this
	// are removed by the periodic garbage collection.
	GCStaleTime time.Duration
	// GCThresh3 is gc_thresh3: the most entries the table holds.
	GCThresh3 int
	// LockTime is locktime: an advertisement that changes the link address
	// of an entry updated less than LockTime ago is ignored unless it
	// overrides unconditionally (ARP: take the first of several replies).
	// Negative disables the lock.
	LockTime time.Duration
	// UnresQLenBytes is unres_qlen_bytes: the most bytes of packets queued
	// on one unresolved entry; older packets are dropped to make room.
	UnresQLenBytes int
	// Stats receives the table's counters (ResolutionFailed, QueueDropped);
	// nil means they are not counted.
	Stats *stack.NeighborStats
}

// DefaultConfig returns Linux's defaults.
func DefaultConfig() Config {
	return Config{
		BaseReachableTime:   30 * time.Second,
		RetransTime:         time.Second,
		DelayFirstProbeTime: 5 * time.Second,
		UcastSolicit:        3,
		McastSolicit:        3,
		GCStaleTime:         60 * time.Second,
		GCThresh3:           1024,
		LockTime:            time.Second,
		UnresQLenBytes:      212992,
	}
}

// withDefaults fills zero fields with Linux's defaults, so a partially
// filled Config still works.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BaseReachableTime <= 0 {
		c.BaseReachableTime = d.BaseReachableTime
	}
	if c.RetransTime <= 0 {
		c.RetransTime = d.RetransTime
	}
	if c.DelayFirstProbeTime <= 0 {
		c.DelayFirstProbeTime = d.DelayFirstProbeTime
	}
	if c.UcastSolicit <= 0 {
		c.UcastSolicit = d.UcastSolicit
	}
	if c.McastSolicit <= 0 {
		c.McastSolicit = d.McastSolicit
	}
	if c.GCStaleTime <= 0 {
		c.GCStaleTime = d.GCStaleTime
	}
	if c.GCThresh3 <= 0 {
		c.GCThresh3 = d.GCThresh3
	}
	if c.LockTime == 0 {
		c.LockTime = d.LockTime
	} else if c.LockTime < 0 {
		c.LockTime = 0
	}
	if c.UnresQLenBytes <= 0 {
		c.UnresQLenBytes = d.UnresQLenBytes
	}
	if c.Stats == nil {
		c.Stats = new(stack.NeighborStats)
	}
	return c
}
