package dgram

import "github.com/netprov/netprov/stack/socket/sockopt"

// Config holds the sysctls datagram sockets read. Defaults are Linux's.
type Config struct {
	// RmemDefault and RmemMax are net.core.rmem_default and rmem_max: the
	// initial SO_RCVBUF and the largest value setsockopt accepts.
	RmemDefault, RmemMax int
	// WmemDefault and WmemMax are net.core.wmem_default and wmem_max.
	WmemDefault, WmemMax int
	// DefaultTTL is net.ipv4.ip_default_ttl (and the IPv6 hop limit
	// default, net.ipv6.conf.all.hop_limit).
	DefaultTTL int
}

// DefaultConfig returns Linux's defaults.
func DefaultConfig() Config {
	return Config{
		RmemDefault: sockopt.DefaultMem, RmemMax: sockopt.DefaultMem,
		WmemDefault: sockopt.DefaultMem, WmemMax: sockopt.DefaultMem,
		DefaultTTL: 64,
	}
}

// SetDefaults replaces every zero or negative field with its default.
func (c *Config) SetDefaults() {
	d := DefaultConfig()
	if c.RmemDefault <= 0 {
		c.RmemDefault = d.RmemDefault
	}
	if c.RmemMax <= 0 {
		c.RmemMax = d.RmemMax
	}
	if c.WmemDefault <= 0 {
		c.WmemDefault = d.WmemDefault
	}
	if c.WmemMax <= 0 {
		c.WmemMax = d.WmemMax
	}
	if c.DefaultTTL <= 0 {
		c.DefaultTTL = d.DefaultTTL
	}
}
