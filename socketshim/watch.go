package socketshim

import (
	"context"
	"sync"
	"time"
)

// watchdog ends the provider calls of blocking served calls whose
// notification is no longer pending (the target died or, without killable
// waits, a signal interrupted it) or whose thread has a signal pending
// (see signalPending): one goroutine checks every registered call each
// PollInterval, instead of a goroutine and a ticker per blocking call,
// whose start and wake-up at the end cost more than most calls.
type watchdog struct {
	mu    sync.Mutex
	calls map[*call]context.CancelFunc
	kick  chan struct{} // the set became non-empty
}

func newWatchdog() *watchdog {
	return &watchdog{calls: map[*call]context.CancelFunc{}, kick: make(chan struct{}, 1)}
}

func (w *watchdog) add(c *call, cancel context.CancelFunc) {
	w.mu.Lock()
	w.calls[c] = cancel
	first := len(w.calls) == 1
	w.mu.Unlock()
	if first {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

func (w *watchdog) remove(c *call) {
	w.mu.Lock()
	delete(w.calls, c)
	w.mu.Unlock()
}

// run checks the registered calls every interval while there are any,
// until ctx ends.
func (w *watchdog) run(ctx context.Context, interval time.Duration) {
	var batch []*call
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		t := time.NewTicker(interval)
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			w.mu.Lock()
			batch = batch[:0]
			for c := range w.calls {
				batch = append(batch, c)
			}
			w.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, c := range batch {
				w.check(c)
			}
			clear(batch)
		}
		t.Stop()
	}
}

// check cancels c's provider call if its target no longer waits for it.
func (w *watchdog) check(c *call) {
	gone := c.s.l.IDValid(c.n.ID) != nil
	if !gone && !signalPending(c.n.PID) {
		return
	}
	w.mu.Lock()
	cancel, ok := w.calls[c]
	delete(w.calls, c)
	w.mu.Unlock()
	if !ok {
		return // finished meanwhile
	}
	if !gone {
		c.signalled.Store(true)
	}
	cancel()
}
