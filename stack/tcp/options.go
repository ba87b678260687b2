package tcp

import (
	"encoding/binary"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket/sockopt"
	"github.com/netprov/netprov/stack/tcp/cc"
	"github.com/netprov/netprov/stack/waiter"
)

// caNameMax is TCP_CA_NAME_MAX.
const caNameMax = 16

func getIntOpt(val []byte) (int, error) {
	if len(val) < 4 {
		return 0, unix.EINVAL
	}
	return int(int32(binary.NativeEndian.Uint32(val))), nil
}

// putInt stores an int option the way Linux copies it: at most 4 bytes.
func putInt(buf []byte, v int) (int, error) {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(int32(v)))
	return copy(buf, b[:]), nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetSockOpt implements stack.Endpoint.
func (e *endpoint) SetSockOpt(level, name int, val []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch level {
	case unix.SOL_SOCKET:
		return e.setSocketOpt(name, val)
	case unix.SOL_TCP:
		return e.setTCPOpt(name, val)
	case unix.SOL_IP:
		return e.setIPOpt(name, val)
	case unix.SOL_IPV6:
		if e.family != unix.AF_INET6 {
			return unix.ENOPROTOOPT
		}
		return e.setIPv6Opt(name, val)
	}
	return unix.ENOPROTOOPT
}

