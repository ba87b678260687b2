package tcp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/waiter"
	"golang.org/x/sys/unix"
)

// established returns a client endpoint connected to the simulated peer
// without timestamps/SACK/wscale in the SYN-ACK (plain segments).
func (c *tctx) establishedPlain() (*endpoint, uint16) {
	ep, syn := c.connectEstablished(nil)
	return ep, syn.f.SrcPort
}

// Spec 92-95, 105: data both ways on a plain connection: segments carry
// seq/ack as expected, in-order data is readable, and the first data is
// ACKed at once (quick-ACK mode).
func TestDataBothWays(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	iss := ep.iss
	n, err := ep.Write([]byte("ping"), stack.WriteOptions{})
	if err != nil || n != 4 {
		t.Fatalf("write = %d, %v", n, err)
	}
	d := c.next()
	if d.flags() != header.TCPFlagAck|header.TCPFlagPsh || d.seq() != uint32(iss)+1 || string(d.payload) != "ping" {
		t.Fatalf("data segment %v seq=%d %q", d.flags(), d.seq(), d.payload)
	}
	if d.ack() != peerISN+1 {
		t.Fatalf("ack %d", d.ack())
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: d.seq() + 4,
		Flags: header.TCPFlagAck | header.TCPFlagPsh, Window: 65535}, nil, []byte("pong"))
	a := c.next() // quick ACK
	if a.flags() != header.TCPFlagAck || a.ack() != peerISN+5 || len(a.payload) != 0 {
		t.Fatalf("ack %v ack=%d len=%d", a.flags(), a.ack(), len(a.payload))
	}
	buf := make([]byte, 16)
	r, err := ep.Read(buf, stack.ReadOptions{Peek: true})
	if err != nil || string(buf[:r.N]) != "pong" {
		t.Fatalf("peek %q %v", buf[:r.N], err)
	}
	r, err = ep.Read(buf, stack.ReadOptions{})
	if err != nil || string(buf[:r.N]) != "pong" {
		t.Fatalf("read %q %v", buf[:r.N], err)
	}
	if _, err := ep.Read(buf, stack.ReadOptions{}); err != unix.EAGAIN {
		t.Fatalf("empty read = %v, want EAGAIN", err)
	}
	if ep.sndUna != ep.sndNxt {
		t.Fatal("data not acknowledged")
	}
}

// Spec 64 / delayed ACK: once quick-ACK mode is over, a single small
// segment is ACKed by the delayed-ACK timer after 40 ms, not before.
func TestDelayedAck40ms(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	ep.mu.Lock()
	ep.ato = atoMin
	ep.quickAcks = 0
	ep.mu.Unlock()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: uint32(ep.iss) + 1,
		Flags: header.TCPFlagAck, Window: 65535}, nil, []byte("x"))
	c.expectNone()
	c.clk.Advance(39 * time.Millisecond)
	c.expectNone()
	c.clk.Advance(1 * time.Millisecond)
	a := c.next()
	if a.ack() != peerISN+2 {
		t.Fatalf("delayed ack acks %d", a.ack())
	}
	if c.s.Stats().TCPExt.DelayedACKs.Load() != 1 {
		t.Fatal("DelayedACKs not counted")
	}
	// The second of two full segments is ACKed at once.
	ep.mu.Lock()
	mss := ep.rcvMSS
	ep.mu.Unlock()
	full := make([]byte, mss)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 2, Ack: uint32(ep.iss) + 1,
		Flags: header.TCPFlagAck, Window: 65535}, nil, full)
	c.expectNone()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 2 + uint32(mss), Ack: uint32(ep.iss) + 1,
		Flags: header.TCPFlagAck, Window: 65535}, nil, full)
	a = c.next()
	if a.ack() != peerISN+2+2*uint32(mss) {
		t.Fatalf("ack %d", a.ack())
	}
}

