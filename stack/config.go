package stack

// Config holds the settings Linux keeps per network namespace that more than
// one protocol reads. Protocol-specific sysctls live in each protocol's own
// Config (tcp.Config, ipv4.Config, ...). Defaults are Linux's.
type Config struct {
	// LocalPortRange is net.ipv4.ip_local_port_range, used by TCP and UDP
	// for ephemeral ports (both address families).
	LocalPortRange [2]uint16
	// ReservedPorts is net.ipv4.ip_local_reserved_ports.
	ReservedPorts map[uint16]bool
	// IPForward is net.ipv4.ip_forward / net.ipv6.conf.all.forwarding; the
	// stack is a host, so forwarding stays off unless asked for.
	IPForward bool
}

// DefaultConfig returns Linux's defaults.
func DefaultConfig() Config {
	return Config{LocalPortRange: [2]uint16{32768, 60999}}
}

// IsReservedPort reports whether port is in ip_local_reserved_ports.
func (c *Config) IsReservedPort(port uint16) bool { return c.ReservedPorts[port] }