func (e *endpoint) setSocketOpt(name int, val []byte) error {
	if name == unix.SO_LINGER {
		if len(val) < 8 {
			return unix.EINVAL
		}
		e.lingerOn = binary.NativeEndian.Uint32(val[0:4]) != 0
		e.lingerSecs = int32(binary.NativeEndian.Uint32(val[4:8]))
		if e.lingerSecs < 0 {
			e.lingerSecs = 0
		}
		return nil
	}
	v, err := getIntOpt(val)
	if err != nil {
		return err
	}
	switch name {
	case unix.SO_REUSEADDR:
		e.reuseAddr = v != 0
	case unix.SO_REUSEPORT:
		e.reusePort = v != 0
	case unix.SO_KEEPALIVE:
		e.keepaliveOn = v != 0
		e.armKeepalive()
	case unix.SO_SNDBUF, unix.SO_SNDBUFFORCE:
		if name == unix.SO_SNDBUF {
			v = min(uint32ToInt(v), e.proto.cfg.WmemMax)
		}
		e.sndbufLocked = true
		e.sndbuf = max(2*uint32ToInt(v), sockMinSndbuf)
		e.notify(waiter.EventOut)
	case unix.SO_RCVBUF, unix.SO_RCVBUFFORCE:
		if name == unix.SO_RCVBUF {
			v = min(uint32ToInt(v), e.proto.cfg.RmemMax)
		}
		e.rcvbufLocked = true
		e.rcvbuf = max(2*uint32ToInt(v), sockMinRcvbuf)
		if e.state.synchronized() {
			keep := e.rcvBuf.n
			for _, r := range e.ooo {
				keep = max(keep, int(e.copiedSeq.Size(r.end)))
			}
			e.rcvBuf.resize(max(e.winFromSpace(e.rcvbuf), keep), keep)
		}
	case unix.SO_RCVLOWAT:
		if v < 0 {
			v = int(^uint32(0) >> 1)
		}
		e.rcvlowat = max(v, 1)
	case unix.SO_BROADCAST, unix.SO_OOBINLINE, unix.SO_DONTROUTE, unix.SO_PRIORITY, unix.SO_MARK,
		unix.SO_TIMESTAMP, unix.SO_TIMESTAMPNS, unix.SO_ZEROCOPY, unix.SO_BUSY_POLL:
		e.misc[miscIndex(name)] = v
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

func uint32ToInt(v int) int {
	// Linux treats the sizes as unsigned: a negative value is huge.
	if v < 0 {
		return int(^uint32(0) >> 1)
	}
	return v
}

// misc holds flag options that are accepted and read back but do not
// change TCP's behaviour here.
func miscIndex(name int) int {
	switch name {
	case unix.SO_BROADCAST:
		return 0
	case unix.SO_OOBINLINE:
		return 1
	case unix.SO_DONTROUTE:
		return 2
	case unix.SO_PRIORITY:
		return 3
	case unix.SO_MARK:
		return 4
	case unix.SO_TIMESTAMP:
		return 5
	case unix.SO_TIMESTAMPNS:
		return 6
	case unix.SO_ZEROCOPY:
		return 7
	}
	return 8
}

func (e *endpoint) setTCPOpt(name int, val []byte) error {
	if name == unix.TCP_CONGESTION {
		n := strings.TrimRight(string(val), "\x00")
		if i := strings.IndexByte(n, 0); i >= 0 {
			n = n[:i]
		}
		if _, err := cc.New(n, e.proto.clock.Now()); err != nil {
			return unix.ENOENT
		}
		e.ccName = n
		if e.ccAlg != nil && e.ccAlg.Name() != n {
			e.ccAlg, _ = cc.New(n, e.proto.clock.Now())
			e.ccAlg.Init(&e.cw)
		}
		return nil
	}
	v, err := getIntOpt(val)
	if err != nil {
		return err
	}
	switch name {
	case unix.TCP_NODELAY:
		e.nodelay = v != 0
		if e.nodelay {
			e.sendPending()
		}
	case unix.TCP_CORK:
		e.cork = v != 0
		if !e.cork {
			e.moreHint = false
			e.sendPending()
		}
	case unix.TCP_MAXSEG:
		if v != 0 && (v < minMSS || v > maxWindow) {
			return unix.EINVAL
		}
		e.userMSS = v
	case unix.TCP_KEEPIDLE:
		if v < 1 || v > 32767 {
			return unix.EINVAL
		}
		e.keepIdle = time.Duration(v) * time.Second
		if e.keepKind == timerKeepalive {
			e.armKeepalive()
		}
	case unix.TCP_KEEPINTVL:
		if v < 1 || v > 32767 {
			return unix.EINVAL
		}
		e.keepIntvl = time.Duration(v) * time.Second
	case unix.TCP_KEEPCNT:
		if v < 1 || v > 127 {
			return unix.EINVAL
		}
		e.keepCnt = v
	case unix.TCP_DEFER_ACCEPT:
		e.deferAccept = max(v, 0)
	case unix.TCP_QUICKACK:
		e.quickackOpt = v != 0
		if v != 0 && e.pendingAck && e.state.synchronized() {
			e.sendAck()
		}
	case unix.TCP_USER_TIMEOUT:
		if v < 0 {
			return unix.EINVAL
		}
		e.userTimeout = time.Duration(v) * time.Millisecond
	case unix.TCP_SYNCNT:
		if v < 1 || v > 255 {
			return unix.EINVAL
		}
	case unix.TCP_LINGER2, unix.TCP_WINDOW_CLAMP, unix.TCP_NOTSENT_LOWAT, unix.TCP_FASTOPEN,
		unix.TCP_FASTOPEN_CONNECT, unix.TCP_THIN_LINEAR_TIMEOUTS:
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

func (e *endpoint) setIPOpt(name int, val []byte) error {
	v, err := getIntOpt(val)
	if err != nil {
		// IP_TOS and IP_TTL accept a single byte too (do_ip_setsockopt).
		if len(val) >= 1 {
			v, err = int(val[0]), nil
		} else {
			return err
		}
	}
	switch name {
	case unix.IP_TOS:
		// Stream sockets keep the ECN bits to themselves.
		e.tos = uint8(v) &^ 3
	case unix.IP_TTL:
		if v == -1 {
			e.ttl = 0
		} else if v < 1 || v > 255 {
			return unix.EINVAL
		} else {
			e.ttl = uint8(v)
		}
	case unix.IP_FREEBIND:
		e.freebind = v != 0
	case unix.IP_RECVERR, unix.IP_MTU_DISCOVER, unix.IP_BIND_ADDRESS_NO_PORT:
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

func (e *endpoint) setIPv6Opt(name int, val []byte) error {
	v, err := getIntOpt(val)
	if err != nil {
		return err
	}
	switch name {
	case unix.IPV6_V6ONLY:
		if e.ownerBound || e.state != StateClose {
			return unix.EINVAL
		}
		e.v6only = v != 0
	case unix.IPV6_TCLASS:
		if v < -1 || v > 255 {
			return unix.EINVAL
		}
		if v == -1 {
			v = 0
		}
		e.tos = uint8(v) &^ 3
	case unix.IPV6_UNICAST_HOPS:
		if v < -1 || v > 255 {
			return unix.EINVAL
		}
		if v == -1 {
			v = 0
		}
		e.ttl = uint8(v)
	case unix.IPV6_RECVERR, unix.IPV6_MTU_DISCOVER:
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
		return e.getSocketOpt(name, buf)
	case unix.SOL_TCP:
		return e.getTCPOpt(name, buf)
	case unix.SOL_IP:
		switch name {
		case unix.IP_FREEBIND:
			return putInt(buf, b2i(e.freebind))
		case unix.IP_TOS:
			return putInt(buf, int(e.tos))
		case unix.IP_TTL:
			if e.ttl == 0 {
				return putInt(buf, 64)
			}
			return putInt(buf, int(e.ttl))
		case unix.IP_MTU:
			if e.route == nil || !e.state.synchronized() {
				return 0, unix.ENOTCONN
			}
			return putInt(buf, e.route.MTU)
		}
		return 0, unix.ENOPROTOOPT
	case unix.SOL_IPV6:
		if e.family != unix.AF_INET6 {
			return 0, sockopt.UnknownGetLevel(e.family)
		}
		switch name {
		case unix.IPV6_V6ONLY:
			return putInt(buf, b2i(e.v6only))
		case unix.IPV6_TCLASS:
			return putInt(buf, int(e.tos))
		case unix.IPV6_UNICAST_HOPS:
			if e.ttl == 0 {
				return putInt(buf, 64)
			}
			return putInt(buf, int(e.ttl))
		}
		return 0, unix.ENOPROTOOPT
	}
	return 0, sockopt.UnknownGetLevel(e.family)
}

func (e *endpoint) getSocketOpt(name int, buf []byte) (int, error) {
	switch name {
	case unix.SO_REUSEADDR:
		return putInt(buf, b2i(e.reuseAddr))
	case unix.SO_REUSEPORT:
		return putInt(buf, b2i(e.reusePort))
	case unix.SO_KEEPALIVE:
		return putInt(buf, b2i(e.keepaliveOn))
	case unix.SO_LINGER:
		var b [8]byte
		binary.NativeEndian.PutUint32(b[0:4], uint32(b2i(e.lingerOn)))
		binary.NativeEndian.PutUint32(b[4:8], uint32(e.lingerSecs))
		return copy(buf, b[:]), nil
	case unix.SO_SNDBUF:
		return putInt(buf, e.sndbuf)
	case unix.SO_RCVBUF:
		return putInt(buf, e.rcvbuf)
	case unix.SO_ERROR:
		err := e.sockError()
		if err == 0 {
			err, e.softErr = e.softErr, 0
		}
		return putInt(buf, int(err))
	case unix.SO_TYPE:
		return putInt(buf, unix.SOCK_STREAM)
	case unix.SO_DOMAIN:
		return putInt(buf, e.family)
	case unix.SO_PROTOCOL:
		return putInt(buf, unix.IPPROTO_TCP)
	case unix.SO_ACCEPTCONN:
		return putInt(buf, b2i(e.state == StateListen))
	case unix.SO_RCVLOWAT:
		return putInt(buf, e.rcvlowat)
	case unix.SO_SNDLOWAT:
		return putInt(buf, 1)
	case unix.SO_BROADCAST, unix.SO_OOBINLINE, unix.SO_DONTROUTE, unix.SO_PRIORITY, unix.SO_MARK,
		unix.SO_TIMESTAMP, unix.SO_TIMESTAMPNS, unix.SO_ZEROCOPY:
		return putInt(buf, e.misc[miscIndex(name)])
	}
	return 0, unix.ENOPROTOOPT
}

func (e *endpoint) getTCPOpt(name int, buf []byte) (int, error) {
	switch name {
	case unix.TCP_NODELAY:
		return putInt(buf, b2i(e.nodelay))
	case unix.TCP_CORK:
		return putInt(buf, b2i(e.cork))
	case unix.TCP_MAXSEG:
		v := e.mss
		if e.userMSS > 0 && (e.state == StateClose || e.state == StateListen) {
			v = e.userMSS
		}
		return putInt(buf, v)
	case unix.TCP_KEEPIDLE:
		return putInt(buf, int(e.keepIdle/time.Second))
	case unix.TCP_KEEPINTVL:
		return putInt(buf, int(e.keepIntvl/time.Second))
	case unix.TCP_KEEPCNT:
		return putInt(buf, e.keepCnt)
	case unix.TCP_SYNCNT:
		return putInt(buf, e.proto.cfg.SynRetries)
	case unix.TCP_DEFER_ACCEPT:
		return putInt(buf, retransToSecs(secsToRetrans(e.deferAccept)))
	case unix.TCP_QUICKACK:
		return putInt(buf, 1)
	case unix.TCP_USER_TIMEOUT:
		return putInt(buf, int(e.userTimeout/time.Millisecond))
	case unix.TCP_CONGESTION:
		var b [caNameMax]byte
		copy(b[:], e.ccName)
		return copy(buf, b[:]), nil
	case unix.TCP_INFO:
		var b [tcpInfoLen]byte
		e.fillTCPInfo(b[:])
		return copy(buf, b[:]), nil
	}
	return 0, unix.ENOPROTOOPT
}

// retransToSecs is retrans_to_secs for TCP_DEFER_ACCEPT.
func retransToSecs(retrans int) int {
	if retrans <= 0 {
		return 0
	}
	period, secs := 1, 1
	for retrans > 1 {
		retrans--
		period = min(period*2, int(rtoMax/time.Second))
		secs += period
	}
	return secs
}
