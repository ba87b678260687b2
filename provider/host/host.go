// Package host is the provider of real kernel sockets, like runsc's
// --network=host but confined to a dedicated network namespace: each
// socket is created by the kernel inside that namespace and the socket
// itself is the conduit injected into the sandboxed program
// (Passthrough), so every later call on it can run natively in the
// target. The control methods here call the kernel directly, for a shim
// that prefers to forward them anyway.
package host

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

// Provider creates kernel sockets in one network namespace.
type Provider struct {
	nsPath string
	nsFd   int

	mu      sync.Mutex
	sockets map[*Socket]struct{}
	closed  bool
}

var _ provider.Provider = (*Provider)(nil)

// New returns a provider whose sockets live in the network namespace at
// nsPath (e.g. /run/netns/NAME or /proc/PID/ns/net).
func New(nsPath string) (*Provider, error) {
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("host provider: open netns %s: %w", nsPath, err)
	}
	return &Provider{nsPath: nsPath, nsFd: fd, sockets: make(map[*Socket]struct{})}, nil
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return "host" }

// Handles implements provider.Provider: the inet families (AF_UNIX and
// AF_NETLINK stay with the sandbox's own namespace).
func (p *Provider) Handles(family, sotype, protocol int) bool {
	return family == unix.AF_INET || family == unix.AF_INET6
}

// Socket implements provider.Provider: socket(2) on a locked OS thread
// switched into the namespace and back.
func (p *Provider) Socket(family, sotype, protocol int) (provider.Socket, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, unix.EBADF
	}
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread is unlocked only once it is back in its own
		// namespace; otherwise it stays locked and dies with this
		// goroutine, so no goroutine runs in the wrong namespace.
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("host provider: open current netns: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(p.nsFd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("host provider: setns %s: %w", p.nsPath, err)}
			return
		}
		fd, serr := unix.Socket(family, sotype|unix.SOCK_CLOEXEC, protocol)
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			if serr == nil {
				unix.Close(fd)
			}
			done <- result{-1, fmt.Errorf("host provider: restore netns: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{fd, serr}
	}()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	s := &Socket{p: p, f: os.NewFile(uintptr(r.fd), "host-socket"), fd: r.fd}
	p.mu.Lock()
	p.sockets[s] = struct{}{}
	p.mu.Unlock()
	return s, nil
}

// Close implements provider.Provider.
func (p *Provider) Close() error {
	p.mu.Lock()
	p.closed = true
	all := make([]*Socket, 0, len(p.sockets))
	for s := range p.sockets {
		all = append(all, s)
	}
	p.mu.Unlock()
	for _, s := range all {
		s.Close()
	}
	return unix.Close(p.nsFd)
}

// Socket is a kernel socket. Its file is blocking as far as this package
// is concerned: the O_NONBLOCK flag belongs to the target (the injected
// fd shares the open file description), so non-blocking calls use
// MSG_DONTWAIT or a zero-timeout poll instead.
type Socket struct {
	p  *Provider
	f  *os.File
	fd int
	q  waiter.Queue
}

var _ provider.Socket = (*Socket)(nil)

// Conduit implements provider.Socket: the kernel socket itself.
func (s *Socket) Conduit() *os.File { return s.f }

// Passthrough implements provider.Socket.
func (s *Socket) Passthrough() bool { return true }

// Bind implements provider.Socket.
func (s *Socket) Bind(sa []byte) error {
	return sockaddrCall(unix.SYS_BIND, s.fd, sa)
}

// Listen implements provider.Socket.
func (s *Socket) Listen(backlog int) error { return unix.Listen(s.fd, backlog) }

// Connect implements provider.Socket. A blocking connect on a file the
// target made non-blocking still returns EINPROGRESS (the file decides);
// a non-blocking one on a blocking file waits for the handshake, bounded
// by ctx — prefer letting the target run connect natively.
func (s *Socket) Connect(ctx context.Context, sa []byte, nonblocking bool) error {
	err := sockaddrCall(unix.SYS_CONNECT, s.fd, sa)
	if err != unix.EINPROGRESS || nonblocking {
		return err
	}
	if werr := s.wait(ctx, unix.POLLOUT); werr != nil {
		return werr
	}
	if v, gerr := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR); gerr == nil && v != 0 {
		return unix.Errno(v)
	}
	return nil
}

// Accept implements provider.Socket.
func (s *Socket) Accept(ctx context.Context, nonblocking bool) (provider.Socket, []byte, error) {
	for {
		if pollMaskNow(s.fd, unix.POLLIN)&unix.POLLIN != 0 {
			var sa [unix.SizeofSockaddrAny]byte
			salen := uint32(len(sa))
			r, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(s.fd), uintptr(unsafe.Pointer(&sa[0])),
				uintptr(unsafe.Pointer(&salen)), unix.SOCK_CLOEXEC, 0, 0)
			if e == 0 {
				ns := &Socket{p: s.p, f: os.NewFile(r, "host-socket"), fd: int(r)}
				s.p.mu.Lock()
				s.p.sockets[ns] = struct{}{}
				s.p.mu.Unlock()
				return ns, append([]byte(nil), sa[:min(int(salen), len(sa))]...), nil
			}
			if e != unix.EAGAIN {
				return nil, nil, e
			}
		}
		if nonblocking {
			return nil, nil, unix.EAGAIN
		}
		if err := s.wait(ctx, unix.POLLIN); err != nil {
			return nil, nil, err
		}
	}
}

