package netstack

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/link/loopback"
)

// Loopback sends look synchronous, as on Linux.
//
// Linux delivers a loopback datagram into the receiver's queue before the
// sender's sendto returns. Through the provider it takes two more hops,
// each on its own goroutine: the stack's lo queue, then the receiver's
// stack→conduit pump (dgramDown). A program that sends two datagrams to
// itself, polls for the first and then reads the second with MSG_DONTWAIT
// (semantics scenario u-msg-peek) would find it missing now and then.
// So a served SendTo that put frames on lo settles before it returns:
// it waits until lo handed them to the stack (loopback.WaitDelivered),
// then until every datagram socket whose pump the stack notified has
// moved what it had into its conduit. Both waits are bounded
// (settleTimeout), and a pump whose conduit is full is not waited for
// (Linux would have dropped the datagram, or it waits for the target to
// read). Nothing is waited for when the send did not go through lo.

// settleTimeout bounds a settle: it only matters under heavy load, when
// the goroutines cannot run at once.
const settleTimeout = 200 * time.Millisecond

// settleState is the provider's list of datagram sockets whose receive
// pump is behind the stack's notifications.
type settleState struct {
	mu     sync.Mutex
	behind map[*Socket]struct{}
	// caughtUp is closed (and replaced) when a listed pump catches up
	// while waiters > 0.
	caughtUp chan struct{}
	waiters  atomic.Int32
}

// pumpSeq is a datagram socket's pump progress: notified counts the
// stack's notifications, drained is the notification count the pump had
// seen before a read that found the stack's queue empty (every datagram
// notified up to it is in the conduit).
type pumpSeq struct {
	notified atomic.Uint64
	drained  atomic.Uint64
	listed   atomic.Bool // in settleState.behind
}

// loEndpoint returns the node's loopback link endpoint (nil without one).
func (p *Provider) loEndpoint() *loopback.Endpoint {
	if p.node == nil || p.node.Loopback == nil {
		return nil
	}
	lo, _ := p.node.Loopback.LinkEndpoint().(*loopback.Endpoint)
	return lo
}

// notified is the datagram pump's waiter callback (run by the stack's
// delivering goroutine, under the wait queue's lock: it only takes the
// settle list's lock, a leaf).
func (s *Socket) notified() {
	seq := &s.dgram.seq
	seq.notified.Add(1)
	if !seq.listed.Load() && seq.listed.CompareAndSwap(false, true) {
		st := &s.p.settle
		st.mu.Lock()
		if st.behind == nil {
			st.behind = make(map[*Socket]struct{})
		}
		st.behind[s] = struct{}{}
		st.mu.Unlock()
	}
}

// pumpIdle is called by the datagram pump when the stack's queue was
// empty after it had seen seen notifications: it records the progress and
// leaves the settle list unless a notification came since (the check is
// made under the list's lock, so a settle snapshot never misses a
// socket that is behind).
func (s *Socket) pumpIdle(seen uint64) {
	seq := &s.dgram.seq
	seq.drained.Store(seen)
	if !seq.listed.Load() {
		return
	}
	st := &s.p.settle
	st.mu.Lock()
	if seq.notified.Load() == seen {
		seq.listed.Store(false)
		delete(st.behind, s)
		if seq.notified.Load() != seen {
			// A notification raced with the removal: stay listed.
			seq.listed.Store(true)
			st.behind[s] = struct{}{}
		}
	}
	if st.waiters.Load() > 0 && st.caughtUp != nil {
		close(st.caughtUp)
		st.caughtUp = nil
	}
	st.mu.Unlock()
}

// pumpGone takes a datagram socket whose pump ended off the settle list.
func (s *Socket) pumpGone() {
	st := &s.p.settle
	st.mu.Lock()
	delete(st.behind, s)
	s.dgram.seq.listed.Store(false)
	if st.caughtUp != nil {
		close(st.caughtUp)
		st.caughtUp = nil
	}
	st.mu.Unlock()
}

