package tcp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/waiter"
	"golang.org/x/sys/unix"
)

// Spec 33, 34, 35, 36, 38, 43: the SYN of connect() — flags SYN only,
// ack 0, MSS 1460 on a 1500-byte link, options in Linux's exact layout
// (MSS, SACK_PERM+TS, NOP+WS), window = rounddown(65536, 1460) = 64240
// unscaled, wscale 7 from tcp_rmem[2].
func TestSYNLayoutLikeLinux(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	if err := ep.Connect(netip.AddrPortFrom(c.remote, 80)); err != unix.EINPROGRESS {
		t.Fatalf("connect = %v, want EINPROGRESS", err)
	}
	syn := c.next()
	if syn.flags() != header.TCPFlagSyn {
		t.Fatalf("flags %v, want [S]", syn.flags())
	}
	if syn.ack() != 0 {
		t.Fatalf("SYN ack field %d, want 0", syn.ack())
	}
	if syn.f.Window != 64240 {
		t.Fatalf("SYN window %d, want 64240", syn.f.Window)
	}
	if len(syn.rawOpts) != 20 {
		t.Fatalf("SYN options %d bytes, want 20", len(syn.rawOpts))
	}
	want := []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10}
	if !bytes.Equal(syn.rawOpts[:8], want) {
		t.Fatalf("SYN options start % x, want % x", syn.rawOpts[:8], want)
	}
	if tsecr := syn.rawOpts[12:16]; !bytes.Equal(tsecr, []byte{0, 0, 0, 0}) {
		t.Fatalf("SYN tsecr % x, want zero", tsecr)
	}
	if tail := syn.rawOpts[16:]; !bytes.Equal(tail, []byte{1, 3, 3, 7}) {
		t.Fatalf("SYN options tail % x, want 01 03 03 07", tail)
	}
	lp := ep.LocalAddress()
	if lp.Addr() != c.local || lp.Port() < 32768 || lp.Port() > 60999 {
		t.Fatalf("local address %v, want 10.0.0.1:<ephemeral>", lp)
	}
	if err := ep.Connect(netip.AddrPortFrom(c.remote, 80)); err != unix.EALREADY {
		t.Fatalf("second connect = %v, want EALREADY (spec 18)", err)
	}
	if n := c.s.Stats().TCP.ActiveOpens.Load(); n != 1 {
		t.Fatalf("ActiveOpens = %d, want 1", n)
	}
}

// Spec 36: without timestamps the SYN options are MSS, NOP, NOP,
// SACK_PERM, NOP, WS.
func TestSYNLayoutWithoutTimestamps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Timestamps = false
	c := newCtx(t, cfg)
	ep := c.newEP()
	_ = ep.Connect(netip.AddrPortFrom(c.remote, 80))
	syn := c.next()
	want := []byte{2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7}
	if !bytes.Equal(syn.rawOpts, want) {
		t.Fatalf("options % x, want % x", syn.rawOpts, want)
	}
}

// Spec 35, 37: TCP_MAXSEG lowers the advertised MSS; a small SO_RCVBUF
// shrinks the SYN window and the scale.
func TestSYNHonoursMaxsegAndRcvbuf(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	setInt(t, ep, unix.SOL_TCP, unix.TCP_MAXSEG, 1000)
	setInt(t, ep, unix.SOL_SOCKET, unix.SO_RCVBUF, 8192)
	_ = ep.Connect(netip.AddrPortFrom(c.remote, 80))
	syn := c.next()
	if syn.opts.MSS != 1000 {
		t.Fatalf("MSS %d, want 1000", syn.opts.MSS)
	}
	// rcvbuf = 16384, space = 8192 -> rounddown(8192, 1000) = 8000, scale 0.
	if syn.f.Window != 8000 || syn.opts.WindowScale != 0 {
		t.Fatalf("window %d scale %d, want 8000 and 0", syn.f.Window, syn.opts.WindowScale)
	}
}

func setInt(t *testing.T, ep *endpoint, level, name, v int) {
	t.Helper()
	var b [4]byte
	putInt(b[:], v)
	if err := ep.SetSockOpt(level, name, b[:]); err != nil {
		t.Fatalf("setsockopt(%d, %d, %d) = %v", level, name, v, err)
	}
}

