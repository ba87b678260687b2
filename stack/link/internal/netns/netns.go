// Package netns runs code inside another network namespace. Link
// endpoints use it to create their TAP device or packet socket there: a
// device or socket stays in the namespace it was created in.
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
