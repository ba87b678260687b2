package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/tcp/seqnum"
)

// A read that frees buffer space sends a window update only when the
// window transmit would offer (__tcp_select_window: capped by
// rcv_ssthresh) at least doubles (__tcp_cleanup_rbuf). Here SO_RCVBUF
// grows the buffer after the handshake, so the free space is far more
// than twice the offered window while rcv_ssthresh keeps the window where
// it was: reading must not send an ACK that repeats the previous one (the
// sender would count it as a duplicate ACK).
func TestReadDoesNotRepeatWindow(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, syn := c.connectEstablished(peerSYNOpts(100, 0))
	port := syn.f.SrcPort
	setInt(t, ep, unix.SOL_SOCKET, unix.SO_RCVBUF, 212992)
	c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: syn.f.Seq + 1,
		Flags: header.TCPFlagAck | header.TCPFlagPsh, Window: 500}, tsOpts(101, 0), make([]byte, 1000))
	a := c.next() // quick ACK of the first data
	if a.ack() != peerISN+1001 || len(a.payload) != 0 {
		t.Fatalf("ack of data: ack=%d len=%d", a.ack(), len(a.payload))
	}
	c.expectNone()
	ep.mu.Lock()
	free := ep.rcvBuf.capacity() - ep.rcvBuf.n
	ep.mu.Unlock()
	if offered := int(a.f.Window) << 7; free < 2*offered {
		t.Fatalf("setup: free space %d is not twice the offered window %d", free, offered)
	}
	buf := make([]byte, 2000)
	if r, err := ep.Read(buf, stack.ReadOptions{}); err != nil || r.N != 1000 {
		t.Fatalf("read = %d, %v", r.N, err)
	}
	if s, ok := c.tryNext(); ok {
		t.Fatalf("read sent a window update %v ack=%d win=%d that repeats the previous ACK (ack=%d win=%d)",
			s.flags(), s.ack(), s.f.Window, a.ack(), a.f.Window)
	}
}

// The counterpart: when the application drains a nearly full buffer the
// window at least doubles and the update goes out at once, with a larger
// window than the last ACK.
func TestReadSendsWindowUpdate(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, syn := c.connectEstablished(peerSYNOpts(100, 0))
	port := syn.f.SrcPort
	ep.mu.Lock()
	mss := ep.advmss
	ep.mu.Unlock()
	seq := uint32(peerISN + 1)
	var last seg
	for i := 0; i < 40; i++ {
		c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: seq, Ack: syn.f.Seq + 1,
			Flags: header.TCPFlagAck, Window: 500}, tsOpts(101, 0), make([]byte, mss))
		seq += uint32(mss)
		for {
			s, ok := c.tryNext()
			if !ok {
				break
			}
			last = s
		}
	}
	if last.ack() != seq {
		t.Fatalf("last ack %d, want %d (all data acknowledged)", last.ack(), seq)
	}
	buf := make([]byte, 1<<16)
	total := 0
	for total < 40*mss {
		r, err := ep.Read(buf, stack.ReadOptions{})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		total += r.N
	}
	u := c.next()
	if u.flags() != header.TCPFlagAck || u.ack() != seq || u.f.Window < 2*last.f.Window {
		t.Fatalf("window update %v ack=%d win=%d, want ack=%d win >= 2*%d", u.flags(), u.ack(), u.f.Window, seq, last.f.Window)
	}
	c.expectNone()
}

