package tcp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/waiter"
	"golang.org/x/sys/unix"
)

// Spec 2, 7: a new socket is CLOSE in TCP_INFO, and so after bind; poll
// on it reports POLLOUT|POLLHUP as Linux does.
func TestNewSocketState(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	var info [tcpInfoLen]byte
	n, err := ep.GetSockOpt(unix.SOL_TCP, unix.TCP_INFO, info[:])
	if err != nil || n != tcpInfoLen || info[0] != uint8(StateClose) {
		t.Fatalf("TCP_INFO n=%d err=%v state=%d", n, err, info[0])
	}
	if m := ep.Readiness(waiterAll); m != waiter.EventOut|waiter.EventHUp {
		t.Fatalf("poll on a new socket = %#x, want POLLOUT|POLLHUP", m)
	}
	if _, err := ep.RemoteAddress(); err != unix.ENOTCONN {
		t.Fatalf("getpeername = %v", err)
	}
	buf := make([]byte, 4)
	if _, err := ep.Read(buf, stack.ReadOptions{}); err != unix.ENOTCONN {
		t.Fatalf("read = %v, want ENOTCONN", err)
	}
	if _, err := ep.Write(buf, stack.WriteOptions{}); err != unix.EPIPE {
		t.Fatalf("write = %v, want EPIPE", err)
	}
	if err := ep.Shutdown(unix.SHUT_WR); err != unix.ENOTCONN {
		t.Fatalf("shutdown = %v, want ENOTCONN", err)
	}
}

// Spec 9, 13, 18: listen on a connecting socket is EINVAL; connect on a
// listener is EISCONN; an IPv6 address on an AF_INET socket is
// EAFNOSUPPORT; accept on a non-listener is EINVAL.
func TestSyscallErrnos(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	if err := ep.Connect(netip.MustParseAddrPort("[2001:db8::1]:80")); err != unix.EAFNOSUPPORT {
		t.Fatalf("connect v6 on AF_INET = %v", err)
	}
	if _, _, err := ep.Accept(); err != unix.EINVAL {
		t.Fatalf("accept = %v", err)
	}
	_ = ep.Connect(netip.AddrPortFrom(c.remote, 80))
	if err := ep.Listen(1); err != unix.EINVAL {
		t.Fatalf("listen on connecting socket = %v", err)
	}
	l := c.newEP()
	_ = l.Listen(1)
	if err := l.Connect(netip.AddrPortFrom(c.remote, 80)); err != unix.EISCONN {
		t.Fatalf("connect on listener = %v", err)
	}
	if _, err := c.p.NewEndpoint(unix.AF_UNIX); err != unix.EAFNOSUPPORT {
		t.Fatalf("AF_UNIX endpoint = %v", err)
	}
	if err := ep.Shutdown(7); err != unix.EINVAL {
		t.Fatalf("shutdown(7) = %v", err)
	}
}

