package socketshim

import (
	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/socketshim/seccomp"
)

// Filter is the seccomp filter for a program served by a Server: socket()
// for AF_INET and AF_INET6 only (other families go to the kernel without a
// trap), the other served calls unconditionally (they carry an fd, which
// only the Server can identify) except sendto/recvfrom without an
// address, ioctl only for socket requests, io_uring
// refused with ENOSYS (by the builder), everything else allowed.
func Filter() seccomp.Filter {
	notify := func(nr int) seccomp.Rule { return seccomp.Rule{Syscall: nr, Action: seccomp.ActNotify} }
	return seccomp.Filter{Rules: []seccomp.Rule{
		inetSocketRule(),
		notify(unix.SYS_BIND),
		notify(unix.SYS_LISTEN),
		notify(unix.SYS_CONNECT),
		notify(unix.SYS_ACCEPT),
		notify(unix.SYS_ACCEPT4),
		notify(unix.SYS_GETSOCKNAME),
		notify(unix.SYS_GETPEERNAME),
		notify(unix.SYS_SETSOCKOPT),
		notify(unix.SYS_GETSOCKOPT),
		notify(unix.SYS_SHUTDOWN),
		// send() and recv() are sendto/recvfrom without an address (all
		// 64 bits of the pointer zero): the data path, left to the
		// conduit. An address must never reach the conduit's kernel
		// socket (a UDP conduit would send to it in the conduit
		// namespace).
		{Syscall: unix.SYS_SENDTO, Action: seccomp.ActAllow,
			Arg: &seccomp.ArgMatch{Index: 4, Wide: true, Values: []uint32{0}, Else: seccomp.ActNotify}},
		{Syscall: unix.SYS_RECVFROM, Action: seccomp.ActAllow,
			Arg: &seccomp.ArgMatch{Index: 4, Wide: true, Values: []uint32{0}, Else: seccomp.ActNotify}},
		notify(unix.SYS_SENDMSG),
		notify(unix.SYS_RECVMSG),
		notify(unix.SYS_SENDMMSG),
		notify(unix.SYS_RECVMMSG),
		{Syscall: unix.SYS_IOCTL, Action: seccomp.ActNotify, Arg: &seccomp.ArgMatch{
			Index:  1,
			Values: []uint32{reqFIONREAD, reqSIOCOUTQ},
			Ranges: []seccomp.ArgRange{{Lo: sockIoctlFirst, Hi: sockIoctlLast}},
		}},
	}}
}

// PassthroughFilter is the filter for a provider whose sockets are all
// pass-through (provider/host: real kernel sockets injected by socket()):
// only socket() for AF_INET and AF_INET6 traps. The Server would continue
// every later call on such a socket unchanged, so trapping them would only
// cost a round trip each.
func PassthroughFilter() seccomp.Filter {
	return seccomp.Filter{Rules: []seccomp.Rule{inetSocketRule()}}
}

// inetSocketRule traps socket() for the families the Server serves; other
// families go to the kernel without a trap.
func inetSocketRule() seccomp.Rule {
	return seccomp.Rule{Syscall: unix.SYS_SOCKET, Action: seccomp.ActNotify,
		Arg: &seccomp.ArgMatch{Index: 0, Values: []uint32{unix.AF_INET, unix.AF_INET6}}}
}
