package bench

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
)

// Network is two TCP/IP stacks in one process, a client and a server, joined
// by an in-memory link whose MTU is Config.MTU.
type Network interface {
	// Name is the implementation's name as used in benchmark names.
	Name() string
	// ServerAddr is the server stack's IPv4 address.
	ServerAddr() netip.Addr
	// Listen opens a TCP listener on the server stack.
	Listen(addr netip.AddrPort) (net.Listener, error)
	// Dial connects from the client stack.
	Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	// Close stops both stacks and the link.
	Close() error
}

// RetransmitCounter is implemented by networks that can tell how many TCP
// segments both stacks have retransmitted so far. The benchmarks report it
// per op ("retrans/op"): a stack that loses packets on the in-memory link
// (queue overflow) is measured in recovery, not in steady state, and this
// makes that visible.
type RetransmitCounter interface {
	Retransmits() uint64
}

// Config is what both implementations are set up with, so that they are
// compared under the same conditions. DefaultConfig documents the values.
type Config struct {
	// MTU of the link (IP header included).
	MTU int
	// LinkQueueLen is how many packets each direction of the link holds
	// before it drops (like a device's txqueuelen).
	LinkQueueLen int
	// TCP buffer ranges like Linux's net.ipv4.tcp_rmem / tcp_wmem
	// (min, default, max), with receive and send buffer auto-tuning on.
	RecvBuf, SendBuf BufferRange
	// EphemeralPorts is net.ipv4.ip_local_port_range.
	EphemeralPortFirst, EphemeralPortLast uint16
}

// BufferRange is a (min, default, max) triple in bytes.
type BufferRange struct{ Min, Default, Max int }

// Addresses of the two stacks. They exist only inside this process: no
// packet ever reaches the kernel.
var (
	clientAddr = netip.MustParseAddr("10.213.0.1")
	serverAddr = netip.MustParseAddr("10.213.0.2")
)

// DefaultConfig returns Linux's defaults (6.x) for everything that affects
// throughput: tcp_rmem 4096 131072 6291456, tcp_wmem 4096 16384 4194304
// (both auto-tuned), ip_local_port_range 32768 60999, and a link queue of
// 1000 packets (a veth's default txqueuelen). SACK is on, congestion
// control is CUBIC and Nagle's algorithm is on (no TCP_NODELAY), as in
// Linux; these are fixed, not configurable here. Checksums are computed and verified in software (no
// offload) and there is no segmentation offload, so at MTU 1500 every
// segment really is one 1500-byte packet.
func DefaultConfig(mtu int) Config {
	return Config{
		MTU:                mtu,
		LinkQueueLen:       1000,
		RecvBuf:            BufferRange{Min: 4096, Default: 131072, Max: 6291456},
		SendBuf:            BufferRange{Min: 4096, Default: 16384, Max: 4194304},
		EphemeralPortFirst: 32768,
		EphemeralPortLast:  60999,
	}
}

// Implementation is one row of the benchmark table.
type Implementation struct {
	Name string
	New  func(Config) (Network, error)
}

// SelfCompareEnv, when set to 1, adds gVisor's netstack a second time under
// the name "netstack-self": comparing netstack-self with netstack in one run
// (an A/A comparison) shows how much of a ratio is noise on this machine.
const SelfCompareEnv = "NETPROV_BENCH_SELF"

// Implementations is the table every benchmark runs over. gVisor's netstack
// is the baseline and comes first; ours (ours.go) follows.
func Implementations() []Implementation {
	impls := []Implementation{{Name: "netstack", New: newNetstackNetwork}}
	if os.Getenv(SelfCompareEnv) == "1" {
		impls = append(impls, Implementation{Name: "netstack-self", New: newNetstackNetwork})
	}
	return append(impls, oursImplementations()...)
}

// errNotReady is returned by an implementation's New while it cannot be
// built yet; benchmarks and tests skip it instead of failing.
var errNotReady = errors.New("implementation not wired up yet")
