package seccomp

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrInterrupted is returned by Waiter.Recv after Interrupt.
var ErrInterrupted = errors.New("seccomp: receive interrupted")

// Waiter is a receiving loop's end of a Listener: Recv without a context
// per call (Listener.Recv arms and disarms a cancellation each time),
// cancelled for good by Interrupt. It waits in the runtime poller like
// Recv: a thread of our own blocked in poll(2) was measured slower on a
// busy machine (BenchmarkTrappedCall: the runtime hands the P of a thread
// blocked in a system call to another thread, and the wake-up has to get
// one back), while the poller's spinning threads see the notification at
// once.
type Waiter struct {
	l           *Listener
	interrupted atomic.Bool
}

// NewWaiter makes a Waiter for l; one at a time (Interrupt sets the
// listener's read deadline, which a new Waiter clears).
func (l *Listener) NewWaiter() (*Waiter, error) {
	if l.closed.Load() {
		return nil, ErrListenerClosed
	}
	if err := l.file.SetReadDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("seccomp waiter: %w", l.closedErr(err))
	}
	return &Waiter{l: l}, nil
}

// Interrupt makes the current and every later Recv return ErrInterrupted
// (a Recv of the Listener's own also returns, with a deadline error). It
// may be called from any goroutine, any number of times.
func (w *Waiter) Interrupt() {
	w.interrupted.Store(true)
	w.l.file.SetReadDeadline(time.Unix(1, 0))
}

// Close releases the Waiter.
func (w *Waiter) Close() {}

// Recv waits until a notification is pending and receives it into n. It
// returns ErrTargetGone (wrapped) when the filter has no users left,
// ErrInterrupted after Interrupt and ErrListenerClosed after the
// Listener's Close.
func (w *Waiter) Recv(n *Notif) error {
	l := w.l
	l.recvMu.Lock()
	defer l.recvMu.Unlock()
	if w.interrupted.Load() {
		return ErrInterrupted
	}
	opErr, err := l.readNotif(n)
	switch {
	case err == nil:
		return opErr
	case w.interrupted.Load():
		return ErrInterrupted
	}
	return fmt.Errorf("seccomp recv: %w", l.closedErr(err))
}

// SetSyncWakeUp sets SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6+): a
// trapping target wakes the supervisor's receiving thread on its own CPU,
// and the answer wakes the target on the supervisor's, so the two hand
// the CPU to each other like a synchronous call instead of waking a task
// on another CPU each way. It is only a scheduling hint; an older kernel
// answers EINVAL and nothing changes.
func (l *Listener) SetSyncWakeUp() error {
	var err error
	cerr := l.raw.Control(func(fd uintptr) {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
		if e != 0 {
			err = e
		}
	})
	if cerr != nil {
		return l.closedErr(cerr)
	}
	if err != nil {
		return fmt.Errorf("seccomp ioctl(NOTIF_SET_FLAGS, SYNC_WAKE_UP): %w", err)
	}
	return nil
}
