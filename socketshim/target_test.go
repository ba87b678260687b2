package socketshim

import (
	"errors"
	"os"
	"os/exec"
	"testing"

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
