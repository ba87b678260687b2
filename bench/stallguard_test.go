package bench

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallTimeout is how long a benchmark or test may go without completing an
// op (1 MiB moved, one connection) before it counts as stuck.
const stallTimeout = setupTimeout

// stallGuard makes a stack that stops making progress fail the benchmark
// instead of hanging it (and CI). Ops report progress with step; if none
// is reported for a whole timeout period, the guard cancels its context
// (which bounds every Dial) and moves the deadline of every tracked
// connection into the past, which unblocks their Reads and Writes with an
// error that the benchmark then reports. Tracking costs a mutex and a slice
// update per connection, the same for every implementation, and does not
// allocate once the slice has grown to the number of concurrent
// connections; the hot path of the bulk benchmark only does an atomic add
// per MiB.
type stallGuard struct {
	ctx      context.Context
	cancel   context.CancelFunc
	timeout  time.Duration
	progress atomic.Uint64
	stalled  atomic.Bool
	done     chan struct{}
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

// newStallGuard starts a guard that is stopped when tb ends.
func newStallGuard(tb testing.TB, timeout time.Duration) *stallGuard {
	ctx, cancel := context.WithCancel(context.Background())
	g := &stallGuard{ctx: ctx, cancel: cancel, timeout: timeout, done: make(chan struct{})}
	g.wg.Add(1)
	go g.watch()
	tb.Cleanup(g.stop)
	return g
}

func (g *stallGuard) watch() {
	defer g.wg.Done()
	t := time.NewTicker(g.timeout)
	defer t.Stop()
	last := g.progress.Load()
	for {
		select {
		case <-g.done:
			return
		case <-t.C:
		}
		if p := g.progress.Load(); p != last {
			last = p
			continue
		}
		g.trip()
		return
	}
}

// trip unblocks everything the guarded benchmark may be waiting on.
func (g *stallGuard) trip() {
	g.stalled.Store(true)
	g.cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.SetDeadline(time.Unix(1, 0))
	}
}

// step records that one op completed.
func (g *stallGuard) step() { g.progress.Add(1) }

// track adds c to the connections unblocked on a stall.
func (g *stallGuard) track(c net.Conn) {
	g.mu.Lock()
	g.conns = append(g.conns, c)
	g.mu.Unlock()
	if g.stalled.Load() {
		// Tripped before c was added (trip stores stalled before it
		// locks, so one of the two always sees the other).
		c.SetDeadline(time.Unix(1, 0))
	}
}

// untrack removes c (before it is closed).
func (g *stallGuard) untrack(c net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(g.conns, c); i >= 0 {
		last := len(g.conns) - 1
		g.conns[i] = g.conns[last]
		g.conns[last] = nil
		g.conns = g.conns[:last]
	}
}

// explain adds to err that the guard forced it, if it did.
func (g *stallGuard) explain(err error) error {
	if err != nil && g.stalled.Load() {
		return fmt.Errorf("no progress for %v, stuck connections were unblocked: %w", g.timeout, err)
	}
	return err
}

func (g *stallGuard) stop() {
	close(g.done)
	g.wg.Wait()
	g.cancel()
}
