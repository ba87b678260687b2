package linktest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/netprov/netprov/stack/buffer"
)

// Frame is a received frame and its metadata.
type Frame struct {
	Data []byte
	Meta buffer.Meta
}

// Recorder is a link.Dispatcher that keeps copies of the received frames.
type Recorder struct {
	mu     sync.Mutex
	frames []Frame
	notify chan struct{}
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{notify: make(chan struct{}, 1)} }

// DeliverLinkPacket implements link.Dispatcher.
func (r *Recorder) DeliverLinkPacket(p *buffer.Packet) {
	r.mu.Lock()
	r.frames = append(r.frames, Frame{Data: bytes.Clone(p.Data()), Meta: p.Meta})
	r.mu.Unlock()
	p.Release()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// WaitFor returns the first received frame for which match is true,
// waiting at most timeout; it fails the test otherwise.
func (r *Recorder) WaitFor(t testing.TB, timeout time.Duration, what string, match func(Frame) bool) Frame {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		r.mu.Lock()
		frames := r.frames
		r.mu.Unlock()
		for ; seen < len(frames); seen++ {
			if match(frames[seen]) {
				return frames[seen]
			}
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("no %s received within %v (%d other frames)", what, timeout, len(frames))
			return Frame{}
		}
	}
}

// Frames returns the frames received so far.
func (r *Recorder) Frames() []Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames[:len(r.frames):len(r.frames)]
}

// Count returns how many frames were received.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

// WaitCount waits until at least n frames arrived, at most timeout, and
// returns the frames received; it fails the test otherwise.
func (r *Recorder) WaitCount(t testing.TB, n int, timeout time.Duration) []Frame {
	t.Helper()
	deadline := time.After(timeout)
	for r.Count() < n {
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("got %d frames, want %d", r.Count(), n)
		}
	}
	return r.Frames()
}
