package ipv4

import (
	"net/netip"
	"sync"
	"time"
)

// xrlimBurstFactor is XRLIM_BURST_FACTOR: a destination may receive this
// many rate-limited ICMP messages back to back.
const xrlimBurstFactor = 6

// peerLimitMax bounds the per-destination state; the map is cleared when
// it fills (Linux's inet_peer cache is bounded and garbage collected too).
const peerLimitMax = 4096

// icmpLimiter is Linux's ICMP output rate limiting for the types in
// icmp_ratemask: a host-wide token bucket (icmp_msgs_per_sec,
// icmp_msgs_burst) and a per-destination one (icmp_ratelimit, burst 6).
type icmpLimiter struct {
	mask      uint32
	interval  time.Duration
	perSec    int
	burst     int
	mu        sync.Mutex
	global    float64 // tokens
	globalAt  time.Time
	peers     map[netip.Addr]*peerBucket
	globalSet bool
}

type peerBucket struct {
	tokens time.Duration
	last   time.Time
}

func (l *icmpLimiter) init(c Config) {
	l.mask = c.ICMPRatemask
	l.interval = c.ICMPRatelimit
	l.perSec = c.ICMPMsgsPerSec
	l.burst = c.ICMPMsgsBurst
	l.peers = make(map[netip.Addr]*peerBucket)
}

// allow reports whether an ICMP message of type typ may be sent to dst now.
func (l *icmpLimiter) allow(typ uint8, dst netip.Addr, now time.Time) bool {
	if typ > 31 || l.mask&(1<<typ) == 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// icmp_global_allow.
	if !l.globalSet {
		l.global, l.globalAt, l.globalSet = float64(l.burst), now, true
	}
	l.global += now.Sub(l.globalAt).Seconds() * float64(l.perSec)
	l.globalAt = now
	if l.global > float64(l.burst) {
		l.global = float64(l.burst)
	}
	if l.global < 1 {
		return false
	}
	// inet_peer_xrlim_allow.
	if l.interval > 0 {
		pb := l.peers[dst]
		if pb == nil {
			if len(l.peers) >= peerLimitMax {
				clear(l.peers)
			}
			pb = &peerBucket{tokens: xrlimBurstFactor * l.interval, last: now}
			l.peers[dst] = pb
		}
		pb.tokens += now.Sub(pb.last)
		pb.last = now
		if pb.tokens > xrlimBurstFactor*l.interval {
			pb.tokens = xrlimBurstFactor * l.interval
		}
		if pb.tokens < l.interval {
			return false
		}
		pb.tokens -= l.interval
	}
	l.global--
	return true
}
