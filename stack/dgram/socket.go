package dgram

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/socket/sockopt"
	"github.com/netprov/netprov/stack/waiter"
)

// Shutdown bits (RCV_SHUTDOWN, SEND_SHUTDOWN).
const (
	RcvShutdown  = 1
	SendShutdown = 2
)

// Linux TCP state numbers that datagram sockets report (/proc/net/udp).
const (
	StateEstablished = 1
	StateClose       = 7
)

// Socket is the state every datagram endpoint keeps (the parts of
// Linux's struct sock that udp.c and ping.c use alike). The endpoint
// embeds it by value and guards it with its own mutex: every method
// expects the caller to hold that lock.
type Socket struct {
	cfg *Config
	// Closed is set by Close; a closed socket queues nothing.
	Closed bool
	// Shutdown holds RcvShutdown and SendShutdown.
	Shutdown uint8
	// SoftErr is sk_err: reported once by the next call, then cleared.
	SoftErr unix.Errno
	// Queue holds the received datagrams, charged against Rcvbuf.
	Queue          Queue
	Rcvbuf, Sndbuf int
	Broadcast      bool // SO_BROADCAST
	RecvErr        bool // IP_RECVERR / IPV6_RECVERR
	// TTL and TOS are IP_TTL (IPV6_UNICAST_HOPS) and IP_TOS
	// (IPV6_TCLASS); -1 means the route's default.
	TTL, TOS int
	Generic  sockopt.Generic
	// Recv holds the receive-ancillary-data options (which control
	// messages recvmsg writes).
	Recv RecvFlags
	// Clock stamps received datagrams (SO_TIMESTAMP); nil is the wall
	// clock. The endpoint sets the stack's.
	Clock clock.Clock
}

// Init sets a new socket's defaults from cfg, which must outlive it.
func (s *Socket) Init(cfg *Config) {
	s.cfg = cfg
	s.Rcvbuf, s.Sndbuf = cfg.RmemDefault, cfg.WmemDefault
	s.TTL, s.TOS = -1, -1
}

// TakeError returns the pending error and clears it (sock_error).
func (s *Socket) TakeError() unix.Errno {
	err := s.SoftErr
	s.SoftErr = 0
	return err
}

// Enqueue queues a received datagram unless the receive buffer is full
// (__udp_enqueue_schedule_skb: at least one datagram always fits). It
// reports whether pkt was queued; if not, the caller still owns it.
func (s *Socket) Enqueue(pkt *buffer.Packet, from netip.AddrPort) bool {
	if s.Queue.Bytes() > s.Rcvbuf {
		return false
	}
	s.Queue.Push(Datagram{Pkt: pkt, From: from, Truesize: Truesize(pkt.Len())})
	return true
}

// EnqueueInfo is Enqueue for a datagram with what the network layer
// reported about it (see InfoFromIP), kept for recvmsg's control
// messages. The receive time is taken now if the socket asks for
// timestamps.
func (s *Socket) EnqueueInfo(pkt *buffer.Packet, from netip.AddrPort, ri RecvInfo) bool {
	if s.Queue.Bytes() > s.Rcvbuf {
		return false
	}
	if s.Recv&RecvTimestamp != 0 {
		ri.Stamp = s.now()
	}
	s.Queue.Push(Datagram{Pkt: pkt, From: from, Truesize: Truesize(pkt.Len()), Info: ri})
	return true
}

func (s *Socket) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}

// RecordError keeps an ICMP error as the pending error (__udp4_lib_err,
// ping_err): connected sockets keep hard errors, sockets with IP_RECVERR
// keep every error. It reports whether the error was kept, so the caller
// wakes EventErr waiters.
func (s *Socket) RecordError(ie stack.ICMPError, v4, connected bool) bool {
	errno, hard := ICMPErrno(ie, v4)
	if !s.RecvErr && (!hard || !connected) {
		return false
	}
	s.SoftErr = errno
	return true
}

