package tcp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/waiter"
)

// Semantics scenario m-option-errors: getsockopt with a level TCP does
// not have goes to ip_getsockopt on an IPv4 socket, which answers
// EOPNOTSUPP (the kernel prints unknown_level=EOPNOTSUPP and
// v6_opt_on_v4=EOPNOTSUPP); unknown options of the known levels stay
// ENOPROTOOPT, an IPv6 socket answers ENOPROTOOPT (ipv6_getsockopt), and
// setsockopt with a foreign level is ENOPROTOOPT (ip_setsockopt).
func TestGetSockOptUnknownLevel(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	buf := make([]byte, 4)
	for _, tc := range []struct {
		level, name int
		want        error
	}{
		{9999, 1, unix.EOPNOTSUPP},
		{unix.SOL_IPV6, unix.IPV6_V6ONLY, unix.EOPNOTSUPP},
		{unix.SOL_SOCKET, 9999, unix.ENOPROTOOPT},
		{unix.SOL_TCP, 9999, unix.ENOPROTOOPT},
		{unix.SOL_IP, 9999, unix.ENOPROTOOPT},
	} {
		if _, err := ep.GetSockOpt(tc.level, tc.name, buf); err != tc.want {
			t.Errorf("getsockopt(%d, %d) = %v, want %v", tc.level, tc.name, err, tc.want)
		}
	}
	if err := ep.SetSockOpt(9999, 1, []byte{1, 0, 0, 0}); err != unix.ENOPROTOOPT {
		t.Errorf("setsockopt(9999, 1) = %v, want ENOPROTOOPT", err)
	}
	v6, err := c.p.NewEndpoint(unix.AF_INET6)
	if err != nil {
		t.Fatal(err)
	}
	defer v6.Close()
	if _, err := v6.GetSockOpt(9999, 1, buf); err != unix.ENOPROTOOPT {
		t.Errorf("getsockopt(9999, 1) on IPv6 = %v, want ENOPROTOOPT", err)
	}
}

// Semantics scenarios m-names-after-peer-close and
// k-client-reset-before-accept: after a RST the socket is CLOSE, so
// getpeername is ENOTCONN (inet_getname), while getsockname still shows
// the old source address and port (inet_put_port clears inet_num, not
// inet_sport): the kernel prints peername_after_rst=ENOTCONN
// sockname_after_rst=127.0.0.1:EPH.
func TestNamesAfterReset(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	if a, err := ep.RemoteAddress(); err != nil || a != netip.AddrPortFrom(c.remote, peerPort) {
		t.Fatalf("getpeername established = %v, %v", a, err)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Flags: header.TCPFlagRst, Window: 0}, nil, nil)
	if ep.Info().State != uint8(StateClose) {
		t.Fatalf("state %d after RST, want CLOSE", ep.Info().State)
	}
	if a, err := ep.RemoteAddress(); err != unix.ENOTCONN {
		t.Errorf("getpeername after RST = %v, %v; want ENOTCONN", a, err)
	}
	if a := ep.LocalAddress(); a != netip.AddrPortFrom(c.local, port) {
		t.Errorf("getsockname after RST = %v, want %v", a, netip.AddrPortFrom(c.local, port))
	}
	// The port itself is free again: the name is only what getsockname
	// remembers.
	if ep.Info().Local.Port() != 0 {
		t.Errorf("port still held after RST: %v", ep.Info().Local)
	}
}

