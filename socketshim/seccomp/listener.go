package seccomp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrTargetGone means the notification's target is gone: the task died or
// its syscall was interrupted (ENOENT from the kernel), or, from Recv, the
// filter has no users left (POLLHUP: every filtered task has exited; on
// kernel 6.18 this comes at exit, before the zombie is reaped).
var ErrTargetGone = errors.New("seccomp: notification target gone")

// ErrListenerClosed is returned by Listener methods after Close.
var ErrListenerClosed = errors.New("seccomp: listener closed")

// Listener wraps a seccomp notification fd. Recv calls are serialized (one
// receiver at a time, so a NOTIF_RECV never waits behind another receiver);
// Respond, Continue, AddFD and memory access may run concurrently with Recv
// and with each other.
type Listener struct {
	file   *os.File // O_NONBLOCK, registered with the runtime poller
	raw    syscall.RawConn
	recvMu sync.Mutex
	closed atomic.Bool // the poller's "use of closed file" error is not exported
}

// NewListener takes ownership of a notification fd (from InstallFilter, the
// stage protocol or an OCI runtime's listenerPath socket).
func NewListener(fd int) (*Listener, error) {
	if err := CheckABI(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// The seccomp fd supports poll, so a non-blocking fd lets the runtime
	// poller wait for POLLIN/POLLHUP without parking an OS thread.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seccomp listener: set non-blocking: %w", err)
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "seccomp-notify")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	return &Listener{file: f, raw: raw}, nil
}

// Close closes the fd. Every filtered syscall still waiting, and every later
// one, fails with ENOSYS in the target.
func (l *Listener) Close() error {
	l.closed.Store(true)
	return l.file.Close()
}

// Recv waits for the next notification. It returns ErrTargetGone (wrapped)
// when the filter has no users left, ctx's error when ctx ends, and
// ErrListenerClosed after Close. It never blocks in NOTIF_RECV without a
// pending notification.
func (l *Listener) Recv(ctx context.Context) (*Notif, error) {
	n := new(Notif)
	if err := l.RecvInto(ctx, n); err != nil {
		return nil, err
	}
	return n, nil
}

// RecvInto is Recv into a caller-owned Notif.
func (l *Listener) RecvInto(ctx context.Context, n *Notif) error {
	l.recvMu.Lock()
	defer l.recvMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	// Cancellation: a past read deadline wakes the poller wait. The
	// deadline is cleared again before the next Recv (recvMu held).
	if dl, ok := ctx.Deadline(); ok {
		l.file.SetReadDeadline(dl)
	}
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		l.file.SetReadDeadline(time.Unix(1, 0))
		close(cancelled)
	})
	defer func() {
		if !stop() {
			<-cancelled // the deadline write must not land after the reset below
		}
		l.file.SetReadDeadline(time.Time{})
	}()

	opErr, err := l.readNotif(n)
	switch {
	case err == nil:
		return opErr
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return context.DeadlineExceeded
	}
	return fmt.Errorf("seccomp recv: %w", l.closedErr(err))
}

var errNotReady = errors.New("not ready")

// recvReady checks readiness with a zero-timeout poll and receives only when
// a notification is pending. It returns errNotReady to wait in the poller.
func recvReady(fd int, n *Notif) error {
	for {
		pfd := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		c, err := unix.Poll(pfd[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("seccomp recv: poll: %w", err)
		}
		if c == 0 {
			return errNotReady
		}
		ev := pfd[0].Revents
		switch {
		case ev&unix.POLLIN != 0:
		case ev&unix.POLLHUP != 0:
			return fmt.Errorf("%w: filter has no users left", ErrTargetGone)
		default:
			return fmt.Errorf("seccomp recv: poll revents %#x", ev)
		}
		// The kernel rejects a non-zeroed buffer with EINVAL.
		*n = Notif{}
		err = ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n))
		if err == nil {
			return nil
		}
		// ENOENT: the notification vanished between poll and RECV (its
		// task was killed). Others may still be pending, so poll again
		// rather than wait for an edge that may not come.
		if err == unix.ENOENT || err == unix.EINTR {
			continue
		}
		return fmt.Errorf("seccomp ioctl(NOTIF_RECV): %w", err)
	}
}

// Respond completes the syscall: with errno == 0 it returns val, otherwise
// it fails with errno (val ignored).
func (l *Listener) Respond(id uint64, val int64, errno unix.Errno) error {
	r := notifResp{ID: id, Val: val, Error: -int32(errno)}
	if errno != 0 {
		r.Val = 0
	}
	return l.send(&r, "respond")
}

// Continue lets the kernel execute the syscall as if it had not been
// filtered (SECCOMP_USER_NOTIF_FLAG_CONTINUE). Only safe for decisions that
// do not depend on target memory (which the target may change meanwhile).
func (l *Listener) Continue(id uint64) error {
	r := notifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	return l.send(&r, "continue")
}

