package netstack

import (
	"fmt"
	"os"
	"runtime"
	"time"

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

// conduit is a pair of sockets: target is the end injected into the
// sandboxed program (kept blocking, in the target's hands), ours is the
// provider's end, non-blocking and in Go's poller so pumps block without
// threads and can be interrupted with deadlines. Kernel TCP or UDP
// sockets of the conduit namespace (tcp, udp set), or an AF_UNIX
// socketpair.
//
// A fresh stream socket's conduit starts as the target end alone, not
// connected (newStreamConduit, newTCPConduit): ours is nil until join
// connects the target end in place.
type conduit struct {
	target *os.File
	ours   *os.File
	// joiner is the listening AF_UNIX socket (an autobound abstract
	// name) that join connects the target end to; -1 when there is none.
	joiner int
	// afterListen, when set (tests only), runs with the joiner once it
	// listens, before the target end connects.
	afterListen func(joiner int)
	// udp is set for the kernel UDP pair of a UDP socket (udpconduit.go);
	// target and ours are then UDP sockets.
	udp *udpConduit
	// tcp is set for a TCP socket's kernel TCP pair (tcppair.go): target
	// and ours are TCP sockets of cnet, joined through this listener.
	tcp  *pairListener
	cnet *conduitNet
}

// newConduit creates a socketpair of type typ (SOCK_STREAM or
// SOCK_SEQPACKET) with buffers of size buf on both ends.
func newConduit(typ, buf int) (*conduit, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("conduit socketpair: %w", err)
	}
	for _, fd := range fds {
		setConduitBuf(fd, typ, buf)
	}
	// A new socket's file has no status flags (O_APPEND, O_ASYNC, ...),
	// so F_SETFL needs no F_GETFL first (unix.SetNonblock does both).
	if _, err := unix.FcntlInt(uintptr(fds[1]), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("conduit nonblock: %w", err)
	}
	return &conduit{
		target: os.NewFile(uintptr(fds[0]), "netstack-conduit"),
		ours:   os.NewFile(uintptr(fds[1]), "netstack-conduit-provider"),
		joiner: -1,
	}, nil
}

// setConduitBuf sizes one end of a new conduit of type typ. An AF_UNIX
// stream sender is limited by its own send buffer only (unix_stream_sendmsg
// and unix_writable look at the sender's sk_sndbuf and sk_wmem_alloc;
// nothing reads the receiver's sk_rcvbuf), so a stream end gets only
// SO_SNDBUF: setting SO_RCVBUF too would cost a system call per end and
// change nothing. (The target's getsockopt(SO_RCVBUF) is served from the
// stack socket, not the conduit.) Datagram conduits keep both.
func setConduitBuf(fd, typ, buf int) {
	setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, buf)
	if typ != unix.SOCK_STREAM {
		setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, buf)
	}
}

// newStreamConduit creates the conduit of a fresh stream socket: the
// target end is an AF_UNIX SOCK_STREAM socket that is not connected, so
// it is in TCP_CLOSE and unix_poll shows POLLOUT|POLLHUP, as tcp_poll
// shows for a fresh or failed TCP socket. join connects it later to our
// end in place, so the target's fd, its dups and its epoll registrations
// stay valid. The joiner listener is made only by join, so a socket that
// never connects or listens costs one descriptor and no more.
func newStreamConduit(buf int) (*conduit, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("conduit socket: %w", err)
	}
	setConduitBuf(fd, unix.SOCK_STREAM, buf)
	return &conduit{target: os.NewFile(uintptr(fd), "netstack-conduit"), joiner: -1}, nil
}

// joinBacklog is the joiner's backlog (the kernel caps it at
// net.core.somaxconn): other processes of the provider's network
// namespace can see and connect to the abstract name, so the queue
// should not fill before our own connect. join drains strangers while it
// connects anyway, and gives up after joinTimeout.
const joinBacklog = unix.SOMAXCONN

// joinTimeout bounds join when strangers keep the joiner's queue full
// faster than join closes their connections.
const joinTimeout = 2 * time.Second

// joinPoll is how long join waits for the joiner at a time before it
// looks at its connect again.
const joinPoll = 5 * time.Millisecond

// newJoiner makes a non-blocking AF_UNIX stream socket bound to an unused
// abstract name (autobind: bind with only the family). join makes it and
// then listens, so nobody else can connect to it before. Abstract names
// are per network namespace, and the goroutine may move to another
// thread between the socket calls (or before join's connect, which runs
// on a goroutine of its own); that is harmless only because every thread
// that runs ordinary goroutines is in the provider's one network
// namespace: code that enters another namespace with setns
// (provider/host) locks its goroutine to the thread and unlocks it only
// once back, or lets the thread die. So the target end can always reach
// the joiner's name.
func newJoiner() (int, error) {
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("conduit joiner: %w", err)
	}
	if err := unix.Bind(l, &unix.SockaddrUnix{}); err != nil {
		unix.Close(l)
		return -1, fmt.Errorf("conduit joiner: autobind: %w", err)
	}
	return l, nil
}

