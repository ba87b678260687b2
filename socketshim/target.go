package socketshim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/socketshim/seccomp"
)

// errNotSocket means the target's fd is closed or is not a socket: the
// kernel gives the right errno (EBADF, ENOTSOCK) when the call continues.
var errNotSocket = errors.New("socketshim: fd is not a socket")

// fdInode returns the sockfs inode behind fd in task tid, from the
// "socket:[ino]" link in /proc. Only this identifies a socket across fork,
// dup and SCM_RIGHTS.
func fdInode(tid uint32, fd int) (uint64, error) {
	if fd < 0 {
		return 0, errNotSocket
	}
	var buf [64]byte
	path := procPath(tid, "fd", fd)
	n, err := unix.Readlink(path, buf[:])
	if err != nil {
		if err == unix.ENOENT {
			return 0, errNotSocket
		}
		return 0, fmt.Errorf("readlink %s: %w", path, err)
	}
	return parseSocketLink(buf[:n])
}

// parseSocketLink parses "socket:[12345]".
func parseSocketLink(b []byte) (uint64, error) {
	const prefix = "socket:["
	if !bytes.HasPrefix(b, []byte(prefix)) || len(b) < len(prefix)+2 || b[len(b)-1] != ']' {
		return 0, errNotSocket
	}
	ino, err := strconv.ParseUint(string(b[len(prefix):len(b)-1]), 10, 64)
	if err != nil {
		return 0, errNotSocket
	}
	return ino, nil
}

// fdStatusFlags returns the file status flags (O_NONBLOCK, ...) of fd in
// task tid from /proc/<tid>/fdinfo/<fd> ("flags:\t0104002", octal).
func fdStatusFlags(tid uint32, fd int) (int, error) {
	b, err := os.ReadFile(procPath(tid, "fdinfo", fd))
	if err != nil {
		return 0, fmt.Errorf("fd flags: %w", err)
	}
	return parseFdinfoFlags(b)
}

func parseFdinfoFlags(b []byte) (int, error) {
	v, ok := procField(b, "flags:")
	if !ok {
		return 0, errors.New("fdinfo has no flags line")
	}
	f, err := strconv.ParseUint(v, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("fdinfo flags %q: %w", v, err)
	}
	return int(f), nil
}

// procField returns the value of the first line of a /proc key-value file
// (status, fdinfo) that starts with key, trimmed.
func procField(b []byte, key string) (string, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if v, ok := bytes.CutPrefix(line, []byte(key)); ok {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}

// tgidOf returns the thread group (process) id of task tid.
func tgidOf(tid uint32) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("Tgid:")); ok {
			return strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	return 0, errors.New("no Tgid in status")
}

// signalThread delivers sig to task tid like the kernel's send_sig to
// current (SIGPIPE on a broken stream).
func signalThread(tid uint32, sig unix.Signal) error {
	tgid, err := tgidOf(tid)
	if err != nil {
		return err
	}
	return unix.Tgkill(tgid, int(tid), sig)
}

func procPath(tid uint32, dir string, fd int) string {
	return "/proc/" + strconv.FormatUint(uint64(tid), 10) + "/" + dir + "/" + strconv.Itoa(fd)
}

// pidfdThread is PIDFD_THREAD (= O_EXCL, Linux 6.9): a pidfd for one
// thread rather than its thread group, so pidfd_getfd reads that thread's
// fd table (the one its syscall uses) without first finding its tgid.
const pidfdThread = unix.O_EXCL

// openTaskPidfd opens a pidfd for task tid: a thread pidfd (thread is
// true) where the kernel has them, else, or with processOnly, one for its
// thread group (from /proc). A tid that no longer exists gives ESRCH.
func openTaskPidfd(tid uint32, processOnly bool) (pidfd int, thread bool, err error) {
	if !processOnly {
		pidfd, err := unix.PidfdOpen(int(tid), pidfdThread)
		if err != unix.EINVAL {
			if err != nil {
				return -1, false, fmt.Errorf("pidfd_open %d: %w", tid, err)
			}
			return pidfd, true, nil
		}
	}
	tgid, err := tgidOf(tid)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			err = unix.ESRCH
		}
		return -1, false, fmt.Errorf("task %d: %w", tid, err)
	}
	pidfd, err = unix.PidfdOpen(tgid, 0)
	if err != nil {
		return -1, false, fmt.Errorf("pidfd_open %d: %w", tgid, err)
	}
	return pidfd, false, nil
}

