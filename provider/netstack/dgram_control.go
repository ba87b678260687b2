package netstack

import (
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/dgram"
)

// Ancillary data and errors of datagram sockets. The pump keeps each
// datagram's control data (TTL, TOS, destination, interface, receive
// time) with its source in the FIFO; a served recvmsg writes the control
// messages Linux would write, for the options the socket has at the time
// of the call. A native recvmsg on the conduit gets none (the shim serves
// recvmsg when it asks for the source or while the socket has such an
// option on: see WantsControl).

// controlReader is the stack endpoint's control data interface, or nil.
func (s *Socket) controlReader() dgram.ControlReader {
	cr, _ := s.so.Endpoint().(dgram.ControlReader)
	return cr
}

// WantsControl reports whether a recvmsg on this socket would get control
// messages (or MSG_CTRUNC without room for them) on Linux: only then must
// the shim serve a recvmsg that does not ask for the source (a native
// recvmsg on the conduit writes none, which is right otherwise).
func (s *Socket) WantsControl() bool {
	if s.stream || s.dgram == nil {
		return false
	}
	cr := s.controlReader()
	if cr == nil {
		return false
	}
	c := dgram.Control{Flags: cr.RecvFlags()}
	return !c.Empty()
}

// encodeControl writes the control messages of a datagram that carried
// info into control (see dgram.Control.Encode).
func (s *Socket) encodeControl(info dgram.RecvInfo, control []byte) (int, bool) {
	cr := s.controlReader()
	if cr == nil {
		return 0, false
	}
	c := dgram.Control{Flags: cr.RecvFlags(), V6Socket: s.so.Family() == unix.AF_INET6, Info: info}
	return c.Encode(control, time.Now())
}

// takeDgramError returns and clears the socket's pending error: the
// stack socket's (sock_error), else one moveDgramError could not hand to
// the conduit; or 0.
func (s *Socket) takeDgramError() unix.Errno {
	if e := s.takeStackDgramError(); e != 0 {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.pendingErr
	s.pendingErr = 0
	return e
}

// takeStackDgramError returns and clears the stack socket's pending
// error, or 0.
func (s *Socket) takeStackDgramError() unix.Errno {
	var b [4]byte
	n, err := s.so.GetSockOpt(unix.SOL_SOCKET, unix.SO_ERROR, b[:])
	if err != nil || n < 4 {
		return 0
	}
	return unix.Errno(binary.NativeEndian.Uint32(b[:]))
}
