package netns

import (
	"errors"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	nskit "github.com/netprov/netprov/integration/netns"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestDoRunsInsideAndRestores(t *testing.T) {
	nskit.RequireRoot(t)
	path := nskit.New(t, "").Path()
	before := inode(t, "/proc/thread-self/ns/net")
	var inside uint64
	if err := Do(path, func() error {
		inside = inode(t, "/proc/thread-self/ns/net")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inside != inode(t, path) || inside == before {
		t.Fatalf("f ran in namespace %d, want %d (caller's %d)", inside, inode(t, path), before)
	}
	if after := inode(t, "/proc/thread-self/ns/net"); after != before {
		t.Fatalf("caller now in namespace %d, was %d", after, before)
	}
	wantErr := errors.New("from f")
	if err := Do(path, func() error { return wantErr }); err != wantErr {
		t.Fatalf("Do returned %v, want f's error", err)
	}
	if err := Do("/run/netns/np-missing", func() error { return nil }); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Do on a missing namespace: %v", err)
	}
}

// TestOnDiscardedThreadAvoidsMainThread: f never runs on the process's
// main thread, even when OnDiscardedThread is called from a goroutine
// that sits on it (a locked main thread is kept, not thrown away, and its
// namespaces are what /proc/self/ns shows).
func TestOnDiscardedThreadAvoidsMainThread(t *testing.T) {
	type where struct{ tid, caller int }
	got := make(chan where, 1)
	go func() {
		// Get onto the main thread if the scheduler lets us.
		runtime.LockOSThread()
		for i := 0; i < 1000 && unix.Gettid() != unix.Getpid(); i++ {
			runtime.UnlockOSThread()
			runtime.Gosched()
			runtime.LockOSThread()
		}
		caller := unix.Gettid()
		runtime.UnlockOSThread()
		OnDiscardedThread(func() { got <- where{unix.Gettid(), caller} })
	}()
	w := <-got
	if w.tid == unix.Getpid() {
		t.Fatalf("f ran on the main thread (called from thread %d)", w.caller)
	}
	if w.caller != unix.Getpid() {
		t.Logf("the caller never reached the main thread (it ran on %d): only the plain case was exercised", w.caller)
	}
}
