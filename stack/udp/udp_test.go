package udp_test

import (
	"bytes"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/waiter"
)

// Spec 6 and Linux's udp_lib_lport_inuse: which pairs of binds conflict.
func TestBindConflicts(t *testing.T) {
	type sock struct {
		family          int
		addr            string
		reuseAddr, port bool
		v6only          bool
	}
	v4 := func(a string) sock { return sock{family: unix.AF_INET, addr: a} }
	v6 := func(a string) sock { return sock{family: unix.AF_INET6, addr: a} }
	reuse := func(s sock) sock { s.reuseAddr = true; return s }
	reusePort := func(s sock) sock { s.port = true; return s }
	only := func(s sock) sock { s.v6only = true; return s }
	tests := []struct {
		name       string
		first, sec sock
		wantErr    error
	}{
		{"same v4 address", v4("127.0.0.1:5000"), v4("127.0.0.1:5000"), unix.EADDRINUSE},
		{"wildcard then specific", v4("0.0.0.0:5000"), v4("127.0.0.1:5000"), unix.EADDRINUSE},
		{"specific then wildcard", v4("127.0.0.1:5000"), v4("0.0.0.0:5000"), unix.EADDRINUSE},
		{"different addresses", v4("127.0.0.1:5000"), v4("127.0.0.2:5000"), nil},
		{"SO_REUSEADDR on both", reuse(v4("127.0.0.1:5000")), reuse(v4("127.0.0.1:5000")), nil},
		{"SO_REUSEADDR on one", reuse(v4("127.0.0.1:5000")), v4("127.0.0.1:5000"), unix.EADDRINUSE},
		{"SO_REUSEPORT on both", reusePort(v4("0.0.0.0:5000")), reusePort(v4("0.0.0.0:5000")), nil},
		{"dual-stack :: then 0.0.0.0", v6("[::]:5000"), v4("0.0.0.0:5000"), unix.EADDRINUSE},
		{"0.0.0.0 then dual-stack ::", v4("0.0.0.0:5000"), v6("[::]:5000"), unix.EADDRINUSE},
		{"v6only :: then 0.0.0.0", only(v6("[::]:5000")), v4("0.0.0.0:5000"), nil},
		{"0.0.0.0 then v6only ::", v4("0.0.0.0:5000"), only(v6("[::]:5000")), nil},
		{"v4-mapped then v4", v6("[::ffff:127.0.0.1]:5000"), v4("127.0.0.1:5000"), unix.EADDRINUSE},
		{":: twice", v6("[::]:5000"), v6("[::]:5000"), unix.EADDRINUSE},
		{"::1 then v4 wildcard", v6("[::1]:5000"), v4("0.0.0.0:5000"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestStack(t, nil)
			open := func(s sock) stack.Endpoint {
				ep := ts.endpoint(t, s.family)
				if s.reuseAddr {
					setInt(t, ep, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
				}
				if s.port {
					setInt(t, ep, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
				}
				if s.v6only {
					setInt(t, ep, unix.SOL_IPV6, unix.IPV6_V6ONLY, 1)
				}
				return ep
			}
			a := open(tc.first)
			if err := a.Bind(netip.MustParseAddrPort(tc.first.addr)); err != nil {
				t.Fatalf("first bind: %v", err)
			}
			b := open(tc.sec)
			err := b.Bind(netip.MustParseAddrPort(tc.sec.addr))
			if err != tc.wantErr {
				t.Fatalf("second bind: got %v, want %v", err, tc.wantErr)
			}
			if err != nil && b.LocalAddress().Port() != 0 {
				// Spec 6: a failed bind leaves the socket unbound.
				t.Errorf("after failed bind, local address = %v", b.LocalAddress())
			}
		})
	}
}

func TestBindArgumentErrors(t *testing.T) {
	ts := newTestStack(t, nil)
	ep := ts.endpoint(t, unix.AF_INET)
	if err := ep.Bind(netip.MustParseAddrPort("10.213.9.9:1")); err != unix.EADDRNOTAVAIL {
		t.Errorf("bind to a foreign address: %v, want EADDRNOTAVAIL", err)
	}
	if err := ep.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := ep.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != unix.EINVAL {
		t.Errorf("second bind: %v, want EINVAL", err)
	}
	ep6 := ts.endpoint(t, unix.AF_INET6)
	if err := ep6.Bind(netip.MustParseAddrPort("[fe80::1]:0")); err != unix.EINVAL {
		t.Errorf("bind link-local without scope: %v, want EINVAL", err)
	}
	setInt(t, ep6, unix.SOL_IPV6, unix.IPV6_V6ONLY, 1)
	if err := ep6.Bind(netip.MustParseAddrPort("[::ffff:127.0.0.1]:0")); err != unix.EINVAL {
		t.Errorf("bind v4-mapped on a v6only socket: %v, want EINVAL", err)
	}
	if err := ep6.Bind(netip.MustParseAddrPort("[::1]:0")); err != nil {
		t.Fatal(err)
	}
	if err := ep6.SetSockOpt(unix.SOL_IPV6, unix.IPV6_V6ONLY, []byte{0, 0, 0, 0}); err != unix.EINVAL {
		t.Errorf("IPV6_V6ONLY after bind: %v, want EINVAL", err)
	}
}

func TestEphemeralPorts(t *testing.T) {
	cfg := stack.DefaultConfig()
	cfg.LocalPortRange = [2]uint16{40000, 40001}
	ts := newTestStack(t, &cfg)
	a := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	b := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	for _, ep := range []stack.Endpoint{a, b} {
		if p := ep.LocalAddress().Port(); p < 40000 || p > 40001 {
			t.Errorf("ephemeral port %d outside ip_local_port_range", p)
		}
	}
	if a.LocalAddress().Port() == b.LocalAddress().Port() {
		t.Errorf("two binds got the same port %d", a.LocalAddress().Port())
	}
	c := ts.endpoint(t, unix.AF_INET)
	if err := c.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != unix.EADDRINUSE {
		t.Errorf("bind with the range exhausted: %v, want EADDRINUSE", err)
	}
	// An unbound socket that cannot autobind fails its send with EAGAIN
	// (inet_autobind).
	if _, err := c.Write([]byte("x"), stack.WriteOptions{To: a.LocalAddress()}); err != unix.EAGAIN {
		t.Errorf("send needing an autobind: %v, want EAGAIN", err)
	}
	// Another address still has both ports free.
	d := ts.bound(t, unix.AF_INET, "127.0.0.2:0")
	if p := d.LocalAddress().Port(); p < 40000 || p > 40001 {
		t.Errorf("port %d outside range", p)
	}
}

func TestAutobindAndConnectSource(t *testing.T) {
	ts := newTestStack(t, nil)
	srv := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	c := ts.endpoint(t, unix.AF_INET)
	if err := c.Connect(srv.LocalAddress()); err != nil {
		t.Fatal(err)
	}
	la := c.LocalAddress()
	r := ts.s.Config().LocalPortRange
	if la.Addr() != netip.MustParseAddr("127.0.0.1") || la.Port() < r[0] || la.Port() > r[1] {
		t.Errorf("after connect, local address %v; want 127.0.0.1 and an ephemeral port", la)
	}
	if ra, err := c.RemoteAddress(); err != nil || ra != srv.LocalAddress() {
		t.Errorf("peer %v, %v", ra, err)
	}
	if c.Info().State != 1 {
		t.Errorf("connected state %d, want TCP_ESTABLISHED", c.Info().State)
	}
	send(t, c, []byte("hi"), "")
	got, res := recv(t, srv, 10)
	if string(got) != "hi" || res.From != la {
		t.Errorf("received %q from %v", got, res.From)
	}
	// AF_UNSPEC disconnect: the autobound address and port are released.
	if err := c.Connect(netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoteAddress(); err != unix.ENOTCONN {
		t.Errorf("peer after disconnect: %v", err)
	}
	if la := c.LocalAddress(); la.Port() != 0 || !la.Addr().IsUnspecified() {
		t.Errorf("local address after disconnect %v, want 0.0.0.0:0", la)
	}
	if _, err := c.Write([]byte("x"), stack.WriteOptions{}); err != unix.EDESTADDRREQ {
		t.Errorf("send without peer: %v, want EDESTADDRREQ", err)
	}
	// connect to 0.0.0.0 reaches this host (spec 17).
	if err := c.Connect(netip.AddrPortFrom(netip.IPv4Unspecified(), srv.LocalAddress().Port())); err != nil {
		t.Fatal(err)
	}
	if ra, _ := c.RemoteAddress(); ra.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("peer of connect(0.0.0.0) = %v, want 127.0.0.1", ra)
	}
}

// Connected sockets take datagrams from their peer before wildcard ones;
// datagrams from others go to the unconnected socket.
func TestConnectedDemuxPriority(t *testing.T) {
	ts := newTestStack(t, nil)
	peer := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	other := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	wild := ts.endpoint(t, unix.AF_INET)
	conn := ts.endpoint(t, unix.AF_INET)
	for _, ep := range []stack.Endpoint{wild, conn} {
		setInt(t, ep, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err := wild.Bind(netip.MustParseAddrPort("0.0.0.0:6000")); err != nil {
		t.Fatal(err)
	}
	if err := conn.Bind(netip.MustParseAddrPort("0.0.0.0:6000")); err != nil {
		t.Fatal(err)
	}
	if err := conn.Connect(peer.LocalAddress()); err != nil {
		t.Fatal(err)
	}
	send(t, peer, []byte("from peer"), "127.0.0.1:6000")
	send(t, other, []byte("from other"), "127.0.0.1:6000")
	if got, _ := recv(t, conn, 64); string(got) != "from peer" {
		t.Errorf("connected socket got %q", got)
	}
	if got, _ := recv(t, wild, 64); string(got) != "from other" {
		t.Errorf("wildcard socket got %q", got)
	}
	ts.settle(t)
	if n := conn.Readiness(waiter.EventIn) | wild.Readiness(waiter.EventIn); n&waiter.EventIn != 0 {
		t.Error("a datagram was delivered twice")
	}
}

func TestBroadcastDeliveredToEverySocket(t *testing.T) {
	ts := newTestStack(t, nil)
	a := ts.endpoint(t, unix.AF_INET)
	b := ts.endpoint(t, unix.AF_INET)
	for _, ep := range []stack.Endpoint{a, b} {
		setInt(t, ep, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := ep.Bind(netip.MustParseAddrPort("0.0.0.0:6100")); err != nil {
			t.Fatal(err)
		}
	}
	// A socket bound to a unicast address does not take broadcasts.
	c := ts.endpoint(t, unix.AF_INET)
	setInt(t, c, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := c.Bind(netip.MustParseAddrPort("127.0.0.1:6100")); err != nil {
		t.Fatal(err)
	}
	pkt := udpPacket(t, netip.MustParseAddrPort("10.213.0.7:99"), netip.MustParseAddrPort("255.255.255.255:6100"), []byte("bcast"))
	v := ts.udp.HandlePacket(pkt, stack.IPInfo{Src: netip.MustParseAddr("10.213.0.7"), Dst: netip.MustParseAddr("255.255.255.255"), Multicast: true})
	if v != stack.Delivered {
		t.Fatalf("verdict %v", v)
	}
	for i, ep := range []stack.Endpoint{a, b} {
		if got, _ := recv(t, ep, 16); string(got) != "bcast" {
			t.Errorf("socket %d got %q", i, got)
		}
	}
	if c.Readiness(waiter.EventIn) != 0 {
		t.Error("socket bound to 127.0.0.1 received a broadcast")
	}
}

// udpPacket builds a UDP datagram with a valid checksum.
func udpPacket(t *testing.T, src, dst netip.AddrPort, payload []byte) *buffer.Packet {
	t.Helper()
	pkt := buffer.New(buffer.Headroom, header.UDPLen+len(payload))
	b := pkt.Append(header.UDPLen + len(payload))
	copy(b[header.UDPLen:], payload)
	header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: uint16(len(b))}.Emit(b)
	header.UDP(b).SetChecksum(header.UDPChecksum(b, src.Addr(), dst.Addr()))
	return pkt
}

func TestChecksums(t *testing.T) {
	ts := newTestStack(t, nil)
	ep4 := ts.bound(t, unix.AF_INET, "127.0.0.1:6200")
	ep6 := ts.bound(t, unix.AF_INET6, "[::1]:6200")
	st := &ts.s.Stats().UDP
	src4, dst4 := netip.MustParseAddrPort("127.0.0.1:7"), ep4.LocalAddress()
	info4 := stack.IPInfo{Src: src4.Addr(), Dst: dst4.Addr()}

	bad := udpPacket(t, src4, dst4, []byte("bad"))
	bad.Data()[header.UDPLen] ^= 0xff
	ts.udp.HandlePacket(bad, info4)
	if st.InCsumErrors.Load() != 1 || st.InErrors.Load() != 1 {
		t.Errorf("bad checksum: InCsumErrors=%d InErrors=%d, want 1 1", st.InCsumErrors.Load(), st.InErrors.Load())
	}
	// Over IPv4 a zero checksum means none was computed.
	zero := udpPacket(t, src4, dst4, []byte("zero"))
	header.UDP(zero.Data()).SetChecksum(0)
	ts.udp.HandlePacket(zero, info4)
	if got, _ := recv(t, ep4, 16); string(got) != "zero" {
		t.Errorf("zero-checksum IPv4 datagram: got %q", got)
	}
	// Over IPv6 it is invalid, even when the link verified checksums.
	src6, dst6 := netip.MustParseAddrPort("[::1]:7"), ep6.LocalAddress()
	zero6 := udpPacket(t, src6, dst6, []byte("zero6"))
	header.UDP(zero6.Data()).SetChecksum(0)
	zero6.Meta.ChecksumVerified = true
	ts.udp.HandlePacket(zero6, stack.IPInfo{Src: src6.Addr(), Dst: dst6.Addr()})
	if st.InCsumErrors.Load() != 2 {
		t.Errorf("zero IPv6 checksum: InCsumErrors=%d, want 2", st.InCsumErrors.Load())
	}
	// A verified checksum is not checked again.
	ok := udpPacket(t, src4, dst4, []byte("ok"))
	header.UDP(ok.Data()).SetChecksum(0x1234)
	ok.Meta.ChecksumVerified = true
	ts.udp.HandlePacket(ok, info4)
	if got, _ := recv(t, ep4, 16); string(got) != "ok" {
		t.Errorf("verified datagram: got %q", got)
	}
	// Malformed: length field beyond the packet.
	short := udpPacket(t, src4, dst4, []byte("x"))
	header.UDP(short.Data()).SetLength(100)
	ts.udp.HandlePacket(short, info4)
	if ts.s.Stats().Dropped.MalformedUDP.Load() != 1 {
		t.Errorf("MalformedUDP=%d, want 1", ts.s.Stats().Dropped.MalformedUDP.Load())
	}
	// No socket: NoPorts and a port-unreachable verdict.
	none := udpPacket(t, src4, netip.MustParseAddrPort("127.0.0.1:6299"), []byte("x"))
	if v := ts.udp.HandlePacket(none, stack.IPInfo{Src: src4.Addr(), Dst: netip.MustParseAddr("127.0.0.1")}); v != stack.PortUnreachable {
		t.Errorf("verdict for a closed port %v", v)
	}
	none.Release()
	if st.NoPorts.Load() != 1 {
		t.Errorf("NoPorts=%d", st.NoPorts.Load())
	}
}

func TestPeekAndTrunc(t *testing.T) {
	ts := newTestStack(t, nil)
	a := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	b := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	msg := bytes.Repeat([]byte("0123456789"), 10)
	send(t, a, msg, b.LocalAddress().String())
	waitFor(t, b, waiter.EventIn)
	buf := make([]byte, 10)
	res, err := b.Read(buf, stack.ReadOptions{Peek: true, Trunc: true})
	if err != nil || res.N != 10 || res.Total != 100 || !res.Truncated || res.From != a.LocalAddress() {
		t.Fatalf("peek: %+v, %v", res, err)
	}
	full := make([]byte, 200)
	res, err = b.Read(full, stack.ReadOptions{})
	if err != nil || res.N != 100 || res.Truncated || !bytes.Equal(full[:100], msg) {
		t.Fatalf("read after peek: %+v, %v", res, err)
	}
	if _, err := b.Read(full, stack.ReadOptions{}); err != unix.EAGAIN {
		t.Fatalf("empty queue: %v, want EAGAIN", err)
	}
	// A short buffer discards the rest of the datagram.
	send(t, a, msg, b.LocalAddress().String())
	send(t, a, []byte("next"), b.LocalAddress().String())
	waitFor(t, b, waiter.EventIn)
	res, _ = b.Read(buf, stack.ReadOptions{})
	if res.N != 10 || !res.Truncated {
		t.Fatalf("short read %+v", res)
	}
	if got, _ := recv(t, b, 64); string(got) != "next" {
		t.Fatalf("next datagram %q", got)
	}
	if ts.s.Stats().UDP.InDatagrams.Load() < 3 {
		t.Errorf("InDatagrams=%d", ts.s.Stats().UDP.InDatagrams.Load())
	}
}

func TestReceiveBufferLimit(t *testing.T) {
	ts := newTestStack(t, nil)
	a := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	b := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	setInt(t, b, unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
	if got := getInt(t, b, unix.SOL_SOCKET, unix.SO_RCVBUF); got != 2304 {
		t.Errorf("SO_RCVBUF after setting 1 = %d, want SOCK_MIN_RCVBUF 2304", got)
	}
	setInt(t, b, unix.SOL_SOCKET, unix.SO_SNDBUF, 10000)
	if got := getInt(t, b, unix.SOL_SOCKET, unix.SO_SNDBUF); got != 20000 {
		t.Errorf("SO_SNDBUF after setting 10000 = %d, want doubled 20000", got)
	}
	setInt(t, b, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<30)
	if got := getInt(t, b, unix.SOL_SOCKET, unix.SO_RCVBUF); got != 2*212992 {
		t.Errorf("SO_RCVBUF clamps to 2*rmem_max: %d", got)
	}
	setInt(t, b, unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
	const sent = 20
	for i := 0; i < sent; i++ {
		send(t, a, make([]byte, 1000), b.LocalAddress().String())
	}
	ts.settle(t)
	received := 0
	buf := make([]byte, 2000)
	for {
		if _, err := b.Read(buf, stack.ReadOptions{}); err != nil {
			break
		}
		received++
	}
	drops := ts.s.Stats().UDP.RcvbufErrors.Load()
	if received < 1 || received >= sent || int(drops) != sent-received {
		t.Errorf("received %d of %d with RcvbufErrors %d", received, sent, drops)
	}
}

// ICMP port unreachable: a connected socket's next call fails once with
// ECONNREFUSED; an unconnected one ignores it unless IP_RECVERR is set.
func TestPortUnreachable(t *testing.T) {
	ts := newTestStack(t, nil)
	closed := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	dead := closed.LocalAddress()
	closed.Close()

	c := ts.endpoint(t, unix.AF_INET)
	if err := c.Connect(dead); err != nil {
		t.Fatal(err)
	}
	send(t, c, []byte("ping"), "")
	waitFor(t, c, waiter.EventErr)
	if _, err := c.Read(make([]byte, 8), stack.ReadOptions{}); err != unix.ECONNREFUSED {
		t.Fatalf("read after port unreachable: %v, want ECONNREFUSED", err)
	}
	if _, err := c.Read(make([]byte, 8), stack.ReadOptions{}); err != unix.EAGAIN {
		t.Fatalf("second read: %v, want EAGAIN (the error is reported once)", err)
	}
	send(t, c, []byte("ping"), "")
	waitFor(t, c, waiter.EventErr)
	if _, err := c.Write([]byte("x"), stack.WriteOptions{}); err != unix.ECONNREFUSED {
		t.Fatalf("send after port unreachable: %v, want ECONNREFUSED", err)
	}
	if ts.s.Stats().UDP.NoPorts.Load() < 2 {
		t.Errorf("NoPorts=%d", ts.s.Stats().UDP.NoPorts.Load())
	}

	u := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	send(t, u, []byte("ping"), dead.String())
	ts.settle(t)
	if _, err := u.Read(make([]byte, 8), stack.ReadOptions{}); err != unix.EAGAIN {
		t.Fatalf("unconnected socket: %v, want EAGAIN (error ignored)", err)
	}
	setInt(t, u, unix.SOL_IP, unix.IP_RECVERR, 1)
	send(t, u, []byte("ping"), dead.String())
	waitFor(t, u, waiter.EventErr)
	if got := getInt(t, u, unix.SOL_SOCKET, unix.SO_ERROR); got != int(unix.ECONNREFUSED) {
		t.Fatalf("SO_ERROR with IP_RECVERR = %d, want ECONNREFUSED", got)
	}
	if got := getInt(t, u, unix.SOL_SOCKET, unix.SO_ERROR); got != 0 {
		t.Fatalf("SO_ERROR read twice = %d, want 0", got)
	}
}

// Soft errors (host unreachable) do not reach a connected socket without
// IP_RECVERR; the error is matched by the quoted datagram's ports.
func TestHandleErrorDirect(t *testing.T) {
	ts := newTestStack(t, nil)
	srv := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	c := ts.endpoint(t, unix.AF_INET)
	if err := c.Connect(srv.LocalAddress()); err != nil {
		t.Fatal(err)
	}
	quote := make([]byte, 8)
	header.UDPFields{SrcPort: c.LocalAddress().Port(), DstPort: srv.LocalAddress().Port(), Length: 8}.Emit(quote)
	ip := stack.IPInfo{Src: c.LocalAddress().Addr(), Dst: srv.LocalAddress().Addr()}
	ts.udp.HandleError(stack.ICMPError{Kind: stack.ICMPHostUnreachable, Type: 3, Code: 1}, ip, quote)
	if c.Readiness(waiter.EventErr) != 0 {
		t.Fatal("soft error reported on a connected socket without IP_RECVERR")
	}
	ts.udp.HandleError(stack.ICMPError{Kind: stack.ICMPFragNeeded, Type: 3, Code: 4, MTU: 1000}, ip, quote)
	if got := getInt(t, c, unix.SOL_SOCKET, unix.SO_ERROR); got != int(unix.EMSGSIZE) {
		t.Fatalf("frag needed: SO_ERROR %d, want EMSGSIZE", got)
	}
	// An error for another port pair reaches nobody.
	header.UDPFields{SrcPort: c.LocalAddress().Port() + 1, DstPort: srv.LocalAddress().Port(), Length: 8}.Emit(quote)
	ts.udp.HandleError(stack.ICMPError{Kind: stack.ICMPPortUnreachable, Type: 3, Code: 3}, ip, quote)
	if c.Readiness(waiter.EventErr) != 0 {
		t.Fatal("error for another flow reached the socket")
	}
}

func TestDualStack(t *testing.T) {
	ts := newTestStack(t, nil)
	srv := ts.bound(t, unix.AF_INET6, "[::]:0")
	port := srv.LocalAddress().Port()
	c4 := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	send(t, c4, []byte("v4"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
	got, res := recv(t, srv, 16)
	want := netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), c4.LocalAddress().Port())
	if string(got) != "v4" || res.From != want {
		t.Fatalf("dual-stack socket got %q from %v, want from %v", got, res.From, want)
	}
	// Reply to the v4-mapped address reaches the IPv4 socket.
	send(t, srv, []byte("back"), res.From.String())
	if got, res := recv(t, c4, 16); string(got) != "back" || res.From.Port() != port {
		t.Fatalf("reply %q from %v", got, res.From)
	}
	c6 := ts.bound(t, unix.AF_INET6, "[::1]:0")
	send(t, c6, []byte("v6"), netip.AddrPortFrom(netip.IPv6Loopback(), port).String())
	if got, res := recv(t, srv, 16); string(got) != "v6" || res.From != c6.LocalAddress() {
		t.Fatalf("IPv6 datagram %q from %v", got, res.From)
	}
	// Connecting to a v4-mapped peer makes the source v4-mapped.
	cm := ts.endpoint(t, unix.AF_INET6)
	if err := cm.Connect(netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), c4.LocalAddress().Port())); err != nil {
		t.Fatal(err)
	}
	if la := cm.LocalAddress(); la.Addr() != netip.MustParseAddr("::ffff:127.0.0.1") {
		t.Errorf("local address after v4-mapped connect %v", la)
	}

	only := ts.endpoint(t, unix.AF_INET6)
	setInt(t, only, unix.SOL_IPV6, unix.IPV6_V6ONLY, 1)
	if err := only.Bind(netip.MustParseAddrPort("[::]:0")); err != nil {
		t.Fatal(err)
	}
	if _, err := only.Write([]byte("x"), stack.WriteOptions{To: netip.MustParseAddrPort("[::ffff:127.0.0.1]:9")}); err != unix.ENETUNREACH {
		t.Errorf("v6only send to v4-mapped: %v, want ENETUNREACH", err)
	}
	if err := only.Connect(netip.MustParseAddrPort("[::ffff:127.0.0.1]:9")); err != unix.ENETUNREACH {
		t.Errorf("v6only connect to v4-mapped: %v, want ENETUNREACH", err)
	}
	noports := ts.s.Stats().UDP.NoPorts.Load()
	send(t, c4, []byte("x"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), only.LocalAddress().Port()).String())
	ts.settle(t)
	if ts.s.Stats().UDP.NoPorts.Load() != noports+1 {
		t.Error("an IPv6-only socket took an IPv4 datagram")
	}
}

func TestSendErrors(t *testing.T) {
	ts := newTestStack(t, nil)
	a, b := pipe.New(pipe.Config{})
	defer b.Close()
	nic, err := ts.s.AddNIC(a, stack.NICOptions{Name: "np0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := nic.AddAddress(netip.MustParsePrefix("10.213.0.1/24")); err != nil {
		t.Fatal(err)
	}
	ep := ts.bound(t, unix.AF_INET, "0.0.0.0:0")
	if _, err := ep.Write([]byte("x"), stack.WriteOptions{}); err != unix.EDESTADDRREQ {
		t.Errorf("send without address: %v, want EDESTADDRREQ", err)
	}
	to := stack.WriteOptions{To: netip.MustParseAddrPort("127.0.0.1:9")}
	if _, err := ep.Write(make([]byte, 65508), to); err != unix.EMSGSIZE {
		t.Errorf("65508-byte datagram: %v, want EMSGSIZE", err)
	}
	if n, err := ep.Write(make([]byte, 65507), to); err != nil || n != 65507 {
		t.Errorf("65507-byte datagram: %d, %v", n, err)
	}
	if _, err := ep.Write([]byte("x"), stack.WriteOptions{To: netip.MustParseAddrPort("127.0.0.1:0")}); err != unix.EINVAL {
		t.Errorf("send to port 0: %v, want EINVAL", err)
	}
	if _, err := ep.Write([]byte("x"), stack.WriteOptions{To: netip.MustParseAddrPort("192.0.2.1:9")}); err != unix.ENETUNREACH {
		t.Errorf("send without route: %v, want ENETUNREACH", err)
	}
	bcast := stack.WriteOptions{To: netip.MustParseAddrPort("10.213.0.255:9")}
	if _, err := ep.Write([]byte("x"), bcast); err != unix.EACCES {
		t.Errorf("broadcast without SO_BROADCAST: %v, want EACCES", err)
	}
	if err := ep.Connect(bcast.To); err != unix.EACCES {
		t.Errorf("connect to broadcast without SO_BROADCAST: %v, want EACCES", err)
	}
	setInt(t, ep, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	if _, err := ep.Write([]byte("x"), bcast); err != nil {
		t.Errorf("broadcast with SO_BROADCAST: %v", err)
	}
	if _, err := ep.Write([]byte("x"), stack.WriteOptions{To: to.To, OOB: true}); err != unix.EOPNOTSUPP {
		t.Errorf("MSG_OOB: %v, want EOPNOTSUPP", err)
	}
	// Shutdown: unconnected gives ENOTCONN but still shuts down.
	if err := ep.Shutdown(unix.SHUT_WR); err != unix.ENOTCONN {
		t.Errorf("shutdown unconnected: %v, want ENOTCONN", err)
	}
	if _, err := ep.Write([]byte("x"), to); err != unix.EPIPE {
		t.Errorf("send after SHUT_WR: %v, want EPIPE", err)
	}
	if err := ep.Shutdown(7); err != unix.EINVAL {
		t.Errorf("shutdown(7): %v", err)
	}
	if ts.s.Stats().UDP.OutDatagrams.Load() < 2 {
		t.Errorf("OutDatagrams=%d", ts.s.Stats().UDP.OutDatagrams.Load())
	}
}

func TestOptionDefaults(t *testing.T) {
	ts := newTestStack(t, nil)
	ep := ts.endpoint(t, unix.AF_INET6)
	checks := []struct {
		level, name, want int
	}{
		{unix.SOL_SOCKET, unix.SO_TYPE, unix.SOCK_DGRAM},
		{unix.SOL_SOCKET, unix.SO_RCVBUF, 212992},
		{unix.SOL_SOCKET, unix.SO_SNDBUF, 212992},
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, 0},
		{unix.SOL_SOCKET, unix.SO_BROADCAST, 0},
		{unix.SOL_SOCKET, unix.SO_ERROR, 0},
		{unix.SOL_IP, unix.IP_TTL, 64},
		{unix.SOL_IP, unix.IP_TOS, 0},
		{unix.SOL_IPV6, unix.IPV6_V6ONLY, 0},
		{unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, 64},
	}
	for _, c := range checks {
		if got := getInt(t, ep, c.level, c.name); got != c.want {
			t.Errorf("getsockopt(%d, %d) = %d, want %d", c.level, c.name, got, c.want)
		}
	}
	if err := ep.SetSockOpt(unix.SOL_IP, unix.IP_TTL, []byte{0, 0, 0, 0}); err != unix.EINVAL {
		t.Errorf("IP_TTL 0: %v, want EINVAL", err)
	}
	setInt(t, ep, unix.SOL_IP, unix.IP_TTL, 7)
	if got := getInt(t, ep, unix.SOL_IP, unix.IP_TTL); got != 7 {
		t.Errorf("IP_TTL = %d", got)
	}
	if err := ep.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVBUF, []byte{1}); err != unix.EINVAL {
		t.Errorf("short int option: %v, want EINVAL", err)
	}
	if _, err := ep.GetSockOpt(unix.SOL_TCP, unix.TCP_NODELAY, make([]byte, 4)); err != unix.ENOPROTOOPT {
		t.Errorf("TCP option on UDP: %v, want ENOPROTOOPT", err)
	}
	ep4 := ts.endpoint(t, unix.AF_INET)
	// do_ip_getsockopt answers a foreign level with EOPNOTSUPP (the kernel
	// prints v6_opt_on_v4=EOPNOTSUPP in semantics scenario m-option-errors).
	if _, err := ep4.GetSockOpt(unix.SOL_IPV6, unix.IPV6_V6ONLY, make([]byte, 4)); err != unix.EOPNOTSUPP {
		t.Errorf("IPv6 option on AF_INET: %v, want EOPNOTSUPP", err)
	}
}
