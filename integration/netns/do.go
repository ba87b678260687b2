package netns

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// Do runs f on an OS thread that has been switched into the namespace and
// returns f's error. Sockets that f creates belong to the namespace for
// their whole life, so a listener made in Do can be used after it returns.
//
// f runs on its own goroutine: it must not call t.Fatal or t.FailNow
// (return an error instead). A panic in f is re-raised in the caller. The
// thread is switched back to its original namespace before it is released;
// if that fails, the thread is left locked and ends with the goroutine, so
// no goroutine ever runs on a thread in the wrong namespace. Within f, use
// IP literals: name resolution may run on other threads.
func (ns *NS) Do(f func() error) error {
	type result struct {
		err      error
		panicked bool
		panicVal any
		stack    []byte
	}
	done := make(chan result, 1)
	go func() {
		// Unlocked only after the switch back succeeded; an early return
		// leaves the thread locked, which makes the runtime terminate it.
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("netns %s: open current netns: %w", ns.name, err)}
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(ns.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("netns %s: open %s: %w", ns.name, ns.Path(), err)}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("netns %s: setns: %w", ns.name, err)}
			return
		}

		var res result
		returned := false
		defer func() {
			if !returned {
				if v := recover(); v != nil {
					res = result{panicked: true, panicVal: v, stack: debug.Stack()}
				} else {
					res.err = errors.New("netns: function passed to Do called runtime.Goexit (t.Fatal/t.FailNow?); return an error instead")
				}
			}
			if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
				// Stay locked: the thread dies with this goroutine.
				res.err = errors.Join(res.err, fmt.Errorf("netns %s: restore original netns: %w", ns.name, err))
			} else {
				runtime.UnlockOSThread()
			}
			done <- res
		}()
		res.err = f()
		returned = true
	}()
	res := <-done
	if res.panicked {
		panic(fmt.Sprintf("netns %s: panic in Do: %v\n%s", ns.name, res.panicVal, res.stack))
	}
	return res.err
}