func getInt(t *testing.T, ep *endpoint, level, name int) int {
	t.Helper()
	var b [4]byte
	n, err := ep.GetSockOpt(level, name, b[:])
	if err != nil || n != 4 {
		t.Fatalf("getsockopt(%d, %d) = %d, %v", level, name, n, err)
	}
	v, _ := getIntOpt(b[:])
	return v
}

// Spec 18, 33, 63, 64: SYN-ACK completes the active open: an immediate
// ACK with seq ISN+1, POLLOUT, connect() 0 once, then EISCONN; TCP_MAXSEG
// reads the peer MSS minus 12 with timestamps.
func TestActiveOpenCompletes(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	var rec eventRecorder
	rec.attach(ep)
	_ = ep.Connect(netip.AddrPortFrom(c.remote, peerPort))
	syn := c.next()
	if ep.Readiness(waiter.EventOut) != 0 {
		t.Fatal("writable before the handshake")
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Seq: peerISN, Ack: syn.f.Seq + 1,
		Flags: header.TCPFlagSyn | header.TCPFlagAck, Window: 65535}, peerSYNOpts(777, syn.opts.TSVal), nil)
	ack := c.next()
	if ack.flags() != header.TCPFlagAck || ack.seq() != syn.seq()+1 || ack.ack() != peerISN+1 {
		t.Fatalf("ACK %v seq=%d ack=%d, want [.] seq=%d ack=%d", ack.flags(), ack.seq(), ack.ack(), syn.seq()+1, peerISN+1)
	}
	// The third ACK offers rcv_wnd 64240 aligned up to the scale: 502.
	if ack.f.Window != 502 {
		t.Fatalf("third ACK window %d, want 502", ack.f.Window)
	}
	if !ack.opts.HasTimestamps || ack.opts.TSEcr != 777 {
		t.Fatalf("ACK timestamps %+v, want tsecr 777", ack.opts)
	}
	if rec.take()&waiter.EventOut == 0 || ep.Readiness(waiter.EventOut) == 0 {
		t.Fatal("no POLLOUT after the handshake")
	}
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != nil {
		t.Fatalf("connect after handshake = %v, want nil", err)
	}
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != unix.EISCONN {
		t.Fatalf("third connect = %v, want EISCONN", err)
	}
	if got := getInt(t, ep, unix.SOL_TCP, unix.TCP_MAXSEG); got != 1448 {
		t.Fatalf("TCP_MAXSEG = %d, want 1448", got)
	}
	var info [tcpInfoLen]byte
	if _, err := ep.GetSockOpt(unix.SOL_TCP, unix.TCP_INFO, info[:]); err != nil {
		t.Fatal(err)
	}
	if info[0] != uint8(StateEstablished) || info[5] != tcpiOptTimestamps|tcpiOptSACK|tcpiOptWscale || info[6] != 7|7<<4 {
		t.Fatalf("tcp_info state=%d options=%#x wscale=%#x", info[0], info[5], info[6])
	}
}

// Spec 59: a SYN-ACK acknowledging the ISN itself is answered with a RST
// whose seq is that ack, and the connection keeps waiting.
func TestSynSentBadAckGetsRST(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	_ = ep.Connect(netip.AddrPortFrom(c.remote, peerPort))
	syn := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Seq: peerISN, Ack: syn.f.Seq,
		Flags: header.TCPFlagSyn | header.TCPFlagAck, Window: 65535}, nil, nil)
	rst := c.next()
	if rst.flags() != header.TCPFlagRst || rst.seq() != syn.seq() {
		t.Fatalf("reply %v seq=%d, want [R] seq=%d", rst.flags(), rst.seq(), syn.seq())
	}
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != unix.EALREADY {
		t.Fatalf("connect = %v, want EALREADY (still SYN_SENT)", err)
	}
}

