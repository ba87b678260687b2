package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/node"
	"github.com/netprov/netprov/stack/socket"
)

func newNode(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.New(node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// echoTCP serves one echo loop per connection until l is closed.
func echoTCP(t *testing.T, l net.Listener) {
	t.Helper()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
}

func checkTCPEcho(t *testing.T, n *node.Node, addr string, size int) {
	t.Helper()
	c, err := n.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	go c.Write(msg)
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs")
	}
}

func TestLoopbackTCPEcho(t *testing.T) {
	n := newNode(t)
	for _, network := range []string{"tcp4", "tcp6", "tcp"} {
		addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0", "tcp": ":0"}[network]
		l, err := n.Listen(network, addr)
		if err != nil {
			t.Fatalf("listen %s: %v", network, err)
		}
		defer l.Close()
		echoTCP(t, l)
		port := l.Addr().(*net.TCPAddr).Port
		dial := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String()
		if network == "tcp6" {
			dial = netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)).String()
		}
		// "tcp" listens on a dual-stack [::]: IPv4 clients reach it.
		checkTCPEcho(t, n, dial, 256<<10)
	}
}

func TestConnDeadlineAndClose(t *testing.T) {
	n := newNode(t)
	l, err := n.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := n.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	defer s.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	s.Write([]byte("ok"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read after clearing the deadline: %q %v", buf, err)
	}
	// Close wakes a blocked Accept with net.ErrClosed.
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	time.AfterFunc(10*time.Millisecond, func() { l.Close() })
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept after close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Accept")
	}
	// Peer close: EOF.
	s.Close()
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("read after peer close: %v, want EOF", err)
	}
}

func TestLoopbackUDPEcho(t *testing.T) {
	n := newNode(t)
	for _, network := range []string{"udp4", "udp6"} {
		pc, err := n.ListenPacket(network, map[string]string{"udp4": "127.0.0.1:0", "udp6": "[::1]:0"}[network])
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			buf := make([]byte, 65536)
			for {
				k, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:k], from)
			}
		}()
		c, err := n.Dial(network, pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		for _, size := range []int{0, 1, 1400, 9000, 65507 - 20} {
			msg := bytes.Repeat([]byte{byte(size)}, size)
			if _, err := c.Write(msg); err != nil {
				t.Fatalf("%s write %d: %v", network, size, err)
			}
			got := make([]byte, 65536)
			k, err := c.Read(got)
			if err != nil || !bytes.Equal(got[:k], msg) {
				t.Fatalf("%s echo of %d bytes: got %d, %v", network, size, k, err)
			}
		}
	}
	if len(n.Connections()) < 4 {
		t.Errorf("Connections lists %d endpoints, want the 4 UDP sockets", len(n.Connections()))
	}
}

// ping sends an echo request on an ICMP datagram socket and checks the
// reply: the stack sets the identifier to the socket's port.
func ping(t *testing.T, n *node.Node, family int, dst netip.Addr) {
	t.Helper()
	proto := unix.IPPROTO_ICMP
	typ := header.ICMPv4Echo
	reply := header.ICMPv4EchoReply
	if family == unix.AF_INET6 {
		proto, typ, reply = unix.IPPROTO_ICMPV6, header.ICMPv6EchoRequest, header.ICMPv6EchoReply
	}
	so, err := n.Socket(family, unix.SOCK_DGRAM, proto)
	if err != nil {
		t.Fatalf("ping socket: %v", err)
	}
	defer so.Close()
	so.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, timeval(5*time.Second))
	req := make([]byte, 8+16)
	req[0] = typ
	binary.BigEndian.PutUint16(req[4:6], 0x4242) // replaced by the stack
	binary.BigEndian.PutUint16(req[6:8], 7)
	copy(req[8:], "netprov ping....")
	if _, _, err := so.SendMsg(ctx0, req, 0, netip.AddrPortFrom(dst, 0)); err != nil {
		t.Fatalf("send echo request to %v: %v", dst, err)
	}
	ident := so.LocalAddr().Port()
	if ident == 0 {
		t.Fatal("echo socket was not given an identifier")
	}
	buf := make([]byte, 128)
	r, err := so.RecvMsg(ctx0, buf, 0)
	if err != nil {
		t.Fatalf("receive echo reply from %v: %v", dst, err)
	}
	got := buf[:r.N]
	if len(got) != len(req) || got[0] != reply || binary.BigEndian.Uint16(got[4:6]) != ident ||
		binary.BigEndian.Uint16(got[6:8]) != 7 || !bytes.Equal(got[8:], req[8:]) {
		t.Fatalf("echo reply %x (ident %d)", got, ident)
	}
	if r.From.Addr().WithZone("") != dst || r.From.Port() != 0 {
		t.Errorf("reply from %v, want %v port 0", r.From, dst)
	}
}

func timeval(d time.Duration) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint64(b[0:8], uint64(d/time.Second))
	binary.NativeEndian.PutUint64(b[8:16], uint64((d%time.Second)/time.Microsecond))
	return b
}

func TestLoopbackPing(t *testing.T) {
	n := newNode(t)
	ping(t, n, unix.AF_INET, netip.MustParseAddr("127.0.0.1"))
	ping(t, n, unix.AF_INET6, netip.IPv6Loopback())
	// The request must be an echo request: anything else is EINVAL.
	so, _ := n.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
	defer so.Close()
	if _, _, err := so.SendMsg(ctx0, make([]byte, 8), 0, netip.MustParseAddrPort("127.0.0.1:0")); err != unix.EINVAL {
		t.Errorf("sending an echo reply type: %v, want EINVAL", err)
	}
	if _, _, err := so.SendMsg(ctx0, []byte{8, 0, 0}, 0, netip.MustParseAddrPort("127.0.0.1:0")); err != unix.EINVAL {
		t.Errorf("sending a 3-byte message: %v, want EINVAL", err)
	}
	a, _ := n.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
	defer a.Close()
	b, _ := n.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
	defer b.Close()
	if err := a.BindAddr(netip.MustParseAddrPort("0.0.0.0:999")); err != nil {
		t.Fatal(err)
	}
	if err := b.BindAddr(netip.MustParseAddrPort("127.0.0.1:999")); err != unix.EADDRINUSE {
		t.Errorf("second echo socket with identifier 999: %v, want EADDRINUSE", err)
	}
}

