package ipv6

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// MinMTU is the IPv6 minimum link MTU (RFC 8200 §5): every link carries
// 1280-byte packets, so a path MTU is never lowered below it.
const MinMTU = 1280

// pmtuCacheLimit bounds the number of remembered path MTUs; the cache is
// emptied when it is full (entries are rebuilt by the next packet too big).
const pmtuCacheLimit = 4096

// pmtuCache remembers path MTUs learned from packet-too-big messages, like
// the RTF_CACHE routes Linux creates (ip -6 route show cache).
type pmtuCache struct {
	// size mirrors len(entries) so that the common case, no path MTU
	// learned at all, costs one atomic load per packet.
	size    atomic.Int32
	mu      sync.RWMutex
	entries map[netip.Addr]pmtuEntry
}

type pmtuEntry struct {
	mtu     int
	expires time.Time
}

func (c *pmtuCache) init() { c.entries = make(map[netip.Addr]pmtuEntry) }

// get returns the path MTU to dst, or 0.
func (c *pmtuCache) get(dst netip.Addr, now func() time.Time) int {
	if c.size.Load() == 0 {
		return 0
	}
	c.mu.RLock()
	e, ok := c.entries[dst]
	c.mu.RUnlock()
	if !ok || now().After(e.expires) {
		return 0
	}
	return e.mtu
}

// update lowers the path MTU to dst to mtu (at least MinMTU) as
// __ip6_rt_update_pmtu does: a packet too big never raises it. It returns
// the MTU now in effect.
func (c *pmtuCache) update(dst netip.Addr, mtu, routeMTU int, now time.Time, ttl time.Duration) int {
	mtu = max(mtu, MinMTU)
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := routeMTU
	if e, ok := c.entries[dst]; ok && !now.After(e.expires) && e.mtu < cur {
		cur = e.mtu
	}
	if mtu >= cur {
		return cur
	}
	if len(c.entries) >= pmtuCacheLimit {
		clear(c.entries)
	}
	c.entries[dst] = pmtuEntry{mtu: mtu, expires: now.Add(ttl)}
	c.size.Store(int32(len(c.entries)))
	return mtu
}

// errorRateLimiter is Linux's per-destination ICMP error token bucket
// (inet_peer_xrlim_allow): a burst of 6 errors, then one per interval.
type errorRateLimiter struct {
	mu    sync.Mutex
	peers map[netip.Addr]ratePeer
}

type ratePeer struct {
	tokens time.Duration
	last   time.Time
}

// rateLimitBurst is XRLIM_BURST_FACTOR.
const rateLimitBurst = 6

func (l *errorRateLimiter) init() { l.peers = make(map[netip.Addr]ratePeer) }

// allow reports whether an error may be sent to dst now.
func (l *errorRateLimiter) allow(dst netip.Addr, interval time.Duration, now time.Time) bool {
	if interval <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.peers[dst]
	if !ok {
		if len(l.peers) >= pmtuCacheLimit {
			clear(l.peers)
		}
		// A new peer starts with a full bucket (rate_last = now - 60 s).
		p = ratePeer{tokens: rateLimitBurst * interval, last: now}
	}
	p.tokens += now.Sub(p.last)
	p.last = now
	if p.tokens > rateLimitBurst*interval {
		p.tokens = rateLimitBurst * interval
	}
	ok = p.tokens >= interval
	if ok {
		p.tokens -= interval
	}
	l.peers[dst] = p
	return ok
}