// Spec 61, 20: RST with an acceptable ACK refuses the connection:
// POLLERR, connect() reports ECONNREFUSED once, then ECONNABORTED... no:
// the failed socket can connect again.
func TestSynSentRSTRefuses(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	_ = ep.Connect(netip.AddrPortFrom(c.remote, peerPort))
	syn := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Seq: 0, Ack: syn.f.Seq + 1,
		Flags: header.TCPFlagRst | header.TCPFlagAck}, nil, nil)
	if ep.Readiness(waiter.EventErr|waiter.EventHUp) != waiter.EventErr|waiter.EventHUp {
		t.Fatalf("readiness %#x, want POLLERR|POLLHUP", ep.Readiness(waiterAll))
	}
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != unix.ECONNREFUSED {
		t.Fatalf("connect = %v, want ECONNREFUSED", err)
	}
	if n := c.s.Stats().TCP.AttemptFails.Load(); n != 1 {
		t.Fatalf("AttemptFails = %d, want 1", n)
	}
	if _, err := ep.RemoteAddress(); err != unix.ENOTCONN {
		t.Fatalf("getpeername = %v, want ENOTCONN", err)
	}
	// Connect again: a new SYN goes out (spec 20, last sentence).
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != unix.EINPROGRESS {
		t.Fatalf("reconnect = %v, want EINPROGRESS", err)
	}
	if s := c.next(); s.flags() != header.TCPFlagSyn {
		t.Fatalf("reconnect sent %v", s.flags())
	}
}

// Spec 20: SO_ERROR read after a non-blocking failure clears the error;
// connect() then reports ECONNABORTED.
func TestConnectErrorReadBySOError(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	_ = ep.Connect(netip.AddrPortFrom(c.remote, peerPort))
	syn := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Ack: syn.f.Seq + 1,
		Flags: header.TCPFlagRst | header.TCPFlagAck}, nil, nil)
	if got := getInt(t, ep, unix.SOL_SOCKET, unix.SO_ERROR); got != int(unix.ECONNREFUSED) {
		t.Fatalf("SO_ERROR = %d, want ECONNREFUSED", got)
	}
	if got := getInt(t, ep, unix.SOL_SOCKET, unix.SO_ERROR); got != 0 {
		t.Fatalf("second SO_ERROR = %d, want 0", got)
	}
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != unix.ECONNABORTED {
		t.Fatalf("connect = %v, want ECONNABORTED", err)
	}
}

// Spec 46: a SYN to a port nobody listens on gets RST|ACK with seq 0 and
// ack = seq+1; an ACK gets RST with seq = its ack; a RST gets nothing.
func TestNoSocketRST(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 9, Seq: 1000, Flags: header.TCPFlagSyn, Window: 1000}, nil, nil)
	r := c.next()
	if r.flags() != header.TCPFlagRst|header.TCPFlagAck || r.seq() != 0 || r.ack() != 1001 {
		t.Fatalf("reply %v seq=%d ack=%d, want [R.] 0 1001", r.flags(), r.seq(), r.ack())
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 9, Seq: 1000, Ack: 4242, Flags: header.TCPFlagAck, Window: 1000}, nil, []byte("xy"))
	r = c.next()
	if r.flags() != header.TCPFlagRst || r.seq() != 4242 {
		t.Fatalf("reply %v seq=%d, want [R] 4242", r.flags(), r.seq())
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 9, Seq: 1000, Flags: header.TCPFlagRst}, nil, nil)
	c.expectNone()
	if n := c.s.Stats().TCP.OutRsts.Load(); n != 2 {
		t.Fatalf("OutRsts = %d, want 2", n)
	}
}

// Spec 45: a segment with a bad checksum is counted and dropped, no RST.
func TestBadChecksumCounted(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	tl := 20
	b := make([]byte, tl)
	header.TCPFields{SrcPort: 1, DstPort: 2, Seq: 3, DataOffset: 20, Flags: header.TCPFlagSyn}.Emit(b)
	header.TCP(b).SetChecksum(0x1234)
	c.injectRaw(b)
	c.expectNone()
	st := &c.s.Stats().TCP
	if st.InCsumErrors.Load() != 1 || st.InErrs.Load() != 1 || st.InSegs.Load() != 1 {
		t.Fatalf("InCsumErrors=%d InErrs=%d InSegs=%d, want 1 1 1", st.InCsumErrors.Load(), st.InErrs.Load(), st.InSegs.Load())
	}
}

