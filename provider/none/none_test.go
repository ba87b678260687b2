package none_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/provider/none"
)

func inet4(ip [4]byte, port uint16) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:4], port)
	copy(b[4:8], ip[:])
	return b
}

// TestLoopbackOnly: loopback connections work through conduits; any other
// destination is unreachable (no route), as in an empty namespace.
func TestLoopbackOnly(t *testing.T) {
	p, err := none.New()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Name() != "none" {
		t.Fatalf("name %q", p.Name())
	}
	l, err := p.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Bind(inet4([4]byte{127, 0, 0, 1}, 0)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(4); err != nil {
		t.Fatal(err)
	}
	sa, _ := l.GetSockName()
	c, err := p.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx, sa, false); err != nil {
		t.Fatalf("connect to loopback: %v", err)
	}
	a, _, err := l.Accept(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(int(c.Conduit().Fd()), []byte("lo")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	pfd := []unix.PollFd{{Fd: int32(a.Conduit().Fd()), Events: unix.POLLIN}}
	if n, _ := unix.Poll(pfd, 10000); n != 1 {
		t.Fatal("accepted conduit not readable")
	}
	if n, err := unix.Read(int(a.Conduit().Fd()), buf); err != nil || string(buf[:n]) != "lo" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	o, err := p.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Connect(ctx, inet4([4]byte{10, 213, 0, 1}, 80), false); err != unix.ENETUNREACH {
		t.Fatalf("connect off-box = %v, want ENETUNREACH", err)
	}
	conns := p.Connections()
	var estab, listen int
	for _, cn := range conns {
		switch cn.State {
		case "ESTAB":
			estab++
		case "LISTEN":
			listen++
		}
	}
	if estab != 2 || listen != 1 {
		t.Fatalf("connections %+v: want 2 ESTAB and 1 LISTEN", conns)
	}
	var _ provider.Lister = p
}