// Semantics scenarios m-tcp-info-states and m-shut-wr-half-close: the
// application shuts down writing, the peer ACKs and closes; Linux moves
// the connection to a separate TIME_WAIT socket and closes the user's
// (tcp_time_wait -> tcp_done), so TCP_INFO on the application's socket
// reads CLOSE (client_after_both=CLOSE, state_after_peer_close=CLOSE), the
// read is EOF and getpeername is ENOTCONN. The connection itself stays in
// TIME_WAIT (what ss lists).
func TestTimeWaitLooksClosedToTheOwner(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	if err := ep.Shutdown(unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	fin := c.next()
	if fin.flags() != header.TCPFlagFin|header.TCPFlagAck {
		t.Fatalf("shutdown sent %v", fin.flags())
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
	if s := tcpInfoState(t, ep); s != StateFinWait2 {
		t.Fatalf("TCP_INFO state %v, want FIN_WAIT2", s)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck | header.TCPFlagFin, Window: 65535}, nil, nil)
	if a := c.next(); a.flags() != header.TCPFlagAck || a.ack() != peerISN+2 {
		t.Fatalf("ack of FIN: %v ack=%d", a.flags(), a.ack())
	}
	if s := tcpInfoState(t, ep); s != StateClose {
		t.Errorf("TCP_INFO state %v, want CLOSE", s)
	}
	if ep.Info().State != uint8(StateTimeWait) {
		t.Errorf("connection state %d, want TIME_WAIT", ep.Info().State)
	}
	if a, err := ep.RemoteAddress(); err != unix.ENOTCONN {
		t.Errorf("getpeername = %v, %v; want ENOTCONN", a, err)
	}
	if r, err := ep.Read(make([]byte, 8), stack.ReadOptions{}); err != nil || r.N != 0 {
		t.Errorf("read = %d, %v; want EOF", r.N, err)
	}
}

func tcpInfoState(t *testing.T, ep *endpoint) State {
	t.Helper()
	var b [tcpInfoLen]byte
	if _, err := ep.GetSockOpt(unix.SOL_TCP, unix.TCP_INFO, b[:]); err != nil {
		t.Fatal(err)
	}
	return State(b[0])
}

// Semantics scenario b-foreign-address: bind to an address the host does
// not have is EADDRNOTAVAIL, unless IP_FREEBIND is set
// (inet_can_nonlocal_bind): the kernel prints bind=EADDRNOTAVAIL
// bind_freebind=ok sockname_freebind=192.0.2.1:P0.
func TestFreebindAllowsForeignAddress(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	foreign := netip.MustParseAddrPort("192.0.2.1:4321")
	a := c.newEP()
	if err := a.Bind(foreign); err != unix.EADDRNOTAVAIL {
		t.Fatalf("bind foreign = %v, want EADDRNOTAVAIL", err)
	}
	b := c.newEP()
	setInt(t, b, unix.SOL_IP, unix.IP_FREEBIND, 1)
	buf := make([]byte, 4)
	if n, err := b.GetSockOpt(unix.SOL_IP, unix.IP_FREEBIND, buf); err != nil || n != 4 || buf[0] != 1 {
		t.Fatalf("getsockopt(IP_FREEBIND) = %d %v %v", n, buf, err)
	}
	if err := b.Bind(foreign); err != nil {
		t.Fatalf("bind foreign with IP_FREEBIND = %v, want success", err)
	}
	if got := b.LocalAddress(); got != foreign {
		t.Fatalf("getsockname = %v, want %v", got, foreign)
	}
}

// Semantics scenarios m-maxseg-loopback and m-tcp-info-fields: the send
// MSS is bounded by half the largest window the peer has offered
// (tcp_bound_to_half_wnd), so on loopback, where the SYN-ACK offers 65483,
// TCP_MAXSEG and tcpi_snd_mss read 32741 after the handshake while
// tcpi_advmss stays 65483. Once the peer offers twice the MSS, it grows
// to 65495 - 12 = 65483 (spec 93; tcp_ack_update_window re-syncs the MSS).
func TestMSSGrowsWithPeerWindow(t *testing.T) {
	c := newCtxMTU(t, DefaultConfig(), 65536)
	opts := make([]byte, 20)
	header.EncodeSYNOptions(opts, header.TCPOptions{HasMSS: true, MSS: 65495, SACKPermitted: true,
		HasTimestamps: true, TSVal: 1, TSEcr: 0, WindowScale: 7})
	ep := c.newEP()
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != unix.EINPROGRESS {
		t.Fatalf("connect = %v", err)
	}
	syn := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Seq: peerISN, Ack: syn.f.Seq + 1,
		Flags: header.TCPFlagSyn | header.TCPFlagAck, Window: 65483}, fixTSEcr(opts, syn), nil)
	c.drain()
	if got := getInt(t, ep, unix.SOL_TCP, unix.TCP_MAXSEG); got != 32741 {
		t.Fatalf("TCP_MAXSEG after handshake = %d, want 32741", got)
	}
	var info [tcpInfoLen]byte
	if _, err := ep.GetSockOpt(unix.SOL_TCP, unix.TCP_INFO, info[:]); err != nil {
		t.Fatal(err)
	}
	// struct tcp_info: tcpi_snd_mss at offset 16, tcpi_advmss at 84.
	sndMSS := binary.NativeEndian.Uint32(info[16:20])
	advMSS := binary.NativeEndian.Uint32(info[84:88])
	if sndMSS != 32741 || advMSS != 65483 {
		t.Errorf("tcpi_snd_mss=%d tcpi_advmss=%d, want 32741 and 65483", sndMSS, advMSS)
	}
	// A window update to 2048<<7 = 262144 bytes.
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Seq: peerISN + 1, Ack: syn.f.Seq + 1,
		Flags: header.TCPFlagAck, Window: 2048}, tsOpts(2, 1), nil)
	if got := getInt(t, ep, unix.SOL_TCP, unix.TCP_MAXSEG); got != 65483 {
		t.Fatalf("TCP_MAXSEG after a 256 KiB window = %d, want 65483", got)
	}
}

