package tcp

import (
	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/tcp/seqnum"
	"github.com/netprov/netprov/stack/waiter"
)

// Urgent data as Linux handles it (tcp_check_urg, tcp_urg, tcp_recv_urg):
// the byte the urgent pointer names (seq + urg_ptr - 1, BSD semantics) is
// taken out of the stream unless SO_OOBINLINE is set, a normal read stops
// at the mark, and recv(MSG_OOB) returns that one byte.

// urgState is tp->urg_data's state bits.
type urgState uint8

const (
	urgNone   urgState = iota
	urgNotYet          // pointer seen, byte not received yet
	urgValid           // byte received, not read
	urgRead            // byte read with MSG_OOB
)

func (e *endpoint) oobInline() bool { return e.misc[miscIndex(unix.SO_OOBINLINE)] != 0 }

// checkUrgent records the urgent pointer of a segment (tcp_check_urg) and
// captures the urgent byte once it is in the receive buffer (tcp_urg).
func (e *endpoint) checkUrgent(s *segment) {
	if s.has(header.TCPFlagUrg) && s.urgent != 0 {
		ptr := s.seq.Add(seqnum.Size(s.urgent) - 1)
		if !ptr.LessThan(e.copiedSeq) && !(e.urg != urgNone && ptr == e.urgSeq) {
			e.urgSeq = ptr
			e.urg = urgNotYet
			e.notify(waiter.EventPri)
		}
	}
	if e.urg == urgNotYet && e.urgSeq.LessThan(e.rcvNxt) && !e.urgSeq.LessThan(e.copiedSeq) {
		var b [1]byte
		e.rcvBuf.read(int(e.copiedSeq.Size(e.urgSeq)), b[:])
		e.urgByte = b[0]
		e.urg = urgValid
		e.notify(waiter.EventPri | waiter.EventIn)
	}
}

// readLimit applies the urgent mark to a normal read of up to n bytes: it
// skips the urgent byte when it is next (returning how many bytes were
// skipped) and otherwise stops the read before the mark.
func (e *endpoint) urgentReadLimit(n int) (limit, skip int) {
	if e.urg == urgNone || e.oobInline() || e.urgSeq.LessThan(e.copiedSeq) {
		return n, 0
	}
	off := int(e.copiedSeq.Size(e.urgSeq))
	if off == 0 && e.urg != urgNotYet {
		return n, 1
	}
	if off < n {
		return off, 0
	}
	return n, 0
}

// readUrgent is tcp_recv_urg: recv(MSG_OOB).
func (e *endpoint) readUrgent(p []byte, peek bool) (stack.ReadResult, error) {
	if e.oobInline() || e.urg == urgNone || e.urg == urgRead {
		return stack.ReadResult{}, unix.EINVAL
	}
	if e.state == StateClose && !e.done {
		return stack.ReadResult{}, unix.ENOTCONN
	}
	if e.urg == urgValid {
		if len(p) == 0 {
			return stack.ReadResult{Truncated: true}, nil
		}
		p[0] = e.urgByte
		if !peek {
			e.urg = urgRead
		}
		return stack.ReadResult{N: 1, Total: 1}, nil
	}
	if e.state == StateClose || e.shutdown&rcvShutdown != 0 {
		return stack.ReadResult{}, nil
	}
	return stack.ReadResult{}, unix.EAGAIN
}

// urgentFields sets URG and the urgent pointer of an outgoing segment in
// urgent mode (tcp_transmit_skb).
func (e *endpoint) urgentFields(seq seqnum.Value, f *header.TCPFields) {
	if !e.sndUna.LessThan(e.sndUp) || !seq.LessThan(e.sndUp) {
		return
	}
	if e.sndUp.LessThan(seq.Add(0x10000)) {
		f.Urgent = uint16(seq.Size(e.sndUp))
		f.Flags |= header.TCPFlagUrg
	} else if e.sndNxt.LessThan(seq.Add(0xffff)) {
		f.Urgent = 0xffff
		f.Flags |= header.TCPFlagUrg
	}
}
