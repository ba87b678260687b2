package sockopt

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestBufferSizes(t *testing.T) {
	for _, c := range []struct{ set, max, rcv, snd int }{
		{1, DefaultMem, MinRcvBuf, MinSndBuf},
		{0, DefaultMem, MinRcvBuf, MinSndBuf},
		{-5, DefaultMem, MinRcvBuf, MinSndBuf},
		{10000, DefaultMem, 20000, 20000},
		{1 << 30, DefaultMem, 2 * DefaultMem, 2 * DefaultMem},
	} {
		if got := RcvBuf(c.set, c.max); got != c.rcv {
			t.Errorf("RcvBuf(%d) = %d, want %d", c.set, got, c.rcv)
		}
		if got := SndBuf(c.set, c.max); got != c.snd {
			t.Errorf("SndBuf(%d) = %d, want %d", c.set, got, c.snd)
		}
	}
}

func TestIntEncoding(t *testing.T) {
	if _, err := Int([]byte{1, 2, 3}); err != unix.EINVAL {
		t.Errorf("3-byte int: %v, want EINVAL", err)
	}
	b := make([]byte, 8)
	if n := PutInt(b, -2); n != 4 {
		t.Errorf("PutInt wrote %d bytes", n)
	}
	if v, err := Int(b); v != -2 || err != nil {
		t.Errorf("Int = %d, %v", v, err)
	}
	if n := PutInt(b[:2], 7); n != 2 {
		t.Errorf("PutInt into 2 bytes wrote %d", n)
	}
	if v, err := IntOrByte([]byte{200}); v != 200 || err != nil {
		t.Errorf("IntOrByte one byte = %d, %v", v, err)
	}
	if _, err := IntOrByte(nil); err != unix.EINVAL {
		t.Errorf("IntOrByte empty: %v", err)
	}
}

func TestGeneric(t *testing.T) {
	var g Generic
	b := make([]byte, 8)
	PutInt(b, 1)
	if ok, err := g.Set(unix.SO_KEEPALIVE, b[:4]); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if n, ok := g.Get(unix.SO_KEEPALIVE, b); !ok || n != 4 || b[0] != 1 {
		t.Errorf("SO_KEEPALIVE reads back %x", b[:n])
	}
	if n, _ := g.Get(unix.SO_RCVLOWAT, b); n != 4 || b[0] != 1 {
		t.Errorf("default SO_RCVLOWAT %x, want 1", b[:n])
	}
	if ok, err := g.Set(unix.SO_LINGER, b[:4]); !ok || err != unix.EINVAL {
		t.Errorf("short SO_LINGER: %v %v", ok, err)
	}
	if ok, _ := g.Set(unix.SO_RCVBUF, b[:4]); ok {
		t.Error("Generic claimed SO_RCVBUF")
	}
}