// twoNodes joins two nodes with a pipe: 10.213.0.1/24 and fd00:213::1/64
// on A, .2 and ::2 on B.
func twoNodes(t *testing.T) (a, b *node.Node) {
	t.Helper()
	a, b = newNode(t), newNode(t)
	ea, eb := pipe.New(pipe.Config{})
	if _, err := a.AddNIC(ea, "np0", netip.MustParsePrefix("10.213.0.1/24"), netip.MustParsePrefix("fd00:213::1/64")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddNIC(eb, "np0", netip.MustParsePrefix("10.213.0.2/24"), netip.MustParsePrefix("fd00:213::2/64")); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestTwoNodesOverPipe(t *testing.T) {
	a, b := twoNodes(t)
	l, err := b.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	echoTCP(t, l)
	checkTCPEcho(t, a, "10.213.0.2:8080", 1<<20)
	checkTCPEcho(t, a, "[fd00:213::2]:8080", 64<<10)

	pc, err := b.ListenPacket("udp", ":5353")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := a.Dial("udp4", "10.213.0.2:5353")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello over pipe")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	k, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "hello over pipe" {
		t.Fatalf("UDP over pipe: %q %v", buf[:k], err)
	}
	if got := from.(*net.UDPAddr).AddrPort(); got.Addr() != netip.MustParseAddr("::ffff:10.213.0.1") {
		t.Errorf("sender %v, want v4-mapped 10.213.0.1 on a dual-stack socket", got)
	}
	ping(t, a, unix.AF_INET, netip.MustParseAddr("10.213.0.2"))
	ping(t, a, unix.AF_INET6, netip.MustParseAddr("fd00:213::2"))

	// A UDP send to a closed port on B: the ICMP port unreachable comes
	// back and a connected socket's next recv fails with ECONNREFUSED.
	uc, err := a.Dial("udp4", "10.213.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	uc.Write([]byte("x"))
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := uc.Read(buf); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("recv after port unreachable from B: %v, want ECONNREFUSED", err)
	}

	// The default route helper picks the NIC on the gateway's subnet.
	if err := a.AddDefaultRoute(netip.MustParseAddr("10.213.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := a.AddDefaultRoute(netip.MustParseAddr("192.0.2.1")); !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("default route via an off-link gateway: %v", err)
	}
	var _ = socket.ERESTARTSYS
}

// ctx0 is the context of calls that are not interrupted.
var ctx0 = context.Background()

// A socket that joined an IPv6 group receives datagrams sent to it by
// another node (IPV6_ADD_MEMBERSHIP through the IPv6 layer's membership).
func TestIPv6MulticastGroup(t *testing.T) {
	a, b := twoNodes(t)
	group := netip.MustParseAddr("ff12::1234")
	r, err := b.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.BindAddr(netip.MustParseAddrPort("[::]:5000")); err != nil {
		t.Fatal(err)
	}
	mreq := make([]byte, 20)
	g := group.As16()
	copy(mreq, g[:])
	binary.NativeEndian.PutUint32(mreq[16:], uint32(b.Stack.NICByName("np0").ID()))
	if err := r.SetSockOpt(unix.SOL_IPV6, unix.IPV6_ADD_MEMBERSHIP, mreq); err != nil {
		t.Fatalf("IPV6_ADD_MEMBERSHIP: %v", err)
	}
	if err := r.SetSockOpt(unix.SOL_IPV6, unix.IPV6_ADD_MEMBERSHIP, mreq); err != unix.EADDRINUSE {
		t.Errorf("joining twice: %v, want EADDRINUSE", err)
	}
	if err := r.SetSockOpt(unix.SOL_IPV6, unix.IPV6_ADD_MEMBERSHIP, mreq[:19]); err != unix.EINVAL {
		t.Errorf("short ipv6_mreq: %v, want EINVAL", err)
	}
	s, err := a.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	zone := group.WithZone(strconv.Itoa(a.Stack.NICByName("np0").ID()))
	if _, _, err := s.SendMsg(ctx0, []byte("to the group"), 0, netip.AddrPortFrom(zone, 5000)); err != nil {
		t.Fatalf("send to %v: %v", zone, err)
	}
	r.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, timeval(5*time.Second))
	buf := make([]byte, 64)
	res, err := r.RecvMsg(ctx0, buf, 0)
	if err != nil || string(buf[:res.N]) != "to the group" {
		t.Fatalf("group member received %q, %v", buf[:res.N], err)
	}
	if res.From.Port() != s.LocalAddr().Port() {
		t.Errorf("sender %v, want port %d", res.From, s.LocalAddr().Port())
	}
	if err := r.SetSockOpt(unix.SOL_IPV6, unix.IPV6_DROP_MEMBERSHIP, mreq); err != nil {
		t.Errorf("IPV6_DROP_MEMBERSHIP: %v", err)
	}
	if err := r.SetSockOpt(unix.SOL_IPV6, unix.IPV6_DROP_MEMBERSHIP, mreq); err != unix.EADDRNOTAVAIL {
		t.Errorf("dropping twice: %v, want EADDRNOTAVAIL", err)
	}
}
