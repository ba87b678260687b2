package netstack_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkConduitToStack measures bulk TCP through the conduit into a
// stack server over loopback, and the allocations per 64 KiB moved.
func BenchmarkConduitToStack(b *testing.B) {
	p, n := newProvider(b)
	l, err := n.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	}()
	s, err := p.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	ap := addrPort(b, l.Addr())
	if err := s.Connect(b.Context(), sockaddr(ap), false); err != nil {
		b.Fatal(err)
	}
	fd := int(s.Conduit().Fd())
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for off := 0; off < len(chunk); {
			k, err := unix.Write(fd, chunk[off:])
			if err != nil {
				b.Fatal(err)
			}
			off += k
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "mallocs/64KiB")
	s.Close()
}

// BenchmarkSocketConnectClose measures a stream socket's life without
// data: socket (unconnected conduit and its joiner), blocking connect
// over loopback (the conduit joined in place), close.
func BenchmarkSocketConnectClose(b *testing.B) {
	p, n := newProvider(b)
	l, err := n.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	to := sockaddr(addrPort(b, l.Addr()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := p.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Connect(b.Context(), to, false); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkSocketClose measures a stream socket that never connects:
// socket (the unconnected conduit) and close.
func BenchmarkSocketClose(b *testing.B) {
	p, _ := newProvider(b)
	for i := 0; i < b.N; i++ {
		s, err := p.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkAcceptClose measures the server side of a connection: a
// stack client dials a provider listener, which accepts (a connected
// conduit, its first sentinel, the pumps), and both close.
func BenchmarkAcceptClose(b *testing.B) {
	p, n := newProvider(b)
	s, err := p.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		b.Fatal(err)
	}
	if err := s.Listen(128); err != nil {
		b.Fatal(err)
	}
	name, err := s.GetSockName()
	if err != nil {
		b.Fatal(err)
	}
	port := int(name[2])<<8 | int(name[3])
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := n.Dial("tcp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		conn, _, err := s.Accept(b.Context(), false)
		if err != nil {
			b.Fatal(err)
		}
		conn.Close()
		c.Close()
	}
}

// BenchmarkUDPSocketBindClose measures a UDP socket's life as a resolver
// uses it: socket, bind to an ephemeral port and close; "provider" is a
// provider socket (with a kernel UDP conduit: the pair, the target end
// bound and our end connected to it), "kernel" the same on a kernel UDP
// socket, measured in the same run as the peer.
func BenchmarkUDPSocketBindClose(b *testing.B) {
	p, _ := newProvider(b)
	any := sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))
	b.Run("provider", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s, err := p.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Bind(any); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("kernel", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	})
}

// BenchmarkUDPEcho measures a 1-byte datagram request/response: the
// target writes on its connected UDP socket's fd and reads the answer of
// a stack echo server on loopback ("provider": through the conduit, both
// pumps and the stack), against the same exchange between two kernel UDP
// sockets on loopback ("kernel"), in the same run.
func BenchmarkUDPEcho(b *testing.B) {
	echo := func(b *testing.B, c net.PacketConn) {
		go func() {
			buf := make([]byte, 16)
			for {
				k, from, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				c.WriteTo(buf[:k], from)
			}
		}()
	}
	run := func(b *testing.B, fd int) {
		buf := make([]byte, 16)
		for i := 0; i < b.N; i++ {
			if _, err := unix.Write(fd, buf[:1]); err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Read(fd, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("provider", func(b *testing.B) {
		p, n := newProvider(b)
		srv, err := n.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		echo(b, srv)
		s, err := p.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if err := s.Connect(context.Background(), sockaddr(addrPort(b, srv.LocalAddr())), false); err != nil {
			b.Fatal(err)
		}
		run(b, int(s.Conduit().Fd()))
	})
	b.Run("kernel", func(b *testing.B) {
		srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		echo(b, srv)
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
		to := addrPort(b, srv.LocalAddr())
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: to.Addr().As4(), Port: int(to.Port())}); err != nil {
			b.Fatal(err)
		}
		run(b, fd)
	})
}
