package seccomp

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestWaiterServesAndEnds: a Waiter receives the target's notifications
// (answered here), reports ErrTargetGone once the target has exited, and
// SetSyncWakeUp is accepted (Linux 6.6+) or refused with EINVAL.
func TestWaiterServesAndEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	t.Setenv(testCallsEnv, "50")
	st := startTarget(t, ctx, "calls")
	if err := st.l.SetSyncWakeUp(); err != nil && !errors.Is(err, unix.EINVAL) {
		t.Errorf("SetSyncWakeUp: %v", err)
	}
	w, err := st.l.NewWaiter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stop := context.AfterFunc(ctx, w.Interrupt)
	defer stop()
	served := 0
	for {
		var n Notif
		err := w.Recv(&n)
		if errors.Is(err, ErrTargetGone) {
			break
		}
		if err != nil {
			t.Fatalf("Recv after %d calls: %v", served, err)
		}
		if n.Data.Nr != unix.SYS_GETPEERNAME || n.Data.Args[0] != 999 {
			t.Fatalf("notification %+v, want getpeername(999)", n.Data)
		}
		if err := st.l.Respond(n.ID, 0, 0); err != nil {
			t.Fatalf("Respond: %v", err)
		}
		served++
	}
	out := st.waitExit(t)
	wantOut(t, out, "calls", "50")
	if served != 50 {
		t.Errorf("served %d notifications, want 50", served)
	}
}

// TestWaiterInterrupt: Interrupt (and the Listener's Close) wake a Recv
// that waits with nothing pending, and later Recvs return at once.
func TestWaiterInterrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	st := startTarget(t, ctx, "block")
	// Take the target's one notification, so nothing is pending.
	n := recvNr(t, ctx, st.l, unix.SYS_CONNECT)
	w, err := st.l.NewWaiter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	done := make(chan error, 1)
	go func() {
		var m Notif
		done <- w.Recv(&m)
	}()
	select {
	case err := <-done:
		t.Fatalf("Recv with nothing pending returned %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	w.Interrupt()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInterrupted) {
			t.Errorf("Recv after Interrupt = %v, want ErrInterrupted", err)
		}
	case <-time.After(testBound):
		t.Fatal("Interrupt did not wake Recv")
	}
	var m Notif
	if err := w.Recv(&m); !errors.Is(err, ErrInterrupted) {
		t.Errorf("second Recv after Interrupt = %v, want ErrInterrupted", err)
	}

	w2, err := st.l.NewWaiter()
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	go func() {
		var m Notif
		done <- w2.Recv(&m)
	}()
	time.Sleep(20 * time.Millisecond)
	st.l.Respond(n.ID, 0, unix.ECONNREFUSED)
	st.l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrListenerClosed) && !errors.Is(err, ErrTargetGone) {
			t.Errorf("Recv after Close = %v, want ErrListenerClosed (or ErrTargetGone)", err)
		}
	case <-time.After(testBound):
		t.Fatal("Close did not wake Recv")
	}
}

// TestWriteMemoryv: the segments are written in order with one call; a
// segment at an unmapped address is EFAULT after the earlier ones are
// written; empty segments and more segments than one call takes work.
func TestWriteMemoryv(t *testing.T) {
	pid := uint32(unix.Getpid())
	a, b := make([]byte, 8), make([]byte, 4)
	addr := func(p []byte) uint64 { return uint64(uintptrOf(p)) }
	if err := WriteMemoryvChecked(pid, []Segment{
		{Addr: addr(a), Buf: []byte("abcdefgh")},
		{Addr: 0, Buf: nil},
		{Addr: addr(b), Buf: []byte("wxyz")},
	}); err != nil {
		t.Fatalf("WriteMemoryvChecked: %v", err)
	}
	if string(a) != "abcdefgh" || string(b) != "wxyz" {
		t.Errorf("wrote %q %q", a, b)
	}
	clear(a)
	clear(b)
	err := WriteMemoryvChecked(pid, []Segment{
		{Addr: addr(a), Buf: []byte("12345678")},
		{Addr: 8, Buf: []byte("no")},
		{Addr: addr(b), Buf: []byte("wxyz")},
	})
	if !errors.Is(err, unix.EFAULT) {
		t.Errorf("write to address 8 = %v, want EFAULT", err)
	}
	if string(a) != "12345678" || b[0] != 0 {
		t.Errorf("after EFAULT: %q %q, want the first segment only", a, b)
	}
	many := make([]byte, 2*maxSegments)
	segs := make([]Segment, len(many))
	for i := range segs {
		segs[i] = Segment{Addr: addr(many[i:]), Buf: []byte(strconv.Itoa(i % 10))}
	}
	if err := WriteMemoryvChecked(pid, segs); err != nil {
		t.Fatalf("%d segments: %v", len(segs), err)
	}
	if string(many) != "01234567" {
		t.Errorf("%d segments wrote %q", len(segs), many)
	}
}

// BenchmarkTrappedCall: one trapped getpeername answered by the
// supervisor, round trip per op: received through the runtime poller
// (Listener.Recv, one goroutine) and through a Waiter, without and with
// SetSyncWakeUp.
func BenchmarkTrappedCall(b *testing.B) {
	for _, mode := range []string{"poller", "waiter", "waiter-sync"} {
		b.Run(mode, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.Setenv(testCallsEnv, strconv.Itoa(b.N))
			st := startTarget(b, ctx, "calls")
			var w *Waiter
			if mode != "poller" {
				var err error
				if w, err = st.l.NewWaiter(); err != nil {
					b.Fatal(err)
				}
				defer w.Close()
			}
			if mode == "waiter-sync" {
				if err := st.l.SetSyncWakeUp(); err != nil {
					b.Skipf("SetSyncWakeUp: %v", err)
				}
			}
			b.ResetTimer()
			var n Notif
			for {
				var err error
				if w != nil {
					err = w.Recv(&n)
				} else {
					err = st.l.RecvInto(ctx, &n)
				}
				if errors.Is(err, ErrTargetGone) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				st.l.Respond(n.ID, 0, 0)
			}
			b.StopTimer()
			wantOut(b, st.waitExit(b), "calls", strconv.Itoa(b.N))
		})
	}
}

func uintptrOf(p []byte) uintptr { return uintptr(unsafe.Pointer(&p[0])) }