// Sender side (RFC 5681 §2, tcp_ack's FLAG_NOT_DUP): without SACK, an ACK
// at snd_una that opens the window is a window update, not a duplicate
// ACK; three of them make no fast retransmit, three true duplicates do.
func TestWindowUpdatesAreNotDuplicateAcks(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, port := c.establishedPlain()
	iss := uint32(ep.iss)
	if _, err := ep.Write(make([]byte, 5*536), stack.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.drain()
	st := c.s.Stats()
	for i := 0; i < 3; i++ {
		c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: iss + 1,
			Flags: header.TCPFlagAck, Window: uint16(20000 + 1000*i)}, nil, nil)
	}
	if fr := st.TCPExt.TCPFastRetrans.Load(); fr != 0 {
		t.Fatalf("window updates triggered %d fast retransmissions", fr)
	}
	if rs := st.TCP.RetransSegs.Load(); rs != 0 {
		t.Fatalf("window updates triggered %d retransmissions", rs)
	}
	for i := 0; i < 3; i++ {
		c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: iss + 1,
			Flags: header.TCPFlagAck, Window: 22000}, nil, nil)
	}
	if fr := st.TCPExt.TCPFastRetrans.Load(); fr != 1 {
		t.Fatalf("three duplicate ACKs made %d fast retransmissions, want 1", fr)
	}
	var rtx seg
	for {
		s, ok := c.tryNext()
		if !ok {
			break
		}
		rtx = s
		if s.seq() == iss+1 && len(s.payload) > 0 {
			break
		}
	}
	if rtx.seq() != iss+1 || len(rtx.payload) == 0 {
		t.Fatalf("no retransmission of the first segment (last seq=%d len=%d)", rtx.seq(), len(rtx.payload))
	}
}

// Reassembly places every byte at its offset (the kernel-peer report of a
// bulk transfer with the right length and the wrong SHA-256): the peer
// sends a stream in random pieces, out of order, with duplicates and
// overlaps, always inside the offered window, while the application reads
// in random amounts. The receive ring wraps many times, grows from its
// first small storage while out-of-order data is held, and the SACK'd
// ranges merge and fill; the bytes read must be the stream.
func TestReceiveReassemblyRandomOrder(t *testing.T) {
	c := newCtx(t, DefaultConfig())
	ep, syn := c.connectEstablished(peerSYNOpts(100, 0))
	port := syn.f.SrcPort
	rng := rand.New(rand.NewPCG(7, 11))
	stream := make([]byte, 1<<20)
	for i := range stream {
		stream[i] = byte(rng.Uint32())
	}
	buf := make([]byte, 40000)
	read := 0
	for step := 0; step < 20000 && read < len(stream); step++ {
		ep.mu.Lock()
		nxt := int(ep.rcvNxt - seqnum.Value(peerISN+1))
		wnd := int(ep.receiveWindow())
		ep.mu.Unlock()
		if wnd > 0 && nxt < len(stream) {
			// A piece starting up to 2 KB before rcv_nxt (partly old) and
			// anywhere in the window, at most one MSS long.
			start := max(nxt-2000+rng.IntN(wnd+2000), 0)
			end := min(start+1+rng.IntN(1448), nxt+wnd, len(stream))
			if start < end {
				c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: uint32(peerISN + 1 + start),
					Ack: syn.f.Seq + 1, Flags: header.TCPFlagAck, Window: 500}, tsOpts(uint32(101+step), 0), stream[start:end])
			}
		}
		c.drain()
		if step%8 == 0 {
			// Time passes, so that receive-buffer autotuning grows the
			// buffer while out-of-order data is held.
			c.clk.Advance(time.Millisecond)
		}
		if rng.IntN(4) == 0 || wnd == 0 {
			r, err := ep.Read(buf[:1+rng.IntN(len(buf)-1)], stack.ReadOptions{})
			if err != nil && err != unix.EAGAIN {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(buf[:r.N], stream[read:read+r.N]) {
				t.Fatalf("bytes %d..%d differ from the stream", read, read+r.N)
			}
			read += r.N
		}
	}
	ep.mu.Lock()
	t.Logf("read %d bytes, %d out-of-order segments, receive buffer %d (storage %d)", read,
		c.s.Stats().TCPExt.TCPOFOQueue.Load(), ep.rcvBuf.capacity(), len(ep.rcvBuf.buf))
	ep.mu.Unlock()
	if read < len(stream)/2 {
		t.Fatalf("only %d of %d bytes read in the step budget", read, len(stream))
	}
	if ofo := c.s.Stats().TCPExt.TCPOFOQueue.Load(); ofo == 0 {
		t.Fatal("no out-of-order segment was queued: the test did not exercise reassembly")
	}
}
