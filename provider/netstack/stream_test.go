package netstack_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEchoLoopback: bytes written on the conduit reach a stack server
// over loopback and its echo comes back on the conduit.
func TestEchoLoopback(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	msg := bytes.Repeat([]byte("netprov-conduit "), 1<<16) // 1 MiB
	go func() {
		for off := 0; off < len(msg); {
			k, err := unix.Write(fd, msg[off:])
			if err != nil {
				return
			}
			off += k
		}
	}()
	got := readFull(t, fd, len(msg))
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs from what was sent")
	}
	if sa, err := s.GetPeerName(); err != nil || !bytes.Equal(sa, sockaddr(addrPort(t, l.Addr()))) {
		t.Fatalf("getpeername = %x, %v", sa, err)
	}
}

// TestHalfCloseFromTarget: shutdown(SHUT_WR) on the conduit sends FIN
// (the server reads EOF) and the target still reads what the server
// sends afterwards, then EOF.
func TestHalfCloseFromTarget(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	writeAll(t, fd, []byte("request"))
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(srv)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v; want request then EOF", got, err)
	}
	if _, err := srv.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if got := readFull(t, fd, 8); string(got) != "response" {
		t.Fatalf("target read %q", got)
	}
	pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
	if k, err := unix.Read(fd, make([]byte, 16)); k != 0 || err != nil {
		t.Fatalf("read after peer FIN = %d, %v; want 0 (EOF)", k, err)
	}
}

// TestHalfCloseFromPeer: the peer's FIN makes the target read EOF after
// the last byte, and the target can still write (spec: half-close).
func TestHalfCloseFromPeer(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	if _, err := srv.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := srv.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, fd, 4); string(got) != "last" {
		t.Fatalf("target read %q", got)
	}
	m := pollUntil(t, fd, unix.POLLIN|unix.POLLRDHUP, unix.POLLRDHUP)
	if m&unix.POLLHUP != 0 {
		t.Fatalf("poll after peer FIN = %#x: POLLHUP on a half-closed socket", m)
	}
	if k, err := unix.Read(fd, make([]byte, 16)); k != 0 || err != nil {
		t.Fatalf("read after peer FIN = %d, %v; want 0", k, err)
	}
	writeAll(t, fd, []byte("still-writing"))
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(srv)
	if err != nil || string(got) != "still-writing" {
		t.Fatalf("server read %q, %v", got, err)
	}
}

// TestStreamAddressedCalls: sendto/recvfrom with an address on a TCP
// socket (Linux ignores the address; msg_namelen 0) go through the
// conduit, in order with the target's plain writes and reads.
func TestStreamAddressedCalls(t *testing.T) {
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	writeAll(t, fd, []byte("first,"))
	ctx := context.Background()
	if k, err := s.SendTo(ctx, []byte("second"), 0, sockaddr(addrPort(t, l.Addr())), false); k != 6 || err != nil {
		t.Fatalf("sendto = %d, %v", k, err)
	}
	buf := make([]byte, 32)
	got := ""
	_ = srv.SetReadDeadline(time.Now().Add(waitLimit))
	for len(got) < 12 {
		k, err := srv.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += string(buf[:k])
	}
	if got != "first,second" {
		t.Fatalf("server got %q", got)
	}
	if _, err := srv.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	k, from, _, err := s.RecvFrom(ctx, buf, 0, false)
	if err != nil || string(buf[:k]) != "reply" || from != nil {
		t.Fatalf("recvfrom = %q from %x, %v; want reply with no address", buf[:k], from, err)
	}
	// FIONREAD counts bytes waiting in the conduit.
	if _, err := srv.Write([]byte("xyz")); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, fd, unix.POLLIN, unix.POLLIN)
	if v, err := s.Ioctl(unix.SIOCINQ); err != nil || v != 3 {
		t.Fatalf("FIONREAD = %d, %v; want 3", v, err)
	}
}
