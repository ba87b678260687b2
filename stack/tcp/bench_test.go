package tcp

import (
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/waiter"
	"golang.org/x/sys/unix"
)

// waitEntry is a reusable readiness wait, so that the benchmark loop
// itself does not allocate.
type waitEntry struct {
	e  waiter.Entry
	ch chan struct{}
}

func newWaitEntry(ep stack.Endpoint, mask waiter.EventMask) *waitEntry {
	w := &waitEntry{ch: make(chan struct{}, 1)}
	w.e = waiter.Entry{Mask: mask, Callback: func(waiter.EventMask) {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}}
	ep.EventQueue().Register(&w.e)
	return w
}

func (w *waitEntry) wait(ep stack.Endpoint, mask waiter.EventMask) {
	for ep.Readiness(mask|waiter.EventErr|waiter.EventHUp) == 0 {
		<-w.ch
	}
}

// benchBulk moves 1 MiB per iteration from a client on one stack to a
// server on the other over an in-memory pipe.
func benchBulk(b *testing.B, mtu int, gso bool) {
	pp := newPipePair(b, mtu, pipe.Impairments{}, DefaultConfig())
	if gso {
		pp = newPipePairGSO(b, mtu, pipe.Impairments{})
	}
	c, s := pp.connect(b)
	const chunk = 1 << 20
	data := make([]byte, 64<<10)
	buf := make([]byte, 256<<10)
	done := make(chan error, 1)
	wr := newWaitEntry(c, waiter.EventOut)
	rd := newWaitEntry(s, waiter.EventIn)
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			left := chunk
			for left > 0 {
				n, err := c.Write(data[:min(len(data), left)], stack.WriteOptions{})
				left -= n
				if err == unix.EAGAIN {
					wr.wait(c, waiter.EventOut)
				} else if err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	total := b.N * chunk
	for got := 0; got < total; {
		r, err := s.Read(buf, stack.ReadOptions{})
		if err == unix.EAGAIN {
			rd.wait(s, waiter.EventIn)
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		got += r.N
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	c.Close()
	s.Close()
	time.Sleep(10 * time.Millisecond)
}

func BenchmarkBulkMTU1500(b *testing.B)    { benchBulk(b, 1500, false) }
func BenchmarkBulkMTU65535(b *testing.B)   { benchBulk(b, 65535, false) }
func BenchmarkBulkMTU1500GSO(b *testing.B) { benchBulk(b, 1500, true) }
