package dgram

import (
	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket/sockopt"
)

// The option methods handle the options every datagram socket has the
// same way; handled is false for any other option, which the endpoint
// then handles itself (or refuses with ENOPROTOOPT).

// SetSocketOpt handles the shared SOL_SOCKET options.
func (s *Socket) SetSocketOpt(name int, val []byte) (handled bool, err error) {
	switch name {
	case soTimestampOld, soTimestampNSOld, soTimestampNew, soTimestampNSNew:
		return true, s.setTimestamp(name, val)
	}
	if ok, err := s.Generic.Set(name, val); ok {
		return true, err
	}
	switch name {
	case unix.SO_BROADCAST, unix.SO_RCVBUF, unix.SO_SNDBUF:
	default:
		return false, nil
	}
	v, err := sockopt.Int(val)
	if err != nil {
		return true, err
	}
	switch name {
	case unix.SO_BROADCAST:
		s.Broadcast = v != 0
	case unix.SO_RCVBUF:
		s.Rcvbuf = sockopt.RcvBuf(v, s.cfg.RmemMax)
	case unix.SO_SNDBUF:
		s.Sndbuf = sockopt.SndBuf(v, s.cfg.WmemMax)
	}
	return true, nil
}

// SetIPOpt handles the shared SOL_IP options.
func (s *Socket) SetIPOpt(name int, val []byte) (handled bool, err error) {
	flag := ipRecvFlag(name)
	switch {
	case flag != 0:
	case name == unix.IP_TTL, name == unix.IP_TOS, name == unix.IP_RECVERR:
	default:
		return false, nil
	}
	if flag != 0 {
		// do_ip_setsockopt reads an int, a byte, or nothing (0).
		v := 0
		if len(val) > 0 {
			v, _ = sockopt.IntOrByte(val)
		}
		s.setRecv(flag, v != 0)
		return true, nil
	}
	v, err := sockopt.IntOrByte(val)
	if err != nil {
		return true, err
	}
	switch name {
	case unix.IP_TTL:
		if v != -1 && (v < 1 || v > 255) {
			return true, unix.EINVAL
		}
		s.TTL = v
	case unix.IP_TOS:
		s.TOS = v & 0xff
	case unix.IP_RECVERR:
		s.RecvErr = v != 0
	}
	return true, nil
}

// SetIPv6Opt handles the shared SOL_IPV6 options.
func (s *Socket) SetIPv6Opt(name int, val []byte) (handled bool, err error) {
	flag := ipv6RecvFlag(name)
	switch {
	case flag != 0:
	case name == unix.IPV6_UNICAST_HOPS, name == unix.IPV6_TCLASS, name == unix.IPV6_RECVERR:
	default:
		return false, nil
	}
	v, err := sockopt.Int(val)
	if err != nil {
		return true, err
	}
	if flag != 0 {
		s.setRecv(flag, v != 0)
		return true, nil
	}
	switch name {
	case unix.IPV6_UNICAST_HOPS:
		if v < -1 || v > 255 {
			return true, unix.EINVAL
		}
		if v == 0 {
			// A hop limit of 0 is stored but never sent: the route
			// default applies, as for -1.
			v = -1
		}
		s.TTL = v
	case unix.IPV6_TCLASS:
		if v < -1 || v > 255 {
			return true, unix.EINVAL
		}
		s.TOS = v
	case unix.IPV6_RECVERR:
		s.RecvErr = v != 0
	}
	return true, nil
}

// GetSocketOpt reads the shared SOL_SOCKET options of a socket of the
// given family and protocol number. SO_ERROR clears the pending error.
func (s *Socket) GetSocketOpt(name int, buf []byte, family, protocol int) (n int, handled bool) {
	switch name {
	case soTimestampOld, soTimestampNSOld, soTimestampNew, soTimestampNSNew:
		return sockopt.PutBool(buf, s.getTimestamp(name)), true
	}
	if n, ok := s.Generic.Get(name, buf); ok {
		return n, true
	}
	switch name {
	case unix.SO_TYPE:
		return sockopt.PutInt(buf, unix.SOCK_DGRAM), true
	case unix.SO_PROTOCOL:
		return sockopt.PutInt(buf, protocol), true
	case unix.SO_DOMAIN:
		return sockopt.PutInt(buf, family), true
	case unix.SO_ERROR:
		return sockopt.PutInt(buf, int(s.TakeError())), true
	case unix.SO_BROADCAST:
		return sockopt.PutBool(buf, s.Broadcast), true
	case unix.SO_RCVBUF:
		return sockopt.PutInt(buf, s.Rcvbuf), true
	case unix.SO_SNDBUF:
		return sockopt.PutInt(buf, s.Sndbuf), true
	}
	return 0, false
}

// GetIPOpt reads the shared SOL_IP options.
func (s *Socket) GetIPOpt(name int, buf []byte) (n int, handled bool) {
	if flag := ipRecvFlag(name); flag != 0 {
		return sockopt.PutBool(buf, s.Recv&flag != 0), true
	}
	switch name {
	case unix.IP_TTL:
		return sockopt.PutInt(buf, s.ttl()), true
	case unix.IP_TOS:
		return sockopt.PutInt(buf, s.tos()), true
	case unix.IP_RECVERR:
		return sockopt.PutBool(buf, s.RecvErr), true
	}
	return 0, false
}

// GetIPv6Opt reads the shared SOL_IPV6 options.
func (s *Socket) GetIPv6Opt(name int, buf []byte) (n int, handled bool) {
	if flag := ipv6RecvFlag(name); flag != 0 {
		return sockopt.PutBool(buf, s.Recv&flag != 0), true
	}
	switch name {
	case unix.IPV6_UNICAST_HOPS:
		return sockopt.PutInt(buf, s.ttl()), true
	case unix.IPV6_TCLASS:
		return sockopt.PutInt(buf, s.tos()), true
	case unix.IPV6_RECVERR:
		return sockopt.PutBool(buf, s.RecvErr), true
	}
	return 0, false
}

// ttl is the TTL (hop limit) getsockopt reports: the default for -1.
func (s *Socket) ttl() int {
	if s.TTL < 0 {
		return s.cfg.DefaultTTL
	}
	return s.TTL
}

// tos is the TOS (traffic class) getsockopt reports: 0 for -1.
func (s *Socket) tos() int {
	if s.TOS < 0 {
		return 0
	}
	return s.TOS
}

func (s *Socket) setRecv(flag RecvFlags, on bool) {
	if on {
		s.Recv |= flag
	} else {
		s.Recv &^= flag
	}
}