// Read is the common part of recvmsg (skb_recv_datagram): a pending
// error is reported first; a socket shut down for reading returns 0
// bytes when its queue is empty. It copies the oldest datagram into p and
// dequeues it unless peek; dequeued reports that it did.
func (s *Socket) Read(p []byte, peek bool) (res stack.ReadResult, dequeued bool, err error) {
	if s.SoftErr != 0 {
		return stack.ReadResult{}, false, s.TakeError()
	}
	d := s.Queue.Front()
	if d == nil {
		if s.Shutdown&RcvShutdown != 0 {
			return stack.ReadResult{}, false, nil
		}
		return stack.ReadResult{}, false, unix.EAGAIN
	}
	data := d.Pkt.Data()
	n := copy(p, data)
	res = stack.ReadResult{N: n, Total: len(data), From: d.From, Truncated: n < len(data)}
	if peek {
		return res, false, nil
	}
	dd := s.Queue.Pop()
	dd.Pkt.Release()
	return res, true, nil
}

// ReadControl is Read that also returns the datagram's control data
// (Control.V6Socket is the caller's to set). With keepErr a pending error
// is neither reported nor cleared: the caller moves datagrams on for a
// reader that takes the error elsewhere (SO_ERROR). A datagram without a
// receive timestamp is stamped now, as __sock_recv_timestamp does.
func (s *Socket) ReadControl(p []byte, peek, keepErr bool) (res stack.ReadResult, ctl Control, dequeued bool, err error) {
	if s.SoftErr != 0 && !keepErr {
		return stack.ReadResult{}, Control{}, false, s.TakeError()
	}
	d := s.Queue.Front()
	if d == nil {
		if s.Shutdown&RcvShutdown != 0 {
			return stack.ReadResult{}, Control{}, false, nil
		}
		return stack.ReadResult{}, Control{}, false, unix.EAGAIN
	}
	data := d.Pkt.Data()
	n := copy(p, data)
	res = stack.ReadResult{N: n, Total: len(data), From: d.From, Truncated: n < len(data)}
	ctl = Control{Flags: s.Recv, Info: d.Info}
	if ctl.Info.Stamp.IsZero() {
		ctl.Info.Stamp = s.now()
	}
	if peek {
		return res, ctl, false, nil
	}
	dd := s.Queue.Pop()
	dd.Pkt.Release()
	return res, ctl, true, nil
}

// SetShutdown records shutdown(how) (inet_shutdown sets the flags even
// on an unconnected socket).
func (s *Socket) SetShutdown(how int) error {
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return unix.EINVAL
	}
	s.Shutdown |= uint8(how + 1)
	return nil
}

// Readiness is datagram_poll. Sent datagrams are handed to the link at
// once, so the send buffer always has room.
func (s *Socket) Readiness(mask waiter.EventMask) waiter.EventMask {
	m := waiter.EventOut
	if s.SoftErr != 0 {
		m |= waiter.EventErr
	}
	if s.Shutdown&RcvShutdown != 0 {
		m |= waiter.EventRdHUp | waiter.EventIn
	}
	if s.Shutdown == RcvShutdown|SendShutdown {
		m |= waiter.EventHUp
	}
	if s.Queue.Len() > 0 {
		m |= waiter.EventIn
	}
	return m & (mask | waiter.EventErr | waiter.EventHUp)
}

// InQueue is SIOCINQ/FIONREAD: the payload length of the first queued
// datagram.
func (s *Socket) InQueue() int {
	if d := s.Queue.Front(); d != nil {
		return d.Pkt.Len()
	}
	return 0
}

// Info is the listing entry of a socket of the given protocol.
func (s *Socket) Info(protocol uint8, local, remote netip.AddrPort, connected bool) stack.EndpointInfo {
	info := stack.EndpointInfo{Protocol: protocol, State: StateClose, Local: local, RecvQ: s.Queue.Bytes()}
	if connected {
		info.State = StateEstablished
		info.Remote = remote
	}
	return info
}

// IsBroadcast reports whether a is the limited broadcast address or the
// directed broadcast address of one of st's devices.
func IsBroadcast(st *stack.Stack, a netip.Addr) bool {
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	for _, n := range st.NICs() {
		if n.IsBroadcast(a) {
			return true
		}
	}
	return false
}