// Socket option values as Linux reports them: SO_RCVBUF/SO_SNDBUF double
// the value and apply the minimum; SO_TYPE, SO_PROTOCOL, SO_DOMAIN,
// SO_ACCEPTCONN; TCP_CONGESTION names; TCP_KEEPIDLE bounds; TCP_MAXSEG
// bounds; TCP_DEFER_ACCEPT rounding.
func TestSockoptValues(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	if v := getInt(t, ep, unix.SOL_SOCKET, unix.SO_RCVBUF); v != 131072 {
		t.Fatalf("default SO_RCVBUF %d", v)
	}
	if v := getInt(t, ep, unix.SOL_SOCKET, unix.SO_SNDBUF); v != 16384 {
		t.Fatalf("default SO_SNDBUF %d", v)
	}
	setInt(t, ep, unix.SOL_SOCKET, unix.SO_RCVBUF, 10000)
	if v := getInt(t, ep, unix.SOL_SOCKET, unix.SO_RCVBUF); v != 20000 {
		t.Fatalf("SO_RCVBUF after 10000 = %d, want 20000", v)
	}
	setInt(t, ep, unix.SOL_SOCKET, unix.SO_SNDBUF, 1)
	if v := getInt(t, ep, unix.SOL_SOCKET, unix.SO_SNDBUF); v != sockMinSndbuf {
		t.Fatalf("SO_SNDBUF after 1 = %d, want %d", v, sockMinSndbuf)
	}
	setInt(t, ep, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<30)
	if v := getInt(t, ep, unix.SOL_SOCKET, unix.SO_RCVBUF); v != 2*212992 {
		t.Fatalf("SO_RCVBUF capped = %d, want %d", v, 2*212992)
	}
	for _, o := range []struct{ name, want int }{
		{unix.SO_TYPE, unix.SOCK_STREAM}, {unix.SO_PROTOCOL, unix.IPPROTO_TCP},
		{unix.SO_DOMAIN, unix.AF_INET}, {unix.SO_ACCEPTCONN, 0}, {unix.SO_ERROR, 0},
	} {
		if v := getInt(t, ep, unix.SOL_SOCKET, o.name); v != o.want {
			t.Fatalf("option %d = %d, want %d", o.name, v, o.want)
		}
	}
	var name [16]byte
	n, err := ep.GetSockOpt(unix.SOL_TCP, unix.TCP_CONGESTION, name[:])
	if err != nil || n != 16 || !bytes.HasPrefix(name[:], []byte("cubic\x00")) {
		t.Fatalf("TCP_CONGESTION %q %v", name[:n], err)
	}
	if err := ep.SetSockOpt(unix.SOL_TCP, unix.TCP_CONGESTION, []byte("reno")); err != nil {
		t.Fatal(err)
	}
	if err := ep.SetSockOpt(unix.SOL_TCP, unix.TCP_CONGESTION, []byte("bogus")); err != unix.ENOENT {
		t.Fatalf("unknown congestion control = %v, want ENOENT", err)
	}
	var b4 [4]byte
	putInt(b4[:], 0)
	if err := ep.SetSockOpt(unix.SOL_TCP, unix.TCP_KEEPIDLE, b4[:]); err != unix.EINVAL {
		t.Fatalf("TCP_KEEPIDLE 0 = %v", err)
	}
	putInt(b4[:], 10)
	if err := ep.SetSockOpt(unix.SOL_TCP, unix.TCP_MAXSEG, b4[:]); err != unix.EINVAL {
		t.Fatalf("TCP_MAXSEG 10 = %v", err)
	}
	if err := ep.SetSockOpt(unix.SOL_TCP, unix.TCP_NODELAY, b4[:2]); err != unix.EINVAL {
		t.Fatalf("short optval = %v", err)
	}
	setInt(t, ep, unix.SOL_TCP, unix.TCP_DEFER_ACCEPT, 5)
	if v := getInt(t, ep, unix.SOL_TCP, unix.TCP_DEFER_ACCEPT); v != 7 {
		t.Fatalf("TCP_DEFER_ACCEPT 5 reads %d, want 7", v)
	}
	if err := ep.SetSockOpt(unix.SOL_TCP, 9999, b4[:]); err != unix.ENOPROTOOPT {
		t.Fatalf("unknown option = %v", err)
	}
	if err := ep.SetSockOpt(unix.SOL_IPV6, unix.IPV6_V6ONLY, b4[:]); err != unix.ENOPROTOOPT {
		t.Fatalf("IPV6_V6ONLY on AF_INET = %v", err)
	}
	if v := getInt(t, ep, unix.SOL_IP, unix.IP_TTL); v != 64 {
		t.Fatalf("IP_TTL %d", v)
	}
}

// A dual-stack listener on [::] accepts IPv4 connections and reports the
// peer as a v4-mapped address; with IPV6_V6ONLY it does not.
func TestDualStackListener(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, _ := c.p.NewEndpoint(unix.AF_INET6)
	l := ep.(*endpoint)
	if err := l.Bind(netip.MustParseAddrPort("[::]:8080")); err != nil {
		t.Fatal(err)
	}
	_ = l.Listen(4)
	a, _ := c.passiveEstablished(l, nil, nil)
	ra, err := a.RemoteAddress()
	if err != nil || ra != netip.AddrPortFrom(netip.MustParseAddr("::ffff:10.0.0.2"), peerPort) {
		t.Fatalf("peer %v %v", ra, err)
	}
	if la := a.LocalAddress(); la != netip.MustParseAddrPort("[::ffff:10.0.0.1]:8080") {
		t.Fatalf("local %v", la)
	}
	l.Close()
	c.drain()
	ep6, _ := c.p.NewEndpoint(unix.AF_INET6)
	l6 := ep6.(*endpoint)
	setInt(t, l6, unix.SOL_IPV6, unix.IPV6_V6ONLY, 1)
	if err := l6.Bind(netip.MustParseAddrPort("[::]:8081")); err != nil {
		t.Fatal(err)
	}
	_ = l6.Listen(4)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8081, Seq: 1, Flags: header.TCPFlagSyn, Window: 100}, nil, nil)
	if r := c.next(); r.flags() != header.TCPFlagRst|header.TCPFlagAck {
		t.Fatalf("v6only listener answered an IPv4 SYN with %v", r.flags())
	}
}

