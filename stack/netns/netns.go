// Package netns runs code inside another network namespace. Link
// endpoints use it to create their TAP device or packet socket there, the
// providers and the shim to make sockets in a namespace: a device or
// socket stays in the namespace it was created in.
package netns

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs f with the calling thread in the network namespace at path (for
// example /run/netns/NAME or /proc/PID/ns/net); an empty path runs f in
// place. f must not start goroutines that rely on the namespace.
//
// f runs on a dedicated, locked OS thread of a new goroutine. If the
// original namespace cannot be restored, the goroutine exits still locked,
// so the runtime discards the thread instead of reusing it in the wrong
// namespace.
func Do(path string, f func() error) error {
	if path == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := doLocked(path, f)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func doLocked(path string, f func() error) (restored bool, err error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, fmt.Errorf("netns: open own namespace: %w", err)
	}
	defer unix.Close(orig)
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return true, fmt.Errorf("netns: enter %s: %w", path, err)
	}
	ferr := f()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return false, fmt.Errorf("netns: return from %s: %w", path, err)
	}
	return true, ferr
}

// OnDiscardedThread runs f on a new goroutine locked to an OS thread that
// the runtime throws away when f returns, so f may leave the thread in
// another namespace for good (unshare, setns without a way back). That
// thread is never the process's main thread: a goroutine that ends locked
// to the main thread does not end the thread (the runtime keeps it,
// wedged), and the main thread's namespaces are what /proc/self/ns shows
// for the whole process. OnDiscardedThread returns at once.
func OnDiscardedThread(f func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			f()
			return // still locked: the thread exits with the goroutine
		}
		// On the main thread: f goes to a goroutine of its own, which
		// cannot be scheduled here while this one holds the thread.
		locked := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(locked)
			f()
		}()
		<-locked
		runtime.UnlockOSThread()
	}()
}
