// Package socket is the BSD socket layer of the stack: it turns the
// non-blocking transport endpoints (stack.Endpoint) into sockets with
// Linux's system-call semantics — socket(2) argument rules, struct
// sockaddr parsing and formatting, blocking calls with SO_RCVTIMEO /
// SO_SNDTIMEO, errno values, and readiness for poll.
//
// Interruption: every call that may block takes a context.Context. When
// the context is done (the shim cancels it when a signal arrives for the
// calling thread), the call returns ERESTARTSYS if the socket's timeout
// for the call is infinite and unix.EINTR otherwise, as Linux's
// sock_intr_errno. ERESTARTSYS never reaches a program: the shim restarts
// the call if the signal's handler has SA_RESTART and returns EINTR
// otherwise. No data or connection is lost by an interrupted call: bytes
// already transferred are reported as a short count instead of the error.
// A nil context never interrupts.
package socket

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/waiter"
)

// ERESTARTSYS is the kernel-internal errno (512) of an interrupted call
// that may be restarted transparently (see the package documentation).
const ERESTARTSYS = unix.Errno(512)

// Linux protocol numbers the socket layer selects by.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	// ipprotoMax is IPPROTO_MAX: larger protocol numbers are EINVAL.
	ipprotoMax = 263
	// sockMax is SOCK_MAX: larger types are EINVAL.
	sockMax = 11
	// sockTypeMask is SOCK_TYPE_MASK.
	sockTypeMask = 0xf
)

// TCP states read from EndpointInfo.State.
const tcpListen = 10

// Socket is one socket: an endpoint plus the socket-level state Linux
// keeps in struct socket and struct sock (file flags, timeouts).
type Socket struct {
	s        *stack.Stack
	ep       stack.Endpoint
	family   int
	sotype   int
	protocol int
	cloexec  bool
	nonblock atomic.Bool
	// rcvTimeo and sndTimeo are SO_RCVTIMEO and SO_SNDTIMEO in
	// nanoseconds: timeoInfinite (the default) or >= 0 (0: do not wait).
	rcvTimeo, sndTimeo atomic.Int64
	closeOnce          sync.Once
}

const timeoInfinite = -1

// New creates a socket as socket(2) does (__sys_socket, inet_create,
// inet6_create; spec A.1, A.3): sotype may carry SOCK_NONBLOCK and
// SOCK_CLOEXEC; any other flag bit is EINVAL. Families other than AF_INET
// and AF_INET6 are EAFNOSUPPORT; an out-of-range type or protocol is
// EINVAL; a type the family does not have is ESOCKTNOSUPPORT; a protocol
// the type does not have is EPROTONOSUPPORT. Protocol 0 selects TCP for
// SOCK_STREAM and UDP for SOCK_DGRAM; SOCK_DGRAM with IPPROTO_ICMP
// (AF_INET) or IPPROTO_ICMPV6 (AF_INET6) is an echo ("ping") socket.
// Raw sockets are not provided: SOCK_RAW with protocol 0 is
// EPROTONOSUPPORT as on Linux, with another protocol EPERM (what an
// unprivileged caller gets, so ping falls back to an echo socket).
func New(s *stack.Stack, family, sotype, protocol int) (*Socket, error) {
	flags := sotype &^ sockTypeMask
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return nil, unix.EINVAL
	}
	typ := sotype & sockTypeMask
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return nil, unix.EAFNOSUPPORT
	}
	if typ < 0 || typ >= sockMax {
		return nil, unix.EINVAL
	}
	if protocol < 0 || protocol >= ipprotoMax {
		return nil, unix.EINVAL
	}
	var number uint8
	switch typ {
	case unix.SOCK_STREAM:
		if protocol != 0 && protocol != protoTCP {
			return nil, unix.EPROTONOSUPPORT
		}
		protocol, number = protoTCP, protoTCP
	case unix.SOCK_DGRAM:
		echo := protoICMP
		if family == unix.AF_INET6 {
			echo = protoICMPv6
		}
		switch protocol {
		case 0, protoUDP:
			protocol, number = protoUDP, protoUDP
		case echo:
			number = uint8(echo)
		default:
			return nil, unix.EPROTONOSUPPORT
		}
	case unix.SOCK_RAW:
		if protocol == 0 {
			return nil, unix.EPROTONOSUPPORT
		}
		return nil, unix.EPERM
	default:
		return nil, unix.ESOCKTNOSUPPORT
	}
	f, ok := s.TransportProtocol(number).(stack.EndpointFactory)
	if !ok {
		return nil, unix.EPROTONOSUPPORT
	}
	ep, err := f.NewEndpoint(family)
	if err != nil {
		return nil, err
	}
	so := newSocket(s, ep, family, typ, protocol)
	so.cloexec = flags&unix.SOCK_CLOEXEC != 0
	so.nonblock.Store(flags&unix.SOCK_NONBLOCK != 0)
	return so, nil
}

func newSocket(s *stack.Stack, ep stack.Endpoint, family, typ, protocol int) *Socket {
	so := &Socket{s: s, ep: ep, family: family, sotype: typ, protocol: protocol}
	so.rcvTimeo.Store(timeoInfinite)
	so.sndTimeo.Store(timeoInfinite)
	return so
}

