// Package seccomp is the low-level seccomp user-notification layer the socket
// shim is built on: the kernel ABI structs golang.org/x/sys/unix lacks, a
// classic-BPF filter builder for x86_64, filter installation with
// SECCOMP_FILTER_FLAG_NEW_LISTENER, the stage protocol that hands a listener
// from a re-exec'ed child to its supervisor, the notification Listener
// (RECV/SEND/ID_VALID/ADDFD) and TOCTOU-safe access to the target's memory.
//
// It knows nothing about the userspace network stack. Mechanics it relies on
// were verified on the project's kernel (see shared/notes/feasibility.md §4-5):
//
//   - NOTIF_RECV blocks forever once the target is gone, so Recv polls for
//     POLLIN first and reports POLLHUP (filter has no users) as ErrTargetGone.
//   - The seccomp_notif buffer must be zeroed before NOTIF_RECV.
//   - Data read from the target is only trusted after NOTIF_ID_VALID.
//   - ENOENT from SEND/ADDFD/ID_VALID means the target died or the
//     syscall was interrupted: ErrTargetGone.
//   - A task can have one listener in its filter chain; a second
//     NEW_LISTENER fails with EBUSY.
package seccomp
