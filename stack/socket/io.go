package socket

import (
	"context"
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/waiter"
)

// RecvResult is what recvmsg(2) returns besides the data.
type RecvResult struct {
	// N is the return value: the bytes copied, or with MSG_TRUNC on a
	// datagram socket the datagram's full length.
	N int
	// From is the sender (datagram sockets; invalid for stream sockets).
	From netip.AddrPort
	// Flags are the msg_flags: MSG_TRUNC when a datagram did not fit.
	Flags int
}

// Read is read(2).
func (so *Socket) Read(ctx context.Context, p []byte) (int, error) {
	r, err := so.RecvMsg(ctx, p, 0)
	return r.N, err
}

// Recv is recv(2).
func (so *Socket) Recv(ctx context.Context, p []byte, flags int) (int, error) {
	r, err := so.RecvMsg(ctx, p, flags)
	return r.N, err
}

// RecvFrom is recvfrom(2): the sender comes back as a struct sockaddr of
// the socket's family (nil for stream sockets, whose msg_namelen is 0).
func (so *Socket) RecvFrom(ctx context.Context, p []byte, flags int) (int, []byte, error) {
	r, err := so.RecvMsg(ctx, p, flags)
	if err != nil || !r.From.IsValid() {
		return r.N, nil, err
	}
	return r.N, FormatSockaddr(so.family, r.From), nil
}

// RecvMsg is recvmsg(2) into one buffer. flags: MSG_PEEK, MSG_TRUNC,
// MSG_DONTWAIT, MSG_WAITALL (stream sockets), MSG_OOB; MSG_ERRQUEUE
// finds the (unimplemented) error queue empty: EAGAIN. A blocking call
// waits for data: EAGAIN when SO_RCVTIMEO expires, the interruption errno
// when ctx is done; either way bytes already received are returned
// instead.
func (so *Socket) RecvMsg(ctx context.Context, p []byte, flags int) (RecvResult, error) {
	if flags&unix.MSG_ERRQUEUE != 0 {
		return RecvResult{}, unix.EAGAIN
	}
	o := stack.ReadOptions{
		Peek:  flags&unix.MSG_PEEK != 0,
		Trunc: flags&unix.MSG_TRUNC != 0,
		OOB:   flags&unix.MSG_OOB != 0,
	}
	timeo := so.timeo(false, flags)
	if so.sotype != unix.SOCK_STREAM {
		var res stack.ReadResult
		err := so.block(ctx, waiter.EventIn, timeo, func() error {
			var err error
			res, err = so.ep.Read(p, o)
			return err
		})
		if err == errTimedOut {
			err = unix.EAGAIN
		}
		if err != nil {
			return RecvResult{}, err
		}
		if timeo == 0 && res.Total == 0 && !res.From.IsValid() {
			// Empty queue after SHUT_RD (a datagram, even an empty one,
			// has a sender): only a blocking wait ends with 0
			// (__skb_wait_for_more_packets); MSG_DONTWAIT is EAGAIN.
			return RecvResult{}, unix.EAGAIN
		}
		r := RecvResult{N: res.N, From: res.From}
		if res.Truncated {
			r.Flags |= unix.MSG_TRUNC
		}
		if o.Trunc {
			r.N = res.Total
		}
		return r, nil
	}

	if len(p) == 0 {
		// tcp_recvmsg copies nothing and does not wait for a zero length.
		return RecvResult{}, nil
	}
	waitAll := flags&unix.MSG_WAITALL != 0 && !o.Peek && !o.Trunc
	got := 0
	for {
		var res stack.ReadResult
		err := so.block(ctx, waiter.EventIn, timeo, func() error {
			var err error
			res, err = so.ep.Read(p[got:], o)
			return err
		})
		if err != nil {
			if got > 0 {
				return RecvResult{N: got}, nil
			}
			if err == errTimedOut {
				err = unix.EAGAIN
			}
			return RecvResult{}, err
		}
		got += res.N
		if res.N == 0 || !waitAll || got == len(p) {
			return RecvResult{N: got}, nil
		}
	}
}

// Write is write(2). sigpipe reports that Linux would raise SIGPIPE (a
// stream socket that cannot send any more, without MSG_NOSIGNAL): the
// shim delivers the signal.
func (so *Socket) Write(ctx context.Context, p []byte) (n int, sigpipe bool, err error) {
	return so.send(ctx, p, 0, netip.AddrPort{})
}

// Send is send(2); see Write for sigpipe.
func (so *Socket) Send(ctx context.Context, p []byte, flags int) (n int, sigpipe bool, err error) {
	return so.send(ctx, p, flags, netip.AddrPort{})
}

