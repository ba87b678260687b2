package tcp

import "golang.org/x/sys/unix"

// ReadRelay is a read for a relay that carries urgent data out of band
// over another transport (provider/netstack moves it to an AF_UNIX stream
// with MSG_OOB). Unlike Read it never drops the urgent byte, whatever
// SO_OOBINLINE says, and it needs no separate MSG_OOB call that a
// concurrent segment could race with: it returns the bytes before the
// urgent mark (stopping there, as tcp_recvmsg does), and at the mark the
// urgent byte alone with urgent set, after which the mark is gone
// (urg_data cleared, as when copied_seq passes urg_seq). A byte already
// taken with recv(MSG_OOB) is skipped as Read skips it. With no data it
// returns what Read returns (EAGAIN, 0 at EOF, the pending error).
func (e *endpoint) ReadRelay(p []byte) (n int, urgent bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateListen {
		return 0, false, unix.ENOTCONN
	}
	e.beginStamp()
	defer e.endStamp()
	for e.rcvBuf.n > 0 && len(p) > 0 {
		n = min(len(p), e.rcvBuf.n)
		if e.urg != urgNone && !e.urgSeq.LessThan(e.copiedSeq) {
			off := int(e.copiedSeq.Size(e.urgSeq))
			if off == 0 {
				// rcvBuf.n > 0: the byte at the mark has arrived.
				switch e.urg {
				case urgValid:
					p[0] = e.urgByte
					e.consumeLocked(1)
					e.urg = urgNone
					return 1, true, nil
				case urgRead:
					e.consumeLocked(1)
					e.urg = urgNone
					continue
				}
			} else if off < n {
				n = off
			}
		}
		e.rcvBuf.read(0, p[:n])
		e.consumeLocked(n)
		return n, false, nil
	}
	if len(p) == 0 && e.rcvBuf.n > 0 {
		return 0, false, nil
	}
	_, err = e.readEmptyLocked()
	return 0, false, err
}
