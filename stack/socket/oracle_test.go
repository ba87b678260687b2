package socket_test

import (
	"errors"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket"
)

// The Linux kernel is the oracle: these tests make the same calls on
// kernel sockets of the test process and on the stack's sockets and
// compare the errno values. No packet leaves either: the calls fail
// before sending, or only bind / connect UDP sockets on loopback.

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

func TestSocketArgumentsMatchLinux(t *testing.T) {
	n := newNode(t, nil)
	cases := []struct{ family, sotype, proto int }{
		{unix.AF_INET, unix.SOCK_STREAM, 0},
		{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP},
		{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP},
		{unix.AF_INET, unix.SOCK_DGRAM, 0},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_TCP},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6},
		{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMP},
		{unix.AF_INET, unix.SOCK_RAW, 0},
		{unix.AF_INET, unix.SOCK_SEQPACKET, 0},
		{unix.AF_INET6, unix.SOCK_SEQPACKET, 0},
		{unix.AF_INET, 11, 0},
		{unix.AF_INET, unix.SOCK_STREAM | 0x100, 0},
		{unix.AF_INET, unix.SOCK_STREAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, 0},
		{unix.AF_INET, unix.SOCK_STREAM, -1},
		{unix.AF_INET, unix.SOCK_DGRAM, 263},
		{unix.AF_INET6, unix.SOCK_STREAM, 0},
		{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP},
	}
	for _, c := range cases {
		fd, kerr := unix.Socket(c.family, c.sotype, c.proto)
		if kerr == nil {
			unix.Close(fd)
		}
		so, err := n.Socket(c.family, c.sotype, c.proto)
		if err == nil {
			so.Close()
		}
		if errnoOf(kerr) != errnoOf(err) {
			t.Errorf("socket(%d, %#x, %d): stack %v, Linux %v", c.family, c.sotype, c.proto, err, kerr)
		}
	}
}

// kernelCall runs a raw socket syscall with a sockaddr buffer.
func kernelCall(trap uintptr, fd int, sa []byte) error {
	var p unsafe.Pointer
	if len(sa) > 0 {
		p = unsafe.Pointer(&sa[0])
	}
	_, _, e := unix.Syscall(trap, uintptr(fd), uintptr(p), uintptr(len(sa)))
	if e != 0 {
		return e
	}
	return nil
}