func (l *Listener) send(r *notifResp, what string) error {
	if err := l.ioctl(unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(r)); err != nil {
		return wrapNotifErr("seccomp "+what, r.ID, err)
	}
	return nil
}

// IDValid reports whether notification id is still pending: nil if so,
// ErrTargetGone if the target died or its syscall was interrupted.
func (l *Listener) IDValid(id uint64) error {
	if err := l.ioctl(unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)); err != nil {
		return wrapNotifErr("seccomp id_valid", id, err)
	}
	return nil
}

// AddFD installs a duplicate of srcfd in the target at the lowest free
// number, with newfdFlags (0 or unix.O_CLOEXEC). With send, the target's
// syscall completes with the new fd as its return value (the notification
// is answered; do not Respond). It returns the fd number in the target.
func (l *Listener) AddFD(id uint64, srcfd int, newfdFlags int, send bool) (int, error) {
	a := notifAddFD{ID: id, SrcFD: uint32(srcfd), NewFDFlags: uint32(newfdFlags)}
	if send {
		a.Flags = unix.SECCOMP_ADDFD_FLAG_SEND
	}
	return l.addFD(&a)
}

// AddFDAt installs a duplicate of srcfd as targetFd in the target, closing
// whatever targetFd was (like dup3). The notification stays pending.
func (l *Listener) AddFDAt(id uint64, srcfd, targetFd int, newfdFlags int) (int, error) {
	if targetFd < 0 {
		return -1, fmt.Errorf("seccomp addfd: target fd %d: %w", targetFd, unix.EBADF)
	}
	a := notifAddFD{ID: id, Flags: unix.SECCOMP_ADDFD_FLAG_SETFD, SrcFD: uint32(srcfd),
		NewFD: uint32(targetFd), NewFDFlags: uint32(newfdFlags)}
	return l.addFD(&a)
}

func (l *Listener) addFD(a *notifAddFD) (int, error) {
	var fd uintptr
	var errno unix.Errno
	err := l.raw.Control(func(lfd uintptr) {
		fd, errno = addFDSignalsBlocked(lfd, a)
	})
	if err != nil {
		return -1, l.closedErr(err)
	}
	if errno != 0 {
		return -1, wrapNotifErr("seccomp addfd", a.ID, errno)
	}
	return int(fd), nil
}

// addFDSignalsBlocked runs NOTIF_ADDFD with every signal blocked on the
// thread. ADDFD waits (interruptibly) for the target to install the fd; a
// signal ending that wait withdraws the request, but with
// SECCOMP_ADDFD_FLAG_SEND the notification is already marked answered, so
// the target's syscall returns 0 (its fd 0, not the new socket) and the
// restarted ioctl fails. Any signal can land on this thread (a
// process-directed one the runtime handles, such as SIGWINCH or SIGCHLD,
// or the runtime's own preemption signal): blocked, it waits until the
// ioctl returns.
func addFDSignalsBlocked(lfd uintptr, a *notifAddFD) (uintptr, unix.Errno) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	all := ^uint64(0)
	var old uint64
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&all)), uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
		return 0, e
	}
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, lfd, unix.SECCOMP_IOCTL_NOTIF_ADDFD, uintptr(unsafe.Pointer(a)))
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	return fd, errno
}

func (l *Listener) ioctl(req uint, arg unsafe.Pointer) error {
	var err error
	cerr := l.raw.Control(func(fd uintptr) { err = ioctl(int(fd), req, arg) })
	if cerr != nil {
		return l.closedErr(cerr)
	}
	return err
}

func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

func (l *Listener) closedErr(err error) error {
	if l.closed.Load() || errors.Is(err, os.ErrClosed) {
		return ErrListenerClosed
	}
	return err
}

func wrapNotifErr(what string, id uint64, err error) error {
	if err == unix.ENOENT {
		return fmt.Errorf("%s id %#x: %w", what, id, ErrTargetGone)
	}
	return fmt.Errorf("%s id %#x: %w", what, id, err)
}

// Dup returns a new close-on-exec fd for the same notification file, for
// handing the listener to another process with SCM_RIGHTS (the stack
// process of a sandbox). The caller owns the new fd.
func (l *Listener) Dup() (int, error) {
	var nfd int
	var derr error
	if err := l.raw.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, l.closedErr(err)
	}
	if derr != nil {
		return -1, fmt.Errorf("seccomp listener: dup: %w", derr)
	}
	return nfd, nil
}

// readNotif waits in the runtime poller until a notification can be
// received into n: opErr is the receive's own result, err the poller's
// (a deadline, a closed listener).
func (l *Listener) readNotif(n *Notif) (opErr, err error) {
	err = l.raw.Read(func(fd uintptr) bool {
		opErr = recvReady(int(fd), n)
		return opErr != errNotReady
	})
	return opErr, err
}