// join connects the target end (not connected yet) to a new provider end
// through the joiner, and sets ours. The target end's open file stays the
// same: only its socket changes state (TCP_CLOSE to TCP_ESTABLISHED).
//
// Nothing changes when join fails before the connect: the joiner and the
// descriptor accept needs are made first, so running out of descriptors
// (EMFILE) leaves the target end unconnected, ready for another try.
//
// The abstract name is visible in the provider's network namespace, so
// other processes may connect to it: their connections are told apart by
// SO_PEERCRED and closed. The connect runs on its own goroutine (it
// blocks while the joiner's queue is full) while this one accepts, so
// strangers cannot make it wait for room that only an accept makes; after
// joinTimeout the joiner is closed, which fails a connect still waiting
// (the target end stays unconnected) and join returns EAGAIN.
func (c *conduit) join(buf int) error {
	if c.ours != nil {
		return nil
	}
	if c.tcp != nil {
		return c.joinTCP()
	}
	if c.joiner < 0 {
		l, err := newJoiner()
		if err != nil {
			return err
		}
		c.joiner = l
	}
	spare, err := unix.FcntlInt(uintptr(c.joiner), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("conduit join: reserve a descriptor: %w", err)
	}
	l := c.joiner
	c.joiner = -1
	if err := unix.Listen(l, joinBacklog); err != nil {
		unix.Close(spare)
		unix.Close(l)
		return fmt.Errorf("conduit join: listen: %w", err)
	}
	sa, err := unix.Getsockname(l)
	if err != nil {
		unix.Close(spare)
		unix.Close(l)
		return fmt.Errorf("conduit join: getsockname: %w", err)
	}
	if c.afterListen != nil {
		c.afterListen(l)
	}
	var cerr error = unix.EBADF
	connected := make(chan struct{})
	go func() {
		defer close(connected)
		withFd(c.target, func(fd int) {
			for {
				if cerr = unix.Connect(fd, sa); cerr != unix.EINTR {
					return
				}
			}
		})
	}()
	// Let the connect run first: it does not block unless strangers
	// filled the queue, so the first accept then finds it, instead of
	// failing with EAGAIN and blocking this thread in poll while the
	// connect's goroutine waits for a processor.
	runtime.Gosched()
	nfd, aerr := acceptOwn(l, spare, connected, &cerr)
	// Closing the joiner drops strangers still queued and fails a connect
	// still waiting for room; the connect's result is final after it.
	unix.Close(l)
	<-connected
	if aerr != nil {
		// When the connect failed, the target end is still unconnected:
		// a later join can try again through a new joiner.
		return aerr
	}
	setConduitBuf(nfd, unix.SOCK_STREAM, buf)
	c.ours = os.NewFile(uintptr(nfd), "netstack-conduit-provider")
	return nil
}

// acceptOwn accepts connections on the listening joiner l until it finds
// the one from this process (the target end's connect, which runs until
// connected is closed and then leaves its error in *cerr), closing the
// others. spare is a reserved descriptor, closed just before the first
// accept so that accept finds a free one.
func acceptOwn(l, spare int, connected <-chan struct{}, cerr *error) (int, error) {
	if spare >= 0 {
		defer func() {
			if spare >= 0 {
				unix.Close(spare)
			}
		}()
	}
	self := selfPid
	deadline := time.Now().Add(joinTimeout)
	for {
		done := false
		select {
		case <-connected:
			done = true
			if *cerr != nil {
				return -1, fmt.Errorf("conduit join: connect: %w", *cerr)
			}
		default:
		}
		// Take what is queued (bounded: the deadline is checked between
		// batches).
		empty := false
		for i := 0; i < 64 && !empty; i++ {
			if spare >= 0 {
				unix.Close(spare)
				spare = -1
			}
			nfd, _, err := unix.Accept4(l, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			if err == unix.EAGAIN {
				empty = true
				continue
			}
			if err != nil {
				return -1, fmt.Errorf("conduit join: accept: %w", err)
			}
			if cred, err := unix.GetsockoptUcred(nfd, unix.SOL_SOCKET, unix.SO_PEERCRED); err != nil || cred.Pid != self {
				unix.Close(nfd) // not our target end
				continue
			}
			return nfd, nil
		}
		if done && empty {
			// Connected, and the queue held no connection of ours.
			return -1, fmt.Errorf("conduit join: own connection not found: %w", unix.ECONNABORTED)
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("conduit join: joiner kept full: %w", unix.EAGAIN)
		}
		if empty {
			pfd := []unix.PollFd{{Fd: int32(l), Events: unix.POLLIN}}
			_, _ = unix.Poll(pfd, int(joinPoll/time.Millisecond))
		}
	}
}

// selfPid is this process's ID (SO_PEERCRED of our own connections to a
// joiner); it never changes, so it is read once instead of a getpid per
// join.
var selfPid = int32(os.Getpid())

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
	if c.tcp != nil {
		var n int
		withFd(c.target, func(fd int) { n = fillTCP(fd) })
		return n
	}
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
	if c.tcp != nil {
		// TCP_NOTSENT_LOWAT back to Linux's default; the filler goes out
		// as our end reads it.
		withFd(c.target, func(fd int) { _ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 0) })
		return
	}
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

// close closes both ends (idempotent through os.File) and the joiner.
func (c *conduit) close() {
	c.ours.Close()
	c.target.Close()
	if c.joiner >= 0 {
		unix.Close(c.joiner)
		c.joiner = -1
	}
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