// ICMP errors (tcp_v4_err): port unreachable during SYN_SENT aborts with
// ECONNREFUSED; in ESTABLISHED a host unreachable is only a soft error
// (SO_ERROR), and fragmentation needed lowers the MSS.
func TestICMPErrors(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	_ = ep.Connect(netip.AddrPortFrom(c.remote, peerPort))
	syn := c.next()
	c.p.HandleError(stack.ICMPError{Kind: stack.ICMPPortUnreachable}, stack.IPInfo{Src: c.local, Dst: c.remote}, tcpBytes(syn))
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != unix.ECONNREFUSED {
		t.Fatalf("connect after ICMP port unreachable = %v", err)
	}

	e2, _ := c.connectEstablished(peerSYNOpts(1, 0))
	_, _ = e2.Write(make([]byte, 1400), stack.WriteOptions{})
	d := c.next()
	c.p.HandleError(stack.ICMPError{Kind: stack.ICMPHostUnreachable}, stack.IPInfo{Src: c.local, Dst: c.remote}, tcpBytes(d))
	if e2.Info().State != uint8(StateEstablished) {
		t.Fatal("soft error aborted the connection")
	}
	c.p.HandleError(stack.ICMPError{Kind: stack.ICMPFragNeeded, MTU: 1000}, stack.IPInfo{Src: c.local, Dst: c.remote}, tcpBytes(d))
	// 1000 - 40 bytes of headers - 12 bytes of timestamps.
	if m := getInt(t, e2, unix.SOL_TCP, unix.TCP_MAXSEG); m != 948 {
		t.Fatalf("MSS after frag needed (MTU 1000) = %d, want 948", m)
	}
	r := c.next()
	if len(r.payload) != 948 {
		t.Fatalf("resent %d bytes, want 948", len(r.payload))
	}
	if v := getInt(t, e2, unix.SOL_SOCKET, unix.SO_ERROR); v != int(unix.EHOSTUNREACH) {
		t.Fatalf("SO_ERROR = %d, want EHOSTUNREACH (soft)", v)
	}
}

func tcpBytes(s seg) []byte {
	b := make([]byte, 20)
	s.f.DataOffset = 20
	s.f.Emit(b)
	return b
}

// Spec 75: with TCP_DEFER_ACCEPT on the listener a bare third ACK does not
// create the connection; data does.
func TestDeferAccept(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
	setInt(t, l, unix.SOL_TCP, unix.TCP_DEFER_ACCEPT, 5)
	_ = l.Listen(4)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, nil, nil)
	sa := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN + 1, Ack: sa.seq() + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
	if _, _, err := l.Accept(); err != unix.EAGAIN {
		t.Fatalf("accept after bare ACK = %v, want EAGAIN", err)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN + 1, Ack: sa.seq() + 1, Flags: header.TCPFlagAck | header.TCPFlagPsh, Window: 65535}, nil, []byte("GET /"))
	a, _, err := l.Accept()
	if err != nil {
		t.Fatalf("accept after data = %v", err)
	}
	buf := make([]byte, 8)
	if r, _ := a.Read(buf, stack.ReadOptions{}); string(buf[:r.N]) != "GET /" {
		t.Fatalf("read %q", buf[:r.N])
	}
}