// Spec 87-88, TIME_WAIT: active close FIN_WAIT1 -> FIN_WAIT2 -> TIME_WAIT
// (60 s) -> gone; the port is free again afterwards.
func TestActiveCloseTimeWait(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	ep.Close()
	fin := c.next()
	if fin.flags() != header.TCPFlagFin|header.TCPFlagAck {
		t.Fatalf("close sent %v", fin.flags())
	}
	if ep.Info().State != uint8(StateFinWait1) {
		t.Fatalf("state %d, want FIN_WAIT1", ep.Info().State)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
	if ep.Info().State != uint8(StateFinWait2) {
		t.Fatalf("state %d, want FIN_WAIT2", ep.Info().State)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck | header.TCPFlagFin, Window: 65535}, nil, nil)
	a := c.next()
	if a.flags() != header.TCPFlagAck || a.ack() != peerISN+2 || a.seq() != fin.seq()+1 {
		t.Fatalf("ack of FIN: %v seq=%d ack=%d", a.flags(), a.seq(), a.ack())
	}
	if i := ep.Info(); i.State != uint8(StateTimeWait) || i.SendQ != 0 || i.RecvQ != 0 {
		t.Fatalf("info %+v, want TIME_WAIT with empty queues (ss shows 0 0)", i)
	}
	// A retransmitted FIN is ACKed again.
	c.clk.Advance(30 * time.Second)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck | header.TCPFlagFin, Window: 65535}, nil, nil)
	if a := c.next(); a.ack() != peerISN+2 {
		t.Fatalf("re-ACK acks %d", a.ack())
	}
	c.clk.Advance(59 * time.Second)
	if ep.Info().State != uint8(StateTimeWait) {
		t.Fatal("TIME_WAIT did not restart on the retransmitted FIN")
	}
	c.clk.Advance(1 * time.Second)
	if ep.Info().State != uint8(StateClose) {
		t.Fatalf("state %d after 60 s, want CLOSE", ep.Info().State)
	}
	// No socket now: a segment gets a RST.
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 2, Ack: fin.seq() + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
	if r := c.next(); r.flags() != header.TCPFlagRst {
		t.Fatalf("after TIME_WAIT: %v", r.flags())
	}
	if c.s.Stats().TCP.CurrEstab.Load() != 0 {
		t.Fatal("CurrEstab not back to 0")
	}
}

// Passive close and half-close: the peer's FIN makes read return EOF and
// POLLRDHUP; we can still write (CLOSE_WAIT); our close goes to LAST_ACK.
func TestPassiveCloseHalfClose(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: uint32(ep.iss) + 1, Flags: header.TCPFlagAck | header.TCPFlagFin, Window: 65535}, nil, []byte("bye"))
	if a := c.next(); a.ack() != peerISN+5 {
		t.Fatalf("FIN acked with %d", a.ack())
	}
	if ep.Readiness(waiter.EventRdHUp|waiter.EventIn) != waiter.EventRdHUp|waiter.EventIn {
		t.Fatal("no POLLIN|POLLRDHUP after FIN")
	}
	buf := make([]byte, 8)
	r, err := ep.Read(buf, stack.ReadOptions{})
	if err != nil || string(buf[:r.N]) != "bye" {
		t.Fatalf("read %q %v", buf[:r.N], err)
	}
	if r, err := ep.Read(buf, stack.ReadOptions{}); err != nil || r.N != 0 {
		t.Fatalf("read at EOF = %d, %v; want 0, nil", r.N, err)
	}
	if _, err := ep.Write([]byte("late"), stack.WriteOptions{}); err != nil {
		t.Fatalf("write in CLOSE_WAIT = %v", err)
	}
	d := c.next()
	if string(d.payload) != "late" {
		t.Fatalf("sent %q", d.payload)
	}
	ep.Close()
	fin := c.next()
	if !fin.flags().Contains(header.TCPFlagFin) || ep.Info().State != uint8(StateLastAck) {
		t.Fatalf("close: %v state %d", fin.flags(), ep.Info().State)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 5, Ack: fin.seq() + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
	if ep.Info().State != uint8(StateClose) {
		t.Fatalf("state %d after last ACK", ep.Info().State)
	}
}

