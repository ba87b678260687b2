// Package provider defines what the socket shim needs from a network: a
// factory of sockets whose control operations (bind, listen, connect,
// accept, options, shutdown, addressed send/receive) the shim forwards, and
// whose data path is a real file descriptor injected into the sandboxed
// program, so read, write, poll and epoll run natively without a trap.
//
// Implementations live in subpackages: netstack (the userspace stack; the
// injected fd is one end of a pair pumped by the provider: AF_UNIX for
// streams and ICMP echo, kernel UDP sockets in a private namespace for
// UDP),
// host (real kernel sockets created in a dedicated network namespace and
// injected directly), and none (loopback only, served by the userspace
// stack).
package provider

import (
	"context"
	"net/netip"
	"os"

	"github.com/netprov/netprov/stack/waiter"
)

// Provider makes sockets for one sandbox.
type Provider interface {
	// Name is "netstack", "host" or "none".
	Name() string
	// Socket creates a socket like socket(2). sotype has SOCK_NONBLOCK and
	// SOCK_CLOEXEC already removed (the shim applies them to the injected
	// fd). Errors are unix.Errno values as Linux returns them.
	Socket(family, sotype, protocol int) (Socket, error)
	// Handles reports whether the provider serves sockets of this kind at
	// all; the shim lets other families (AF_UNIX, AF_NETLINK) go to the
	// kernel untouched.
	Handles(family, sotype, protocol int) bool
	// Close releases every socket and the provider's resources.
	Close() error
}

// Socket is one socket of the sandbox as the shim drives it. Every call
// with a ctx may block; cancelling ctx (the target was interrupted by a
// signal or died) returns socket.ERESTARTSYS or unix.EINTR and loses
// nothing: an accepted connection or a datagram that could not be handed
// over stays queued. Addresses are sockaddr bytes in Linux's layout.
type Socket interface {
	// Conduit is the file to inject into the target: its data path. The
	// shim duplicates it into the target; the provider keeps ownership.
	Conduit() *os.File
	// Passthrough reports that the conduit is the socket itself (host
	// provider): every later call on it can run natively in the target.
	Passthrough() bool

	Bind(sa []byte) error
	Listen(backlog int) error
	// Connect honours nonblocking: EINPROGRESS when it would block.
	Connect(ctx context.Context, sa []byte, nonblocking bool) error
	// Accept returns the next connection; flags are accept4's
	// SOCK_NONBLOCK|SOCK_CLOEXEC (applied by the shim to the new fd).
	Accept(ctx context.Context, nonblocking bool) (Socket, []byte, error)
	GetSockName() ([]byte, error)
	GetPeerName() ([]byte, error)
	SetSockOpt(level, name int, val []byte) error
	GetSockOpt(level, name int, buf []byte) (int, error)
	Shutdown(how int) error
	// SendTo and RecvFrom serve the addressed calls (sendto/sendmsg with a
	// destination, recvfrom/recvmsg asking for the source); plain data
	// goes through the conduit.
	SendTo(ctx context.Context, p []byte, flags int, to []byte, nonblocking bool) (int, error)
	RecvFrom(ctx context.Context, p []byte, flags int, nonblocking bool) (n int, from []byte, msgFlags int, err error)
	// Ioctl serves FIONREAD, SIOCOUTQ and the like; it returns the int
	// result written back to the target.
	Ioctl(req uint) (int, error)
	// Readiness and EventQueue expose the socket's events, for the conduit
	// pump and for the shim's blocking calls.
	Readiness(mask waiter.EventMask) waiter.EventMask
	EventQueue() *waiter.Queue
	// Close is called when the target's last reference to the conduit is
	// gone (the provider sees EOF/HUP on its end) or the sandbox ends.
	Close() error
}

// Requeuer is implemented by listening sockets that can take back a
// connection Accept returned but the shim could not hand to the target
// (the notification died before the new fd was injected): the next
// Accept returns it first, so no connection is lost.
type Requeuer interface {
	Requeue(conn Socket, peer []byte)
}

// ConduitReleaser is implemented by sockets that keep their own reference
// to the conduit (netstack). While they do, the target's close(2) of its
// last fd is invisible to the provider, so the shim must call Close.
// ReleaseConduit drops that reference where the socket can do without it
// (netstack: established stream sockets; a socket still connecting
// releases once established; listeners and datagram sockets ignore it),
// after which the provider sees the target's last close itself (EOF and
// POLLHUP on its end) and closes the socket like close(2). The shim can
// call it right after injecting any socket. See provider/netstack/doc.go.
type ConduitReleaser interface {
	ReleaseConduit()
}

// Connection is a row of `netprov ss`.
type Connection struct {
	Protocol      string // "tcp", "udp", "icmp"
	State         string // Linux ss state names: ESTAB, LISTEN, SYN-SENT, ...
	Local, Remote netip.AddrPort
	RecvQ, SendQ  int
}

// Lister is implemented by providers that can list their connections.
type Lister interface {
	Connections() []Connection
}
