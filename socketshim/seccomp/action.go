package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Action is what the filter does with a syscall. The zero value is ActAllow.
// An errno action carries the errno in the upper 16 bits.
type Action uint32

const (
	// ActAllow lets the kernel run the syscall.
	ActAllow Action = iota
	// ActNotify sends the syscall to the listener (SECCOMP_RET_USER_NOTIF).
	ActNotify
	// ActKillProcess kills the whole process (SECCOMP_RET_KILL_PROCESS).
	ActKillProcess
	actErrno
)

// ActErrno fails the syscall with errno without running it.
func ActErrno(errno unix.Errno) Action {
	return actErrno | Action(uint32(errno)&unix.SECCOMP_RET_DATA)<<16
}

func (a Action) kind() Action { return a & 0xffff }

// Errno returns the errno of an ActErrno action (0 otherwise).
func (a Action) Errno() unix.Errno {
	if a.kind() != actErrno {
		return 0
	}
	return unix.Errno(a >> 16)
}

// Ret is the filter return value (SECCOMP_RET_*) for the action.
func (a Action) Ret() uint32 {
	switch a.kind() {
	case ActAllow:
		return unix.SECCOMP_RET_ALLOW
	case ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF
	case ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS
	case actErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(a>>16)
	}
	// Unknown kinds are rejected by Filter.Build; fail closed if one slips by.
	return unix.SECCOMP_RET_KILL_PROCESS
}

func (a Action) valid() bool { return a.kind() <= actErrno }

func (a Action) String() string {
	switch a.kind() {
	case ActAllow:
		return "allow"
	case ActNotify:
		return "notify"
	case ActKillProcess:
		return "kill_process"
	case actErrno:
		return fmt.Sprintf("errno(%s)", unix.ErrnoName(a.Errno()))
	}
	return fmt.Sprintf("action(%#x)", uint32(a))
}

// RetString names a raw filter return value, for dumps and test messages.
func RetString(ret uint32) string {
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "ALLOW"
	case unix.SECCOMP_RET_USER_NOTIF:
		return "USER_NOTIF"
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "KILL_PROCESS"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "KILL_THREAD"
	case unix.SECCOMP_RET_ERRNO:
		e := unix.Errno(ret & unix.SECCOMP_RET_DATA)
		if n := unix.ErrnoName(e); n != "" {
			return "ERRNO(" + n + ")"
		}
		return fmt.Sprintf("ERRNO(%d)", uint32(e))
	case unix.SECCOMP_RET_TRAP:
		return "TRAP"
	case unix.SECCOMP_RET_TRACE:
		return "TRACE"
	case unix.SECCOMP_RET_LOG:
		return "LOG"
	}
	return fmt.Sprintf("RET(%#x)", ret)
}