// shutdown(SHUT_WR) sends FIN and reading still works.
func TestShutdownWrite(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	if err := ep.Shutdown(unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	fin := c.next()
	if !fin.flags().Contains(header.TCPFlagFin) {
		t.Fatalf("shutdown sent %v", fin.flags())
	}
	if _, err := ep.Write([]byte("x"), stack.WriteOptions{}); err != unix.EPIPE {
		t.Fatalf("write after SHUT_WR = %v, want EPIPE", err)
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: fin.seq() + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, []byte("still"))
	buf := make([]byte, 8)
	r, err := ep.Read(buf, stack.ReadOptions{})
	if err != nil || string(buf[:r.N]) != "still" {
		t.Fatalf("read %q %v", buf[:r.N], err)
	}
}

// Peer RST: the next read returns ECONNRESET (not EOF), then EOF; write
// gives EPIPE.
func TestPeerResetSemantics(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Flags: header.TCPFlagRst}, nil, nil)
	buf := make([]byte, 8)
	if _, err := ep.Read(buf, stack.ReadOptions{}); err != unix.ECONNRESET {
		t.Fatalf("read = %v, want ECONNRESET", err)
	}
	if r, err := ep.Read(buf, stack.ReadOptions{}); err != nil || r.N != 0 {
		t.Fatalf("second read = %d %v, want EOF", r.N, err)
	}
	if _, err := ep.Write([]byte("x"), stack.WriteOptions{}); err != unix.EPIPE {
		t.Fatalf("write = %v, want EPIPE", err)
	}
}

// RFC 5961: an in-window RST with the wrong sequence and an in-window SYN
// each get a challenge ACK; the connection survives.
func TestChallengeAcks(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 100, Flags: header.TCPFlagRst}, nil, nil)
	if a := c.next(); a.flags() != header.TCPFlagAck || a.ack() != peerISN+1 {
		t.Fatalf("challenge ACK %v ack=%d", a.flags(), a.ack())
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 10, Flags: header.TCPFlagSyn, Window: 100}, nil, nil)
	if a := c.next(); a.flags() != header.TCPFlagAck {
		t.Fatalf("SYN challenge %v", a.flags())
	}
	if ep.Info().State != uint8(StateEstablished) {
		t.Fatal("connection did not survive")
	}
	st := c.s.Stats().TCPExt.TCPChallengeACK.Load()
	if st != 2 {
		t.Fatalf("TCPChallengeACK = %d, want 2", st)
	}
}

// SO_LINGER with timeout 0: close sends RST.
func TestLingerZeroSendsRST(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, _ := c.establishedPlain()
	lin := make([]byte, 8)
	lin[0] = 1
	if err := ep.SetSockOpt(unix.SOL_SOCKET, unix.SO_LINGER, lin); err != nil {
		t.Fatal(err)
	}
	ep.Close()
	if r := c.next(); r.flags() != header.TCPFlagRst|header.TCPFlagAck {
		t.Fatalf("close sent %v, want [R.]", r.flags())
	}
}

// Close with unread data sends RST (TCPAbortOnClose).
func TestCloseWithUnreadDataSendsRST(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: uint32(ep.iss) + 1, Flags: header.TCPFlagAck, Window: 65535}, nil, []byte("unread"))
	c.drain()
	ep.Close()
	if r := c.next(); r.flags() != header.TCPFlagRst|header.TCPFlagAck {
		t.Fatalf("close sent %v, want [R.]", r.flags())
	}
	if c.s.Stats().TCPExt.TCPAbortOnClose.Load() != 1 {
		t.Fatal("TCPAbortOnClose not counted")
	}
}

