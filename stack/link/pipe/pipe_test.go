package pipe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	lt "github.com/netprov/netprov/stack/link/internal/linktest"
)

const frameLen = 60

// frame builds a minimum-size Ethernet frame carrying seq.
func frame(src, dst header.MAC, seq uint32) *buffer.Packet {
	p := buffer.New(buffer.Headroom, frameLen)
	b := p.Append(frameLen)
	clear(b)
	header.EthernetFields{Dst: dst, Src: src, EtherType: 0x88b5}.Emit(b)
	binary.BigEndian.PutUint32(b[header.EthernetLen:], seq)
	return p
}

func seqOf(b []byte) uint32 { return binary.BigEndian.Uint32(b[header.EthernetLen:]) }

func writeAll(t *testing.T, e *Endpoint, peer header.MAC, first, n, batch int) {
	t.Helper()
	pkts := make([]*buffer.Packet, 0, batch)
	for i := first; i < first+n; {
		pkts = pkts[:0]
		for ; i < first+n && len(pkts) < batch; i++ {
			pkts = append(pkts, frame(e.LinkAddress(), peer, uint32(i)))
		}
		if _, err := e.WritePackets(pkts); err != nil {
			t.Fatalf("WritePackets: %v", err)
		}
	}
}

func TestPipeDeliversIntactInOrder(t *testing.T) {
	a, b := New(Config{})
	t.Cleanup(func() { a.Close() })
	ra, rb := lt.NewRecorder(), lt.NewRecorder()
	a.Attach(ra)
	b.Attach(rb)
	const n = 1000
	writeAll(t, a, b.LinkAddress(), 0, n, 10)
	writeAll(t, b, a.LinkAddress(), 0, n, 7)
	rb.WaitCount(t, n, 10*time.Second)
	ra.WaitCount(t, n, 10*time.Second)
	for _, tc := range []struct {
		r        *lt.Recorder
		src, dst header.MAC
	}{{rb, a.LinkAddress(), b.LinkAddress()}, {ra, b.LinkAddress(), a.LinkAddress()}} {
		for i, f := range tc.r.Frames() {
			want := frame(tc.src, tc.dst, uint32(i))
			if !bytes.Equal(f.Data, want.Data()) {
				t.Fatalf("frame %d = %x, want %x", i, f.Data, want.Data())
			}
			want.Release()
		}
	}
	st := a.Stats()
	if st.TxPackets != n || st.TxBytes != n*frameLen || st.RxPackets != n || st.RxBytes != n*frameLen {
		t.Errorf("a stats = %+v, want %d frames of %d bytes each way", st, n, frameLen)
	}
	if a.Capabilities() != link.CapEthernet || a.MTU() != DefaultMTU {
		t.Errorf("caps %v MTU %d, want CapEthernet 1500", a.Capabilities(), a.MTU())
	}
}

// within reports whether got is within 5 standard deviations of the
// binomial mean n*p.
func within(got, n int, p float64) bool {
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return math.Abs(float64(got)-mean) <= 5*sd
}

func TestPipeImpairmentRates(t *testing.T) {
	const n = 10000
	for _, tc := range []struct {
		name string
		im   Impairments
	}{
		{"loss", Impairments{Loss: 0.1}},
		{"duplicate", Impairments{Duplicate: 0.05}},
		{"reorder", Impairments{Reorder: 0.05, ReorderGap: 3}},
		{"corrupt", Impairments{Corrupt: 0.02}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.im.QueueLimit = 2 * n
			a, b := New(Config{AToB: tc.im, Seed: 42})
			t.Cleanup(func() { a.Close() })
			r := lt.NewRecorder()
			b.Attach(r)
			writeAll(t, a, b.LinkAddress(), 0, n, n)
			is := a.ImpairmentStats()
			want := n - int(is.Lost) + int(is.Duplicated)
			r.WaitCount(t, want, 10*time.Second)

			var dups, late, corrupted int
			seen := make(map[uint32]bool)
			var maxSeq uint32
			for i, f := range r.Frames() {
				s := seqOf(f.Data)
				if seen[s] {
					dups++
				}
				seen[s] = true
				if s < maxSeq {
					late++
				}
				maxSeq = max(maxSeq, s)
				if tc.name == "corrupt" {
					// Nothing is lost or reordered here, so frame i must
					// carry seq i (a flip can hit the seq itself).
					ref := frame(a.LinkAddress(), b.LinkAddress(), uint32(i))
					if !bytes.Equal(f.Data, ref.Data()) {
						corrupted++
					}
					ref.Release()
				}
			}
			lost := n - len(seen)
			switch tc.name {
			case "loss":
				if !within(lost, n, 0.1) || lost != int(is.Lost) {
					t.Errorf("lost %d frames (stats %d), want about %d", lost, is.Lost, n/10)
				}
			case "duplicate":
				if !within(dups, n, 0.05) || dups != int(is.Duplicated) {
					t.Errorf("%d duplicates (stats %d), want about %d", dups, is.Duplicated, n/20)
				}
			case "reorder":
				// Exactly the held-back frames arrive late, except one held
				// at the very end that nothing overtook before the flush.
				if !within(late, n, 0.05) || late > int(is.Reordered) || late < int(is.Reordered)-1 {
					t.Errorf("%d late frames (stats %d), want about %d", late, is.Reordered, n/20)
				}
				if lost != 0 || dups != 0 {
					t.Errorf("reordering lost %d and duplicated %d frames", lost, dups)
				}
			case "corrupt":
				if !within(corrupted, n, 0.02) || corrupted != int(is.Corrupted) {
					t.Errorf("%d corrupted (stats %d), want about %d", corrupted, is.Corrupted, n/50)
				}
			}
		})
	}
}

