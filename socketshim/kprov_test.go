package socketshim

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

// kernelProvider serves sockets with real kernel sockets created in a
// private network namespace (loopback up): the shim drives them exactly as
// it drives the userspace stack, and the same program run natively in a
// fresh namespace is the oracle for its output.
type kernelProvider struct {
	reqs chan kernelSocketReq
	done chan struct{}
}

type kernelSocketReq struct {
	family, sotype, proto int
	reply                 chan kernelSocketRes
}

type kernelSocketRes struct {
	fd  int
	err error
}

func newKernelProvider() (*kernelProvider, error) {
	p := &kernelProvider{reqs: make(chan kernelSocketReq), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		if err := loopbackUp(); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for {
			select {
			case r := <-p.reqs:
				fd, err := unix.Socket(r.family, r.sotype|unix.SOCK_CLOEXEC, r.proto)
				r.reply <- kernelSocketRes{fd, err}
			case <-p.done:
				return
			}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return p, nil
}

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo: %w", err)
	}
	return nil
}

func (p *kernelProvider) Name() string { return "kernel-test" }

func (p *kernelProvider) Handles(family, sotype, proto int) bool {
	return (family == unix.AF_INET || family == unix.AF_INET6) &&
		(sotype&0xf == unix.SOCK_STREAM || sotype&0xf == unix.SOCK_DGRAM)
}

func (p *kernelProvider) Socket(family, sotype, proto int) (provider.Socket, error) {
	r := kernelSocketReq{family, sotype, proto, make(chan kernelSocketRes, 1)}
	p.reqs <- r
	res := <-r.reply
	if res.err != nil {
		return nil, res.err
	}
	return newKernelSocket(res.fd), nil
}

func (p *kernelProvider) Close() error { close(p.done); return nil }

type kernelSocket struct {
	f  *os.File
	fd int
	q  waiter.Queue
}

func newKernelSocket(fd int) *kernelSocket {
	return &kernelSocket{f: os.NewFile(uintptr(fd), "ksock"), fd: fd}
}

