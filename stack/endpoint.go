package stack

import (
	"net/netip"

	"github.com/netprov/netprov/stack/waiter"
)

// EndpointFactory is implemented by transport protocols that back sockets.
type EndpointFactory interface {
	// NewEndpoint creates an unbound endpoint for a socket of the given
	// family (unix.AF_INET or unix.AF_INET6; AF_INET6 endpoints are
	// dual-stack unless IPV6_V6ONLY is set).
	NewEndpoint(family int) (Endpoint, error)
}

// Endpoint is a transport endpoint as the socket layer sees it (like
// gVisor's tcpip.Endpoint). Every method is non-blocking: an operation that
// would block returns unix.EAGAIN (unix.EINPROGRESS for a TCP connect), and
// the endpoint notifies its EventQueue when it becomes ready. Blocking
// calls, timeouts (SO_RCVTIMEO/SO_SNDTIMEO) and signals are the socket
// layer's business. Errors are unix.Errno values with Linux's semantics.
//
// Addresses are IPv4 for AF_INET endpoints and IPv6 for AF_INET6 ones
// (IPv4 peers of dual-stack endpoints appear as v4-mapped addresses).
type Endpoint interface {
	// Bind assigns the local address; port 0 picks an ephemeral port.
	Bind(addr netip.AddrPort) error
	// Listen starts accepting connections (stream endpoints).
	Listen(backlog int) error
	// Connect starts connecting (TCP: EINPROGRESS, then EALREADY while
	// pending, nil once when established, EISCONN after) or sets the
	// default peer (UDP; an AF_UNSPEC-style disconnect is an invalid
	// AddrPort).
	Connect(addr netip.AddrPort) error
	// Accept returns the next established connection, or EAGAIN.
	Accept() (Endpoint, netip.AddrPort, error)
	// Read receives data into p.
	Read(p []byte, o ReadOptions) (ReadResult, error)
	// Write sends p; stream endpoints may accept a prefix (partial write).
	Write(p []byte, o WriteOptions) (int, error)
	// Shutdown shuts down reading, writing or both (unix.SHUT_*).
	Shutdown(how int) error
	// Close releases the endpoint (TCP: FIN or RST per SO_LINGER, then the
	// connection lives on until it is fully closed).
	Close()
	// LocalAddress is the bound address (getsockname).
	LocalAddress() netip.AddrPort
	// RemoteAddress is the peer (getpeername), or ENOTCONN.
	RemoteAddress() (netip.AddrPort, error)
	// SetSockOpt and GetSockOpt take and return the option's bytes in the
	// layout Linux uses (int options are 4-byte native-endian values), for
	// the levels the protocol serves (SOL_SOCKET, SOL_TCP, SOL_IP,
	// SOL_IPV6, SOL_UDP). Unknown options give ENOPROTOOPT.
	SetSockOpt(level, name int, val []byte) error
	GetSockOpt(level, name int, buf []byte) (int, error)
	// Readiness returns the events in mask that are ready now.
	Readiness(mask waiter.EventMask) waiter.EventMask
	// EventQueue is notified whenever readiness may have changed.
	EventQueue() *waiter.Queue
	// Info describes the endpoint for `ss`-style listings.
	Info() EndpointInfo
}

// ReadOptions are the recv(2) flags an endpoint implements.
type ReadOptions struct {
	Peek bool // MSG_PEEK
	// Trunc (MSG_TRUNC): datagram endpoints report the full datagram
	// length; stream endpoints discard the bytes instead of copying them.
	Trunc bool
	OOB   bool // MSG_OOB
}

// ReadResult is what a Read returns besides the error.
type ReadResult struct {
	// N is the number of bytes copied into the buffer.
	N int
	// Total is the length of the datagram (datagram endpoints), which may
	// exceed N when the buffer was short.
	Total int
	// From is the sender (datagram endpoints).
	From netip.AddrPort
	// Truncated is set when a datagram did not fit (MSG_TRUNC in msg_flags).
	Truncated bool
}

// WriteOptions are the send(2) flags and destination an endpoint implements.
type WriteOptions struct {
	// To is the destination of sendto/sendmsg; invalid for send().
	To   netip.AddrPort
	More bool // MSG_MORE
	OOB  bool // MSG_OOB
}

// EndpointInfo is a snapshot of an endpoint for listings and TCP_INFO.
type EndpointInfo struct {
	Protocol uint8 // IP protocol number
	// State is the Linux TCP state number (TCP_ESTABLISHED=1 ... TCP_CLOSE=7,
	// TCP_LISTEN=10); UDP uses TCP_ESTABLISHED for connected sockets and
	// TCP_CLOSE otherwise, as /proc/net/udp does.
	State  uint8
	Local  netip.AddrPort
	Remote netip.AddrPort
	// RecvQ and SendQ are the queue lengths ss shows (for listeners:
	// current and maximum accept queue length).
	RecvQ, SendQ int
}