func TestPipeImpairmentsAreReproducible(t *testing.T) {
	run := func() ImpairmentStats {
		a, b := New(Config{AToB: Impairments{Loss: 0.2, Duplicate: 0.1, Corrupt: 0.1, QueueLimit: 2000}, Seed: 7})
		defer a.Close()
		r := lt.NewRecorder()
		b.Attach(r)
		writeAll(t, a, b.LinkAddress(), 0, 1000, 50)
		return a.ImpairmentStats()
	}
	if s1, s2 := run(), run(); s1 != s2 {
		t.Fatalf("same seed gave %+v then %+v", s1, s2)
	}
}

// waitPending waits until the fake clock has a pending timer, which means
// the delivery goroutine has seen the frames and is waiting for their time.
func waitPending(t *testing.T, c *clock.Fake) {
	t.Helper()
	for i := 0; len(c.Pending()) == 0; i++ {
		if i > 10000 {
			t.Fatal("delivery goroutine never armed its timer")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestPipeDelayWithFakeClock(t *testing.T) {
	clk := clock.NewFake()
	const delay = 50 * time.Millisecond
	a, b := New(Config{Clock: clk, AToB: Impairments{Delay: delay}})
	t.Cleanup(func() { a.Close() })
	r := lt.NewRecorder()
	b.Attach(r)
	writeAll(t, a, b.LinkAddress(), 0, 5, 5)
	waitPending(t, clk)
	if got := clk.Pending(); got[0] != delay {
		t.Fatalf("timer pending in %v, want %v", got[0], delay)
	}
	clk.Advance(delay - time.Millisecond)
	waitPending(t, clk)
	if n := r.Count(); n != 0 {
		t.Fatalf("%d frames delivered before the delay passed", n)
	}
	clk.Advance(time.Millisecond)
	r.WaitCount(t, 5, 10*time.Second)
}

func TestPipeNoDelayDoesNotUseTimers(t *testing.T) {
	clk := clock.NewFake()
	a, b := New(Config{Clock: clk})
	t.Cleanup(func() { a.Close() })
	r := lt.NewRecorder()
	b.Attach(r)
	writeAll(t, a, b.LinkAddress(), 0, 100, 10)
	r.WaitCount(t, 100, 10*time.Second)
	if p := clk.Pending(); len(p) != 0 {
		t.Fatalf("undelayed pipe armed timers %v", p)
	}
}

func TestPipeRateLimit(t *testing.T) {
	clk := clock.NewFake()
	// 60-byte frames at 600 B/s: one frame every 100 ms.
	a, b := New(Config{Clock: clk, AToB: Impairments{Rate: 600}})
	t.Cleanup(func() { a.Close() })
	r := lt.NewRecorder()
	b.Attach(r)
	writeAll(t, a, b.LinkAddress(), 0, 3, 3)
	for k := 1; k <= 3; k++ {
		waitPending(t, clk)
		if n := r.Count(); n != k-1 {
			t.Fatalf("after %d ms: %d frames, want %d", (k-1)*100, n, k-1)
		}
		clk.Advance(100 * time.Millisecond)
		r.WaitCount(t, k, 10*time.Second)
	}
}

func TestPipeQueueLimitDropsCounted(t *testing.T) {
	clk := clock.NewFake()
	a, b := New(Config{Clock: clk, AToB: Impairments{Delay: time.Second, QueueLimit: 10}})
	t.Cleanup(func() { a.Close() })
	r := lt.NewRecorder()
	b.Attach(r)
	pkts := make([]*buffer.Packet, 15)
	for i := range pkts {
		pkts[i] = frame(a.LinkAddress(), b.LinkAddress(), uint32(i))
	}
	n, err := a.WritePackets(pkts)
	if err != nil || n != 10 {
		t.Fatalf("WritePackets = %d, %v; want 10, nil", n, err)
	}
	if is, st := a.ImpairmentStats(), a.Stats(); is.QueueDropped != 5 || st.TxDropped != 5 {
		t.Fatalf("queue drops %d, tx dropped %d; want 5", is.QueueDropped, st.TxDropped)
	}
	waitPending(t, clk)
	clk.Advance(time.Second)
	r.WaitCount(t, 10, 10*time.Second)
	for i, f := range r.Frames() {
		if seqOf(f.Data) != uint32(i) {
			t.Fatalf("frame %d has seq %d: drop-tail must keep the head", i, seqOf(f.Data))
		}
	}
}

func TestPipeDropsOversizeAndRunt(t *testing.T) {
	a, b := New(Config{MTU: 100})
	t.Cleanup(func() { a.Close() })
	r := lt.NewRecorder()
	b.Attach(r)
	big := buffer.New(0, 115)
	big.Append(115) // 14 + 101 > MTU
	runt := buffer.New(0, 10)
	runt.Append(10)
	ok := buffer.New(0, 114)
	ok.Append(114)
	n, err := a.WritePackets([]*buffer.Packet{big, runt, ok})
	if n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v; want 1, nil", n, err)
	}
	r.WaitCount(t, 1, 10*time.Second)
	if st := a.Stats(); st.TxDropped != 2 {
		t.Fatalf("TxDropped = %d, want 2", st.TxDropped)
	}
}

func TestPipeGSODeliversMetadata(t *testing.T) {
	a, b := New(Config{GSO: true, MTU: 1500})
	t.Cleanup(func() { a.Close() })
	r := lt.NewRecorder()
	b.Attach(r)
	p := buffer.New(0, 30000)
	p.Append(30000)
	p.Meta.GSO = buffer.GSO{Type: buffer.GSOTCPv4, MSS: 1448, HeaderLen: 52, NeedsCsum: true}
	p.Meta.NIC = 9
	if n, _ := a.WritePackets([]*buffer.Packet{p}); n != 1 {
		t.Fatal("super-segment not accepted")
	}
	r.WaitCount(t, 1, 10*time.Second)
	m := r.Frames()[0].Meta
	if m.GSO.Type != buffer.GSOTCPv4 || m.GSO.MSS != 1448 || !m.ChecksumVerified || m.NIC != 0 {
		t.Fatalf("received meta %+v", m)
	}
	if a.Capabilities()&link.CapGSO == 0 {
		t.Fatal("no CapGSO")
	}
}

func TestPipeCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	a, b := New(Config{AToB: Impairments{Delay: time.Hour}})
	b.Attach(lt.NewRecorder())
	writeAll(t, a, b.LinkAddress(), 0, 10, 10)
	a.Close()
	b.Close()
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i > 1000 {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
	n, err := a.WritePackets([]*buffer.Packet{frame(a.LinkAddress(), b.LinkAddress(), 0)})
	if n != 0 || !errors.Is(err, unix.ENETDOWN) {
		t.Fatalf("write after Close = %d, %v; want 0, ENETDOWN", n, err)
	}
}

// countingDispatcher releases frames and counts them.
type countingDispatcher struct{ n atomic.Int64 }

func (c *countingDispatcher) DeliverLinkPacket(p *buffer.Packet) {
	p.Release()
	c.n.Add(1)
}

func BenchmarkPipe(b *testing.B) {
	const batch = 64
	a, z := New(Config{MTU: 1500, AToB: Impairments{QueueLimit: 4096}})
	defer a.Close()
	var d countingDispatcher
	z.Attach(&d)
	pkts := make([]*buffer.Packet, batch)
	src, dst := a.LinkAddress(), z.LinkAddress()
	b.ReportAllocs()
	b.SetBytes(1514)
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		k := min(batch, b.N-sent)
		for i := range k {
			p := buffer.New(buffer.Headroom, 1514)
			header.EthernetFields{Dst: dst, Src: src, EtherType: 0x88b5}.Emit(p.Append(1514))
			pkts[i] = p
		}
		n, _ := a.WritePackets(pkts[:k])
		sent += k
		if n != k {
			b.Fatalf("queue overflow: %d of %d", n, k)
		}
		// Flow control: keep at most a few batches in flight.
		for int64(sent)-d.n.Load() > 1024 {
			runtime.Gosched()
		}
	}
	for d.n.Load() < int64(b.N) {
		runtime.Gosched()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