// Spec 77: with tcp_abort_on_overflow the third ACK that finds the accept
// queue full (it already holds backlog+1 children) is answered with RST.
func TestAbortOnOverflow(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AbortOnOverflow = true
	cfg.Syncookies = 0
	c := newCtx(t, cfg)
	l := c.newEP()
	_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
	_ = l.Listen(2)
	sas := map[int]seg{}
	syn := func(i int) {
		c.inject(header.TCPFields{SrcPort: uint16(43000 + i), DstPort: 8080, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, nil, nil)
		sas[i] = c.next()
	}
	ack := func(i int) {
		c.inject(header.TCPFields{SrcPort: uint16(43000 + i), DstPort: 8080, Seq: peerISN + 1, Ack: sas[i].seq() + 1, Flags: header.TCPFlagAck, Window: 502}, nil, nil)
	}
	syn(1)
	syn(2)
	ack(1)
	syn(3)
	ack(2)
	syn(4)
	ack(3)
	c.expectNone()
	if len(l.acceptQ) != 3 {
		t.Fatalf("accept queue %d, want 3 (backlog 2 holds N+1)", len(l.acceptQ))
	}
	ack(4)
	if r := c.next(); r.flags() != header.TCPFlagRst {
		t.Fatalf("overflowing ACK answered %v, want [R]", r.flags())
	}
	if c.s.Stats().TCPExt.ListenOverflows.Load() != 1 {
		t.Fatal("ListenOverflows not counted")
	}
}

// Spec 89: data arriving after close() (orphaned FIN_WAIT) is answered
// with RST and counted as TCPAbortOnData.
func TestDataAfterCloseResets(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	ep.Close()
	fin := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, []byte("more"))
	if r := c.next(); !r.flags().Contains(header.TCPFlagRst) {
		t.Fatalf("data after close answered %v, want RST", r.flags())
	}
	if c.s.Stats().TCPExt.TCPAbortOnData.Load() != 1 {
		t.Fatal("TCPAbortOnData not counted")
	}
	if ep.Info().State != uint8(StateClose) {
		t.Fatalf("state %d", ep.Info().State)
	}
}

// An orphaned FIN_WAIT2 connection disappears after tcp_fin_timeout.
func TestFinWait2Timeout(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	ep.Close()
	fin := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
	if ep.Info().State != uint8(StateFinWait2) {
		t.Fatal("not FIN_WAIT2")
	}
	c.clk.Advance(59 * time.Second)
	if ep.Info().State != uint8(StateFinWait2) {
		t.Fatal("FIN_WAIT2 ended early")
	}
	c.clk.Advance(time.Second)
	if ep.Info().State != uint8(StateClose) {
		t.Fatalf("state %d after tcp_fin_timeout", ep.Info().State)
	}
}

// PAWS: a segment whose timestamp is older than ts_recent is dropped and
// answered with an ACK (PAWSEstab).
func TestPAWS(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, _ := c.connectEstablished(peerSYNOpts(1000, 0))
	port := ep.lport
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: uint32(ep.iss) + 1, Flags: header.TCPFlagAck, Window: 500}, tsOpts(2000, 0), []byte("new"))
	c.drain()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 4, Ack: uint32(ep.iss) + 1, Flags: header.TCPFlagAck, Window: 500}, tsOpts(1500, 0), []byte("old"))
	if a := c.next(); a.ack() != peerISN+4 {
		t.Fatalf("PAWS reply acks %d", a.ack())
	}
	if c.s.Stats().TCPExt.PAWSEstab.Load() != 1 {
		t.Fatal("PAWSEstab not counted")
	}
	buf := make([]byte, 10)
	if r, _ := ep.Read(buf, stack.ReadOptions{}); string(buf[:r.N]) != "new" {
		t.Fatalf("read %q", buf[:r.N])
	}
}

