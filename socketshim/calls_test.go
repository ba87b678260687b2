package socketshim

import (
	"encoding/binary"
	"log/slog"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/socketshim/seccomp"
)

// conduitErrorSocket is a provider socket whose SO_ERROR goes to its
// conduit (as netstack.Socket's does); it records the inode of the file it
// was given and reads that file's SO_ERROR.
type conduitErrorSocket struct {
	provider.Socket // not called
	gotIno          uint64
}

func (s *conduitErrorSocket) Passthrough() bool { return false }

func (s *conduitErrorSocket) SockErrorWithConduit(buf []byte, conduit int) (int, error) {
	s.gotIno, _ = socketInode(conduit)
	v, err := unix.GetsockoptInt(conduit, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return 0, err
	}
	binary.NativeEndian.PutUint32(buf, uint32(int32(v)))
	return 4, nil
}

// TestConduitCallsUseLookupsFile: SO_RCVTIMEO set on the target's fd and
// SO_ERROR read through it act on the file lookup found the socket by
// (the call's copy), not on whatever the target's fd number holds by then:
// here another thread of the target has dup2'd a different socket onto
// that number after lookup. Looking the fd up again would put the timeout
// on the other socket and take its pending error.
func TestConduitCallsUseLookupsFile(t *testing.T) {
	pairA, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pairA[0])
	defer unix.Close(pairA[1])
	// B: a connected UDP socket with a pending ECONNREFUSED.
	b, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(b)
	lst, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(lst, &unix.SockaddrInet4{Addr: localhost}); err != nil {
		unix.Close(lst)
		t.Skipf("no loopback: %v", err)
	}
	closedPort, _ := unix.Getsockname(lst)
	unix.Close(lst) // nothing listens there now
	if err := unix.Connect(b, closedPort); err != nil {
		t.Fatal(err)
	}
	if err := unix.Send(b, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for waitFd(b, unix.POLLERR)&unix.POLLERR == 0 && time.Now().Before(deadline) {
	}

	// The "target" is this process: lookup's copy is of A, taken when the
	// call's fd n held A; n holds B now.
	n, err := unix.Dup(pairA[0])
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(n)
	copyA, err := unix.Dup(pairA[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Dup3(b, n, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	s := &Server{log: slog.New(slog.DiscardHandler)}
	notif := &seccomp.Notif{PID: uint32(os.Getpid())}
	notif.Data.Args[0] = uint64(n)
	c := &call{s: s, n: notif, tfd: copyA, tfdOf: n}
	defer c.release()

	tv := unix.NsecToTimeval(int64(3 * time.Second))
	c.setOnTargetFd(n, unix.SOL_SOCKET, unix.SO_RCVTIMEO, timevalBytes(tv))
	if got, err := unix.GetsockoptTimeval(pairA[0], unix.SOL_SOCKET, unix.SO_RCVTIMEO); err != nil || got.Sec != 3 {
		t.Errorf("SO_RCVTIMEO of the call's socket = %+v, %v; want 3 s", got, err)
	}
	if got, err := unix.GetsockoptTimeval(b, unix.SOL_SOCKET, unix.SO_RCVTIMEO); err != nil || got.Sec != 0 || got.Usec != 0 {
		t.Errorf("SO_RCVTIMEO of the socket dup2'd over the fd = %+v, %v; want untouched (0)", got, err)
	}

	sock := &conduitErrorSocket{}
	var want unix.Stat_t
	unix.Fstat(pairA[0], &want)
	buf := make([]byte, 4)
	if _, err := c.getSockOpt(&entry{sock: sock}, unix.SOL_SOCKET, unix.SO_ERROR, buf); err != nil {
		t.Fatalf("getSockOpt(SO_ERROR): %v", err)
	}
	if sock.gotIno != want.Ino {
		t.Errorf("SO_ERROR read on inode %d, want the call's socket %d", sock.gotIno, want.Ino)
	}
	if v, err := unix.GetsockoptInt(b, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || v != int(unix.ECONNREFUSED) {
		t.Errorf("pending error of the socket dup2'd over the fd = %d, %v; want ECONNREFUSED still pending", v, err)
	}
}

func timevalBytes(tv unix.Timeval) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint64(b[0:], uint64(tv.Sec))
	binary.NativeEndian.PutUint64(b[8:], uint64(tv.Usec))
	return b
}