// taskFiles reaches the fds of the sandbox's tasks through pidfds, one per
// task, kept open across calls: identifying the socket behind a trapped
// call's fd is then pidfd_getfd + fstat (+ close of the copy), with no
// /proc path walk, and the copy also answers fcntl(F_GETFL) for
// O_NONBLOCK. A thread pidfd (PIDFD_THREAD) names one thread for good
// (never a later task with the same number), so a cached one either
// reaches the task that made the call or fails with ESRCH once that task
// is dead; a new one is trusted only after the notification is found
// still pending (the task was alive with that number when the pidfd was
// opened).
//
// Without PIDFD_THREAD (Linux < 6.9) a pidfd names a thread group and
// stays valid while any of its threads lives: cached under a thread's id
// it would, once that thread has exited and its id has gone to a task of
// another process, reach the wrong process's fd table. Such pidfds are
// therefore not cached: each call resolves its thread's group (/proc),
// opens a pidfd for it, checks that the notification is still pending
// (so the thread, and with it the group, was alive under those numbers)
// and closes the pidfd after the copy. There the group leader's fd table
// is the one read, which differs from the thread's only after
// unshare(CLONE_FILES) in a thread.
type taskFiles struct {
	mu     sync.Mutex
	pidfds map[uint32]int // thread id → thread pidfd
	// processPidfds forces the fallback without PIDFD_THREAD (tests).
	processPidfds bool
}

// maxTaskPidfds bounds the cache; beyond it every entry is dropped (dead
// tasks are pruned by the sweep, see prune).
const maxTaskPidfds = 4096

// fdCopy returns a copy of fd of task tid, the task of a notification
// that pending checks (IDValid) is still pending; EBADF if the task has no
// such fd.
func (t *taskFiles) fdCopy(pending func() error, tid uint32, fd int) (int, error) {
	if fd < 0 {
		return -1, unix.EBADF
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if pidfd, ok := t.pidfds[tid]; ok {
		nfd, err := unix.PidfdGetfd(pidfd, fd, 0)
		if err != unix.ESRCH {
			return nfd, err
		}
		// That task is dead: tid is another task's now.
		unix.Close(pidfd)
		delete(t.pidfds, tid)
	}
	pidfd, thread, err := openTaskPidfd(tid, t.processPidfds)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return -1, seccomp.ErrTargetGone
		}
		return -1, err
	}
	if err := pending(); err != nil {
		unix.Close(pidfd)
		return -1, err
	}
	if !thread {
		defer unix.Close(pidfd)
		return unix.PidfdGetfd(pidfd, fd, 0)
	}
	if t.pidfds == nil || len(t.pidfds) >= maxTaskPidfds {
		t.closeAllLocked()
		t.pidfds = map[uint32]int{}
	}
	t.pidfds[tid] = pidfd
	return unix.PidfdGetfd(pidfd, fd, 0)
}

// prune closes the pidfds of tasks that have exited (readable pidfd).
func (t *taskFiles) prune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pidfds) == 0 {
		return
	}
	pfds := make([]unix.PollFd, 0, len(t.pidfds))
	for _, pidfd := range t.pidfds {
		pfds = append(pfds, unix.PollFd{Fd: int32(pidfd), Events: unix.POLLIN})
	}
	if _, err := unix.Poll(pfds, 0); err != nil {
		return
	}
	dead := map[int32]bool{}
	for _, p := range pfds {
		if p.Revents != 0 {
			dead[p.Fd] = true
		}
	}
	for tid, pidfd := range t.pidfds {
		if dead[int32(pidfd)] {
			unix.Close(pidfd)
			delete(t.pidfds, tid)
		}
	}
}

func (t *taskFiles) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closeAllLocked()
}

func (t *taskFiles) closeAllLocked() {
	for tid, pidfd := range t.pidfds {
		unix.Close(pidfd)
		delete(t.pidfds, tid)
	}
}

// socketInode returns the inode of the socket open as fd (a copy of the
// target's), or errNotSocket.
func socketInode(fd int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("fstat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return 0, errNotSocket
	}
	return st.Ino, nil
}

// signalPending reports whether a signal the thread does not block is
// pending for task tid, from /proc/<tid>/status. With killable waits
// (seccomp.InstallWaitKillableRecv) such a signal does not end the
// target's wait for the answer, so the Server ends a blocking call itself
// (answering ERESTARTSYS, which the kernel's signal code turns into a
// restart or EINTR). A thread-directed signal (SigPnd) is the thread's; a
// process-directed one (ShdPnd) is known to be this thread's only in a
// single-threaded process: in a multi-threaded one the kernel may have
// picked another thread (complete_signal), and an ERESTARTSYS answer
// without TIF_SIGPENDING on this thread would reach the program as errno
// 512, so such a signal leaves the call blocked, as it does on Linux when
// another thread takes the signal.
func signalPending(tid uint32) bool {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return false
	}
	return parseSignalPending(b)
}

func parseSignalPending(b []byte) bool {
	var thread, shared, blocked uint64
	threads := 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		val = bytes.TrimSpace(val)
		switch string(key) {
		case "Threads":
			threads, _ = strconv.Atoi(string(val))
		case "SigPnd":
			thread, _ = strconv.ParseUint(string(val), 16, 64)
		case "ShdPnd":
			shared, _ = strconv.ParseUint(string(val), 16, 64)
		case "SigBlk":
			blocked, _ = strconv.ParseUint(string(val), 16, 64)
		}
	}
	pending := thread
	if threads == 1 {
		pending |= shared
	}
	return pending&^blocked != 0
}