func kernelSendto(fd int, msg, sa []byte) error {
	var p unsafe.Pointer
	if len(sa) > 0 {
		p = unsafe.Pointer(&sa[0])
	}
	var m unsafe.Pointer
	if len(msg) > 0 {
		m = unsafe.Pointer(&msg[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(m), uintptr(len(msg)), 0, uintptr(p), uintptr(len(sa)))
	if e != 0 {
		return e
	}
	return nil
}

func TestSockaddrRulesMatchLinux(t *testing.T) {
	if fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0); err != nil {
		t.Skipf("skipping: the host has no IPv6 sockets: %v", err)
	} else {
		unix.Close(fd)
	}
	n := newNode(t, nil)
	type op int
	const (
		bind op = iota
		connect
		sendto
	)
	cases := []struct {
		name   string
		family int
		op     op
		sa     []byte
		msg    []byte
	}{
		{"bind short sockaddr_in", unix.AF_INET, bind, sockaddr4(unix.AF_INET, "127.0.0.1", 0, 15), nil},
		{"bind AF_INET6 on AF_INET", unix.AF_INET, bind, sockaddr6(unix.AF_INET6, "::1", 0, 0, 28), nil},
		{"bind AF_UNSPEC loopback", unix.AF_INET, bind, sockaddr4(unix.AF_UNSPEC, "127.0.0.1", 0, 16), nil},
		{"bind AF_UNSPEC any", unix.AF_INET, bind, sockaddr4(unix.AF_UNSPEC, "0.0.0.0", 0, 16), nil},
		{"bind addrlen 129", unix.AF_INET, bind, make([]byte, 129), nil},
		{"bind foreign address", unix.AF_INET, bind, sockaddr4(unix.AF_INET, "10.213.9.9", 0, 16), nil},
		{"bind short sockaddr_in6", unix.AF_INET6, bind, sockaddr6(unix.AF_INET6, "::1", 0, 0, 23), nil},
		{"bind RFC2133 sockaddr_in6", unix.AF_INET6, bind, sockaddr6(unix.AF_INET6, "::1", 0, 0, 24), nil},
		{"bind AF_INET on AF_INET6", unix.AF_INET6, bind, sockaddr4(unix.AF_INET, "127.0.0.1", 0, 28), nil},
		{"bind link-local without scope", unix.AF_INET6, bind, sockaddr6(unix.AF_INET6, "fe80::1", 0, 0, 28), nil},
		{"bind v4-mapped loopback", unix.AF_INET6, bind, sockaddr6(unix.AF_INET6, "::ffff:127.0.0.1", 0, 0, 28), nil},
		{"connect addrlen 1", unix.AF_INET, connect, []byte{2}, nil},
		{"connect AF_UNSPEC", unix.AF_INET, connect, []byte{0, 0}, nil},
		{"connect short sockaddr_in", unix.AF_INET, connect, sockaddr4(unix.AF_INET, "127.0.0.1", 9, 15), nil},
		{"connect AF_INET6 on AF_INET", unix.AF_INET, connect, sockaddr6(unix.AF_INET6, "::1", 9, 0, 28), nil},
		{"connect sin_zero garbage", unix.AF_INET, connect, append(sockaddr4(unix.AF_INET, "127.0.0.1", 9, 8), "00000000"...), nil},
		{"connect AF_INET on AF_INET6", unix.AF_INET6, connect, sockaddr4(unix.AF_INET, "127.0.0.1", 9, 16), nil},
		{"connect short sockaddr_in6", unix.AF_INET6, connect, sockaddr6(unix.AF_INET6, "::1", 9, 0, 20), nil},
		{"sendto unknown family v6", unix.AF_INET6, sendto, []byte{0xff, 0x7f, 0, 0}, []byte("x")},
		{"sendto AF_UNSPEC v6 unconnected", unix.AF_INET6, sendto, []byte{0, 0}, []byte("x")},
		{"sendto AF_UNIX v4", unix.AF_INET, sendto, sockaddr4(unix.AF_UNIX, "127.0.0.1", 9, 16), []byte("x")},
		{"sendto short v4", unix.AF_INET, sendto, sockaddr4(unix.AF_INET, "127.0.0.1", 9, 12), []byte("x")},
		{"sendto 70000 bytes", unix.AF_INET, sendto, sockaddr4(unix.AF_INET, "127.0.0.1", 9, 16), make([]byte, 70000)},
		{"sendto 65508 bytes", unix.AF_INET, sendto, sockaddr4(unix.AF_INET, "127.0.0.1", 9, 16), make([]byte, 65508)},
		{"sendto port 0", unix.AF_INET, sendto, sockaddr4(unix.AF_INET, "127.0.0.1", 0, 16), []byte("x")},
	}
	for _, c := range cases {
		fd, err := unix.Socket(c.family, unix.SOCK_DGRAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		var kerr error
		switch c.op {
		case bind:
			kerr = kernelCall(unix.SYS_BIND, fd, c.sa)
		case connect:
			kerr = kernelCall(unix.SYS_CONNECT, fd, c.sa)
		case sendto:
			kerr = kernelSendto(fd, c.msg, c.sa)
		}
		unix.Close(fd)
		so := newSocket(t, n, c.family, unix.SOCK_DGRAM, 0)
		switch c.op {
		case bind:
			err = so.Bind(c.sa)
		case connect:
			err = so.Connect(ctx0, c.sa)
		case sendto:
			_, _, err = so.SendTo(ctx0, c.msg, 0, c.sa)
		}
		if errnoOf(kerr) != errnoOf(err) {
			t.Errorf("%s: stack %v, Linux %v", c.name, err, kerr)
		}
	}
}

// sockCase is one call made on a kernel socket and on a stack socket.
type sockCase struct {
	name                  string
	family, sotype, proto int
	kernel                func(fd int) error
	stack                 func(so *Socket) error
}

// Socket is the stack's socket type, aliased for the case table.
type Socket = socket.Socket

func TestSocketCallsMatchLinux(t *testing.T) {
	n := newNode(t, nil)
	intOpt := func(v int) []byte { b := make([]byte, 4); b[0] = byte(v); return b }
	cases := []sockCase{
		{"listen on UDP", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { return unix.Listen(fd, 1) },
			func(so *Socket) error { return so.Listen(1) }},
		{"accept on unlistened TCP", unix.AF_INET, unix.SOCK_STREAM | unix.SOCK_NONBLOCK, 0,
			func(fd int) error { _, _, err := unix.Accept(fd); return err },
			func(so *Socket) error { _, _, err := so.Accept(ctx0); return err }},
		{"shutdown unconnected UDP", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) },
			func(so *Socket) error { return so.Shutdown(unix.SHUT_WR) }},
		{"shutdown how=3", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { return unix.Shutdown(fd, 3) },
			func(so *Socket) error { return so.Shutdown(3) }},
		{"getpeername unconnected UDP", unix.AF_INET6, unix.SOCK_DGRAM, 0,
			func(fd int) error { _, err := unix.Getpeername(fd); return err },
			func(so *Socket) error { _, err := so.GetPeerName(); return err }},
		{"IP_TTL 0", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TTL, 0) },
			func(so *Socket) error { return so.SetSockOpt(unix.SOL_IP, unix.IP_TTL, intOpt(0)) }},
		{"IP_TTL 256", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TTL, 256) },
			func(so *Socket) error { return so.SetSockOpt(unix.SOL_IP, unix.IP_TTL, []byte{0, 1, 0, 0}) }},
		{"IPV6 option on AF_INET", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_V6ONLY, 1) },
			func(so *Socket) error { return so.SetSockOpt(unix.SOL_IPV6, unix.IPV6_V6ONLY, intOpt(1)) }},
		{"IPV6_V6ONLY after bind", unix.AF_INET6, unix.SOCK_DGRAM, 0,
			func(fd int) error {
				unix.Bind(fd, &unix.SockaddrInet6{Addr: [16]byte{15: 1}})
				return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_V6ONLY, 1)
			},
			func(so *Socket) error {
				so.Bind(sockaddr6(unix.AF_INET6, "::1", 0, 0, 28))
				return so.SetSockOpt(unix.SOL_IPV6, unix.IPV6_V6ONLY, intOpt(1))
			}},
		{"SO_TYPE set", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE, 1) },
			func(so *Socket) error { return so.SetSockOpt(unix.SOL_SOCKET, unix.SO_TYPE, intOpt(1)) }},
		{"SO_RCVTIMEO usec 1e6", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error {
				return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 1_000_000})
			},
			func(so *Socket) error {
				tv := timeval(0)
				tv[8], tv[9], tv[10] = 0x40, 0x42, 0x0f
				return so.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, tv)
			}},
		{"short SO_RCVBUF", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error {
				b := []byte{1, 0}
				_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, uintptr(unsafe.Pointer(&b[0])), 2, 0)
				if e != 0 {
					return e
				}
				return nil
			},
			func(so *Socket) error { return so.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVBUF, []byte{1, 0}) }},
		{"TCP option on UDP", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_NODELAY, 1) },
			func(so *Socket) error { return so.SetSockOpt(unix.SOL_TCP, unix.TCP_NODELAY, intOpt(1)) }},
		{"recv MSG_DONTWAIT empty", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { _, _, err := unix.Recvfrom(fd, make([]byte, 1), unix.MSG_DONTWAIT); return err },
			func(so *Socket) error { _, err := so.Recv(ctx0, make([]byte, 1), unix.MSG_DONTWAIT); return err }},
		{"send unconnected UDP", unix.AF_INET, unix.SOCK_DGRAM, 0,
			func(fd int) error { _, err := unix.Write(fd, []byte("x")); return err },
			func(so *Socket) error { _, _, err := so.Write(ctx0, []byte("x")); return err }},
	}
	for _, c := range cases {
		fd, err := unix.Socket(c.family, c.sotype, c.proto)
		if err != nil {
			t.Fatal(err)
		}
		kerr := c.kernel(fd)
		unix.Close(fd)
		so := newSocket(t, n, c.family, c.sotype, c.proto)
		if serr := c.stack(so); errnoOf(kerr) != errnoOf(serr) {
			t.Errorf("%s: stack %v, Linux %v", c.name, serr, kerr)
		}
	}
}
