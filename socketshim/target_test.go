package socketshim

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/socketshim/seccomp"
)

// TestTaskFilesFdCopy: a task's fd is reached through a cached pidfd: the
// copy is the task's socket (same inode), a closed fd is EBADF, a
// non-socket is errNotSocket; a pidfd is trusted only once the
// notification is found pending; once the task is dead its pidfd fails
// (ErrTargetGone) and prune drops it.
func TestTaskFilesFdCopy(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	var want unix.Stat_t
	if err := unix.Fstat(fds[0], &want); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "pair")
	cmd := exec.Command("sleep", "30")
	cmd.ExtraFiles = []*os.File{f} // fd 3 in the child
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	f.Close()
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	tid := uint32(cmd.Process.Pid)
	var tf taskFiles
	defer tf.close()

	gone := func() error { return seccomp.ErrTargetGone }
	if _, err := tf.fdCopy(gone, tid, 3); !errors.Is(err, seccomp.ErrTargetGone) {
		t.Errorf("fdCopy with the notification gone = %v, want ErrTargetGone", err)
	}
	if len(tf.pidfds) != 0 {
		t.Errorf("a pidfd opened for a gone notification was cached")
	}

	checks := 0
	pending := func() error { checks++; return nil }
	cp, err := tf.fdCopy(pending, tid, 3)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
			t.Skipf("pidfd_getfd: %v", err)
		}
		t.Fatalf("fdCopy: %v", err)
	}
	ino, err := socketInode(cp)
	unix.Close(cp)
	if err != nil || ino != want.Ino {
		t.Errorf("socketInode(copy of the child's fd 3) = %d, %v; want %d", ino, err, want.Ino)
	}
	if cp2, err := tf.fdCopy(pending, tid, 3); err != nil {
		t.Errorf("second fdCopy: %v", err)
	} else {
		ino2, _ := socketInode(cp2)
		unix.Close(cp2)
		if ino2 != ino {
			t.Errorf("second copy inode %d, first %d", ino2, ino)
		}
	}
	if checks != 1 {
		t.Errorf("notification checked %d times, want once (when the pidfd was opened)", checks)
	}
	if _, err := tf.fdCopy(pending, tid, 77); err != unix.EBADF {
		t.Errorf("fdCopy(closed fd) = %v, want EBADF", err)
	}
	if cp, err := tf.fdCopy(pending, tid, 0); err != nil {
		t.Errorf("fdCopy(stdin): %v", err)
	} else {
		if _, err := socketInode(cp); !errors.Is(err, errNotSocket) {
			t.Errorf("socketInode(stdin copy) = %v, want errNotSocket", err)
		}
		unix.Close(cp)
	}

	cmd.Process.Kill()
	cmd.Wait()
	exited = true
	if _, err := tf.fdCopy(pending, tid, 3); !errors.Is(err, seccomp.ErrTargetGone) && !errors.Is(err, unix.ESRCH) {
		t.Errorf("fdCopy after the task died = %v, want ErrTargetGone", err)
	}
	tf.prune()
	if len(tf.pidfds) != 0 {
		t.Errorf("%d pidfds left after prune, want 0", len(tf.pidfds))
	}
}

// TestTaskFilesWithoutThreadPidfds: without PIDFD_THREAD (forced here) a
// pidfd names the whole thread group, so one opened for a thread must not
// be kept under that thread's id: once the thread has exited (and its id
// may go to a task of another process) a call under that id must not be
// served from the old process's fd table. The exited thread's id now
// gives ErrTargetGone, and nothing is cached.
func TestTaskFilesWithoutThreadPidfds(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	var want unix.Stat_t
	if err := unix.Fstat(fds[0], &want); err != nil {
		t.Fatal(err)
	}
	tf := taskFiles{processPidfds: true}
	defer tf.close()
	pending := func() error { return nil }

	// A thread of this process that lives until told to exit.
	// (Not the main thread: the runtime parks that one instead of ending
	// it. Locking this goroutine keeps the new one off its thread.)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tidCh, exit, exited := make(chan uint32), make(chan struct{}), make(chan struct{})
	var tid uint32
	for range 20 {
		go func() {
			runtime.LockOSThread()
			if unix.Gettid() == unix.Getpid() {
				runtime.UnlockOSThread()
				tidCh <- 0
				return
			}
			// Never unlocked: the thread exits with the goroutine.
			tidCh <- uint32(unix.Gettid())
			<-exit
		}()
		if tid = <-tidCh; tid != 0 {
			break
		}
	}
	if tid == 0 {
		t.Skip("no thread other than the main one")
	}
	// A thread pidfd, where the kernel has them, to see the thread exit.
	watch, werr := unix.PidfdOpen(int(tid), pidfdThread)

	cp, err := tf.fdCopy(pending, tid, fds[0])
	if err != nil {
		close(exit)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
			t.Skipf("pidfd_getfd: %v", err)
		}
		t.Fatalf("fdCopy: %v", err)
	}
	ino, err := socketInode(cp)
	unix.Close(cp)
	if err != nil || ino != want.Ino {
		t.Errorf("copy of fd %d through thread %d: inode %d, %v; want %d", fds[0], tid, ino, err, want.Ino)
	}
	if n := len(tf.pidfds); n != 0 {
		t.Errorf("%d process pidfds cached under thread ids, want none", n)
	}

	close(exit)
	go func() {
		defer close(exited)
		if werr == nil {
			defer unix.Close(watch)
			unix.Poll([]unix.PollFd{{Fd: int32(watch), Events: unix.POLLIN}}, 5000)
		}
		for i := 0; i < 500; i++ { // bounded: 5 s
			if _, err := os.Stat("/proc/self/task/" + strconv.FormatUint(uint64(tid), 10)); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	<-exited
	if _, err := os.Stat("/proc/self/task/" + strconv.FormatUint(uint64(tid), 10)); err == nil {
		t.Fatalf("thread %d did not exit", tid)
	}
	if cp, err := tf.fdCopy(pending, tid, fds[0]); err == nil {
		ino, _ := socketInode(cp)
		unix.Close(cp)
		t.Errorf("fdCopy for exited thread %d = copy of inode %d (the old process's fd), want ErrTargetGone", tid, ino)
	} else if !errors.Is(err, seccomp.ErrTargetGone) {
		t.Errorf("fdCopy for exited thread %d = %v, want ErrTargetGone", tid, err)
	}
}
