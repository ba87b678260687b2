// Package udp is the stack's UDP (RFC 768): the protocol's demultiplexer
// and datagram endpoints with Linux's socket semantics (bind conflicts with
// SO_REUSEADDR/SO_REUSEPORT, connected sockets, dual-stack AF_INET6
// sockets, ICMP errors reported through sk_err, SO_RCVBUF accounting).
package udp

import "github.com/netprov/netprov/stack/dgram"

// Config holds the sysctls UDP sockets read (net.core.*mem*,
// net.ipv4.ip_default_ttl). Defaults are Linux's.
type Config = dgram.Config

// DefaultConfig returns Linux's defaults.
func DefaultConfig() Config { return dgram.DefaultConfig() }
