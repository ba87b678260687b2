package dgram

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/socket/sockopt"
	"github.com/netprov/netprov/stack/waiter"
)

func newSocket() *Socket {
	cfg := DefaultConfig()
	var s Socket
	s.Init(&cfg)
	return &s
}

// TestSocketReadPeekTruncate checks recvmsg's order: pending error first,
// then the oldest datagram (peek keeps it, a short buffer truncates), then
// EAGAIN, or 0 bytes once shut down for reading.
func TestSocketReadPeekTruncate(t *testing.T) {
	s := newSocket()
	from := netip.MustParseAddrPort("10.213.0.1:9")
	if !s.Enqueue(buffer.FromBytes([]byte("hello")), from) {
		t.Fatal("first datagram refused")
	}
	s.SoftErr = unix.ECONNREFUSED
	if _, _, err := s.Read(nil, false); err != unix.ECONNREFUSED {
		t.Fatalf("pending error: got %v", err)
	}
	p := make([]byte, 3)
	res, dq, err := s.Read(p, true)
	if err != nil || dq || res.N != 3 || res.Total != 5 || !res.Truncated || res.From != from {
		t.Fatalf("peek: %+v dequeued=%v err=%v", res, dq, err)
	}
	if got := s.InQueue(); got != 5 {
		t.Errorf("InQueue after peek = %d, want 5", got)
	}
	if _, dq, err = s.Read(p, false); err != nil || !dq {
		t.Fatalf("read: dequeued=%v err=%v", dq, err)
	}
	if _, _, err = s.Read(p, false); err != unix.EAGAIN {
		t.Fatalf("empty: got %v, want EAGAIN", err)
	}
	if err := s.SetShutdown(unix.SHUT_RD); err != nil {
		t.Fatal(err)
	}
	if res, _, err = s.Read(p, false); err != nil || res.N != 0 {
		t.Fatalf("after SHUT_RD: %+v %v", res, err)
	}
	if m := s.Readiness(waiter.EventIn | waiter.EventOut); m != waiter.EventIn|waiter.EventOut {
		t.Errorf("readiness after SHUT_RD = %v", m)
	}
	if err := s.SetShutdown(7); err != unix.EINVAL {
		t.Errorf("SetShutdown(7) = %v, want EINVAL", err)
	}
}

// TestSocketReceiveBuffer checks that a datagram is refused only once the
// queue's charge exceeds SO_RCVBUF (one always fits).
func TestSocketReceiveBuffer(t *testing.T) {
	s := newSocket()
	s.Rcvbuf = sockopt.RcvBuf(0, s.cfg.RmemMax)
	n := 0
	for ; n < 1000; n++ {
		pkt := buffer.FromBytes(make([]byte, 1000))
		if !s.Enqueue(pkt, netip.AddrPort{}) {
			pkt.Release()
			break
		}
	}
	if n == 0 || n == 1000 {
		t.Fatalf("queued %d datagrams into a %d-byte buffer", n, s.Rcvbuf)
	}
	if s.Queue.Bytes()-Truesize(1000) > s.Rcvbuf {
		t.Errorf("charge %d overshoots rcvbuf %d by more than one datagram", s.Queue.Bytes(), s.Rcvbuf)
	}
	s.Queue.Clear()
}

// TestSocketRecordError checks which ICMP errors are kept.
func TestSocketRecordError(t *testing.T) {
	soft := stack.ICMPError{Type: 11}
	hard := stack.ICMPError{Type: 3, Code: 3}
	s := newSocket()
	if s.RecordError(hard, true, false) || s.RecordError(soft, true, true) {
		t.Fatal("unconnected socket or soft error kept without IP_RECVERR")
	}
	if !s.RecordError(hard, true, true) || s.SoftErr != unix.ECONNREFUSED {
		t.Fatalf("hard error on connected socket: kept err=%v", s.SoftErr)
	}
	s.RecvErr = true
	if !s.RecordError(soft, true, false) || s.TakeError() != unix.EHOSTUNREACH || s.SoftErr != 0 {
		t.Fatal("IP_RECVERR socket did not keep the soft error once")
	}
}

// TestSocketHopLimitOptions checks the shared TTL options: 0 as a hop
// limit means the default, as -1 does; IP_TTL refuses 0.
func TestSocketHopLimitOptions(t *testing.T) {
	s := newSocket()
	buf := make([]byte, 4)
	if ok, err := s.SetIPv6Opt(unix.IPV6_UNICAST_HOPS, []byte{0, 0, 0, 0}); !ok || err != nil {
		t.Fatalf("IPV6_UNICAST_HOPS 0: %v %v", ok, err)
	}
	if n, ok := s.GetIPv6Opt(unix.IPV6_UNICAST_HOPS, buf); !ok || n != 4 || buf[0] != byte(s.cfg.DefaultTTL) || s.TTL != -1 {
		t.Errorf("hop limit after 0 = %v (TTL %d)", buf, s.TTL)
	}
	if ok, err := s.SetIPOpt(unix.IP_TTL, []byte{0, 0, 0, 0}); !ok || err != unix.EINVAL {
		t.Errorf("IP_TTL 0: %v %v, want EINVAL", ok, err)
	}
	if ok, _ := s.SetIPOpt(unix.IP_MULTICAST_TTL, []byte{1, 0, 0, 0}); ok {
		t.Error("IP_MULTICAST_TTL handled by the shared options")
	}
	if n, ok := s.GetSocketOpt(unix.SO_PROTOCOL, buf, unix.AF_INET, unix.IPPROTO_UDP); !ok || n != 4 || buf[0] != unix.IPPROTO_UDP {
		t.Errorf("SO_PROTOCOL = %v", buf)
	}
}
