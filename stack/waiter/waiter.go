// Package waiter is the readiness interface of sockets: a socket keeps a
// Queue and notifies it with poll(2)-style event bits whenever its state
// changes, so a caller (the socket shim, a blocking Read) waits without
// polling.
package waiter

import (
	"sync"
	"sync/atomic"
)

// EventMask is a set of readiness events with the values of poll(2).
type EventMask uint32

// Events, with the same bits as POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP
// and POLLRDHUP.
const (
	EventIn    EventMask = 0x1
	EventPri   EventMask = 0x2
	EventOut   EventMask = 0x4
	EventErr   EventMask = 0x8
	EventHUp   EventMask = 0x10
	EventRdHUp EventMask = 0x2000
)

// Entry is one waiter registered on a Queue.
type Entry struct {
	// Mask selects the events that call Callback; EventErr and EventHUp are
	// always delivered, as with poll(2).
	Mask EventMask
	// Callback is called with the events that happened. It runs with the
	// notifier's locks held, so it must not block or call back into the
	// socket: signal a channel or a condition variable.
	Callback func(EventMask)
}

// Queue is a set of waiters.
type Queue struct {
	mu      sync.Mutex
	entries []*Entry
	// n mirrors len(entries) so that Notify, called for every segment,
	// costs one atomic load when nobody waits.
	n atomic.Int32
}

// Register adds e to the queue.
func (q *Queue) Register(e *Entry) {
	q.mu.Lock()
	q.entries = append(q.entries, e)
	q.n.Store(int32(len(q.entries)))
	q.mu.Unlock()
}

// Unregister removes e from the queue.
func (q *Queue) Unregister(e *Entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.entries {
		if x == e {
			last := len(q.entries) - 1
			q.entries[i] = q.entries[last]
			q.entries[last] = nil
			q.entries = q.entries[:last]
			q.n.Store(int32(last))
			return
		}
	}
}

// Notify calls every entry whose mask intersects m.
func (q *Queue) Notify(m EventMask) {
	if q.n.Load() == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.entries {
		if got := m & (e.Mask | EventErr | EventHUp); got != 0 {
			e.Callback(got)
		}
	}
}

// Empty reports whether no one waits; notifiers may skip work then.
func (q *Queue) Empty() bool { return q.n.Load() == 0 }

// ChannelEntry returns an entry that signals the returned channel (capacity
// one, so a notification is never lost and never blocks the notifier).
func ChannelEntry(mask EventMask) (*Entry, <-chan struct{}) {
	ch := make(chan struct{}, 1)
	return &Entry{Mask: mask, Callback: func(EventMask) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}}, ch
}
