package socket_test

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/waiter"
)

// Spec A.1 and A.3: socket(2) argument rules.
func TestSocketArguments(t *testing.T) {
	n := newNode(t, nil)
	tests := []struct {
		name                  string
		family, sotype, proto int
		want                  error
		wantProto             int
	}{
		{"stream default", unix.AF_INET, unix.SOCK_STREAM, 0, nil, unix.IPPROTO_TCP},
		{"stream tcp", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, nil, unix.IPPROTO_TCP},
		{"stream6", unix.AF_INET6, unix.SOCK_STREAM, 0, nil, unix.IPPROTO_TCP},
		{"dgram default", unix.AF_INET, unix.SOCK_DGRAM, 0, nil, unix.IPPROTO_UDP},
		{"dgram udp6", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP, nil, unix.IPPROTO_UDP},
		{"ping", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, nil, unix.IPPROTO_ICMP},
		{"ping6", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6, nil, unix.IPPROTO_ICMPV6},
		{"flags", unix.AF_INET, unix.SOCK_STREAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, 0, nil, unix.IPPROTO_TCP},
		{"raw without protocol", unix.AF_INET, unix.SOCK_RAW, 0, unix.EPROTONOSUPPORT, 0},
		{"stream udp", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP, unix.EPROTONOSUPPORT, 0},
		{"dgram tcp", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_TCP, unix.EPROTONOSUPPORT, 0},
		{"ping6 on inet", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6, unix.EPROTONOSUPPORT, 0},
		{"ping on inet6", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, unix.EPROTONOSUPPORT, 0},
		{"seqpacket", unix.AF_INET, unix.SOCK_SEQPACKET, 0, unix.ESOCKTNOSUPPORT, 0},
		{"type beyond SOCK_MAX", unix.AF_INET, 11, 0, unix.EINVAL, 0},
		{"unknown flag bit", unix.AF_INET, unix.SOCK_STREAM | 0x100, 0, unix.EINVAL, 0},
		{"negative protocol", unix.AF_INET, unix.SOCK_STREAM, -1, unix.EINVAL, 0},
		{"protocol beyond IPPROTO_MAX", unix.AF_INET, unix.SOCK_DGRAM, 263, unix.EINVAL, 0},
		{"unix family", unix.AF_UNIX, unix.SOCK_STREAM, 0, unix.EAFNOSUPPORT, 0},
		{"packet family", unix.AF_PACKET, unix.SOCK_DGRAM, 0, unix.EAFNOSUPPORT, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			so, err := n.Socket(tc.family, tc.sotype, tc.proto)
			if err != tc.want {
				t.Fatalf("socket: %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			defer so.Close()
			if got := getInt(t, so, unix.SOL_SOCKET, unix.SO_PROTOCOL); got != tc.wantProto {
				t.Errorf("SO_PROTOCOL %d, want %d", got, tc.wantProto)
			}
			if got := getInt(t, so, unix.SOL_SOCKET, unix.SO_TYPE); got != tc.sotype&0xf {
				t.Errorf("SO_TYPE %d", got)
			}
			if got := getInt(t, so, unix.SOL_SOCKET, unix.SO_DOMAIN); got != tc.family {
				t.Errorf("SO_DOMAIN %d", got)
			}
			if so.Nonblocking() != (tc.sotype&unix.SOCK_NONBLOCK != 0) || so.CloseOnExec() != (tc.sotype&unix.SOCK_CLOEXEC != 0) {
				t.Errorf("flags: nonblocking %v cloexec %v", so.Nonblocking(), so.CloseOnExec())
			}
			if got := getInt(t, so, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); got != 0 {
				t.Errorf("SO_ACCEPTCONN %d", got)
			}
		})
	}
}

// Spec 13: address length and family checks, and AF_UNSPEC.
func TestSockaddrRules(t *testing.T) {
	n := newNode(t, nil)
	u4 := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err := u4.Bind(sockaddr4(unix.AF_INET, "127.0.0.1", 0, 15)); err != unix.EINVAL {
		t.Errorf("bind short sockaddr_in: %v, want EINVAL", err)
	}
	if err := u4.Bind(sockaddr6(unix.AF_INET6, "::1", 0, 0, 28)); err != unix.EAFNOSUPPORT {
		t.Errorf("bind AF_INET6 address on AF_INET: %v, want EAFNOSUPPORT", err)
	}
	if err := u4.Bind(sockaddr4(unix.AF_UNSPEC, "127.0.0.1", 0, 16)); err != unix.EAFNOSUPPORT {
		t.Errorf("bind AF_UNSPEC non-any: %v, want EAFNOSUPPORT", err)
	}
	if err := u4.Bind(make([]byte, 129)); err != unix.EINVAL {
		t.Errorf("bind with addrlen 129: %v, want EINVAL", err)
	}
	if err := u4.Bind(sockaddr4(unix.AF_UNSPEC, "0.0.0.0", 0, 16)); err != nil {
		t.Errorf("bind AF_UNSPEC INADDR_ANY: %v", err)
	}
	sa, _ := u4.GetSockName()
	if len(sa) != socket.SizeofSockaddrInet4 || u4.LocalAddr().Port() == 0 {
		t.Errorf("getsockname %x", sa)
	}
	if err := u4.Connect(ctx0, []byte{2}); err != unix.EINVAL {
		t.Errorf("connect addrlen 1: %v, want EINVAL", err)
	}
	if err := u4.Connect(ctx0, sockaddr4(unix.AF_INET, "127.0.0.1", 9, 15)); err != unix.EINVAL {
		t.Errorf("connect short: %v, want EINVAL", err)
	}
	if err := u4.Connect(ctx0, sockaddr6(unix.AF_INET6, "::1", 9, 0, 28)); err != unix.EAFNOSUPPORT {
		t.Errorf("connect AF_INET6 on AF_INET: %v, want EAFNOSUPPORT", err)
	}
	// Spec 14: sin_zero is not checked.
	withZero := sockaddr4(unix.AF_INET, "127.0.0.1", 9, 16)
	copy(withZero[8:], "00000000")
	if err := u4.Connect(ctx0, withZero); err != nil {
		t.Errorf("connect with non-zero sin_zero: %v", err)
	}
	peer, err := u4.GetPeerName()
	if err != nil || !bytes.Equal(peer[:8], withZero[:8]) || !bytes.Equal(peer[8:], make([]byte, 8)) {
		t.Errorf("getpeername %x, %v", peer, err)
	}
	if err := u4.Connect(ctx0, []byte{0, 0}); err != nil {
		t.Errorf("connect AF_UNSPEC: %v", err)
	}
	if _, err := u4.GetPeerName(); err != unix.ENOTCONN {
		t.Errorf("getpeername after AF_UNSPEC: %v, want ENOTCONN", err)
	}

	u6 := newSocket(t, n, unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err := u6.Bind(sockaddr6(unix.AF_INET6, "::1", 0, 0, 23)); err != unix.EINVAL {
		t.Errorf("bind 23-byte sockaddr_in6: %v, want EINVAL", err)
	}
	if err := u6.Bind(sockaddr4(unix.AF_INET, "127.0.0.1", 0, 24)); err != unix.EAFNOSUPPORT {
		t.Errorf("bind AF_INET on AF_INET6: %v, want EAFNOSUPPORT", err)
	}
	if err := u6.Bind(sockaddr6(unix.AF_INET6, "fe80::1", 0, 0, 28)); err != unix.EINVAL {
		t.Errorf("bind link-local without scope id: %v, want EINVAL", err)
	}
	if err := u6.Bind(sockaddr6(unix.AF_INET6, "::1", 0, 0, 24)); err != nil {
		t.Errorf("bind SIN6_LEN_RFC2133: %v", err)
	}
	if _, _, err := u6.SendTo(ctx0, []byte("x"), 0, []byte{0xff, 0x7f, 0, 0}); err != unix.EINVAL {
		t.Errorf("sendto unknown family on AF_INET6: %v, want EINVAL", err)
	}
	if _, _, err := u6.SendTo(ctx0, []byte("x"), 0, []byte{0, 0}); err != unix.EDESTADDRREQ {
		t.Errorf("sendto AF_UNSPEC on unconnected AF_INET6: %v, want EDESTADDRREQ", err)
	}
	if _, _, err := u4.SendTo(ctx0, []byte("x"), 0, sockaddr4(unix.AF_UNIX, "127.0.0.1", 9, 16)); err != unix.EAFNOSUPPORT {
		t.Errorf("sendto AF_UNIX on AF_INET: %v, want EAFNOSUPPORT", err)
	}
	if _, _, err := u4.SendTo(ctx0, make([]byte, 70000), 0, sockaddr4(unix.AF_INET, "127.0.0.1", 9, 16)); err != unix.EMSGSIZE {
		t.Errorf("sendto 70000 bytes: %v, want EMSGSIZE", err)
	}
	sa, _ = u6.GetSockName()
	if len(sa) != socket.SizeofSockaddrInet6 {
		t.Errorf("getsockname of AF_INET6 is %d bytes", len(sa))
	}
}

// UDP recvfrom / sendto through the socket layer, MSG_TRUNC and MSG_PEEK.
func TestDatagramIO(t *testing.T) {
	n := newNode(t, nil)
	a := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	b := newSocket(t, n, unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err := b.Bind(sockaddr6(unix.AF_INET6, "::", 0, 0, 28)); err != nil {
		t.Fatal(err)
	}
	to := sockaddr4(unix.AF_INET, "127.0.0.1", b.LocalAddr().Port(), 16)
	msg := bytes.Repeat([]byte("x"), 100)
	if n, sig, err := a.SendTo(ctx0, msg, 0, to); n != 100 || sig || err != nil {
		t.Fatalf("sendto: %d %v %v", n, sig, err)
	}
	buf := make([]byte, 10)
	r, err := b.RecvMsg(context.Background(), buf, unix.MSG_PEEK|unix.MSG_TRUNC)
	if err != nil || r.N != 100 || r.Flags&unix.MSG_TRUNC == 0 {
		t.Fatalf("recvmsg(PEEK|TRUNC): %+v, %v", r, err)
	}
	if want := netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), a.LocalAddr().Port()); r.From != want {
		t.Errorf("from %v, want %v", r.From, want)
	}
	nr, from, err := b.RecvFrom(context.Background(), make([]byte, 200), 0)
	if err != nil || nr != 100 || len(from) != socket.SizeofSockaddrInet6 {
		t.Fatalf("recvfrom: %d %x %v", nr, from, err)
	}
	if _, err := b.Recv(context.Background(), buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Fatalf("MSG_DONTWAIT on empty queue: %v, want EAGAIN", err)
	}
	b.SetNonblocking(true)
	if _, err := b.Recv(context.Background(), buf, 0); err != unix.EAGAIN {
		t.Fatalf("non-blocking recv: %v, want EAGAIN", err)
	}
	if err := b.Listen(1); err != unix.EOPNOTSUPP {
		t.Errorf("listen on UDP: %v, want EOPNOTSUPP", err)
	}
	if _, _, err := b.Accept(ctx0); err != unix.EOPNOTSUPP {
		t.Errorf("accept on UDP: %v, want EOPNOTSUPP", err)
	}
	if got, err := a.Ioctl(unix.SIOCINQ); err != nil || got != 0 {
		t.Errorf("FIONREAD on empty socket: %d %v", got, err)
	}
	a.SendTo(ctx0, []byte("12345"), 0, to)
	ev := waitReadable(t, b)
	if ev&waiter.EventIn == 0 {
		t.Fatal("not readable")
	}
	if got, err := b.Ioctl(unix.SIOCINQ); err != nil || got != 5 {
		t.Errorf("FIONREAD = %d, %v; want 5 (first datagram's length)", got, err)
	}
}

func waitReadable(t *testing.T, so *socket.Socket) waiter.EventMask {
	t.Helper()
	e, ch := waiter.ChannelEntry(waiter.EventIn)
	so.EventQueue().Register(e)
	defer so.EventQueue().Unregister(e)
	deadline := time.After(5 * time.Second)
	for {
		if m := so.Readiness(waiter.EventIn); m != 0 {
			return m
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("socket never became readable")
		}
	}
}

// SO_RCVTIMEO on a blocking recv (spec 95): EAGAIN when it expires;
// interruption gives ERESTARTSYS without a timeout, EINTR with one.
func TestRecvTimeoutAndInterrupt(t *testing.T) {
	fake := clock.NewFake()
	n := newNode(t, fake)
	so := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err := so.BindAddr(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := so.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, timeval(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	if _, err := so.GetSockOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, got); err != nil || !bytes.Equal(got, timeval(200*time.Millisecond)) {
		t.Errorf("SO_RCVTIMEO reads back %x, %v", got, err)
	}
	ch := recvAsync(so, context.Background(), 0)
	waitTimer(t, fake, 200*time.Millisecond)
	fake.Advance(199 * time.Millisecond)
	select {
	case r := <-ch:
		t.Fatalf("recv returned before the timeout: %+v", r)
	default:
	}
	fake.Advance(time.Millisecond)
	if r := await(t, ch); r.err != unix.EAGAIN {
		t.Fatalf("recv after SO_RCVTIMEO: %v, want EAGAIN", r.err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ch = recvAsync(so, ctx, 0)
	waitTimer(t, fake, 200*time.Millisecond)
	cancel()
	if r := await(t, ch); r.err != unix.EINTR {
		t.Fatalf("interrupted recv with a timeout: %v, want EINTR", r.err)
	}

	if err := so.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, timeval(0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	ch = recvAsync(so, ctx, 0)
	// Nothing to wait on but the goroutine itself: cancel and expect the
	// restartable errno.
	cancel()
	if r := await(t, ch); r.err != socket.ERESTARTSYS {
		t.Fatalf("interrupted recv without timeout: %v, want ERESTARTSYS", r.err)
	}
	// The interrupted calls lost nothing: a datagram sent now is read.
	peer := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if _, _, err := peer.SendMsg(ctx0, []byte("after"), 0, so.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if nr, err := so.Recv(context.Background(), buf, 0); err != nil || string(buf[:nr]) != "after" {
		t.Fatalf("recv after interruptions: %q %v", buf[:nr], err)
	}

	// Timeout values: {0,1} rounds up to a jiffy; usec out of range is EDOM.
	if err := so.SetSockOpt(unix.SOL_SOCKET, unix.SO_SNDTIMEO, timeval(time.Microsecond)); err != nil {
		t.Fatal(err)
	}
	so.GetSockOpt(unix.SOL_SOCKET, unix.SO_SNDTIMEO, got)
	if !bytes.Equal(got, timeval(time.Second/socket.HZ)) {
		t.Errorf("SO_SNDTIMEO of 1us reads back %x, want one jiffy", got)
	}
	bad := timeval(0)
	bad[8] = 0x40
	bad[9] = 0x42
	bad[10] = 0x0f // 1,000,000 usec
	if err := so.SetSockOpt(unix.SOL_SOCKET, unix.SO_SNDTIMEO, bad); err != unix.EDOM {
		t.Errorf("tv_usec = 1e6: %v, want EDOM", err)
	}
	if err := so.SetSockOpt(unix.SOL_SOCKET, unix.SO_SNDTIMEO, make([]byte, 8)); err != unix.EINVAL {
		t.Errorf("short timeval: %v, want EINVAL", err)
	}
	if err := so.SetSockOpt(unix.SOL_SOCKET, unix.SO_TYPE, make([]byte, 4)); err != unix.ENOPROTOOPT {
		t.Errorf("set SO_TYPE: %v, want ENOPROTOOPT", err)
	}
}

func TestMMsg(t *testing.T) {
	n := newNode(t, nil)
	a := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	b := newSocket(t, n, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err := b.BindAddr(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	to := socket.FormatSockaddr(unix.AF_INET, b.LocalAddr())
	out := []socket.MMsg{{Buf: []byte("A query"), Addr: to}, {Buf: []byte("AAAA query"), Addr: to}, {Buf: []byte("x"), Addr: []byte{9}}}
	if sent, _, err := a.SendMMsg(ctx0, out, 0); sent != 2 || err != nil {
		t.Fatalf("sendmmsg with a bad third address: %d %v, want 2 nil", sent, err)
	}
	if out[0].N != 7 || out[1].N != 10 {
		t.Errorf("msg_len %d %d", out[0].N, out[1].N)
	}
	if _, _, err := a.SendMMsg(ctx0, out[2:], 0); err != unix.EINVAL {
		t.Errorf("sendmmsg failing on the first: %v, want EINVAL", err)
	}
	in := make([]socket.MMsg, 4)
	for i := range in {
		in[i].Buf = make([]byte, 64)
	}
	waitReadable(t, b)
	got, err := b.RecvMMsg(ctx0, in, unix.MSG_WAITFORONE)
	if err != nil || got < 1 {
		t.Fatalf("recvmmsg: %d %v", got, err)
	}
	if string(in[0].Buf[:in[0].N]) != "A query" || len(in[0].Addr) != socket.SizeofSockaddrInet4 {
		t.Errorf("first message %q from %x", in[0].Buf[:in[0].N], in[0].Addr)
	}
	if got == 1 { // the second datagram may still be on its way through lo
		waitReadable(t, b)
		if k, err := b.RecvMMsg(ctx0, in[1:], unix.MSG_WAITFORONE); k != 1 || err != nil {
			t.Fatalf("second recvmmsg: %d %v", k, err)
		}
	}
	if string(in[1].Buf[:in[1].N]) != "AAAA query" {
		t.Errorf("second message %q", in[1].Buf[:in[1].N])
	}
}
