package socket

import (
	"context"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket/sockopt"
	"github.com/netprov/netprov/stack/waiter"
)

// Bind binds to the struct sockaddr sa (bind(2); spec 6, 13).
func (so *Socket) Bind(sa []byte) error {
	ap, err := parseBind(so.family, sa)
	if err != nil {
		return err
	}
	return so.ep.Bind(ap)
}

// BindAddr binds to ap; for AF_INET6 sockets an IPv4 address means its
// v4-mapped form. The zone of a link-local address is the decimal
// interface index.
func (so *Socket) BindAddr(ap netip.AddrPort) error {
	ap, err := so.inFamily(ap)
	if err != nil {
		return err
	}
	return so.ep.Bind(ap)
}

// inFamily converts ap to the socket's family: IPv4 for AF_INET
// (EAFNOSUPPORT for IPv6 other than v4-mapped), IPv6 for AF_INET6.
func (so *Socket) inFamily(ap netip.AddrPort) (netip.AddrPort, error) {
	a := ap.Addr()
	if so.family == unix.AF_INET {
		if a.Is4In6() {
			a = a.Unmap()
		}
		if !a.Is4() {
			return netip.AddrPort{}, unix.EAFNOSUPPORT
		}
	} else if a.Is4() {
		a = netip.AddrFrom16(a.As16())
	}
	return netip.AddrPortFrom(a, ap.Port()), nil
}

// Listen starts listening (listen(2); spec 9-11): EOPNOTSUPP for
// datagram sockets.
func (so *Socket) Listen(backlog int) error {
	if so.sotype != unix.SOCK_STREAM {
		return unix.EOPNOTSUPP
	}
	return so.ep.Listen(backlog)
}

// Connect connects to the struct sockaddr sa (connect(2); spec 13-22).
// An AF_UNSPEC address disconnects. On a stream socket a blocking
// connect waits for the handshake: it returns nil once connected, the
// connection's error (ECONNREFUSED, ETIMEDOUT, ...) if it failed,
// EINPROGRESS when SO_SNDTIMEO expires first, and the interruption errno
// when ctx is done; a non-blocking one returns EINPROGRESS, then
// EALREADY while pending.
func (so *Socket) Connect(ctx context.Context, sa []byte) error {
	fam, err := sockaddrFamily(sa)
	if err != nil {
		return err
	}
	if fam == unix.AF_UNSPEC {
		return so.ep.Connect(netip.AddrPort{})
	}
	dgram := so.sotype == unix.SOCK_DGRAM
	ap, err := parsePeer(so.family, dgram, sa)
	if err != nil {
		if so.sotype == unix.SOCK_STREAM && err == unix.EINVAL {
			// __inet_stream_connect checks the socket state before
			// tcp_v4_connect checks the length.
			if st := so.ep.Info().State; st != tcpClose {
				any, _ := so.inFamily(netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
				return so.connect(ctx, any)
			}
		}
		return err
	}
	if dgram && so.family == unix.AF_INET6 && fam == unix.AF_INET && so.v6only() {
		return unix.EAFNOSUPPORT
	}
	if so.protocol == protoICMP || so.protocol == protoICMPv6 {
		ap = netip.AddrPortFrom(ap.Addr(), 0)
	}
	return so.connect(ctx, ap)
}

const tcpClose = 7

func (so *Socket) v6only() bool {
	var b [4]byte
	n, err := so.ep.GetSockOpt(unix.SOL_IPV6, unix.IPV6_V6ONLY, b[:])
	if err != nil || n < 4 {
		return false
	}
	v, _ := sockopt.Int(b[:])
	return v != 0
}

// ConnectAddr is Connect with a typed address; an invalid ap disconnects
// (AF_UNSPEC).
func (so *Socket) ConnectAddr(ctx context.Context, ap netip.AddrPort) error {
	if !ap.IsValid() {
		return so.ep.Connect(netip.AddrPort{})
	}
	ap, err := so.inFamily(ap)
	if err != nil {
		return err
	}
	return so.connect(ctx, ap)
}

func (so *Socket) connect(ctx context.Context, ap netip.AddrPort) error {
	first := so.ep.Connect(ap)
	if first != unix.EINPROGRESS && first != unix.EALREADY {
		return first
	}
	timeo := so.timeo(true, 0)
	if timeo == 0 {
		return first
	}
	if ctx != nil && ctx.Err() != nil {
		// Interrupted before it could wait (the provider's way of making
		// a call non-blocking): return at once. Asking the endpoint again
		// would complete a handshake that finished meanwhile, which
		// __inet_stream_connect leaves to the next connect(2) (it then
		// returns 0, and EISCONN only after that; spec C.18).
		return intrErrno(timeo)
	}
	err := so.block(ctx, waiter.EventOut|waiter.EventErr|waiter.EventHUp, timeo, func() error {
		if err := so.ep.Connect(ap); err != unix.EALREADY {
			return err
		}
		return unix.EAGAIN
	})
	if err == errTimedOut {
		return first
	}
	return err
}

// Accept takes the next connection (accept(2); spec 82-84) and returns it
// with the peer's struct sockaddr.
func (so *Socket) Accept(ctx context.Context) (*Socket, []byte, error) {
	return so.Accept4(ctx, 0)
}

// Accept4 is accept4(2): flags may hold SOCK_NONBLOCK and SOCK_CLOEXEC
// for the new socket; other bits are EINVAL.
func (so *Socket) Accept4(ctx context.Context, flags int) (*Socket, []byte, error) {
	ns, peer, err := so.AcceptAddr(ctx, flags)
	if err != nil {
		return nil, nil, err
	}
	return ns, FormatSockaddr(so.family, peer), nil
}

// AcceptAddr is Accept4 with a typed peer address. A blocking accept
// waits for a connection: EAGAIN when SO_RCVTIMEO expires, the
// interruption errno when ctx is done (no connection is taken then).
func (so *Socket) AcceptAddr(ctx context.Context, flags int) (*Socket, netip.AddrPort, error) {
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return nil, netip.AddrPort{}, unix.EINVAL
	}
	if so.sotype != unix.SOCK_STREAM {
		return nil, netip.AddrPort{}, unix.EOPNOTSUPP
	}
	var ns *Socket
	var peer netip.AddrPort
	err := so.block(ctx, waiter.EventIn, so.timeo(false, 0), func() error {
		ep, p, err := so.ep.Accept()
		if err != nil {
			return err
		}
		ns = newSocket(so.s, ep, so.family, so.sotype, so.protocol)
		peer = p
		return nil
	})
	if err == errTimedOut {
		err = unix.EAGAIN
	}
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	ns.cloexec = flags&unix.SOCK_CLOEXEC != 0
	ns.nonblock.Store(flags&unix.SOCK_NONBLOCK != 0)
	// The new sock is a copy of the listener's (sk_clone_lock): it keeps
	// the timeouts; O_NONBLOCK is a file flag and comes from flags only.
	ns.rcvTimeo.Store(so.rcvTimeo.Load())
	ns.sndTimeo.Store(so.sndTimeo.Load())
	return ns, peer, nil
}

// Shutdown is shutdown(2): how is SHUT_RD, SHUT_WR or SHUT_RDWR, else
// EINVAL.
func (so *Socket) Shutdown(how int) error {
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return unix.EINVAL
	}
	return so.ep.Shutdown(how)
}
