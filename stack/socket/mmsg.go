package socket

import (
	"context"

	"golang.org/x/sys/unix"
)

// MMsg is one message of sendmmsg(2) / recvmmsg(2): its buffer, its
// struct sockaddr (destination for send; nil for none), and on return the
// msg_len and, for receive, the sender and msg_flags.
type MMsg struct {
	Buf  []byte
	Addr []byte
	// N is msg_len: bytes sent, or the recvmsg return value.
	N int
	// Flags are the msg_flags of a received message (MSG_TRUNC).
	Flags int
}

// SendMMsg is sendmmsg(2): it sends msgs in order and returns how many
// were sent. An error after the first message ends the batch and is not
// reported (__sys_sendmmsg returns the count); an error on the first is
// returned. sigpipe is as for Write.
func (so *Socket) SendMMsg(ctx context.Context, msgs []MMsg, flags int) (sent int, sigpipe bool, err error) {
	for i := range msgs {
		n, sig, err := so.SendTo(ctx, msgs[i].Buf, flags, msgs[i].Addr)
		if err != nil {
			if i == 0 {
				return 0, sig, err
			}
			return i, false, nil
		}
		msgs[i].N = n
	}
	return len(msgs), false, nil
}

// RecvMMsg is recvmmsg(2) without its timeout argument: it receives up to
// len(msgs) messages, blocking for each as recvmsg would, except that
// MSG_WAITFORONE makes every call after the first non-blocking. It
// returns the number received; an error after the first message ends the
// batch and is not reported (Linux keeps it in sk_err for the next call,
// which the stack does not model); EAGAIN after the first message simply
// ends the batch.
func (so *Socket) RecvMMsg(ctx context.Context, msgs []MMsg, flags int) (int, error) {
	for i := range msgs {
		r, err := so.RecvMsg(ctx, msgs[i].Buf, flags&^unix.MSG_WAITFORONE)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			return i, nil
		}
		msgs[i].N, msgs[i].Flags, msgs[i].Addr = r.N, r.Flags, nil
		if r.From.IsValid() {
			msgs[i].Addr = FormatSockaddr(so.family, r.From)
		}
		if flags&unix.MSG_WAITFORONE != 0 {
			flags |= unix.MSG_DONTWAIT
		}
	}
	return len(msgs), nil
}
