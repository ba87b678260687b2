package dgram

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
)

// TestReadControlStampAndError: a datagram queued while SO_TIMESTAMP is on
// carries the clock's time of its arrival; one queued before is stamped
// when read (__sock_recv_timestamp). keepErr moves datagrams past a
// pending error without clearing it; without it the error comes first.
func TestReadControlStampAndError(t *testing.T) {
	s := newSocket()
	fc := clock.NewFake()
	s.Clock = fc
	from := netip.MustParseAddrPort("10.213.0.1:9")
	ip := stack.IPInfo{Src: from.Addr(), Dst: netip.MustParseAddr("10.213.0.2"), NIC: 2, TTL: 9, TOS: 0x10}
	s.EnqueueInfo(buffer.FromBytes([]byte("early")), from, InfoFromIP(ip, s.Recv, netip.Addr{}))
	if _, err := s.SetSocketOpt(unix.SO_TIMESTAMPNS, []byte{1, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	arrival := fc.Now()
	s.EnqueueInfo(buffer.FromBytes([]byte("late")), from, InfoFromIP(ip, s.Recv, netip.Addr{}))
	fc.Advance(3 * time.Second)
	s.SoftErr = unix.ECONNREFUSED

	p := make([]byte, 8)
	res, ctl, dq, err := s.ReadControl(p, false, true)
	if err != nil || !dq || string(p[:res.N]) != "early" || !ctl.Info.Stamp.Equal(fc.Now()) {
		t.Fatalf("first read: %q stamp %v err %v; want \"early\" stamped at read time %v", p[:res.N], ctl.Info.Stamp, err, fc.Now())
	}
	if ctl.Info.TTL != 9 || ctl.Info.TOS != 0x10 || ctl.Info.IfIndex != 0 || ctl.Info.Dst != ip.Dst {
		t.Fatalf("first read info %+v: want TTL 9, TOS 0x10, no packet info (IP_PKTINFO was off)", ctl.Info)
	}
	if s.SoftErr != unix.ECONNREFUSED {
		t.Fatalf("keepErr cleared the pending error")
	}
	if _, _, _, err := s.ReadControl(p, false, false); err != unix.ECONNREFUSED {
		t.Fatalf("read with the error pending = %v, want ECONNREFUSED", err)
	}
	res, ctl, _, err = s.ReadControl(p, false, false)
	if err != nil || string(p[:res.N]) != "late" || !ctl.Info.Stamp.Equal(arrival) {
		t.Fatalf("second read: %q stamp %v err %v; want \"late\" stamped at arrival %v", p[:res.N], ctl.Info.Stamp, err, arrival)
	}
	if ctl.Flags&(RecvTimestamp|RecvTimestampNS) != RecvTimestamp|RecvTimestampNS {
		t.Fatalf("flags %#x: SO_TIMESTAMPNS sets both timestamp flags", ctl.Flags)
	}
}

// TestControlEncodeTruncation follows put_cmsg for a buffer that ends in
// the middle of the second message: the first is whole, the second is cut
// (cmsg_len is the space left), MSG_CTRUNC is set, the padding of the
// first (IP_TOS has one data byte) is left as it was, and nothing is
// written past the buffer.
func TestControlEncodeTruncation(t *testing.T) {
	c := Control{Flags: RecvIPTOS | RecvIPTTL, Info: RecvInfo{TTL: 63, TOS: 0xb8}}
	// IP_TTL (int) first: 20 bytes used, 24 advanced; IP_TOS then gets
	// 30-24 = 6 bytes: less than a header, so nothing.
	buf := bytes.Repeat([]byte{0xee}, 30)
	n, ctrunc := c.Encode(buf, time.Time{})
	if n != 24 || !ctrunc {
		t.Fatalf("Encode in 30 bytes = %d, ctrunc %v; want 24, true", n, ctrunc)
	}
	want := make([]byte, 0, 30)
	want = binary.NativeEndian.AppendUint64(want, 20)
	want = binary.NativeEndian.AppendUint32(want, unix.SOL_IP)
	want = binary.NativeEndian.AppendUint32(want, unix.IP_TTL)
	want = binary.NativeEndian.AppendUint32(want, 63)
	want = append(want, bytes.Repeat([]byte{0xee}, 10)...)
	if !bytes.Equal(buf, want) {
		t.Fatalf("buffer %x, want %x", buf, want)
	}
	// 24+16+1 = 41 fits both; the TOS message is 17 bytes long, its
	// padding untouched.
	buf = bytes.Repeat([]byte{0xee}, 48)
	if n, ctrunc := c.Encode(buf, time.Time{}); n != 48 || ctrunc {
		t.Fatalf("Encode in 48 bytes = %d, ctrunc %v; want 48, false", n, ctrunc)
	}
	if l := binary.NativeEndian.Uint64(buf[24:]); l != 17 || buf[40] != 0xb8 || buf[41] != 0xee {
		t.Fatalf("IP_TOS message %x: want cmsg_len 17, data b8, padding untouched", buf[24:])
	}
	// A NULL msg_control: MSG_CTRUNC, nothing written.
	if n, ctrunc := c.Encode(nil, time.Time{}); n != 0 || !ctrunc {
		t.Fatalf("Encode(nil) = %d, %v; want 0, true", n, ctrunc)
	}
}
