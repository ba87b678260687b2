package ipv6

import (
	"time"

	"github.com/netprov/netprov/stack/neighbor"
)

// Config holds the IPv6 sysctls the stack implements, with Linux's
// defaults (net.ipv6.conf.default.*, net.ipv6.ip6frag_*, net.ipv6.icmp.*).
type Config struct {
	// HopLimit is net.ipv6.conf.default.hop_limit: the hop limit of unicast
	// packets whose transport did not choose one (64).
	HopLimit uint8
	// MulticastHopLimit is the IPV6_MULTICAST_HOPS default (1).
	MulticastHopLimit uint8

	// DADTransmits is net.ipv6.conf.default.dad_transmits: how many
	// duplicate address detection probes precede using an address. Linux
	// sends 1 (accept_dad=1), which keeps each new address tentative for
	// one to two seconds. This stack defaults to 0, no DAD: addresses are
	// usable as soon as they are assigned (like accept_dad=0), because a
	// sandbox stack owns its addresses and start-up should not wait. Set
	// 1 for Linux's behaviour (see dad.go). A DAD probe from another host
	// for one of our addresses is answered either way, so that host sees
	// the conflict.
	DADTransmits int

	// FragTimeout is net.ipv6.ip6frag_time: how long an incomplete datagram
	// waits for its missing fragments (60 s).
	FragTimeout time.Duration
	// FragHighThresh is net.ipv6.ip6frag_high_thresh: the memory all
	// incomplete datagrams may hold; fragments beyond it are dropped (4 MiB).
	FragHighThresh int

	// EchoIgnoreAll is net.ipv6.icmp.echo_ignore_all (false).
	EchoIgnoreAll bool
	// EchoIgnoreMulticast is net.ipv6.icmp.echo_ignore_multicast (false:
	// Linux answers pings to ff02::1).
	EchoIgnoreMulticast bool

	// PMTUExpires is net.ipv6.route.mtu_expires: how long a path MTU learned
	// from a packet-too-big message is kept (600 s).
	PMTUExpires time.Duration

	// Neighbor is net.ipv6.neigh.default.*. Its Stats are always
	// s.Stats().NDP.
	Neighbor neighbor.Config

	// ErrorRateLimit is net.ipv6.icmp.ratelimit: the minimum interval
	// between ICMPv6 errors to one destination, after a burst (1000 ms).
	// Zero disables rate limiting.
	ErrorRateLimit time.Duration
}

// DefaultConfig returns Linux's defaults.
func DefaultConfig() Config {
	return Config{
		HopLimit:          64,
		MulticastHopLimit: 1,
		FragTimeout:       60 * time.Second,
		FragHighThresh:    4 << 20,
		PMTUExpires:       600 * time.Second,
		ErrorRateLimit:    time.Second,
		Neighbor:          DefaultNeighborConfig(),
	}
}

// DefaultNeighborConfig returns Linux's IPv6 neighbour defaults: those of
// ARP, except that nd_tbl has no lock time (every override applies).
func DefaultNeighborConfig() neighbor.Config {
	c := neighbor.DefaultConfig()
	c.LockTime = -1
	return c
}

// withDefaults fills zero fields with Linux's defaults, so a partly filled
// Config works.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HopLimit == 0 {
		c.HopLimit = d.HopLimit
	}
	if c.MulticastHopLimit == 0 {
		c.MulticastHopLimit = d.MulticastHopLimit
	}
	if c.FragTimeout <= 0 {
		c.FragTimeout = d.FragTimeout
	}
	if c.FragHighThresh <= 0 {
		c.FragHighThresh = d.FragHighThresh
	}
	if c.PMTUExpires <= 0 {
		c.PMTUExpires = d.PMTUExpires
	}
	return c
}
