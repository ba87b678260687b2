package dgram

import (
	"net/netip"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
)

func TestQueueOrderAndGrowth(t *testing.T) {
	var q Queue
	for i := 0; i < 40; i++ {
		q.Push(Datagram{Pkt: buffer.FromBytes([]byte{byte(i)}), Truesize: Truesize(1)})
		if i%3 == 0 {
			d := q.Pop()
			d.Pkt.Release()
		}
	}
	if q.Bytes() != q.Len()*Truesize(1) {
		t.Errorf("Bytes %d for %d datagrams", q.Bytes(), q.Len())
	}
	prev := -1
	for q.Len() > 0 {
		d := q.Pop()
		v := int(d.Pkt.Data()[0])
		if v <= prev {
			t.Fatalf("out of order: %d after %d", v, prev)
		}
		prev = v
		d.Pkt.Release()
	}
	if q.Bytes() != 0 || q.Front() != nil {
		t.Error("queue not empty")
	}
}

func TestICMPErrno(t *testing.T) {
	for _, c := range []struct {
		e    stack.ICMPError
		v4   bool
		want unix.Errno
		hard bool
	}{
		{stack.ICMPError{Type: 3, Code: 3}, true, unix.ECONNREFUSED, true},
		{stack.ICMPError{Type: 3, Code: 1}, true, unix.EHOSTUNREACH, false},
		{stack.ICMPError{Type: 3, Code: 4}, true, unix.EMSGSIZE, true},
		{stack.ICMPError{Type: 11}, true, unix.EHOSTUNREACH, false},
		{stack.ICMPError{Type: 1, Code: 4}, false, unix.ECONNREFUSED, true},
		{stack.ICMPError{Type: 1, Code: 1}, false, unix.EACCES, true},
		{stack.ICMPError{Type: 2}, false, unix.EMSGSIZE, true},
		{stack.ICMPError{Kind: stack.ICMPPortUnreachable}, true, unix.ECONNREFUSED, true},
	} {
		got, hard := ICMPErrno(c.e, c.v4)
		if got != c.want || hard != c.hard {
			t.Errorf("%+v v4=%v: %v hard=%v, want %v %v", c.e, c.v4, got, hard, c.want, c.hard)
		}
	}
}

type fakeSock struct{ port uint16 }

func (f *fakeSock) Info() stack.EndpointInfo {
	return stack.EndpointInfo{Local: netip.AddrPortFrom(netip.IPv4Unspecified(), f.port)}
}

// TestTableUnhashAndInfos checks that Unhash keeps bind order, drops an
// empty bucket, and that Infos lists every socket of every bucket.
func TestTableUnhashAndInfos(t *testing.T) {
	a, b, c := &fakeSock{1}, &fakeSock{1}, &fakeSock{2}
	var mu sync.RWMutex
	m := map[uint16][]*fakeSock{1: {a, b, a}, 2: {c}}
	Unhash(m, 1, a)
	if l := m[1]; len(l) != 1 || l[0] != b {
		t.Fatalf("bucket 1 after removing a: %v", l)
	}
	if got := Infos(&mu, m); len(got) != 2 {
		t.Fatalf("Infos listed %d sockets, want 2", len(got))
	}
	Unhash(m, 2, c)
	if _, ok := m[2]; ok {
		t.Fatal("empty bucket 2 kept")
	}
	Unhash(m, 3, c) // absent bucket: nothing happens
	if len(m) != 1 {
		t.Fatalf("table %v", m)
	}
}