// Urgent data: MSG_OOB sends URG with the pointer after the last byte;
// the receiver takes the urgent byte out of the stream (no SO_OOBINLINE),
// a read stops at the mark, and recv(MSG_OOB) returns the byte.
func TestUrgentData(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	setInt(t, ep, unix.SOL_TCP, unix.TCP_NODELAY, 1)
	if _, err := ep.Write([]byte("ab!"), stack.WriteOptions{OOB: true}); err != nil {
		t.Fatal(err)
	}
	d := c.next()
	if !d.flags().Contains(header.TCPFlagUrg) || d.f.Urgent != 3 {
		t.Fatalf("MSG_OOB segment %v urg=%d, want URG ptr 3", d.flags(), d.f.Urgent)
	}
	iss := uint32(ep.iss)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: iss + 4,
		Flags: header.TCPFlagAck | header.TCPFlagUrg | header.TCPFlagPsh, Window: 65535, Urgent: 3}, nil, []byte("xy!z"))
	if ep.Readiness(waiter.EventPri) == 0 {
		t.Fatal("no POLLPRI with urgent data pending")
	}
	buf := make([]byte, 10)
	r, err := ep.Read(buf, stack.ReadOptions{})
	if err != nil || string(buf[:r.N]) != "xy" {
		t.Fatalf("read before mark %q %v, want \"xy\"", buf[:r.N], err)
	}
	r, err = ep.Read(buf, stack.ReadOptions{OOB: true})
	if err != nil || r.N != 1 || buf[0] != '!' {
		t.Fatalf("MSG_OOB read %q %v", buf[:r.N], err)
	}
	if _, err := ep.Read(buf, stack.ReadOptions{OOB: true}); err != unix.EINVAL {
		t.Fatalf("second MSG_OOB read = %v, want EINVAL", err)
	}
	r, err = ep.Read(buf, stack.ReadOptions{})
	if err != nil || string(buf[:r.N]) != "z" {
		t.Fatalf("read after mark %q %v, want \"z\"", buf[:r.N], err)
	}
}

// Spec 48: a SYN to a broadcast/multicast address gets no answer and
// counts in ListenDrops.
func TestMulticastSYNIgnored(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
	_ = l.Listen(4)
	b := make([]byte, 20)
	header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: 1, DataOffset: 20, Flags: header.TCPFlagSyn, Window: 100}.Emit(b)
	pkt := bufferFrom(b)
	c.p.HandlePacket(pkt, stack.IPInfo{Src: c.remote, Dst: netip.MustParseAddr("10.0.0.255"), Multicast: true})
	c.expectNone()
	if c.s.Stats().TCPExt.ListenDrops.Load() != 1 {
		t.Fatal("ListenDrops not counted")
	}
}

// Spec 54: a new SYN (higher sequence) to a TIME_WAIT socket reopens the
// connection through the listener, with ISN = old snd_nxt + 65537.
func TestTimeWaitNewSYN(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
	_ = l.Listen(4)
	a, _ := c.passiveEstablished(l, nil, nil)
	a.Close()
	fin := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck | header.TCPFlagFin, Window: 502}, nil, nil)
	c.next()
	if a.Info().State != uint8(StateTimeWait) {
		t.Fatalf("state %d, want TIME_WAIT", a.Info().State)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN + 100000, Flags: header.TCPFlagSyn, Window: 65535}, nil, nil)
	sa := c.next()
	if sa.flags() != header.TCPFlagSyn|header.TCPFlagAck || sa.seq() != fin.seq()+1+65537 {
		t.Fatalf("reply %v seq=%d, want [S.] seq=%d", sa.flags(), sa.seq(), fin.seq()+1+65537)
	}
	if a.Info().State != uint8(StateClose) {
		t.Fatal("TIME_WAIT socket not replaced")
	}
}

// Closing a listener resets the connections nobody accepted.
func TestListenerCloseResetsQueued(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
	_ = l.Listen(4)
	port := uint16(8080)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, nil, nil)
	sa := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: sa.seq() + 1, Flags: header.TCPFlagAck, Window: 502}, nil, nil)
	l.Close()
	r := c.next()
	if r.flags() != header.TCPFlagRst|header.TCPFlagAck || r.seq() != sa.seq()+1 {
		t.Fatalf("close of listener sent %v seq=%d", r.flags(), r.seq())
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: sa.seq() + 1, Flags: header.TCPFlagAck, Window: 502}, nil, []byte("x"))
	if r := c.next(); r.flags() != header.TCPFlagRst {
		t.Fatalf("segment after listener close answered %v", r.flags())
	}
}

func TestEndpointsListing(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
	_ = l.Listen(4)
	_, _ = c.passiveEstablished(l, nil, nil)
	states := map[uint8]int{}
	for _, ep := range c.p.Endpoints() {
		states[ep.Info().State]++
	}
	if states[uint8(StateListen)] != 1 || states[uint8(StateEstablished)] != 1 {
		t.Fatalf("listing states %v", states)
	}
}
