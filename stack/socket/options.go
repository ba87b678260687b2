package socket

import (
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/socket/sockopt"
)

// HZ is the tick rate SO_RCVTIMEO/SO_SNDTIMEO are rounded to, as Linux
// keeps them in jiffies (CONFIG_HZ=250 on Debian's kernels).
const HZ = 250

const jiffy = time.Second / HZ

// sizeofTimeval is sizeof(struct timeval) (and struct
// __kernel_sock_timeval) on 64-bit Linux.
const sizeofTimeval = 16

// SetSockOpt is setsockopt(2). SO_RCVTIMEO and SO_SNDTIMEO are kept here;
// every other option goes to the endpoint. SO_TYPE, SO_DOMAIN,
// SO_PROTOCOL and SO_ACCEPTCONN are read-only: ENOPROTOOPT.
func (so *Socket) SetSockOpt(level, name int, val []byte) error {
	if level == unix.SOL_SOCKET {
		switch name {
		case unix.SO_RCVTIMEO, unix.SO_RCVTIMEO_NEW:
			return setTimeout(&so.rcvTimeo, val)
		case unix.SO_SNDTIMEO, unix.SO_SNDTIMEO_NEW:
			return setTimeout(&so.sndTimeo, val)
		case unix.SO_TYPE, unix.SO_DOMAIN, unix.SO_PROTOCOL, unix.SO_ACCEPTCONN, unix.SO_ERROR:
			return unix.ENOPROTOOPT
		}
	}
	return so.ep.SetSockOpt(level, name, val)
}

// timeoutStore is where a socket timeout lives.
type timeoutStore interface {
	Store(int64)
	Load() int64
}

// setTimeout is sock_set_timeout: {0,0} means no timeout, a negative
// time means do not wait, usec outside [0, 1e6) is EDOM; values are
// rounded up to whole jiffies.
func setTimeout(t timeoutStore, val []byte) error {
	if len(val) < sizeofTimeval {
		return unix.EINVAL
	}
	sec := int64(binary.NativeEndian.Uint64(val[0:8]))
	usec := int64(binary.NativeEndian.Uint64(val[8:16]))
	if usec < 0 || usec >= 1_000_000 {
		return unix.EDOM
	}
	switch {
	case sec < 0:
		t.Store(0)
	case sec == 0 && usec == 0:
		t.Store(timeoInfinite)
	case sec >= int64(1<<62)/int64(time.Second):
		t.Store(timeoInfinite)
	default:
		j := sec*HZ + (usec*HZ+999_999)/1_000_000
		t.Store(j * int64(jiffy))
	}
	return nil
}

func getTimeout(t timeoutStore, buf []byte) int {
	var b [sizeofTimeval]byte
	if v := t.Load(); v > 0 {
		d := time.Duration(v)
		binary.NativeEndian.PutUint64(b[0:8], uint64(d/time.Second))
		binary.NativeEndian.PutUint64(b[8:16], uint64((d%time.Second)/time.Microsecond))
	}
	return copy(buf, b[:])
}

// GetSockOpt is getsockopt(2): it writes the value into buf (truncated to
// len(buf), as Linux does for int options) and returns its length.
func (so *Socket) GetSockOpt(level, name int, buf []byte) (int, error) {
	if level == unix.SOL_SOCKET {
		switch name {
		case unix.SO_RCVTIMEO, unix.SO_RCVTIMEO_NEW:
			return getTimeout(&so.rcvTimeo, buf), nil
		case unix.SO_SNDTIMEO, unix.SO_SNDTIMEO_NEW:
			return getTimeout(&so.sndTimeo, buf), nil
		case unix.SO_TYPE:
			return sockopt.PutInt(buf, so.sotype), nil
		case unix.SO_DOMAIN:
			return sockopt.PutInt(buf, so.family), nil
		case unix.SO_PROTOCOL:
			return sockopt.PutInt(buf, so.protocol), nil
		case unix.SO_ACCEPTCONN:
			return sockopt.PutBool(buf, so.sotype == unix.SOCK_STREAM && so.ep.Info().State == tcpListen), nil
		}
	}
	return so.ep.GetSockOpt(level, name, buf)
}

// QueueSizer is implemented by endpoints that answer SIOCINQ (FIONREAD)
// and SIOCOUTQ themselves; for the others, EndpointInfo's RecvQ and SendQ
// are used (which is what TCP's ioctls return).
type QueueSizer interface {
	InQueue() int
	OutQueue() int
}

// Ioctl answers the socket ioctls that read queue sizes: FIONREAD /
// SIOCINQ, SIOCOUTQ and SIOCOUTQNSD (EINVAL on a listening socket, as
// tcp_ioctl). Other requests are ENOTTY, which is what an unknown socket
// ioctl returns on Linux (ENOIOCTLCMD reaches the caller as ENOTTY).
func (so *Socket) Ioctl(req uint) (int, error) {
	switch req {
	case unix.SIOCINQ, unix.SIOCOUTQ, unix.SIOCOUTQNSD:
	default:
		return 0, unix.ENOTTY
	}
	if q, ok := so.ep.(QueueSizer); ok {
		if req == unix.SIOCINQ {
			return q.InQueue(), nil
		}
		return q.OutQueue(), nil
	}
	info := so.ep.Info()
	if info.State == tcpListen {
		return 0, unix.EINVAL
	}
	if req == unix.SIOCINQ {
		return info.RecvQ, nil
	}
	return info.SendQ, nil
}