// RFC 6298 / Linux: the first data RTO after a handshake RTT of ~0 is the
// 200 ms minimum, and it doubles on each timeout; TCPTimeouts counts them.
func TestRTOMinAndBackoff(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, _ := c.establishedPlain()
	_, _ = ep.Write([]byte("data"), stack.WriteOptions{})
	d := c.next()
	start := c.clk.Now()
	var at []time.Duration
	for i := 0; i < 4000 && len(at) < 4; i++ {
		c.clk.Advance(time.Millisecond)
		if s, ok := c.tryNext(); ok {
			if s.seq() != d.seq() || string(s.payload) != "data" {
				t.Fatalf("retransmission seq=%d %q", s.seq(), s.payload)
			}
			at = append(at, c.clk.Now().Sub(start))
		}
	}
	// The RTO is 200 ms plus the (tiny) smoothed RTT: retransmissions at
	// about 200, 600, 1400, 3000 ms.
	want := []time.Duration{200, 600, 1400, 3000}
	if len(at) != len(want) {
		t.Fatalf("retransmissions at %v, want about %v ms", at, want)
	}
	for i := range want {
		if d := at[i] - want[i]*time.Millisecond; d < 0 || d > time.Duration(i+1)*time.Millisecond {
			t.Fatalf("retransmissions at %v, want about %v ms", at, want)
		}
	}
	st := c.s.Stats()
	if st.TCPExt.TCPTimeouts.Load() != 4 || st.TCP.RetransSegs.Load() != 4 {
		t.Fatalf("TCPTimeouts=%d RetransSegs=%d", st.TCPExt.TCPTimeouts.Load(), st.TCP.RetransSegs.Load())
	}
}

// Keepalive: after TCP_KEEPIDLE of silence, probes (seq = snd_una-1, no
// data) every TCP_KEEPINTVL; after TCP_KEEPCNT unanswered probes the
// connection is reset with ETIMEDOUT.
func TestKeepalive(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, _ := c.establishedPlain()
	setInt(t, ep, unix.SOL_TCP, unix.TCP_KEEPIDLE, 10)
	setInt(t, ep, unix.SOL_TCP, unix.TCP_KEEPINTVL, 2)
	setInt(t, ep, unix.SOL_TCP, unix.TCP_KEEPCNT, 3)
	setInt(t, ep, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	c.clk.Advance(9 * time.Second)
	c.expectNone()
	c.clk.Advance(1 * time.Second)
	p := c.next()
	if p.seq() != uint32(ep.iss) || len(p.payload) != 0 || p.flags() != header.TCPFlagAck {
		t.Fatalf("probe %v seq=%d len=%d, want seq %d", p.flags(), p.seq(), len(p.payload), ep.iss)
	}
	for i := 0; i < 2; i++ {
		c.clk.Advance(2 * time.Second)
		c.next()
	}
	c.clk.Advance(2 * time.Second)
	if r := c.next(); r.flags() != header.TCPFlagRst|header.TCPFlagAck {
		t.Fatalf("after probes: %v", r.flags())
	}
	buf := make([]byte, 1)
	if _, err := ep.Read(buf, stack.ReadOptions{}); err != unix.ETIMEDOUT {
		t.Fatalf("read = %v, want ETIMEDOUT", err)
	}
}

// Zero window: the sender stops, probes with backoff, and resumes when
// the window opens.
func TestZeroWindowProbe(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	iss := uint32(ep.iss)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: iss + 1, Flags: header.TCPFlagAck, Window: 0}, nil, nil)
	_, _ = ep.Write([]byte("abc"), stack.WriteOptions{})
	c.expectNone()
	c.clk.Advance(199 * time.Millisecond)
	c.expectNone()
	c.clk.Advance(2 * time.Millisecond)
	p := c.next()
	if p.seq() != iss || len(p.payload) != 0 {
		t.Fatalf("probe seq=%d len=%d", p.seq(), len(p.payload))
	}
	c.clk.Advance(400 * time.Millisecond)
	c.next()
	if c.s.Stats().TCPExt.TCPWinProbe.Load() != 2 {
		t.Fatal("TCPWinProbe not counted")
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: iss + 1, Flags: header.TCPFlagAck, Window: 1000}, nil, nil)
	d := c.next()
	if string(d.payload) != "abc" {
		t.Fatalf("after window opened: %q", d.payload)
	}
}

