package ipv4

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
)

// pmtuCacheMax bounds the path MTU cache; expired entries are swept when
// it fills, and if none expired the cache is cleared (the information is
// only an optimisation that ICMP will provide again).
const pmtuCacheMax = 4096

// pmtuCache holds path MTUs learned from ICMP fragmentation-needed
// messages, per destination, each expiring after mtu_expires (Linux keeps
// them as exceptions of the route, fib_nh_exception).
type pmtuCache struct {
	expires time.Duration
	// n is the number of entries: the output path skips the lookup (and the
	// clock) entirely while it is zero.
	n atomic.Int32

	mu      sync.RWMutex
	entries map[netip.Addr]pmtuEntry
}

type pmtuEntry struct {
	mtu     int
	expires int64 // clock UnixNano
}

func (c *pmtuCache) init(expires time.Duration) {
	c.expires = expires
	c.entries = make(map[netip.Addr]pmtuEntry)
}

// getFast is the output path's lookup.
func (c *pmtuCache) getFast(dst netip.Addr, clk clock.Clock) int {
	if c.n.Load() == 0 {
		return 0
	}
	return c.get(dst, clk.Now())
}

func (c *pmtuCache) get(dst netip.Addr, now time.Time) int {
	c.mu.RLock()
	e, ok := c.entries[dst]
	c.mu.RUnlock()
	if !ok || now.UnixNano() >= e.expires {
		return 0
	}
	return e.mtu
}

func (c *pmtuCache) set(dst netip.Addr, mtu int, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= pmtuCacheMax {
		for a, e := range c.entries {
			if now.UnixNano() >= e.expires {
				delete(c.entries, a)
			}
		}
		if len(c.entries) >= pmtuCacheMax {
			clear(c.entries)
		}
	}
	c.entries[dst] = pmtuEntry{mtu: mtu, expires: now.Add(c.expires).UnixNano()}
	c.n.Store(int32(len(c.entries)))
}

// updatePMTU is __ip_rt_update_pmtu for the destination of the datagram
// quoted in an ICMP fragmentation-needed message: an MTU below the current
// path MTU is recorded (raised to min_pmtu if smaller). It returns the
// MTU to report to the transport: the clamped value, which is what Linux's
// transports end up using through dst_mtu.
func (p *Protocol) updatePMTU(inner header.IPv4, mtu int) int {
	dst := inner.Dst()
	r, err := p.s.FindRoute(0, netip.Addr{}, dst)
	if err != nil || r.IsLocal() {
		return mtu
	}
	now := p.s.Clock().Now()
	old := r.MTU
	if pm := p.pmtu.get(dst, now); pm > 0 && pm < old {
		old = pm
	}
	if mtu >= old {
		return mtu
	}
	if mtu < p.cfg.MinPMTU {
		mtu = min(old, p.cfg.MinPMTU)
	}
	p.pmtu.set(dst, mtu, now)
	return mtu
}