func (s *kernelSocket) Conduit() *os.File         { return s.f }
func (s *kernelSocket) Passthrough() bool         { return false }
func (s *kernelSocket) Close() error              { return s.f.Close() }
func (s *kernelSocket) EventQueue() *waiter.Queue { return &s.q }
func (s *kernelSocket) Readiness(m waiter.EventMask) waiter.EventMask {
	return 0
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func sockaddrCall(nr uintptr, fd int, sa []byte) error {
	var p unsafe.Pointer
	if len(sa) > 0 {
		p = unsafe.Pointer(&sa[0])
	} else if sa != nil {
		var one byte
		p = unsafe.Pointer(&one)
	}
	_, _, e := unix.Syscall(nr, uintptr(fd), uintptr(p), uintptr(len(sa)))
	return errnoErr(e)
}

func (s *kernelSocket) Bind(sa []byte) error { return sockaddrCall(unix.SYS_BIND, s.fd, sa) }
func (s *kernelSocket) Listen(backlog int) error {
	_, _, e := unix.Syscall(unix.SYS_LISTEN, uintptr(s.fd), uintptr(backlog), 0)
	return errnoErr(e)
}

// wait polls the fd for ev until ready or ctx ends (ERESTARTSYS, as the
// stack's socket layer reports an interruption).
func (s *kernelSocket) wait(ctx context.Context, ev int16) error {
	for {
		if ctx.Err() != nil {
			return socket.ERESTARTSYS
		}
		pfd := []unix.PollFd{{Fd: int32(s.fd), Events: ev}}
		n, err := unix.Poll(pfd, 20)
		if err != nil && err != unix.EINTR {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

func (s *kernelSocket) Connect(ctx context.Context, sa []byte, nonblocking bool) error {
	err := sockaddrCall(unix.SYS_CONNECT, s.fd, sa)
	if err == unix.EINPROGRESS && !nonblocking {
		// The target's fd is blocking but the kernel said EINPROGRESS:
		// cannot happen; keep the kernel's answer.
		return err
	}
	return err
}

func (s *kernelSocket) Accept(ctx context.Context, nonblocking bool) (provider.Socket, []byte, error) {
	for {
		if !nonblocking {
			if err := s.wait(ctx, unix.POLLIN); err != nil {
				return nil, nil, err
			}
		}
		var sa [128]byte
		l := uint32(len(sa))
		nfd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(s.fd), uintptr(unsafe.Pointer(&sa[0])),
			uintptr(unsafe.Pointer(&l)), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0, 0)
		if e == unix.EAGAIN && !nonblocking {
			continue
		}
		if e != 0 {
			return nil, nil, e
		}
		unix.SetNonblock(int(nfd), false)
		return newKernelSocket(int(nfd)), append([]byte(nil), sa[:l]...), nil
	}
}

func (s *kernelSocket) name(nr uintptr) ([]byte, error) {
	var sa [128]byte
	l := uint32(len(sa))
	_, _, e := unix.Syscall(nr, uintptr(s.fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return nil, e
	}
	return append([]byte(nil), sa[:l]...), nil
}

func (s *kernelSocket) GetSockName() ([]byte, error) { return s.name(unix.SYS_GETSOCKNAME) }
func (s *kernelSocket) GetPeerName() ([]byte, error) { return s.name(unix.SYS_GETPEERNAME) }

func (s *kernelSocket) SetSockOpt(level, name int, val []byte) error {
	var p unsafe.Pointer
	if len(val) > 0 {
		p = unsafe.Pointer(&val[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(s.fd), uintptr(level), uintptr(name), uintptr(p), uintptr(len(val)), 0)
	return errnoErr(e)
}

func (s *kernelSocket) GetSockOpt(level, name int, buf []byte) (int, error) {
	var one [1]byte
	p := unsafe.Pointer(&one[0])
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), uintptr(level), uintptr(name), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	return int(l), errnoErr(e)
}

func (s *kernelSocket) Shutdown(how int) error {
	_, _, e := unix.Syscall(unix.SYS_SHUTDOWN, uintptr(s.fd), uintptr(how), 0)
	return errnoErr(e)
}

func (s *kernelSocket) SendTo(ctx context.Context, p []byte, flags int, to []byte, nonblocking bool) (int, error) {
	var pp, tp unsafe.Pointer
	var one [1]byte
	if len(p) > 0 {
		pp = unsafe.Pointer(&p[0])
	}
	if len(to) > 0 {
		tp = unsafe.Pointer(&to[0])
	} else if to != nil {
		tp = unsafe.Pointer(&one[0])
	}
	// The supervisor must not get the target's SIGPIPE.
	flags |= unix.MSG_NOSIGNAL
	if nonblocking {
		flags |= unix.MSG_DONTWAIT
	}
	n, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(pp), uintptr(len(p)), uintptr(flags), uintptr(tp), uintptr(len(to)))
	return int(n), errnoErr(e)
}

func (s *kernelSocket) RecvFrom(ctx context.Context, p []byte, flags int, nonblocking bool) (int, []byte, int, error) {
	for {
		if !nonblocking {
			if err := s.wait(ctx, unix.POLLIN); err != nil {
				return 0, nil, 0, err
			}
		}
		var sa [128]byte
		var iov unix.Iovec
		var one [1]byte
		if len(p) > 0 {
			iov.Base = &p[0]
		} else {
			iov.Base = &one[0]
		}
		iov.SetLen(len(p))
		msg := unix.Msghdr{Name: &sa[0], Namelen: uint32(len(sa)), Iov: &iov, Iovlen: 1}
		n, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|unix.MSG_DONTWAIT))
		if e == unix.EAGAIN && !nonblocking {
			continue
		}
		if e != 0 {
			return 0, nil, 0, e
		}
		return int(n), append([]byte(nil), sa[:msg.Namelen]...), int(msg.Flags), nil
	}
}

func (s *kernelSocket) Ioctl(req uint) (int, error) { return unix.IoctlGetInt(s.fd, req) }
