package host_test

import (
	"context"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/provider/host"
)

// netnsIno is the inode of the network namespace a socket belongs to
// (SIOCGSKNS).
func netnsIno(t *testing.T, fd int) uint64 {
	t.Helper()
	nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		t.Fatalf("SIOCGSKNS: %v", err)
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func inet4(ip [4]byte, port uint16) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:4], port)
	copy(b[4:8], ip[:])
	return b
}

// TestHostSocketInNamespace: the socket is a kernel socket of the test
// namespace (not of the caller's), and binding, listening and accepting
// from a kernel peer in that namespace work through the provider.
func TestHostSocketInNamespace(t *testing.T) {
	ns := netns.New(t, "nph")
	p, err := host.New(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var want unix.Stat_t
	if err := unix.Stat(ns.Path(), &want); err != nil {
		t.Fatal(err)
	}
	var self unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &self); err != nil {
		t.Fatal(err)
	}

	s, err := p.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Passthrough() {
		t.Fatal("host sockets are passthrough")
	}
	fd := int(s.Conduit().Fd())
	if got := netnsIno(t, fd); got != want.Ino {
		t.Fatalf("socket netns inode %d, want the test namespace %d", got, want.Ino)
	}
	// The caller's threads stay in their namespace.
	local, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(local)
	if got := netnsIno(t, local); got != self.Ino {
		t.Fatalf("a socket made afterwards is in netns %d, want the caller's %d", got, self.Ino)
	}

	if err := s.Bind(inet4([4]byte{127, 0, 0, 1}, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(4); err != nil {
		t.Fatal(err)
	}
	sa, err := s.GetSockName()
	if err != nil {
		t.Fatal(err)
	}
	port := binary.BigEndian.Uint16(sa[2:4])
	if _, _, err := s.Accept(context.Background(), true); err != unix.EAGAIN {
		t.Fatalf("non-blocking accept on empty queue = %v, want EAGAIN", err)
	}
	// The kernel peer lives in the namespace too.
	err = ns.Do(func() error {
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(c)
		if err := unix.Connect(c, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		_, err = unix.Write(c, []byte("hello from the namespace"))
		return err
	})
	if err != nil {
		t.Fatalf("kernel peer: %v", err)
	}
	conn, peer, err := s.Accept(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if binary.NativeEndian.Uint16(peer) != unix.AF_INET || peer[4] != 127 {
		t.Fatalf("peer = %x", peer)
	}
	buf := make([]byte, 64)
	n, err := unix.Read(int(conn.Conduit().Fd()), buf)
	if err != nil || string(buf[:n]) != "hello from the namespace" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// TestHostUDPAddressed: sendto/recvfrom through the provider carry
// addresses in Linux's sockaddr layout.
func TestHostUDPAddressed(t *testing.T) {
	ns := netns.New(t, "nph")
	p, err := host.New(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, err := p.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []interface{ Bind([]byte) error }{a, b} {
		if err := s.Bind(inet4([4]byte{127, 0, 0, 1}, 0)); err != nil {
			t.Fatal(err)
		}
	}
	bAddr, _ := b.GetSockName()
	aAddr, _ := a.GetSockName()
	ctx := context.Background()
	if n, err := a.SendTo(ctx, []byte("ping"), 0, bAddr, false); n != 4 || err != nil {
		t.Fatalf("sendto = %d, %v", n, err)
	}
	buf := make([]byte, 16)
	n, from, _, err := b.RecvFrom(ctx, buf, 0, false)
	if err != nil || string(buf[:n]) != "ping" || string(from) != string(aAddr) {
		t.Fatalf("recvfrom = %q from %x, %v; want ping from %x", buf[:n], from, err, aAddr)
	}
}
