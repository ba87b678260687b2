package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// InstallFlags modify InstallFilter.
type InstallFlags uint

const (
	// InstallNoNewPrivs always sets PR_SET_NO_NEW_PRIVS first. Without it,
	// no_new_privs is set only when the thread lacks CAP_SYS_ADMIN (the
	// kernel refuses the filter with EACCES in that case otherwise).
	InstallNoNewPrivs InstallFlags = 1 << iota
	// InstallWaitKillableRecv adds SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	// (Linux 5.19+, ignored where the kernel refuses it): once the
	// supervisor has received a notification, the target waits for the
	// answer killably, so a signal no longer ends the wait by itself (the
	// call would fail with EINTR, or restart, even if it never blocks on
	// Linux); the supervisor decides instead (socketshim: a blocking call
	// is answered ERESTARTSYS when a signal is pending for the thread).
	InstallWaitKillableRecv
)

// InstallFilter installs prog on the calling OS thread with
// SECCOMP_FILTER_FLAG_NEW_LISTENER and returns the listener fd (O_CLOEXEC).
//
// The filter applies to this thread and to threads and processes it creates
// afterwards, so the caller must have called runtime.LockOSThread and do the
// work to be filtered (typically unix.Exec) on this thread. A task can have
// only one listener in its filter chain: installing under a filter that
// already has one fails with EBUSY.
func InstallFilter(prog []unix.SockFilter, flags InstallFlags) (int, error) {
	if err := CheckABI(); err != nil {
		return -1, err
	}
	if len(prog) == 0 || len(prog) > maxProgramLen {
		return -1, fmt.Errorf("install seccomp filter: %d instructions: %w", len(prog), unix.EINVAL)
	}
	if flags&InstallNoNewPrivs != 0 || !hasCapSysAdmin() {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return -1, fmt.Errorf("install seccomp filter: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	mode := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	if flags&InstallWaitKillableRecv != 0 {
		mode |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, mode, uintptr(unsafe.Pointer(&fprog)))
	if errno == unix.EINVAL && mode != unix.SECCOMP_FILTER_FLAG_NEW_LISTENER {
		// A kernel before 5.19: interruptible waits, as without the flag.
		fd, _, errno = unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
			unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	}
	runtime.KeepAlive(prog)
	if errno != 0 {
		if errno == unix.EBUSY {
			return -1, fmt.Errorf("install seccomp filter: a listener already exists in this task's filter chain: %w", errno)
		}
		return -1, fmt.Errorf("install seccomp filter (SET_MODE_FILTER, NEW_LISTENER): %w", errno)
	}
	return int(fd), nil
}

// hasCapSysAdmin reports whether the calling thread has CAP_SYS_ADMIN in its
// effective set. On error it answers false, which only costs setting
// no_new_privs.
func hasCapSysAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	const bit = unix.CAP_SYS_ADMIN
	return data[bit/32].Effective&(1<<(bit%32)) != 0
}
