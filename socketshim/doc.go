// Package socketshim serves a sandboxed program's socket control calls from
// a provider.Provider: a Server owns a seccomp notification Listener,
// decodes each trapped syscall's arguments (x86_64) from the target's
// memory, calls the provider, writes results back and answers the kernel.
// Sockets made by the provider reach the target as real fds (ADDFD), so the
// data path — read, write, send, recv, poll, epoll, close — runs natively.
//
// Identity. A socket is found by the file behind the target's fd (its
// inode, from fstat of a pidfd_getfd copy; see target.go), never by (pid,
// fd), so fork, dup and SCM_RIGHTS keep working. Fds that are not ours,
// and passthrough sockets (the host provider's kernel sockets), are
// answered with CONTINUE: the kernel runs the call as if it had not been
// trapped.
//
// Cgroup-v1 socket tags. The copy pidfd_getfd makes is a received file,
// and the kernel's __receive_sock re-tags a received socket with the
// receiver's (here the Server's) net_cls classid and net_prio index, as
// for a socket passed with SCM_RIGHTS. Every socket a trapped call is
// made on gets this, native ones (AF_UNIX, netlink, the host provider's
// passthrough sockets) included, while any socket is served. This is
// accepted because it changes nothing in the usual set-ups: net_cls and
// net_prio exist only in cgroup v1 (cgroup v2 has neither controller, and
// the v2 cgroup of a socket is set when it is created and is not touched
// by __receive_sock), and the tags only change when the Server's differ
// from the target's, while `netprov run` starts the target as its own
// child, in its cgroups. Where a cgroup-v1 host moves the sandboxed
// program into another net_cls or net_prio cgroup than the Server's (tc
// or iptables matching its classid, a per-cgroup ifpriomap), its native
// sockets would be classified as the Server's after their first trapped
// call: run the Server in the same net_cls/net_prio cgroups as the
// program there. Served sockets carry no traffic of their own (their
// packets are the provider's), so their tags do not matter.
//
// Privileges. Interface ioctls run on a socket of the served socket's
// family that the Server makes in the target's network namespace, i.e.
// with the Server's privileges; those Linux reserves to CAP_NET_ADMIN
// over that namespace are answered EPERM unless the calling thread has it
// (see netadmin.go; a thread in another user namespace than the one
// owning the network namespace, or an ancestor of it, is refused).
//
// Interruption. While a call may block, the Server polls NOTIF_ID_VALID;
// once the target's syscall is interrupted (or the target dies) the
// provider call's context is cancelled. The kernel has then already
// finished the syscall by itself: seccomp's wait for the supervisor is
// wait_for_completion_interruptible, whose -ERESTARTSYS the kernel stores
// as the syscall's return value, so the signal code restarts the call
// (SA_RESTART) or turns it into EINTR exactly as for a native blocking
// call, and a restarted call is trapped again as a new notification. A
// seccomp response can therefore never usefully carry ERESTARTSYS: the
// kernel accepts any error value in SECCOMP_IOCTL_NOTIF_SEND, but restart
// codes are only translated when a signal is pending, otherwise errno 512
// would leak to the program. The Server maps a provider's ERESTARTSYS on a
// still-live notification to EINTR. Results that cannot be handed over
// because the target went away (an accepted connection, a received
// datagram) are kept and given to the next call on the same socket.
//
// Killable waits. With seccomp.InstallWaitKillableRecv (what `netprov
// run` installs; SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, Linux 5.19+) the
// target's wait turns killable once the Server has received the
// notification: a signal arriving while a call is served no longer ends
// it, so calls that never block on Linux (setsockopt, a non-blocking
// recvmsg) are not failed with EINTR or restarted behind the program's
// back. Blocking calls still need interrupting: while one waits, the
// Server also polls /proc/<tid>/status and, once a signal the thread does
// not block is pending for it (signalPending), cancels the provider call
// and answers ERESTARTSYS (the provider's sock_intr_errno: EINTR instead
// when a timeout is set). The signal is pending, so the kernel's signal
// code translates the answer exactly as for a native call: restart under
// SA_RESTART or after a stop, EINTR otherwise. A process-directed signal
// in a multi-threaded process does not count (the kernel may have given
// it to another thread, and an ERESTARTSYS answer to a thread without
// TIF_SIGPENDING would reach the program as errno 512); the call then
// stays blocked, as on Linux when another thread takes the signal. A
// connect that completed for a call interrupted meanwhile makes the next
// connect on the socket return 0 instead of EISCONN (SS_CONNECTING).
// Until the Server has received a notification the wait stays
// interruptible, so a signal in that window (the supervisor's wake-up
// latency) still fails or restarts a call that never blocks on Linux;
// killable waits roughly halve such EINTRs (TestRunServedCallsInterrupted-
// LikeLinux in cmd/netprov logs the count; SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
// which the Server sets, did not change it measurably).
//
// Closing is not trapped: the provider sees the target's last close of the
// conduit as EOF/HUP on its own end.
package socketshim
