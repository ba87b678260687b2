package cc

import (
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

// ackRound acknowledges a whole window, one ACK per packet, as a sender
// limited by cwnd sees it in one round trip.
func ackRound(c Controller, w *Window, now time.Time) {
	n := w.Cwnd
	for i := uint32(0); i < n; i++ {
		c.CongAvoid(w, 1, n, now)
	}
}

func TestRenoSlowStartDoublesPerRound(t *testing.T) {
	r := &Reno{}
	w := NewWindow(10, 1460)
	ackRound(r, &w, t0)
	if w.Cwnd != 20 {
		t.Fatalf("cwnd after one round = %d, want 20", w.Cwnd)
	}
}

func TestRenoHalvesAndGrowsOnePacketPerRound(t *testing.T) {
	r := &Reno{}
	w := NewWindow(10, 1460)
	w.Cwnd = 40
	w.SSThresh = r.SSThresh(&w)
	if w.SSThresh != 20 {
		t.Fatalf("ssthresh = %d, want 20", w.SSThresh)
	}
	w.Cwnd = w.SSThresh
	for i := 0; i < 5; i++ {
		ackRound(r, &w, t0)
	}
	if w.Cwnd != 25 {
		t.Fatalf("cwnd after 5 rounds of congestion avoidance = %d, want 25", w.Cwnd)
	}
}

func TestNotCwndLimitedDoesNotGrow(t *testing.T) {
	for _, name := range Names {
		c, err := New(name, t0)
		if err != nil {
			t.Fatal(err)
		}
		w := NewWindow(10, 1460)
		c.Init(&w)
		c.CongAvoid(&w, 3, 3, t0) // 3 in flight: cwnd 10 is not the limit
		if w.Cwnd != 10 {
			t.Errorf("%s: cwnd grew to %d without being the limit", name, w.Cwnd)
		}
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	if _, err := New("bbr9", t0); err == nil {
		t.Fatal("New accepted an unknown algorithm")
	}
}

func TestCubicReductionAndConcaveRegrowth(t *testing.T) {
	c := newCubic(t0)
	w := NewWindow(10, 1460)
	c.Init(&w)
	w.Cwnd = 100
	w.SSThresh = c.SSThresh(&w)
	if w.SSThresh != 70 {
		t.Fatalf("ssthresh after loss at 100 = %d, want 70 (beta 717/1024)", w.SSThresh)
	}
	w.Cwnd = w.SSThresh
	// K = cbrt(Wmax*(1-beta)/C) = cbrt(100*0.3/0.4) ≈ 4.2 s. Drive rounds of
	// 100 ms and sample the window half way and at K.
	rtt := 100 * time.Millisecond
	now := t0
	var atHalfK, atK uint32
	for i := 1; i <= 60; i++ {
		now = now.Add(rtt)
		c.PktsAcked(&w, w.Cwnd, rtt, now)
		ackRound(c, &w, now)
		switch i {
		case 21:
			atHalfK = w.Cwnd
		case 42:
			atK = w.Cwnd
		}
	}
	if atHalfK < 88 || atHalfK > 100 {
		t.Errorf("cwnd at K/2 = %d, want close below W_max (concave region, ~96)", atHalfK)
	}
	if atK < 97 || atK > 106 {
		t.Errorf("cwnd at K = %d, want ≈ W_max 100 (plateau)", atK)
	}
	if w.Cwnd <= atK {
		t.Errorf("cwnd after K = %d, want growth beyond the plateau %d (convex region)", w.Cwnd, atK)
	}
}

func TestCubicFastConvergence(t *testing.T) {
	c := newCubic(t0)
	w := NewWindow(10, 1460)
	w.Cwnd = 100
	c.SSThresh(&w)
	w.Cwnd = 80 // a second loss below the previous W_max
	c.SSThresh(&w)
	if want := uint32(80 * (1024 + 717) / 2048); c.lastMaxCwnd != want {
		t.Fatalf("W_max after fast convergence = %d, want %d", c.lastMaxCwnd, want)
	}
}

func TestHyStartDelayIncreaseEndsSlowStart(t *testing.T) {
	c := newCubic(t0)
	w := NewWindow(32, 1460)
	w.SndNxt = 100
	c.Init(&w)
	now := t0.Add(2 * time.Second)
	sample := func(rtt time.Duration) {
		now = now.Add(5 * time.Millisecond) // spaced: no ACK train
		c.PktsAcked(&w, 1, rtt, now)
	}
	// Round 1 sets delay_min to 10 ms.
	for i := 0; i < 10; i++ {
		sample(10 * time.Millisecond)
	}
	if w.SSThresh != InfiniteSSThresh {
		t.Fatal("slow start ended without a delay increase")
	}
	// Round 2: every RTT is 20 ms, above delay_min + max(delay_min/8, 4 ms).
	w.SndUna, w.SndNxt = 101, 200
	for i := 0; i < 10; i++ {
		sample(20 * time.Millisecond)
	}
	if w.SSThresh != w.Cwnd {
		t.Fatalf("ssthresh = %d, want cwnd %d (slow start ended by HyStart)", w.SSThresh, w.Cwnd)
	}
}

func TestCubicRoot(t *testing.T) {
	for _, v := range []uint64{1, 7, 8, 26, 27, 1 << 40, 123456789012} {
		r := uint64(cubicRoot(v))
		if r*r*r > v || (r+1)*(r+1)*(r+1) <= v {
			t.Errorf("cubicRoot(%d) = %d", v, r)
		}
	}
}
