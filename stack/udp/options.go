package udp

import (
	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket/sockopt"
)

// SetSockOpt implements stack.Endpoint for the SOL_SOCKET, SOL_IP and
// SOL_IPV6 options UDP sockets have on Linux.
func (e *endpoint) SetSockOpt(level, name int, val []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch level {
	case unix.SOL_SOCKET:
		return e.setSocketOptLocked(name, val)
	case unix.SOL_IP:
		return e.setIPOptLocked(name, val)
	case unix.SOL_IPV6:
		if e.b.family != unix.AF_INET6 {
			return unix.ENOPROTOOPT
		}
		return e.setIPv6OptLocked(name, val)
	case unix.SOL_UDP:
		return unix.ENOPROTOOPT
	}
	return unix.ENOPROTOOPT
}

func (e *endpoint) setSocketOptLocked(name int, val []byte) error {
	if ok, err := e.sk.SetSocketOpt(name, val); ok {
		return err
	}
	switch name {
	case unix.SO_BINDTODEVICE:
		// The value is an interface name, possibly NUL-terminated; an
		// empty one unbinds.
		n := len(val)
		for i, c := range val {
			if c == 0 {
				n = i
				break
			}
		}
		id := 0
		if n > 0 {
			nic := e.p.s.NICByName(string(val[:n]))
			if nic == nil {
				return unix.ENODEV
			}
			id = nic.ID()
		}
		return e.setNICLocked(id)
	case unix.SO_BINDTOIFINDEX:
		v, err := sockopt.Int(val)
		if err != nil {
			return err
		}
		if v != 0 && e.p.s.NIC(v) == nil {
			return unix.ENODEV
		}
		return e.setNICLocked(v)
	}
	v, err := sockopt.Int(val)
	if err != nil {
		return err
	}
	switch name {
	case unix.SO_REUSEADDR:
		e.setBindingFlagLocked(func() { e.b.reuseAddr = v != 0 })
	case unix.SO_REUSEPORT:
		e.setBindingFlagLocked(func() { e.b.reusePort = v != 0 })
	case unix.SO_NO_CHECK:
		e.noCheck = v != 0
	case unix.SO_RCVBUFFORCE:
		e.sk.Rcvbuf = sockopt.RcvBuf(v, int(^uint32(0)>>2))
	case unix.SO_SNDBUFFORCE:
		e.sk.Sndbuf = sockopt.SndBuf(v, int(^uint32(0)>>2))
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

func (e *endpoint) setNICLocked(id int) error {
	e.setBindingFlagLocked(func() { e.b.nic = id })
	if e.b.connected && e.route != nil && id != 0 && e.route.NIC.ID() != id {
		// The cached route leaves by another device: look it up again.
		r, err := e.p.s.FindRoute(id, e.route.LocalAddr, e.route.RemoteAddr)
		if err != nil {
			return nil
		}
		e.route = r
	}
	return nil
}

// setBindingFlagLocked changes a binding field under the protocol lock
// (demux reads the binding with only that lock held).
func (e *endpoint) setBindingFlagLocked(f func()) {
	e.p.mu.Lock()
	f()
	e.p.mu.Unlock()
}

func (e *endpoint) setIPOptLocked(name int, val []byte) error {
	if ok, err := e.sk.SetIPOpt(name, val); ok {
		return err
	}
	switch name {
	case unix.IP_ADD_MEMBERSHIP:
		return e.joinLocked(false, val)
	case unix.IP_DROP_MEMBERSHIP:
		return e.leaveLocked(false, val)
	case unix.IP_MULTICAST_IF:
		// Choosing the outgoing device of multicast is not implemented:
		// the route to the group decides.
		return unix.ENOPROTOOPT
	}
	v, err := sockopt.IntOrByte(val)
	if err != nil {
		return err
	}
	switch name {
	case unix.IP_MULTICAST_TTL:
		if v == -1 {
			v = 1
		}
		if v < 0 || v > 255 {
			return unix.EINVAL
		}
		e.mcastTTL = v
	case unix.IP_MULTICAST_LOOP:
		e.mcastLoop = v != 0
	case unix.IP_MTU_DISCOVER:
		if v < unix.IP_PMTUDISC_DONT || v > unix.IP_PMTUDISC_OMIT {
			return unix.EINVAL
		}
		e.pmtudisc = v
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

func (e *endpoint) setIPv6OptLocked(name int, val []byte) error {
	if ok, err := e.sk.SetIPv6Opt(name, val); ok {
		return err
	}
	switch name {
	case unix.IPV6_ADD_MEMBERSHIP:
		return e.joinLocked(true, val)
	case unix.IPV6_DROP_MEMBERSHIP:
		return e.leaveLocked(true, val)
	}
	v, err := sockopt.Int(val)
	if err != nil {
		return err
	}
	switch name {
	case unix.IPV6_V6ONLY:
		// Only before the socket is bound (do_ipv6_setsockopt).
		if e.b.local.Port() != 0 {
			return unix.EINVAL
		}
		e.setBindingFlagLocked(func() { e.b.v6only = v != 0 })
	case unix.IPV6_MULTICAST_HOPS:
		if v < -1 || v > 255 {
			return unix.EINVAL
		}
		if v == -1 {
			v = 1
		}
		e.mcastTTL = v
	case unix.IPV6_MULTICAST_LOOP:
		e.mcastLoop = v != 0
	case unix.IPV6_MTU_DISCOVER:
		if v < unix.IPV6_PMTUDISC_DONT || v > unix.IPV6_PMTUDISC_OMIT {
			return unix.EINVAL
		}
		e.pmtudisc = v
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

// GetSockOpt implements stack.Endpoint.
func (e *endpoint) GetSockOpt(level, name int, buf []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch level {
	case unix.SOL_SOCKET:
		if n, ok := e.sk.GetSocketOpt(name, buf, e.b.family, unix.IPPROTO_UDP); ok {
			return n, nil
		}
		switch name {
		case unix.SO_ACCEPTCONN:
			return sockopt.PutInt(buf, 0), nil
		case unix.SO_REUSEADDR:
			return sockopt.PutBool(buf, e.b.reuseAddr), nil
		case unix.SO_REUSEPORT:
			return sockopt.PutBool(buf, e.b.reusePort), nil
		case unix.SO_NO_CHECK:
			return sockopt.PutBool(buf, e.noCheck), nil
		case unix.SO_BINDTOIFINDEX:
			return sockopt.PutInt(buf, e.b.nic), nil
		case unix.SO_BINDTODEVICE:
			if e.b.nic == 0 {
				return 0, nil
			}
			nic := e.p.s.NIC(e.b.nic)
			if nic == nil {
				return 0, nil
			}
			name := append([]byte(nic.Name()), 0)
			if len(buf) < len(name) {
				return 0, unix.EINVAL
			}
			return copy(buf, name), nil
		}
	case unix.SOL_IP:
		if n, ok := e.sk.GetIPOpt(name, buf); ok {
			return n, nil
		}
		switch name {
		case unix.IP_MULTICAST_TTL:
			return sockopt.PutInt(buf, e.mcastTTL), nil
		case unix.IP_MULTICAST_LOOP:
			return sockopt.PutBool(buf, e.mcastLoop), nil
		case unix.IP_MTU_DISCOVER:
			return sockopt.PutInt(buf, e.pmtudisc), nil
		case unix.IP_MTU:
			if !e.b.connected || e.route == nil {
				return 0, unix.ENOTCONN
			}
			return sockopt.PutInt(buf, e.route.MTU), nil
		}
	case unix.SOL_IPV6:
		if e.b.family != unix.AF_INET6 {
			return 0, sockopt.UnknownGetLevel(e.b.family)
		}
		if n, ok := e.sk.GetIPv6Opt(name, buf); ok {
			return n, nil
		}
		switch name {
		case unix.IPV6_V6ONLY:
			return sockopt.PutBool(buf, e.b.v6only), nil
		case unix.IPV6_MULTICAST_HOPS:
			return sockopt.PutInt(buf, e.mcastTTL), nil
		case unix.IPV6_MULTICAST_LOOP:
			return sockopt.PutBool(buf, e.mcastLoop), nil
		case unix.IPV6_MTU_DISCOVER:
			return sockopt.PutInt(buf, e.pmtudisc), nil
		case unix.IPV6_MTU:
			if !e.b.connected || e.route == nil {
				return 0, unix.ENOTCONN
			}
			return sockopt.PutInt(buf, e.route.MTU), nil
		}
	case unix.SOL_UDP:
		// udp_lib_getsockopt: an option UDP does not have.
	default:
		return 0, sockopt.UnknownGetLevel(e.b.family)
	}
	return 0, unix.ENOPROTOOPT
}
