package dgram

import (
	"encoding/binary"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/socket/sockopt"
)

// RecvFlags are the receive-ancillary-data options of a socket: which
// control messages recvmsg(2) writes. Linux keeps them in three places
// (inet->cmsg_flags for SOL_IP, np->rxopt for SOL_IPV6, the SOCK_RCVTSTAMP
// sock flags for SOL_SOCKET); the bits here mirror each.
type RecvFlags uint16

// Receive-ancillary-data flags.
const (
	RecvIPPktInfo    RecvFlags = 1 << iota // IP_PKTINFO
	RecvIPTTL                              // IP_RECVTTL
	RecvIPTOS                              // IP_RECVTOS
	RecvIPOpts                             // IP_RECVOPTS (no options are ever received: no message)
	RecvIPRetOpts                          // IP_RETOPTS (likewise)
	RecvIPv6PktInfo                        // IPV6_RECVPKTINFO
	RecvIPv6HopLimit                       // IPV6_RECVHOPLIMIT
	RecvIPv6TClass                         // IPV6_RECVTCLASS
	RecvTimestamp                          // SOCK_RCVTSTAMP: SO_TIMESTAMP or SO_TIMESTAMPNS
	RecvTimestampNS                        // SOCK_RCVTSTAMPNS: SO_TIMESTAMPNS
	RecvTimestampNew                       // SOCK_TSTAMP_NEW: the _NEW (y2038) variants
)

// recvPktInfo are the flags that make ipv4_pktinfo_prepare record the
// interface and the reply address when a datagram is queued.
const recvPktInfo = RecvIPPktInfo | RecvIPv6PktInfo

// ipRecvFlag maps a SOL_IP option to its flag.
func ipRecvFlag(name int) RecvFlags {
	switch name {
	case unix.IP_PKTINFO:
		return RecvIPPktInfo
	case unix.IP_RECVTTL:
		return RecvIPTTL
	case unix.IP_RECVTOS:
		return RecvIPTOS
	case unix.IP_RECVOPTS:
		return RecvIPOpts
	case unix.IP_RETOPTS:
		return RecvIPRetOpts
	}
	return 0
}

// ipv6RecvFlag maps a SOL_IPV6 option to its flag.
func ipv6RecvFlag(name int) RecvFlags {
	switch name {
	case unix.IPV6_RECVPKTINFO:
		return RecvIPv6PktInfo
	case unix.IPV6_RECVHOPLIMIT:
		return RecvIPv6HopLimit
	case unix.IPV6_RECVTCLASS:
		return RecvIPv6TClass
	}
	return 0
}

// Timestamp options of SOL_SOCKET (the _OLD names are the plain ones on
// x86-64).
const (
	soTimestampOld   = unix.SO_TIMESTAMP   // 29, SCM_TIMESTAMP
	soTimestampNSOld = unix.SO_TIMESTAMPNS // 35, SCM_TIMESTAMPNS
	soTimestampNew   = unix.SO_TIMESTAMP_NEW
	soTimestampNSNew = unix.SO_TIMESTAMPNS_NEW
)

// setTimestamp is sock_set_timestamp (__sock_set_timestamps).
func (s *Socket) setTimestamp(name int, val []byte) error {
	v, err := sockopt.Int(val)
	if err != nil {
		return err
	}
	if v == 0 {
		s.Recv &^= RecvTimestamp | RecvTimestampNS
		return nil
	}
	s.Recv |= RecvTimestamp
	s.Recv &^= RecvTimestampNS | RecvTimestampNew
	if name == soTimestampNSOld || name == soTimestampNSNew {
		s.Recv |= RecvTimestampNS
	}
	if name == soTimestampNew || name == soTimestampNSNew {
		s.Recv |= RecvTimestampNew
	}
	return nil
}

// getTimestamp is sk_getsockopt for the timestamp options.
func (s *Socket) getTimestamp(name int) bool {
	on, ns, isNew := s.Recv&RecvTimestamp != 0, s.Recv&RecvTimestampNS != 0, s.Recv&RecvTimestampNew != 0
	switch name {
	case soTimestampOld:
		return on && !isNew && !ns
	case soTimestampNew:
		return on && isNew
	case soTimestampNSOld:
		return ns && !isNew
	default: // soTimestampNSNew
		return ns && isNew
	}
}