// Spec 42, H: SYNs black-holed are retransmitted after 1, 2, 4, 8, 16,
// 32 s; 64 s later connect fails with ETIMEDOUT (127 s in all).
func TestSYNBackoffThenETIMEDOUT(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	var rec eventRecorder
	rec.attach(ep)
	_ = ep.Connect(netip.AddrPortFrom(c.remote, peerPort))
	first := c.next()
	start := c.clk.Now()
	var at []time.Duration
	for i := 0; i < 400; i++ {
		c.clk.Advance(500 * time.Millisecond)
		for {
			s, ok := c.tryNext()
			if !ok {
				break
			}
			if s.flags() != header.TCPFlagSyn || s.seq() != first.seq() {
				t.Fatalf("retransmission %v seq %d", s.flags(), s.seq())
			}
			at = append(at, c.clk.Now().Sub(start))
		}
		if ep.Readiness(waiter.EventErr) != 0 {
			break
		}
	}
	want := []time.Duration{1, 3, 7, 15, 31, 63}
	if len(at) != len(want) {
		t.Fatalf("retransmissions at %v, want at %v s", at, want)
	}
	for i := range want {
		if at[i] != want[i]*time.Second {
			t.Fatalf("retransmission %d at %v, want %v", i, at[i], want[i]*time.Second)
		}
	}
	if el := c.clk.Now().Sub(start); el != 127*time.Second {
		t.Fatalf("gave up after %v, want 127s", el)
	}
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != unix.ETIMEDOUT {
		t.Fatalf("connect = %v, want ETIMEDOUT", err)
	}
	if rec.take()&waiter.EventErr == 0 {
		t.Fatal("no POLLERR notification")
	}
}

// Spec 55, 56, 57: a listener answers a SYN with a SYN-ACK (seq = ISN,
// ack = client ISN+1, options echoing what the SYN offered, window
// rounddown(65536, 1448) = 65160); without the final ACK it retransmits
// after 1, 2, 4, 8, 16 s and drops the request 32 s later; a duplicate
// SYN gets an immediate SYN-ACK.
func TestSynAckLayoutAndRetransmission(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	if err := l.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 8080)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(16); err != nil {
		t.Fatal(err)
	}
	syn := header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 64240}
	c.inject(syn, peerSYNOpts(1234, 0), nil)
	sa := c.next()
	if sa.flags() != header.TCPFlagSyn|header.TCPFlagAck || sa.ack() != peerISN+1 {
		t.Fatalf("SYN-ACK %v ack=%d", sa.flags(), sa.ack())
	}
	if sa.f.Window != 65160 {
		t.Fatalf("SYN-ACK window %d, want 65160", sa.f.Window)
	}
	if !bytes.Equal(sa.rawOpts[:8], []byte{2, 4, 5, 0xb4, 4, 2, 8, 10}) || !bytes.Equal(sa.rawOpts[16:], []byte{1, 3, 3, 7}) {
		t.Fatalf("SYN-ACK options % x", sa.rawOpts)
	}
	if sa.opts.TSEcr != 1234 {
		t.Fatalf("SYN-ACK tsecr %d, want 1234", sa.opts.TSEcr)
	}
	start := c.clk.Now()
	var at []time.Duration
	for i := 0; i < 140; i++ {
		c.clk.Advance(500 * time.Millisecond)
		for {
			s, ok := c.tryNext()
			if !ok {
				break
			}
			if s.seq() != sa.seq() || s.flags() != sa.flags() {
				t.Fatalf("retransmission %v seq %d", s.flags(), s.seq())
			}
			at = append(at, c.clk.Now().Sub(start))
		}
	}
	want := []time.Duration{1, 3, 7, 15, 31}
	if len(at) != len(want) {
		t.Fatalf("SYN-ACK retransmissions at %v, want %v s", at, want)
	}
	for i := range want {
		if at[i] != want[i]*time.Second {
			t.Fatalf("retransmission %d at %v, want %v s", i, at[i], want[i])
		}
	}
	if len(l.synQueue) != 0 {
		t.Fatalf("request still queued after 63 s")
	}
	// A new SYN, then its duplicate: an immediate second SYN-ACK.
	c.inject(syn, peerSYNOpts(1300, 0), nil)
	first := c.next()
	c.inject(syn, peerSYNOpts(1301, 0), nil)
	dup := c.next()
	if dup.seq() != first.seq() || dup.flags() != header.TCPFlagSyn|header.TCPFlagAck {
		t.Fatalf("duplicate SYN answered with %v seq %d, want the same SYN-ACK", dup.flags(), dup.seq())
	}
}

