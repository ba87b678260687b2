package queue

import (
	"sync"
	"testing"
	"time"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
)

type sink struct {
	mu      sync.Mutex
	got     []byte
	batches int
	ch      chan struct{}
}

func (s *sink) deliver(batch []*buffer.Packet) {
	s.mu.Lock()
	for _, p := range batch {
		s.got = append(s.got, p.Data()[0])
		p.Release()
	}
	s.batches++
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

func (s *sink) waitFor(t *testing.T, n int) []byte {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		got := append([]byte(nil), s.got...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.ch:
		case <-deadline:
			t.Fatalf("delivered %v, want %d packets", got, n)
		}
	}
}

func TestQueueLimitAndOrder(t *testing.T) {
	clk := clock.NewFake()
	s := &sink{ch: make(chan struct{}, 1)}
	q := New(Config{Limit: 3, Clock: clk, Deliver: s.deliver})
	defer q.Close()
	due := clk.Now().Add(time.Second)
	for i := range 4 {
		p := buffer.FromBytes([]byte{byte(i)})
		if ok := q.Push(p, due); ok != (i < 3) {
			t.Fatalf("Push %d = %v", i, ok)
		} else if !ok {
			p.Release()
		}
	}
	for len(clk.Pending()) == 0 {
		time.Sleep(100 * time.Microsecond) // until the goroutine armed its timer
	}
	clk.Advance(time.Second)
	if got := s.waitFor(t, 3); string(got) != "\x00\x01\x02" {
		t.Fatalf("delivered %v, want 0 1 2", got)
	}
}

func TestQueueCloseReleasesWaiting(t *testing.T) {
	clk := clock.NewFake()
	s := &sink{ch: make(chan struct{}, 1)}
	q := New(Config{Limit: 10, Clock: clk, Deliver: s.deliver})
	q.Push(buffer.FromBytes([]byte{1}), clk.Now().Add(time.Hour))
	q.Close()
	q.Close()
	if q.Len() != 0 {
		t.Fatalf("%d packets left after Close", q.Len())
	}
	p := buffer.FromBytes([]byte{2})
	if q.Push(p, time.Time{}) {
		t.Fatal("Push after Close accepted")
	}
	p.Release()
}