// RecvInfo is what a datagram carries besides its payload for the
// control messages: the IP header fields and the receive path.
type RecvInfo struct {
	// V6 is set for an IPv6 packet (an IPv4 one on an AF_INET6 socket is
	// reported v4-mapped).
	V6 bool
	// TTL and TOS are the TTL (hop limit) and TOS (traffic class) bytes.
	TTL, TOS uint8
	// Dst is the packet's destination address.
	Dst netip.Addr
	// IfIndex and SpecDst are the in_pktinfo fields ipv4_pktinfo_prepare
	// records (ipi_ifindex, ipi_spec_dst) when the socket asked for
	// packet info as the datagram was queued; zero otherwise. IPv6
	// packets always carry their interface.
	IfIndex int
	SpecDst netip.Addr
	// Stamp is the receive time (skb->tstamp): set when the datagram is
	// queued while the socket asks for timestamps, else zero and taken
	// when it is read (__sock_recv_timestamp stamps late the same way).
	Stamp time.Time
}

// PingInfoFromIP is InfoFromIP for echo sockets: ping_queue_rcv_skb does
// not prepare packet info, so IP_PKTINFO reports the incoming interface
// left in the control block and no reply address.
func PingInfoFromIP(ip stack.IPInfo) RecvInfo {
	return RecvInfo{V6: !ip.Dst.Unmap().Is4(), TTL: ip.TTL, TOS: ip.TOS, Dst: ip.Dst.WithZone(""), IfIndex: ip.NIC}
}

// InfoFromIP builds the RecvInfo of a datagram from what the network layer
// reported. The pktinfo fields are filled only when flags ask for them,
// as ipv4_pktinfo_prepare does; specDst is ipi_spec_dst for a multicast
// or broadcast datagram (the address a reply would come from), ignored
// for unicast (fib_compute_spec_dst returns the destination itself).
func InfoFromIP(ip stack.IPInfo, flags RecvFlags, specDst netip.Addr) RecvInfo {
	ri := RecvInfo{V6: !ip.Dst.Unmap().Is4(), TTL: ip.TTL, TOS: ip.TOS, Dst: ip.Dst.WithZone("")}
	if ri.V6 || flags&recvPktInfo != 0 {
		ri.IfIndex = ip.NIC
	}
	if !ri.V6 && flags&recvPktInfo != 0 {
		ri.SpecDst = ip.Dst.Unmap()
		if ip.Multicast {
			ri.SpecDst = specDst
		}
	}
	return ri
}

// Control is the ancillary data of one received datagram as recvmsg
// reports it: the socket's flags at the time of the call and what the
// datagram carried.
type Control struct {
	Flags RecvFlags
	// V6Socket is set for an AF_INET6 socket.
	V6Socket bool
	Info     RecvInfo
}

// Empty reports whether recvmsg would write no control message.
func (c *Control) Empty() bool {
	return c.Flags&(RecvTimestamp|RecvIPPktInfo|RecvIPTTL|RecvIPTOS|RecvIPv6PktInfo|RecvIPv6HopLimit|RecvIPv6TClass) == 0
}

// Control message header size and alignment on x86-64 (struct cmsghdr:
// size_t cmsg_len, int cmsg_level, int cmsg_type).
const (
	cmsgHdrLen = 16
	cmsgAlign  = 8
)

func cmsgSpace(n int) int { return cmsgHdrLen + (n+cmsgAlign-1)&^(cmsgAlign-1) }

// cmsgWriter is put_cmsg on a control buffer: buf is the target's buffer
// (len(buf) is msg_controllen; nil for a NULL msg_control), used how much
// of it the messages took.
type cmsgWriter struct {
	buf    []byte
	used   int
	ctrunc bool
}

// put is put_cmsg: a message that does not fit is cut to the space left
// (cmsg_len says so) and sets MSG_CTRUNC; with less than a header left
// nothing is written. Padding after the data is not written (Linux leaves
// those bytes of the buffer alone).
func (w *cmsgWriter) put(level, typ int, data []byte) {
	space := len(w.buf) - w.used
	cmlen := cmsgHdrLen + len(data)
	if space < cmsgHdrLen {
		w.ctrunc = true
		return
	}
	if space < cmlen {
		w.ctrunc = true
		cmlen = space
	}
	b := w.buf[w.used:]
	binary.NativeEndian.PutUint64(b[0:], uint64(cmlen))
	binary.NativeEndian.PutUint32(b[8:], uint32(int32(level)))
	binary.NativeEndian.PutUint32(b[12:], uint32(int32(typ)))
	copy(b[cmsgHdrLen:cmlen], data)
	w.used += min(cmsgSpace(len(data)), space)
}

