package tcp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"golang.org/x/sys/unix"
)

func newCtxPorts(t *testing.T, lo, hi uint16) *tctx {
	t.Helper()
	c := newCtx(t, DefaultConfig())
	// Replace the stack with one whose port range is [lo, hi].
	cfg := stack.DefaultConfig()
	cfg.LocalPortRange = [2]uint16{lo, hi}
	c.s = stack.New(stack.Options{Clock: c.clk, Config: &cfg})
	c.s.RegisterNetworkProtocol(&testIP{s: c.s})
	c.p = Register(c.s, DefaultConfig())
	c.link = &recLink{mtu: 1500}
	nic, err := c.s.AddNIC(c.link, stack.NICOptions{Name: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	c.nic = nic
	if err := nic.AddAddress(netip.PrefixFrom(c.local, 24)); err != nil {
		t.Fatal(err)
	}
	return c
}

// Spec 6: a bind conflict gives EADDRINUSE and leaves the failed socket
// unbound (getsockname 0.0.0.0:0).
func TestBindConflict(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	a, b := c.newEP(), c.newEP()
	if err := a.Bind(netip.MustParseAddrPort("10.0.0.1:7000")); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(netip.MustParseAddrPort("0.0.0.0:7000")); err != unix.EADDRINUSE {
		t.Fatalf("second bind = %v, want EADDRINUSE", err)
	}
	if la := b.LocalAddress(); la != netip.MustParseAddrPort("0.0.0.0:0") {
		t.Fatalf("getsockname after failed bind = %v", la)
	}
	if info := b.Info(); info.State != uint8(StateClose) {
		t.Fatalf("state after bind %d, want CLOSE (spec 7)", info.State)
	}
	if err := b.Bind(netip.MustParseAddrPort("10.0.0.9:7001")); err != unix.EADDRNOTAVAIL {
		t.Fatalf("bind to a foreign address = %v, want EADDRNOTAVAIL", err)
	}
}

// SO_REUSEADDR on both sockets shares a port until one listens; the
// second listen then fails. SO_REUSEPORT lets both listen.
func TestReuseAddrAndReusePort(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	a, b := c.newEP(), c.newEP()
	setInt(t, a, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	setInt(t, b, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := a.Bind(netip.MustParseAddrPort("0.0.0.0:7000")); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(netip.MustParseAddrPort("0.0.0.0:7000")); err != nil {
		t.Fatalf("second SO_REUSEADDR bind = %v", err)
	}
	if err := a.Listen(1); err != nil {
		t.Fatal(err)
	}
	if err := b.Listen(1); err != unix.EADDRINUSE {
		t.Fatalf("second listen = %v, want EADDRINUSE", err)
	}
	x, y := c.newEP(), c.newEP()
	setInt(t, x, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	setInt(t, y, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	_ = x.Bind(netip.MustParseAddrPort("0.0.0.0:7100"))
	if err := y.Bind(netip.MustParseAddrPort("0.0.0.0:7100")); err != nil {
		t.Fatal(err)
	}
	if x.Listen(8) != nil || y.Listen(8) != nil {
		t.Fatal("SO_REUSEPORT listeners refused")
	}
	// Connections spread over the group; each SYN gets exactly one SYN-ACK.
	for i := 0; i < 8; i++ {
		c.inject(header.TCPFields{SrcPort: uint16(30000 + i), DstPort: 7100, Seq: 1, Flags: header.TCPFlagSyn, Window: 1000}, nil, nil)
		c.next()
		c.expectNone()
	}
	if len(x.synQueue)+len(y.synQueue) != 8 || len(x.synQueue) == 0 || len(y.synQueue) == 0 {
		t.Fatalf("requests split %d/%d, want both used", len(x.synQueue), len(y.synQueue))
	}
}

// Spec 11, 25: listen without bind auto-binds an ephemeral port;
// consecutive connects get distinct ports inside the range.
func TestEphemeralPorts(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	if err := l.Listen(4); err != nil {
		t.Fatal(err)
	}
	la := l.LocalAddress()
	if !la.Addr().IsUnspecified() || la.Port() < 32768 || la.Port() > 60999 {
		t.Fatalf("auto-bound listener at %v", la)
	}
	seen := map[uint16]bool{}
	for i := 0; i < 50; i++ {
		ep := c.newEP()
		if err := ep.Connect(netip.AddrPortFrom(c.remote, 80)); err != unix.EINPROGRESS {
			t.Fatal(err)
		}
		p := ep.LocalAddress().Port()
		if p < 32768 || p > 60999 || seen[p] {
			t.Fatalf("connect %d got port %d (seen %v)", i, p, seen[p])
		}
		seen[p] = true
	}
}

// Spec 26, 27: with a single-port range, connections to different
// destinations share the port; a second one to the same destination gets
// EADDRNOTAVAIL and can be retried after (spec 22).
func TestPortRangeExhausted(t *testing.T) {
	c := newCtxPorts(t, 40000, 40000)
	a, b, d := c.newEP(), c.newEP(), c.newEP()
	if err := a.Connect(netip.AddrPortFrom(c.remote, 80)); err != unix.EINPROGRESS {
		t.Fatal(err)
	}
	if err := b.Connect(netip.AddrPortFrom(c.remote, 81)); err != unix.EINPROGRESS {
		t.Fatalf("connect to another destination = %v", err)
	}
	if a.LocalAddress().Port() != 40000 || b.LocalAddress().Port() != 40000 {
		t.Fatal("port not shared")
	}
	if err := d.Connect(netip.AddrPortFrom(c.remote, 80)); err != unix.EADDRNOTAVAIL {
		t.Fatalf("connect = %v, want EADDRNOTAVAIL", err)
	}
	if _, err := d.RemoteAddress(); err != unix.ENOTCONN {
		t.Fatalf("getpeername after failure = %v", err)
	}
	if err := d.Connect(netip.AddrPortFrom(c.remote, 82)); err != unix.EINPROGRESS {
		t.Fatalf("retry = %v", err)
	}
}

// Spec 29: two sockets bound to one port (SO_REUSEADDR) connecting to the
// same destination: the second gets EADDRNOTAVAIL.
func TestBoundPortFourTupleCollision(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	a, b := c.newEP(), c.newEP()
	for _, ep := range []*endpoint{a, b} {
		setInt(t, ep, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := ep.Bind(netip.MustParseAddrPort("10.0.0.1:7000")); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Connect(netip.AddrPortFrom(c.remote, 80)); err != unix.EINPROGRESS {
		t.Fatal(err)
	}
	if err := b.Connect(netip.AddrPortFrom(c.remote, 80)); err != unix.EADDRNOTAVAIL {
		t.Fatalf("second connect = %v, want EADDRNOTAVAIL", err)
	}
}

// Spec 31: ISNs on one 4-tuple differ and grow with time; another tuple's
// ISN is unrelated.
func TestISN(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	k := tupleKey{laddr: c.local, raddr: c.remote, lport: 1000, rport: 80}
	now := c.clk.Now()
	a := c.p.isn(k.laddr, k.raddr, k.lport, k.rport, now)
	b := c.p.isn(k.laddr, k.raddr, k.lport, k.rport, now.Add(time.Millisecond))
	if d := b - a; d != uint32(time.Millisecond/64) {
		t.Fatalf("ISN advanced by %d in 1 ms, want %d", d, time.Millisecond/64)
	}
	o := c.p.isn(k.laddr, k.raddr, k.lport+1, k.rport, now)
	if o-a < 1<<16 && a-o < 1<<16 {
		t.Fatalf("ISNs of neighbouring tuples too close: %d %d", a, o)
	}
}

// Spec 16: connect to multicast or limited broadcast is ENETUNREACH; an
// address with no route too.
func TestConnectUnreachable(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	for _, a := range []string{"224.0.0.1:80", "255.255.255.255:80", "192.0.2.1:80"} {
		ep := c.newEP()
		if err := ep.Connect(netip.MustParseAddrPort(a)); err != unix.ENETUNREACH {
			t.Fatalf("connect %s = %v, want ENETUNREACH", a, err)
		}
	}
}

// Spec 50: listen(fd, 1) holds 2 completed connections (N+1); a further
// SYN is dropped silently while the accept queue is full
// (ListenOverflows, ListenDrops).
func TestAcceptQueueOverflow(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
	_ = l.Listen(1)
	for i := 0; i < 2; i++ {
		port := uint16(41000 + i)
		c.inject(header.TCPFields{SrcPort: port, DstPort: 8080, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, nil, nil)
		sa := c.next()
		c.inject(header.TCPFields{SrcPort: port, DstPort: 8080, Seq: peerISN + 1, Ack: sa.seq() + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
	}
	if len(l.acceptQ) != 2 {
		t.Fatalf("accept queue %d, want 2", len(l.acceptQ))
	}
	c.inject(header.TCPFields{SrcPort: 41005, DstPort: 8080, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, nil, nil)
	c.expectNone()
	st := &c.s.Stats().TCPExt
	if st.ListenOverflows.Load() != 1 || st.ListenDrops.Load() != 1 {
		t.Fatalf("ListenOverflows=%d ListenDrops=%d", st.ListenOverflows.Load(), st.ListenDrops.Load())
	}
	// Spec 10: a larger backlog lets it in.
	_ = l.Listen(10)
	c.inject(header.TCPFields{SrcPort: 41005, DstPort: 8080, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, nil, nil)
	if sa := c.next(); sa.flags() != header.TCPFlagSyn|header.TCPFlagAck {
		t.Fatalf("after re-listen: %v", sa.flags())
	}
}

// Spec 49, 52, 56: when the SYN queue is full a SYN cookie answers; the
// cookie's ACK creates the connection with the options the timestamp
// encoded (window scale 7, SACK).
func TestSynCookies(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
	_ = l.Listen(1)
	c.inject(header.TCPFields{SrcPort: 42000, DstPort: 8080, Seq: 100, Flags: header.TCPFlagSyn, Window: 65535}, peerSYNOpts(50, 0), nil)
	c.next()
	if len(l.synQueue) != 1 {
		t.Fatal("first SYN not queued")
	}
	c.inject(header.TCPFields{SrcPort: 42001, DstPort: 8080, Seq: 900, Flags: header.TCPFlagSyn, Window: 65535}, peerSYNOpts(60, 0), nil)
	sa := c.next()
	if c.s.Stats().TCPExt.SyncookiesSent.Load() != 1 || len(l.synQueue) != 1 {
		t.Fatalf("SyncookiesSent=%d queue=%d", c.s.Stats().TCPExt.SyncookiesSent.Load(), len(l.synQueue))
	}
	if sa.opts.MSS != 1460 || sa.opts.WindowScale != 7 || !sa.opts.SACKPermitted {
		t.Fatalf("cookie SYN-ACK options %+v", sa.opts)
	}
	c.inject(header.TCPFields{SrcPort: 42001, DstPort: 8080, Seq: 901, Ack: sa.seq() + 1, Flags: header.TCPFlagAck, Window: 502},
		tsOpts(61, sa.opts.TSVal), nil)
	if c.s.Stats().TCPExt.SyncookiesRecv.Load() != 1 {
		t.Fatal("cookie not accepted")
	}
	a, _, err := l.Accept()
	if err != nil {
		t.Fatalf("accept = %v", err)
	}
	ae := a.(*endpoint)
	if ae.sndWscale != 7 || !ae.sackOK || !ae.tsOK || ae.mssClamp != 1460 || ae.sndWnd != 502<<7 {
		t.Fatalf("cookie child wscale=%d sack=%v ts=%v mss=%d wnd=%d", ae.sndWscale, ae.sackOK, ae.tsOK, ae.mssClamp, ae.sndWnd)
	}
	// A forged cookie is refused with RST.
	c.inject(header.TCPFields{SrcPort: 42002, DstPort: 8080, Seq: 5, Ack: 12345, Flags: header.TCPFlagAck, Window: 502}, tsOpts(1, 1), nil)
	if r := c.next(); r.flags() != header.TCPFlagRst {
		t.Fatalf("forged cookie answered %v", r.flags())
	}
}

// TIME_WAIT holds the port: with the listener's SO_REUSEADDR inherited
// by the connection, a new SO_REUSEADDR socket may bind the port while
// the connection is in TIME_WAIT; one without the option may not.
func TestTimeWaitHoldsPort(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	setInt(t, l, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
	_ = l.Listen(4)
	a, _ := c.passiveEstablished(l, nil, nil)
	l.Close()
	a.Close()
	fin := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck | header.TCPFlagFin, Window: 502}, nil, nil)
	c.next()
	if a.Info().State != uint8(StateTimeWait) {
		t.Fatalf("state %d", a.Info().State)
	}
	n := c.newEP()
	if err := n.Bind(netip.MustParseAddrPort("0.0.0.0:8080")); err != unix.EADDRINUSE {
		t.Fatalf("bind over TIME_WAIT = %v, want EADDRINUSE", err)
	}
	m := c.newEP()
	setInt(t, m, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := m.Bind(netip.MustParseAddrPort("0.0.0.0:8080")); err != nil {
		t.Fatalf("SO_REUSEADDR bind over TIME_WAIT = %v", err)
	}
	if err := m.Listen(4); err != nil {
		t.Fatalf("listen = %v", err)
	}
}