// Spec 47, 69, 73, 76-80: LISTEN input rules and the third ACK: a bare
// ACK gets RST; SYN|FIN nothing; a wrong ACK number gets RST but the
// request survives; the right ACK creates an ESTABLISHED child with the
// data already readable before accept().
func TestPassiveOpenRules(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	_ = l.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 8080))
	_ = l.Listen(16)
	var rec eventRecorder
	rec.attach(l)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: 1, Ack: 77, Flags: header.TCPFlagAck, Window: 100}, nil, nil)
	if r := c.next(); r.flags() != header.TCPFlagRst || r.seq() != 77 {
		t.Fatalf("bare ACK answered %v seq=%d, want [R] 77", r.flags(), r.seq())
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: 1, Flags: header.TCPFlagSyn | header.TCPFlagFin, Window: 100}, nil, nil)
	c.expectNone()

	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, peerSYNOpts(10, 0), nil)
	sa := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN + 1, Ack: sa.seq() + 5, Flags: header.TCPFlagAck, Window: 502}, tsOpts(11, sa.opts.TSVal), nil)
	if r := c.next(); r.flags() != header.TCPFlagRst || r.seq() != sa.seq()+5 {
		t.Fatalf("wrong ACK answered %v seq=%d", r.flags(), r.seq())
	}
	if _, _, err := l.Accept(); err != unix.EAGAIN {
		t.Fatalf("accept = %v, want EAGAIN", err)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN + 1, Ack: sa.seq() + 1, Flags: header.TCPFlagAck | header.TCPFlagPsh, Window: 502},
		tsOpts(12, sa.opts.TSVal), []byte("hello"))
	if rec.take()&waiter.EventIn == 0 {
		t.Fatal("listener not notified readable")
	}
	a, ra, err := l.Accept()
	if err != nil {
		t.Fatalf("accept = %v", err)
	}
	if ra != netip.AddrPortFrom(c.remote, peerPort) {
		t.Fatalf("accept address %v", ra)
	}
	buf := make([]byte, 10)
	r, err := a.Read(buf, stackReadOpts())
	if err != nil || string(buf[:r.N]) != "hello" {
		t.Fatalf("read %q, %v", buf[:r.N], err)
	}
	if a.Info().State != uint8(StateEstablished) {
		t.Fatalf("child state %d", a.Info().State)
	}
	st := c.s.Stats()
	if st.TCP.PassiveOpens.Load() != 1 || st.TCP.CurrEstab.Load() != 1 {
		t.Fatalf("PassiveOpens=%d CurrEstab=%d", st.TCP.PassiveOpens.Load(), st.TCP.CurrEstab.Load())
	}
	// The child's window is scaled: 502 << 7.
	ae := a.(*endpoint)
	if ae.sndWnd != 502<<7 {
		t.Fatalf("child snd_wnd %d, want %d", ae.sndWnd, 502<<7)
	}
}

// Spec 73: an in-window RST removes a half-open request silently; the
// ACK that follows gets a RST from the listener.
func TestEmbryonicReset(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	l := c.newEP()
	_ = l.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 8080))
	_ = l.Listen(16)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, nil, nil)
	sa := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN + 1, Flags: header.TCPFlagRst}, nil, nil)
	c.expectNone()
	if c.s.Stats().TCPExt.EmbryonicRsts.Load() != 1 {
		t.Fatal("EmbryonicRsts not counted")
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: peerISN + 1, Ack: sa.seq() + 1, Flags: header.TCPFlagAck, Window: 100}, nil, nil)
	if r := c.next(); r.flags() != header.TCPFlagRst {
		t.Fatalf("ACK after reset answered %v, want [R]", r.flags())
	}
}