// Family is the address family (unix.AF_INET or unix.AF_INET6).
func (so *Socket) Family() int { return so.family }

// Type is the socket type without flags (unix.SOCK_STREAM or SOCK_DGRAM).
func (so *Socket) Type() int { return so.sotype }

// Protocol is the IP protocol number (6, 17, 1 or 58).
func (so *Socket) Protocol() int { return so.protocol }

// Endpoint returns the transport endpoint behind the socket.
func (so *Socket) Endpoint() stack.Endpoint { return so.ep }

// CloseOnExec reports whether SOCK_CLOEXEC was given (the shim applies it
// to the file descriptor).
func (so *Socket) CloseOnExec() bool { return so.cloexec }

// Nonblocking reports O_NONBLOCK.
func (so *Socket) Nonblocking() bool { return so.nonblock.Load() }

// SetNonblocking sets or clears O_NONBLOCK (fcntl F_SETFL, FIONBIO).
func (so *Socket) SetNonblocking(v bool) { so.nonblock.Store(v) }

// EventQueue is notified when the socket's readiness may have changed.
func (so *Socket) EventQueue() *waiter.Queue { return so.ep.EventQueue() }

// Readiness returns the poll events in mask that are ready now (POLLERR
// and POLLHUP are always reported).
func (so *Socket) Readiness(mask waiter.EventMask) waiter.EventMask {
	return so.ep.Readiness(mask | waiter.EventErr | waiter.EventHUp)
}

// Close releases the socket (close(2) of its last reference). It is
// idempotent.
func (so *Socket) Close() error {
	so.closeOnce.Do(so.ep.Close)
	return nil
}

// LocalAddr is the bound address (getsockname).
func (so *Socket) LocalAddr() netip.AddrPort { return so.ep.LocalAddress() }

// PeerAddr is the peer (getpeername), or ENOTCONN.
func (so *Socket) PeerAddr() (netip.AddrPort, error) { return so.ep.RemoteAddress() }

// GetSockName returns the bound address as a struct sockaddr_in or
// sockaddr_in6 (the caller truncates it to its addrlen, as Linux does).
func (so *Socket) GetSockName() ([]byte, error) {
	return FormatSockaddr(so.family, so.ep.LocalAddress()), nil
}

// GetPeerName returns the peer as a struct sockaddr, or ENOTCONN.
func (so *Socket) GetPeerName() ([]byte, error) {
	ap, err := so.ep.RemoteAddress()
	if err != nil {
		return nil, err
	}
	return FormatSockaddr(so.family, ap), nil
}

// waiterEntry is a reusable registration on an endpoint's event queue
// with a channel of capacity one, so blocking calls do not allocate.
type waiterEntry struct {
	e  waiter.Entry
	ch chan struct{}
}

func (w *waiterEntry) notify(waiter.EventMask) {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

var waiterPool = sync.Pool{New: func() any {
	w := &waiterEntry{ch: make(chan struct{}, 1)}
	w.e.Callback = w.notify
	return w
}}

// errTimedOut is returned by block when the socket timeout expired; each
// call turns it into its own errno.
var errTimedOut = unix.ETIME

// block calls op until it returns something other than EAGAIN, waiting
// for mask events on the endpoint between tries. timeo is the socket
// timeout (timeoInfinite or >= 0; 0 returns EAGAIN at once). It returns
// op's result, errTimedOut when the timeout expired, or the interruption
// errno when ctx is done.
func (so *Socket) block(ctx context.Context, mask waiter.EventMask, timeo int64, op func() error) error {
	err := op()
	if err != unix.EAGAIN || timeo == 0 {
		return err
	}
	w := waiterPool.Get().(*waiterEntry)
	w.e.Mask = mask
	q := so.ep.EventQueue()
	q.Register(&w.e)
	defer func() {
		q.Unregister(&w.e)
		select {
		case <-w.ch:
		default:
		}
		waiterPool.Put(w)
	}()
	var expired chan struct{}
	if timeo > 0 {
		expired = make(chan struct{})
		t := so.s.Clock().AfterFunc(time.Duration(timeo), func() { close(expired) })
		defer t.Stop()
	}
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	for {
		if err = op(); err != unix.EAGAIN {
			return err
		}
		select {
		case <-w.ch:
		case <-expired:
			// One last try: the event and the timer may race.
			if err = op(); err != unix.EAGAIN {
				return err
			}
			return errTimedOut
		case <-done:
			return intrErrno(timeo)
		}
	}
}

// intrErrno is sock_intr_errno: restartable only without a timeout.
func intrErrno(timeo int64) error {
	if timeo == timeoInfinite {
		return ERESTARTSYS
	}
	return unix.EINTR
}

// IsInterrupt reports whether err is an interruption (EINTR or
// ERESTARTSYS).
func IsInterrupt(err error) bool { return err == unix.EINTR || err == ERESTARTSYS }

// timeo returns the wait time of a call: 0 for non-blocking sockets or
// MSG_DONTWAIT, else the socket timeout (sock_rcvtimeo / sock_sndtimeo).
func (so *Socket) timeo(send bool, flags int) int64 {
	if so.nonblock.Load() || flags&unix.MSG_DONTWAIT != 0 {
		return 0
	}
	if send {
		return so.sndTimeo.Load()
	}
	return so.rcvTimeo.Load()
}