// settleLoopback makes a send that queued frames on lo (loPushed is
// loopback.Endpoint.Pushed after it) look synchronous; see above.
func (p *Provider) settleLoopback(lo *loopback.Endpoint, loPushed uint64) {
	deadline := time.Now().Add(settleTimeout)
	if !lo.WaitDelivered(loPushed, settleTimeout) {
		return
	}
	// The delivery may have queued an answer on lo (an ICMP port
	// unreachable, which Linux turns into the socket's error before
	// sendto returns): one more round for it.
	if next := lo.Pushed(); next != loPushed && !lo.WaitDelivered(next, time.Until(deadline)) {
		return
	}
	st := &p.settle
	st.waiters.Add(1)
	defer st.waiters.Add(-1)
	type want struct {
		s   *Socket
		seq uint64
	}
	var buf [8]want
	wants := buf[:0]
	st.mu.Lock()
	for s := range st.behind {
		wants = append(wants, want{s, s.dgram.seq.notified.Load()})
	}
	st.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(wants) > 0 {
		st.mu.Lock()
		if st.caughtUp == nil {
			st.caughtUp = make(chan struct{})
		}
		ch := st.caughtUp
		st.mu.Unlock()
		kept := wants[:0]
		for _, w := range wants {
			if w.s.dgram.seq.drained.Load() < w.seq && w.s.ctx.Err() == nil && w.s.conduitHasRoom() {
				kept = append(kept, w)
			}
		}
		wants = kept
		if len(wants) == 0 {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		if timer == nil {
			timer = time.NewTimer(left)
		}
		select {
		case <-ch:
		case <-timer.C:
			return
		}
	}
}

// conduitHasRoom reports whether the datagram pump can write into the
// conduit without waiting for the target to read.
func (s *Socket) conduitHasRoom() bool {
	room := true
	withFd(s.c.ours, func(fd int) { room = pollMask(fd, unix.POLLOUT)&unix.POLLOUT != 0 })
	return room
}

// settleHandshake waits (bounded) for the outcome of a handshake whose
// SYN went out on lo, loPushed being loopback.Endpoint.Pushed after it:
// Linux processes the SYN, the SYN-ACK or RST and the ACK within the
// connecting system call, so a non-blocking connect to this host returns
// EINPROGRESS with the connection already established or refused. Each
// round waits until lo delivered what was queued, which queues the
// answer; it stops when the socket left SYN_SENT or nothing new was
// queued. It reports whether the socket left SYN_SENT.
func (s *Socket) settleHandshake(lo *loopback.Endpoint, loPushed uint64) bool {
	deadline := time.Now().Add(settleTimeout)
	for round := 0; round < 4; round++ {
		if !lo.WaitDelivered(loPushed, time.Until(deadline)) {
			break
		}
		if s.so.Endpoint().Info().State != tcpSynSent {
			return true
		}
		next := lo.Pushed()
		if next == loPushed {
			break
		}
		loPushed = next
	}
	return s.so.Endpoint().Info().State != tcpSynSent
}

// finishConnecting applies a handshake outcome settleHandshake saw to the
// conduit at once (watchConnect would do it too, later): reset after a
// failure, pumps started after success.
func (s *Socket) finishConnecting() {
	switch s.so.Endpoint().Info().State {
	case tcpSynSent:
	case tcpClose:
		s.reset()
	default:
		s.startStream()
	}
}

// downSettle is a stream socket's stack→conduit pump progress: empties
// counts the times the pump found the stack's receive queue empty (every
// byte it read before is in the conduit then), waiting is set while it
// waits for more.
type downSettle struct {
	empties atomic.Uint64
	waiting atomic.Bool
	waiters atomic.Int32
	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) by idle while waiters > 0
}

// idle is called by the pump when the stack had nothing to read.
func (d *downSettle) idle() {
	d.empties.Add(1)
	d.waiting.Store(true)
	if d.waiters.Load() > 0 {
		d.mu.Lock()
		if d.changed != nil {
			close(d.changed)
			d.changed = nil
		}
		d.mu.Unlock()
	}
}

// settleReceived waits (bounded) until the bytes already in the stack's
// receive queue are in the conduit. Accept calls it: on Linux the bytes a
// client sent before accept are readable at once on the accepted socket
// (FIONREAD counts them, a MSG_DONTWAIT recv returns them), with no pump
// in between. A conduit that is full is not waited for.
func (s *Socket) settleReceived() {
	if _, ok := s.so.Endpoint().(urgentRelay); !ok {
		return
	}
	d := &s.down
	start := d.empties.Load()
	d.waiters.Add(1)
	defer d.waiters.Add(-1)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		d.mu.Lock()
		if d.changed == nil {
			d.changed = make(chan struct{})
		}
		ch := d.changed
		d.mu.Unlock()
		if d.empties.Load() > start {
			return
		}
		if d.waiting.Load() {
			if q, err := s.so.Ioctl(unix.SIOCINQ); err != nil || q == 0 {
				return
			}
		}
		if s.ctx.Err() != nil || s.c.ours == nil || !s.conduitHasRoom() {
			return
		}
		if timer == nil {
			timer = time.NewTimer(settleTimeout)
		}
		select {
		case <-ch:
		case <-timer.C:
			return
		case <-s.ctx.Done():
			return
		}
	}
}
