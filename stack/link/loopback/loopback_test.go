package loopback

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/link"
	lt "github.com/netprov/netprov/stack/link/internal/linktest"
)

func TestLoopbackReturnsPacketsInOrder(t *testing.T) {
	e := New(Config{})
	t.Cleanup(func() { e.Close() })
	r := lt.NewRecorder()
	e.Attach(r)
	if e.MTU() != 65536 || e.Capabilities() != link.CapLoopback|link.CapRXChecksumOffload|link.CapTXChecksumOffload {
		t.Fatalf("MTU %d caps %b", e.MTU(), e.Capabilities())
	}
	if e.Capabilities()&link.CapEthernet != 0 || e.LinkAddress() != [6]byte{} {
		t.Fatal("loopback must not be Ethernet")
	}
	var want [][]byte
	for batch := 0; batch < 10; batch++ {
		var pkts []*buffer.Packet
		for i := 0; i < 10; i++ {
			b := []byte{0x45, byte(batch), byte(i), 0, 1, 2, 3}
			want = append(want, b)
			p := buffer.FromBytes(b)
			p.Meta.GSO.NeedsCsum = true
			pkts = append(pkts, p)
		}
		if n, err := e.WritePackets(pkts); n != 10 || err != nil {
			t.Fatalf("WritePackets = %d, %v", n, err)
		}
	}
	big := buffer.New(0, 65536)
	big.Append(65536)
	if n, _ := e.WritePackets([]*buffer.Packet{big}); n != 1 {
		t.Fatal("64 KiB packet not accepted")
	}
	frames := r.WaitCount(t, 101, 10*time.Second)
	for i, w := range want {
		if !bytes.Equal(frames[i].Data, w) {
			t.Fatalf("packet %d = %x, want %x", i, frames[i].Data, w)
		}
		if !frames[i].Meta.ChecksumVerified || frames[i].Meta.GSO.NeedsCsum {
			t.Fatalf("packet %d meta %+v: want only ChecksumVerified", i, frames[i].Meta)
		}
	}
	if len(frames[100].Data) != 65536 {
		t.Fatalf("big packet len %d", len(frames[100].Data))
	}
	st := e.Stats()
	if st.TxPackets != 101 || st.RxPackets != 101 || st.RxBytes != st.TxBytes {
		t.Fatalf("stats %+v", st)
	}
}

func TestLoopbackDropsOversize(t *testing.T) {
	e := New(Config{MTU: 100})
	t.Cleanup(func() { e.Close() })
	p := buffer.New(0, 101)
	p.Append(101)
	if n, err := e.WritePackets([]*buffer.Packet{p}); n != 0 || err != nil {
		t.Fatalf("WritePackets = %d, %v; want 0, nil", n, err)
	}
	if e.Stats().TxDropped != 1 {
		t.Fatalf("TxDropped = %d", e.Stats().TxDropped)
	}
}

func TestLoopbackCloseStopsGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	e := New(Config{})
	e.Close()
	e.Close()
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i > 1000 {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
	n, err := e.WritePackets([]*buffer.Packet{buffer.FromBytes([]byte{0x45})})
	if n != 0 || !errors.Is(err, unix.ENETDOWN) {
		t.Fatalf("write after Close = %d, %v", n, err)
	}
}
