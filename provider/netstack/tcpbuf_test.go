package netstack_test

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
)

// conduitOptSetter is the shim's hook for options that must reach a
// target end the provider may no longer hold.
type conduitOptSetter interface {
	SetSockOptWithConduit(level, name int, val []byte, conduit int) error
}

func intOpt(v int) []byte {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return b[:]
}

func getInt(t *testing.T, fd, name int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// kernelBufs is what Linux's socket reports after SO_SNDBUF and
// SO_RCVBUF of size (the kernel doubles and clamps them).
func kernelBufs(t *testing.T, size int) (snd, rcv int) {
	t.Helper()
	fd := kernelSocket(t)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size); err != nil {
		t.Fatal(err)
	}
	return getInt(t, fd, unix.SO_SNDBUF), getInt(t, fd, unix.SO_RCVBUF)
}

// TestTCPConduitTakesProgramBuffers: a TCP conduit's target end holds the
// buffer sizes the program set, as Linux's socket would report them:
// set before connect, set after the provider released its copy (through
// the shim's SetSockOptWithConduit), and inherited by an accepted
// connection from its listener (M.97: without this, the autotuned ends
// kept megabytes a program that sized its buffers never has).
func TestTCPConduitTakesProgramBuffers(t *testing.T) {
	const size = 6000
	wantSnd, wantRcv := kernelBufs(t, size)
	check := func(what string, fd int) {
		t.Helper()
		if !isTCPConduit(fd) {
			t.Skip("no TCP conduits (no conduit namespace)")
		}
		if snd, rcv := getInt(t, fd, unix.SO_SNDBUF), getInt(t, fd, unix.SO_RCVBUF); snd != wantSnd || rcv != wantRcv {
			t.Errorf("%s: target end SO_SNDBUF %d SO_RCVBUF %d, Linux %d %d", what, snd, rcv, wantSnd, wantRcv)
		}
	}
	setBoth := func(s provider.Socket, conduit int) {
		t.Helper()
		for _, name := range []int{unix.SO_SNDBUF, unix.SO_RCVBUF} {
			var err error
			if conduit >= 0 {
				err = s.(conduitOptSetter).SetSockOptWithConduit(unix.SOL_SOCKET, name, intOpt(size), conduit)
			} else {
				err = s.SetSockOpt(unix.SOL_SOCKET, name, intOpt(size))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("before-connect", func(t *testing.T) {
		p, n := newProvider(t)
		l := stackListener(t, n)
		s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
		setBoth(s, -1)
		connect(t, s, addrPort(t, l.Addr()))
		check("set before connect", fd)
	})
	t.Run("after-release", func(t *testing.T) {
		p, n := newProvider(t)
		l := stackListener(t, n)
		s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
		connect(t, s, addrPort(t, l.Addr()))
		s.(provider.ConduitReleaser).ReleaseConduit()
		setBoth(s, fd)
		check("set after release", fd)
	})
	t.Run("accepted", func(t *testing.T) {
		ls, _, _, dial := listenConduit(t)
		setBoth(ls, -1)
		if err := dial(); err != nil {
			t.Fatal(err)
		}
		check("accepted", targetFd(t, acceptChild(t, ls)))
	})
}

// TestTCPConduitBuffersBoundQueuedBytes: a writer with a small SO_SNDBUF
// whose peer never reads can queue about what Linux lets it queue, not
// the megabytes of autotuned conduit buffers (M.97). The peer is the
// stack's own socket with the same small receive buffer; the bound is
// generous (the conduit's two ends and the pump add a few buffers of the
// program's size) but far below what the conduit held before.
func TestTCPConduitBuffersBoundQueuedBytes(t *testing.T) {
	const size = 4096
	kc, ks := kernelPair(t)
	if err := unix.SetsockoptInt(ks, unix.SOL_SOCKET, unix.SO_RCVBUF, size); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(kc, unix.SOL_SOCKET, unix.SO_SNDBUF, size); err != nil {
		t.Fatal(err)
	}
	kernel := fillUntilStalled(t, kc)

	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	if err := s.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVBUF, intOpt(size)); err != nil {
		t.Fatal(err)
	}
	connect(t, s, addrPort(t, l.Addr()))
	if !isTCPConduit(fd) {
		t.Skip("no TCP conduits (no conduit namespace)")
	}
	peer := acceptConn(t, l)
	if tc, ok := peer.(interface{ SetReadBuffer(int) error }); ok {
		_ = tc.SetReadBuffer(size)
	}
	s.(provider.ConduitReleaser).ReleaseConduit()
	if err := s.(conduitOptSetter).SetSockOptWithConduit(unix.SOL_SOCKET, unix.SO_SNDBUF, intOpt(size), fd); err != nil {
		t.Fatal(err)
	}
	ours := fillUntilStalled(t, fd)
	t.Logf("bytes queued before the writer stalled: Linux %d, netprov %d", kernel, ours)
	if limit := 16 * kernel; ours > limit {
		t.Fatalf("netprov queued %d bytes, more than %d (Linux %d)", ours, limit, kernel)
	}
}

// fillUntilStalled writes to fd (blocking socket, written with
// MSG_DONTWAIT) until it stays unwritable for 300 ms, and returns how
// many bytes it took (bounded: 64 MiB or 20 s).
func fillUntilStalled(t *testing.T, fd int) int {
	t.Helper()
	var chunk [16 << 10]byte
	total := 0
	deadline := time.Now().Add(20 * time.Second)
	for total < 64<<20 && time.Now().Before(deadline) {
		k, err := unix.SendmsgN(fd, chunk[:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if k > 0 {
			total += k
		}
		if err == unix.EAGAIN {
			if pollFd(t, fd, unix.POLLOUT, 300*time.Millisecond)&unix.POLLOUT == 0 {
				return total
			}
			continue
		}
		if err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	t.Fatalf("writer never stalled: %d bytes", total)
	return 0
}