// GetSockName implements provider.Socket.
func (s *Socket) GetSockName() ([]byte, error) { return s.name(unix.SYS_GETSOCKNAME) }

// GetPeerName implements provider.Socket.
func (s *Socket) GetPeerName() ([]byte, error) { return s.name(unix.SYS_GETPEERNAME) }

func (s *Socket) name(trap uintptr) ([]byte, error) {
	var sa [unix.SizeofSockaddrAny]byte
	salen := uint32(len(sa))
	_, _, e := unix.Syscall(trap, uintptr(s.fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&salen)))
	if e != 0 {
		return nil, e
	}
	return append([]byte(nil), sa[:min(int(salen), len(sa))]...), nil
}

// SetSockOpt implements provider.Socket.
func (s *Socket) SetSockOpt(level, name int, val []byte) error {
	var p unsafe.Pointer
	if len(val) > 0 {
		p = unsafe.Pointer(&val[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(s.fd), uintptr(level), uintptr(name), uintptr(p), uintptr(len(val)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// GetSockOpt implements provider.Socket.
func (s *Socket) GetSockOpt(level, name int, buf []byte) (int, error) {
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), uintptr(level), uintptr(name), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	return int(l), nil
}

// Shutdown implements provider.Socket.
func (s *Socket) Shutdown(how int) error { return unix.Shutdown(s.fd, how) }

// SendTo implements provider.Socket. EPIPE comes without a signal: the
// shim raises SIGPIPE unless flags have MSG_NOSIGNAL.
func (s *Socket) SendTo(ctx context.Context, p []byte, flags int, to []byte, nonblocking bool) (int, error) {
	for {
		var bp, tp unsafe.Pointer
		if len(p) > 0 {
			bp = unsafe.Pointer(&p[0])
		}
		if len(to) > 0 {
			tp = unsafe.Pointer(&to[0])
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(bp), uintptr(len(p)),
			uintptr(flags|unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL), uintptr(tp), uintptr(len(to)))
		if e == 0 {
			return int(n), nil
		}
		if e != unix.EAGAIN || nonblocking || flags&unix.MSG_DONTWAIT != 0 {
			return 0, e
		}
		if err := s.wait(ctx, unix.POLLOUT); err != nil {
			return 0, err
		}
	}
}

// RecvFrom implements provider.Socket.
func (s *Socket) RecvFrom(ctx context.Context, p []byte, flags int, nonblocking bool) (int, []byte, int, error) {
	for {
		var sa [unix.SizeofSockaddrAny]byte
		var iov unix.Iovec
		if len(p) > 0 {
			iov.Base = &p[0]
		}
		iov.SetLen(len(p))
		msg := unix.Msghdr{Name: &sa[0], Namelen: uint32(len(sa)), Iov: &iov, Iovlen: 1}
		n, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|unix.MSG_DONTWAIT))
		if e == 0 {
			var from []byte
			if msg.Namelen > 0 {
				from = append([]byte(nil), sa[:min(int(msg.Namelen), len(sa))]...)
			}
			return int(n), from, int(msg.Flags), nil
		}
		if e != unix.EAGAIN || nonblocking || flags&unix.MSG_DONTWAIT != 0 {
			return 0, nil, 0, e
		}
		if err := s.wait(ctx, unix.POLLIN); err != nil {
			return 0, nil, 0, err
		}
	}
}

// Ioctl implements provider.Socket.
func (s *Socket) Ioctl(req uint) (int, error) { return unix.IoctlGetInt(s.fd, req) }

// Readiness implements provider.Socket: the kernel's poll mask.
func (s *Socket) Readiness(mask waiter.EventMask) waiter.EventMask {
	m := pollMaskNow(s.fd, int16(mask))
	return waiter.EventMask(uint16(m)) & (mask | waiter.EventErr | waiter.EventHUp)
}

// EventQueue implements provider.Socket. The kernel socket's events are
// not forwarded to it: a passthrough socket's waits belong to the kernel
// (Readiness is exact; blocking methods here poll the socket).
func (s *Socket) EventQueue() *waiter.Queue { return &s.q }

// Close implements provider.Socket.
func (s *Socket) Close() error {
	s.p.mu.Lock()
	delete(s.p.sockets, s)
	s.p.mu.Unlock()
	return s.f.Close()
}

// wait polls the socket for events until ready or ctx is done. The file
// must not join Go's poller (its O_NONBLOCK is the target's), so it polls
// in short slices to notice ctx.
func (s *Socket) wait(ctx context.Context, events int16) error {
	const slice = 20 * time.Millisecond
	for {
		if ctx != nil && ctx.Err() != nil {
			return socket.ERESTARTSYS
		}
		pfd := []unix.PollFd{{Fd: int32(s.fd), Events: events}}
		n, err := unix.Poll(pfd, int(slice/time.Millisecond))
		if err != nil && err != unix.EINTR {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

func pollMaskNow(fd int, events int16) int16 {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err != unix.EINTR {
			return pfd[0].Revents
		}
	}
}

func sockaddrCall(trap uintptr, fd int, sa []byte) error {
	var p unsafe.Pointer
	if len(sa) > 0 {
		p = unsafe.Pointer(&sa[0])
	}
	_, _, e := unix.Syscall(trap, uintptr(fd), uintptr(p), uintptr(len(sa)))
	if e != 0 {
		return e
	}
	return nil
}