// Out-of-order data is held and SACKed; filling the hole delivers all of
// it; a duplicate gets a D-SACK.
func TestOutOfOrderSACKAndDSACK(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, syn := c.connectEstablished(peerSYNOpts(100, 0))
	_ = syn
	port := ep.lport
	iss := uint32(ep.iss)
	hdr := func(seq uint32) header.TCPFields {
		return header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: seq, Ack: iss + 1, Flags: header.TCPFlagAck, Window: 500}
	}
	c.inject(hdr(peerISN+1+5), tsOpts(101, 0), []byte("world"))
	a := c.next()
	if a.ack() != peerISN+1 || a.opts.NumSACKBlocks != 1 || a.opts.SACKBlocks[0] != (header.SACKBlock{Start: peerISN + 6, End: peerISN + 11}) {
		t.Fatalf("OOO ack=%d sack=%+v", a.ack(), a.opts.SACKBlocks[:a.opts.NumSACKBlocks])
	}
	c.inject(hdr(peerISN+1), tsOpts(102, 0), []byte("hello"))
	a = c.next()
	if a.ack() != peerISN+11 || a.opts.NumSACKBlocks != 0 {
		t.Fatalf("after fill ack=%d sack=%d", a.ack(), a.opts.NumSACKBlocks)
	}
	buf := make([]byte, 20)
	r, _ := ep.Read(buf, stack.ReadOptions{})
	if string(buf[:r.N]) != "helloworld" {
		t.Fatalf("read %q", buf[:r.N])
	}
	c.inject(hdr(peerISN+1), tsOpts(103, 0), []byte("hello"))
	a = c.next()
	if a.opts.NumSACKBlocks != 1 || a.opts.SACKBlocks[0] != (header.SACKBlock{Start: peerISN + 1, End: peerISN + 6}) {
		t.Fatalf("D-SACK %+v", a.opts.SACKBlocks[:a.opts.NumSACKBlocks])
	}
}

// Nagle: a second small write waits while the first small segment is
// unacknowledged; TCP_NODELAY sends it at once.
func TestNagleAndNodelay(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	iss := uint32(ep.iss)
	_, _ = ep.Write([]byte("a"), stack.WriteOptions{})
	c.next()
	_, _ = ep.Write([]byte("b"), stack.WriteOptions{})
	c.expectNone()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: iss + 2, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
	if d := c.next(); string(d.payload) != "b" {
		t.Fatalf("after ACK sent %q", d.payload)
	}
	setInt(t, ep, unix.SOL_TCP, unix.TCP_NODELAY, 1)
	_, _ = ep.Write([]byte("c"), stack.WriteOptions{})
	if d := c.next(); string(d.payload) != "c" {
		t.Fatalf("nodelay sent %q", d.payload)
	}
	// TCP_CORK holds sub-MSS data until uncorked.
	setInt(t, ep, unix.SOL_TCP, unix.TCP_CORK, 1)
	_, _ = ep.Write([]byte("d"), stack.WriteOptions{})
	c.expectNone()
	setInt(t, ep, unix.SOL_TCP, unix.TCP_CORK, 0)
	if d := c.next(); string(d.payload) != "d" {
		t.Fatalf("uncork sent %q", d.payload)
	}
}