func (w *cmsgWriter) putInt(level, typ, v int) {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(int32(v)))
	w.put(level, typ, b[:])
}

// Encode writes the control messages recvmsg returns for c into buf, the
// target's control buffer (len(buf) is msg_controllen, nil when
// msg_control is NULL), which holds the buffer's current bytes: padding
// is left as it was. It returns the new msg_controllen and whether
// MSG_CTRUNC is set. now is the time a datagram without a receive
// timestamp is stamped with.
//
// The order is Linux's: the timestamp (sock_recv_cmsgs /
// sock_recv_timestamp), then for an AF_INET6 socket IPV6_PKTINFO
// (ip6_datagram_recv_common_ctl), then for an IPv4 datagram IP_PKTINFO,
// IP_TTL, IP_TOS (ip_cmsg_recv_offset) and for an IPv6 one IPV6_HOPLIMIT,
// IPV6_TCLASS (ip6_datagram_recv_specific_ctl).
func (c *Control) Encode(buf []byte, now time.Time) (int, bool) {
	w := cmsgWriter{buf: buf}
	f, ri := c.Flags, &c.Info
	if f&RecvTimestamp != 0 {
		t := ri.Stamp
		if t.IsZero() {
			t = now
		}
		var b [16]byte
		binary.NativeEndian.PutUint64(b[0:], uint64(t.Unix()))
		typ := soTimestampOld
		switch {
		case f&RecvTimestampNS != 0:
			binary.NativeEndian.PutUint64(b[8:], uint64(t.Nanosecond()))
			typ = soTimestampNSOld
			if f&RecvTimestampNew != 0 {
				typ = soTimestampNSNew
			}
		default:
			binary.NativeEndian.PutUint64(b[8:], uint64(t.Nanosecond()/1000))
			if f&RecvTimestampNew != 0 {
				typ = soTimestampNew
			}
		}
		w.put(unix.SOL_SOCKET, typ, b[:])
	}
	if c.V6Socket && f&RecvIPv6PktInfo != 0 {
		var b [20]byte
		a := ri.Dst.As16() // v4-mapped for an IPv4 datagram
		copy(b[:16], a[:])
		binary.NativeEndian.PutUint32(b[16:], uint32(int32(ri.IfIndex)))
		w.put(unix.SOL_IPV6, unix.IPV6_PKTINFO, b[:])
	}
	if !ri.V6 {
		if f&RecvIPPktInfo != 0 {
			var b [12]byte
			binary.NativeEndian.PutUint32(b[0:], uint32(int32(ri.IfIndex)))
			if ri.SpecDst.Is4() {
				a := ri.SpecDst.As4()
				copy(b[4:8], a[:])
			}
			a := ri.Dst.Unmap().As4()
			copy(b[8:12], a[:])
			w.put(unix.SOL_IP, unix.IP_PKTINFO, b[:])
		}
		if f&RecvIPTTL != 0 {
			w.putInt(unix.SOL_IP, unix.IP_TTL, int(ri.TTL))
		}
		if f&RecvIPTOS != 0 {
			w.put(unix.SOL_IP, unix.IP_TOS, []byte{ri.TOS})
		}
	} else if c.V6Socket {
		if f&RecvIPv6HopLimit != 0 {
			w.putInt(unix.SOL_IPV6, unix.IPV6_HOPLIMIT, int(ri.TTL))
		}
		if f&RecvIPv6TClass != 0 {
			w.putInt(unix.SOL_IPV6, unix.IPV6_TCLASS, int(ri.TOS))
		}
	}
	return w.used, w.ctrunc
}

// ControlReader is implemented by the datagram endpoints (UDP, ICMP
// echo): Read with the datagram's control data (see Socket.ReadControl for
// keepErr). The provider's receive pump uses it to carry each datagram's
// ancillary data to the sandbox's recvmsg.
type ControlReader interface {
	ReadControl(p []byte, o stack.ReadOptions, keepErr bool) (stack.ReadResult, Control, error)
	// RecvFlags returns the socket's receive-ancillary-data options.
	RecvFlags() RecvFlags
}
