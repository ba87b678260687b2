package netstack

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Conduit buffer sizes. Large AF_UNIX buffers let the pumps move big
// batches per system call; they add to the buffering Linux would have
// (the TCP send and receive buffers), which is the price of the conduit.
const (
	streamConduitBuf = 4 << 20
	dgramConduitBuf  = 1 << 20
	// pumpBuf is the size of one pump transfer (and the largest datagram).
	pumpBuf = 64 << 10
)

// conduit is an AF_UNIX socketpair: target is the end injected into the
// sandboxed program (kept blocking, in the target's hands), ours is the
// provider's end, non-blocking and in Go's poller so pumps block without
// threads and can be interrupted with deadlines.
type conduit struct {
	target *os.File
	ours   *os.File
}

// newConduit creates a socketpair of type typ (SOCK_STREAM or
// SOCK_SEQPACKET) with buffers of size buf on both ends.
func newConduit(typ, buf int) (*conduit, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("conduit socketpair: %w", err)
	}
	for _, fd := range fds {
		setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, buf)
		setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, buf)
	}
	if err := unix.SetNonblock(fds[1], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("conduit nonblock: %w", err)
	}
	return &conduit{
		target: os.NewFile(uintptr(fds[0]), "netstack-conduit"),
		ours:   os.NewFile(uintptr(fds[1]), "netstack-conduit-provider"),
	}, nil
}

// setBuf sets a socket buffer, forcing past the sysctl limits when the
// process may (CAP_NET_ADMIN), else as large as the limits allow.
func setBuf(fd, force, plain, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
	}
}

// fill makes the target end not writable (no POLLOUT, writes block or
// EAGAIN) by shrinking its send buffer to the minimum and filling it with
// filler bytes, which land in our end's receive queue. It returns how many
// bytes it wrote; they must be discarded from our end before pumping.
// AF_UNIX writability depends on the sender's own sk_wmem_alloc
// (unix_writable), so this works no matter what the target does.
func (c *conduit) fill() int {
	total := 0
	withFd(c.target, func(fd int) {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 0)
		var chunk [1024]byte
		for i := 0; i < 4096; i++ { // bounded: the minimal buffer takes a few KiB
			n, err := unix.SendmsgN(fd, chunk[:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
			if n > 0 {
				total += n
			}
			if err != nil {
				break
			}
		}
	})
	return total
}

// restoreSendBuf gives the target end its large send buffer back (after
// fill); raising it wakes writers and pollers (sk_write_space).
func (c *conduit) restoreSendBuf(size int) {
	withFd(c.target, func(fd int) { setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, size) })
}

// pollMask returns the poll events pending on fd now.
func pollMask(fd int, events int16) int16 {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err != unix.EINTR {
			return pfd[0].Revents
		}
	}
}

// sockError reads and clears SO_ERROR of fd.
func sockError(fd int) unix.Errno {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil || v == 0 {
		return 0
	}
	return unix.Errno(v)
}

// inq is SIOCINQ of fd (0 on error).
func inq(fd int) int {
	v, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return v
}

// firstDatagramLen is the length of the first datagram queued on fd (a
// SOCK_SEQPACKET end), read with MSG_PEEK|MSG_TRUNC; ok is false when none
// is queued.
func firstDatagramLen(fd int) (int, bool) {
	var b [1]byte
	n, err := recvRaw(fd, b[:], unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
	if err != nil {
		return 0, false
	}
	if n == 0 && pollMask(fd, unix.POLLRDHUP)&unix.POLLRDHUP != 0 {
		return 0, false // EOF of a shut-down end, not an empty datagram
	}
	return n, true
}

// close closes both ends (idempotent through os.File).
func (c *conduit) close() {
	c.ours.Close()
	c.target.Close()
}

// withFd runs f on f's descriptor unless the file is closed; the file
// cannot be closed (and its number reused) while f runs.
func withFd(file *os.File, f func(fd int)) bool {
	rc, err := file.SyscallConn()
	if err != nil {
		return false
	}
	return rc.Control(func(fd uintptr) { f(int(fd)) }) == nil
}