// Spec 66: connect to self (bound 10.0.0.1:P to 10.0.0.1:P) — not
// reachable on this test link (local traffic needs loopback), so the
// simultaneous open is simulated: our SYN crosses the peer's SYN.
func TestSimultaneousOpen(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep := c.newEP()
	_ = ep.Connect(netip.AddrPortFrom(c.remote, peerPort))
	syn := c.next()
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Seq: peerISN, Flags: header.TCPFlagSyn, Window: 65535}, nil, nil)
	sa := c.next()
	if sa.flags() != header.TCPFlagSyn|header.TCPFlagAck || sa.seq() != syn.seq() || sa.ack() != peerISN+1 {
		t.Fatalf("simultaneous open reply %v seq=%d ack=%d", sa.flags(), sa.seq(), sa.ack())
	}
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: syn.f.SrcPort, Seq: peerISN, Ack: syn.seq() + 1, Flags: header.TCPFlagSyn | header.TCPFlagAck, Window: 65535}, nil, nil)
	if ep.Info().State != uint8(StateEstablished) {
		t.Fatalf("state %d, want ESTABLISHED", ep.Info().State)
	}
	if err := ep.Connect(netip.AddrPortFrom(c.remote, peerPort)); err != nil {
		t.Fatalf("connect = %v", err)
	}
}

// tcp_retries2 = 15: unacknowledged data is retransmitted 15 times with
// backoff capped at 120 s, and the connection fails with ETIMEDOUT after
// about 924.6 s (tcp_model_timeout with TCP_RTO_MIN).
func TestRetries2Timeout(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, _ := c.establishedPlain()
	_, _ = ep.Write([]byte("lost"), stack.WriteOptions{})
	c.next()
	start := c.clk.Now()
	rtx := 0
	for i := 0; i < 2000 && ep.Readiness(waiter.EventErr) == 0; i++ {
		c.clk.Advance(500 * time.Millisecond)
		for {
			s, ok := c.tryNext()
			if !ok {
				break
			}
			if len(s.payload) > 0 {
				rtx++
			}
		}
	}
	el := c.clk.Now().Sub(start)
	if rtx != 15 || el < 924*time.Second || el > 926*time.Second {
		t.Fatalf("%d retransmissions, gave up after %v; want 15 and ~924.6s", rtx, el)
	}
	buf := make([]byte, 1)
	if _, err := ep.Read(buf, stack.ReadOptions{}); err != unix.ETIMEDOUT {
		t.Fatalf("read = %v, want ETIMEDOUT", err)
	}
}

// A lost FIN (with the last data) is retransmitted by the RTO, and the
// data and FIN are acknowledged together.
func TestFinRetransmitted(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	_, _ = ep.Write([]byte("tail"), stack.WriteOptions{})
	d := c.next()
	ep.Close()
	fin := c.next()
	if !fin.flags().Contains(header.TCPFlagFin) || fin.seq() != d.seq()+4 {
		t.Fatalf("FIN %v seq=%d", fin.flags(), fin.seq())
	}
	c.clk.Advance(250 * time.Millisecond)
	r := c.next()
	if string(r.payload) != "tail" {
		t.Fatalf("RTO resent %v %q", r.flags(), r.payload)
	}
	// Everything but the FIN is acknowledged: the FIN alone is resent.
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: d.seq() + 4, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
	for i := 0; i < 100; i++ {
		c.clk.Advance(10 * time.Millisecond)
		if s, ok := c.tryNext(); ok {
			if !s.flags().Contains(header.TCPFlagFin) || s.seq() != d.seq()+4 || len(s.payload) != 0 {
				t.Fatalf("resent %v seq=%d len=%d, want the FIN alone", s.flags(), s.seq(), len(s.payload))
			}
			c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: d.seq() + 5, Flags: header.TCPFlagAck, Window: 65535}, nil, nil)
			if ep.Info().State != uint8(StateFinWait2) {
				t.Fatalf("state %d, want FIN_WAIT2", ep.Info().State)
			}
			return
		}
	}
	t.Fatal("FIN never retransmitted")
}