// fixTSEcr returns SYN-ACK options echoing the SYN's timestamp.
func fixTSEcr(opts []byte, syn seg) []byte {
	o := header.ParseTCPOptions(opts)
	o.TSEcr = syn.opts.TSVal
	b := make([]byte, len(opts))
	header.EncodeSYNOptions(b, o)
	return b
}

// Semantics scenario c-refused-blocking: a connect that ends in CLOSE
// (here refused by a RST) returns the error and then runs tcp_disconnect
// (__inet_stream_connect's sock_error path), which clears the shutdown
// flags: poll is POLLOUT|POLLHUP, not the IN|ERR|RDHUP seen before, and
// SO_ERROR is 0 (the kernel prints connect=ECONNREFUSED so_error=0
// tcp_state=CLOSE peername=ENOTCONN poll=OUT|HUP).
func TestRefusedConnectDisconnects(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	to := netip.AddrPortFrom(c.remote, peerPort)
	if err := ep.Connect(to); err != unix.EINPROGRESS {
		t.Fatalf("connect = %v", err)
	}
	syn := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Seq: 0, Ack: syn.f.Seq + 1,
		Flags: header.TCPFlagRst | header.TCPFlagAck}, nil, nil)
	if m := ep.Readiness(waiterAll); m&waiter.EventErr == 0 {
		t.Fatalf("poll before connect returns = %#x, want POLLERR", m)
	}
	if err := ep.Connect(to); err != unix.ECONNREFUSED {
		t.Fatalf("connect after RST = %v, want ECONNREFUSED", err)
	}
	if m := ep.Readiness(waiterAll); m != waiter.EventOut|waiter.EventHUp {
		t.Errorf("poll after the failed connect = %#x, want POLLOUT|POLLHUP", m)
	}
	if v := getInt(t, ep, unix.SOL_SOCKET, unix.SO_ERROR); v != 0 {
		t.Errorf("SO_ERROR = %d, want 0", v)
	}
	if s := tcpInfoState(t, ep); s != StateClose {
		t.Errorf("state %v, want CLOSE", s)
	}
	if _, err := ep.RemoteAddress(); err != unix.ENOTCONN {
		t.Errorf("getpeername = %v, want ENOTCONN", err)
	}
}

// Semantics scenario m-oob-without-urgent: a lone byte sent with MSG_OOB
// makes the receiver POLLPRI but not POLLIN (tcp_poll raises the
// readability target by one while the urgent byte is next and
// SO_OOBINLINE is off): the kernel prints poll=PRI|OUT and then reads
// the byte with MSG_OOB. With more data queued, or SO_OOBINLINE, POLLIN
// is back.
func TestUrgentByteAloneIsNotReadable(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	all := waiterAll | waiter.EventPri
	iss := uint32(ep.iss)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: iss + 1,
		Flags: header.TCPFlagAck | header.TCPFlagUrg | header.TCPFlagPsh, Window: 65535, Urgent: 1}, nil, []byte("u"))
	if m := ep.Readiness(all); m != waiter.EventPri|waiter.EventOut {
		t.Fatalf("poll with only the urgent byte = %#x, want POLLPRI|POLLOUT", m)
	}
	setInt(t, ep, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
	if m := ep.Readiness(all); m&waiter.EventIn == 0 {
		t.Errorf("poll with SO_OOBINLINE = %#x, want POLLIN", m)
	}
	setInt(t, ep, unix.SOL_SOCKET, unix.SO_OOBINLINE, 0)
	b := make([]byte, 1)
	if r, err := ep.Read(b, stack.ReadOptions{OOB: true}); err != nil || r.N != 1 || b[0] != 'u' {
		t.Fatalf("recv(MSG_OOB) = %d %v %q", r.N, err, b)
	}
	if m := ep.Readiness(all); m != waiter.EventOut {
		t.Errorf("poll after the urgent byte was read = %#x, want POLLOUT", m)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 2, Ack: iss + 1,
		Flags: header.TCPFlagAck | header.TCPFlagPsh, Window: 65535}, nil, []byte("v"))
	if m := ep.Readiness(all); m != waiter.EventIn|waiter.EventOut {
		t.Errorf("poll with a normal byte behind the mark = %#x, want POLLIN|POLLOUT", m)
	}
	if r, err := ep.Read(b, stack.ReadOptions{}); err != nil || r.N != 1 || b[0] != 'v' {
		t.Errorf("read = %d %v %q, want \"v\"", r.N, err, b)
	}
}