// SendTo is sendto(2) with the destination as a struct sockaddr (nil for
// none). Stream sockets ignore the address, as Linux's TCP does.
func (so *Socket) SendTo(ctx context.Context, p []byte, flags int, to []byte) (n int, sigpipe bool, err error) {
	if to == nil {
		return so.send(ctx, p, flags, netip.AddrPort{})
	}
	if len(to) > maxSockaddrLen {
		return 0, false, unix.EINVAL
	}
	if so.sotype == unix.SOCK_STREAM {
		return so.send(ctx, p, flags, netip.AddrPort{})
	}
	if len(p) > 0xffff {
		return 0, false, unix.EMSGSIZE
	}
	ap, err := so.parseDest(to)
	if err != nil {
		return 0, false, err
	}
	return so.send(ctx, p, flags, ap)
}

// parseDest applies the destination rules of udp_sendmsg, udpv6_sendmsg
// and ping_v4/v6_sendmsg. An invalid result means "no address".
func (so *Socket) parseDest(sa []byte) (netip.AddrPort, error) {
	if len(sa) < 2 {
		return netip.AddrPort{}, unix.EINVAL
	}
	fam := int(binary.NativeEndian.Uint16(sa))
	echo := so.protocol == protoICMP || so.protocol == protoICMPv6
	switch {
	case so.family == unix.AF_INET:
		ap, err := parseInet4(sa)
		if err != nil {
			return ap, err
		}
		if fam != unix.AF_INET && (echo || fam != unix.AF_UNSPEC) {
			return netip.AddrPort{}, unix.EAFNOSUPPORT
		}
		if echo {
			ap = netip.AddrPortFrom(ap.Addr(), 0)
		}
		return ap, nil
	case echo:
		if len(sa) < SizeofSockaddrInet6 {
			return netip.AddrPort{}, unix.EINVAL
		}
		if fam != unix.AF_INET6 {
			return netip.AddrPort{}, unix.EAFNOSUPPORT
		}
		ap, err := parseInet6(sa)
		return netip.AddrPortFrom(ap.Addr(), 0), err
	}
	switch fam {
	case unix.AF_INET6:
		return parseInet6(sa)
	case unix.AF_INET:
		ap, err := parseInet4(sa)
		if err != nil {
			return ap, err
		}
		return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port()), nil
	case unix.AF_UNSPEC:
		return netip.AddrPort{}, nil
	}
	return netip.AddrPort{}, unix.EINVAL
}

// SendMsg is sendmsg(2) from one buffer with a typed destination
// (invalid: none). See Write for sigpipe.
func (so *Socket) SendMsg(ctx context.Context, p []byte, flags int, to netip.AddrPort) (n int, sigpipe bool, err error) {
	if to.IsValid() && so.sotype != unix.SOCK_STREAM {
		if to, err = so.inFamily(to); err != nil {
			return 0, false, err
		}
	} else {
		to = netip.AddrPort{}
	}
	return so.send(ctx, p, flags, to)
}

// send writes p. Datagram sockets send one datagram. Stream sockets
// block until all of p is queued unless non-blocking (then a partial
// count or EAGAIN); SO_SNDTIMEO expiring or an interruption returns the
// bytes queued so far, or EAGAIN / the interruption errno if none.
func (so *Socket) send(ctx context.Context, p []byte, flags int, to netip.AddrPort) (int, bool, error) {
	o := stack.WriteOptions{To: to, More: flags&unix.MSG_MORE != 0, OOB: flags&unix.MSG_OOB != 0}
	timeo := so.timeo(true, flags)
	if so.sotype != unix.SOCK_STREAM {
		// Datagrams leave at once (no send buffer is held), so a datagram
		// endpoint's EAGAIN is final: the failed autobind of
		// inet_send_prepare, which Linux reports without waiting.
		n, err := so.ep.Write(p, o)
		return n, false, err
	}
	sent := 0
	for {
		err := so.block(ctx, waiter.EventOut, timeo, func() error {
			n, err := so.ep.Write(p[sent:], o)
			sent += n
			if err == nil && n == 0 && len(p) > 0 {
				return unix.EAGAIN
			}
			return err
		})
		if err == nil && (sent == len(p) || timeo == 0) {
			return sent, false, nil
		}
		if err == nil {
			continue // partial write on a blocking socket: wait for room
		}
		if sent > 0 {
			return sent, false, nil
		}
		if err == errTimedOut {
			err = unix.EAGAIN
		}
		return 0, err == unix.EPIPE && flags&unix.MSG_NOSIGNAL == 0, err
	}
}
