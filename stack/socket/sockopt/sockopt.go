// Package sockopt holds what every transport's SetSockOpt/GetSockOpt shares:
// the byte layout of integer options and Linux's rules for the socket
// buffer sizes (SO_RCVBUF / SO_SNDBUF), so UDP, ICMP echo and the socket
// layer read and write options exactly the same way.
package sockopt

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Int reads an int option value. Linux rejects values shorter than an int
// with EINVAL (sock_setsockopt, do_ip_setsockopt); longer ones are read
// from their first four bytes.
func Int(val []byte) (int, error) {
	if len(val) < 4 {
		return 0, unix.EINVAL
	}
	return int(int32(binary.NativeEndian.Uint32(val))), nil
}

// IntOrByte reads an IP-level int option, which Linux also accepts as a
// single byte (do_ip_setsockopt: optlen >= 1 reads an unsigned char).
func IntOrByte(val []byte) (int, error) {
	if len(val) >= 4 {
		return int(int32(binary.NativeEndian.Uint32(val))), nil
	}
	if len(val) >= 1 {
		return int(val[0]), nil
	}
	return 0, unix.EINVAL
}

// Bool reads a boolean (int) option: any non-zero value is true.
func Bool(val []byte) (bool, error) {
	v, err := Int(val)
	return v != 0, err
}

// PutInt writes an int option value into buf the way sock_getsockopt does:
// at most four bytes, truncated to len(buf). It returns the length written.
func PutInt(buf []byte, v int) int {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(int32(v)))
	return copy(buf, b[:])
}

// PutBool writes 1 or 0 as an int option.
func PutBool(buf []byte, v bool) int {
	if v {
		return PutInt(buf, 1)
	}
	return PutInt(buf, 0)
}

// Buffer-size limits on x86-64 Linux.
const (
	// MinRcvBuf is SOCK_MIN_RCVBUF: 2048 + SKB_TRUESIZE(256) rounded as
	// on 64-bit kernels.
	MinRcvBuf = 2304
	// MinSndBuf is SOCK_MIN_SNDBUF, twice SOCK_MIN_RCVBUF's skb part.
	MinSndBuf = 4608
	// DefaultMem is net.core.rmem_default/wmem_default/rmem_max/wmem_max.
	DefaultMem = 212992
)

// RcvBuf returns sk_rcvbuf after setsockopt(SO_RCVBUF, v): Linux clamps
// the request to rmem_max, doubles it to account for overhead, and never
// goes below SOCK_MIN_RCVBUF.
func RcvBuf(v, rmemMax int) int {
	if v > rmemMax {
		v = rmemMax
	}
	if v < 0 {
		v = 0
	}
	v *= 2
	if v < MinRcvBuf {
		v = MinRcvBuf
	}
	return v
}

// SndBuf is RcvBuf for SO_SNDBUF (wmem_max, SOCK_MIN_SNDBUF).
func SndBuf(v, wmemMax int) int {
	if v > wmemMax {
		v = wmemMax
	}
	if v < 0 {
		v = 0
	}
	v *= 2
	if v < MinSndBuf {
		v = MinSndBuf
	}
	return v
}

// Generic holds the SOL_SOCKET options Linux's sock_setsockopt keeps for
// every socket type that have no effect on a datagram endpoint's data
// path, so they read back as set (programs set SO_KEEPALIVE or
// SO_PRIORITY on UDP sockets and check nothing else).
type Generic struct {
	KeepAlive, DontRoute, OOBInline, Timestamp, PassCred bool
	Priority, Mark, RcvLowat                             int
	Linger                                               unix.Linger
}

// Set handles the options Generic holds; ok is false for any other option.
func (g *Generic) Set(name int, val []byte) (ok bool, err error) {
	switch name {
	case unix.SO_LINGER:
		if len(val) < int(unix.SizeofLinger) {
			return true, unix.EINVAL
		}
		g.Linger.Onoff = int32(binary.NativeEndian.Uint32(val[0:4]))
		g.Linger.Linger = int32(binary.NativeEndian.Uint32(val[4:8]))
		return true, nil
	case unix.SO_KEEPALIVE, unix.SO_DONTROUTE, unix.SO_OOBINLINE, unix.SO_TIMESTAMP, unix.SO_PASSCRED:
		b, err := Bool(val)
		if err != nil {
			return true, err
		}
		switch name {
		case unix.SO_KEEPALIVE:
			g.KeepAlive = b
		case unix.SO_DONTROUTE:
			g.DontRoute = b
		case unix.SO_OOBINLINE:
			g.OOBInline = b
		case unix.SO_TIMESTAMP:
			g.Timestamp = b
		case unix.SO_PASSCRED:
			g.PassCred = b
		}
		return true, nil
	case unix.SO_PRIORITY, unix.SO_MARK, unix.SO_RCVLOWAT:
		v, err := Int(val)
		if err != nil {
			return true, err
		}
		switch name {
		case unix.SO_PRIORITY:
			// Values above 6 need CAP_NET_ADMIN; the stack acts as root.
			g.Priority = v
		case unix.SO_MARK:
			g.Mark = v
		case unix.SO_RCVLOWAT:
			if v < 0 {
				v = int(^uint32(0) >> 1)
			}
			g.RcvLowat = v
		}
		return true, nil
	}
	return false, nil
}

// Get reads the options Generic holds; ok is false for any other option.
func (g *Generic) Get(name int, buf []byte) (n int, ok bool) {
	switch name {
	case unix.SO_LINGER:
		var b [8]byte
		binary.NativeEndian.PutUint32(b[0:4], uint32(g.Linger.Onoff))
		binary.NativeEndian.PutUint32(b[4:8], uint32(g.Linger.Linger))
		return copy(buf, b[:]), true
	case unix.SO_KEEPALIVE:
		return PutBool(buf, g.KeepAlive), true
	case unix.SO_DONTROUTE:
		return PutBool(buf, g.DontRoute), true
	case unix.SO_OOBINLINE:
		return PutBool(buf, g.OOBInline), true
	case unix.SO_TIMESTAMP:
		return PutBool(buf, g.Timestamp), true
	case unix.SO_PASSCRED:
		return PutBool(buf, g.PassCred), true
	case unix.SO_PRIORITY:
		return PutInt(buf, g.Priority), true
	case unix.SO_MARK:
		return PutInt(buf, g.Mark), true
	case unix.SO_RCVLOWAT:
		lw := g.RcvLowat
		if lw == 0 {
			lw = 1
		}
		return PutInt(buf, lw), true
	}
	return 0, false
}

// UnknownGetLevel is the getsockopt error for a level the protocol does
// not handle. An AF_INET socket ends in do_ip_getsockopt, which answers
// any level but SOL_IP with EOPNOTSUPP (so SOL_TCP on UDP, SOL_IPV6 on an
// IPv4 socket and made-up levels all give EOPNOTSUPP); an AF_INET6 socket
// ends in ipv6_getsockopt, which answers ENOPROTOOPT. setsockopt differs:
// ip_setsockopt answers ENOPROTOOPT for a foreign level on both families.
func UnknownGetLevel(family int) error {
	if family == unix.AF_INET {
		return unix.EOPNOTSUPP
	}
	return unix.ENOPROTOOPT
}
