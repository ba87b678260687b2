package socket_test

import (
	"context"
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/node"
	"github.com/netprov/netprov/stack/socket"
	"github.com/netprov/netprov/stack/socket/sockopt"
)

func newNode(t *testing.T, c clock.Clock) *node.Node {
	t.Helper()
	n, err := node.New(node.Options{Stack: stack.Options{Clock: c}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func newSocket(t *testing.T, n *node.Node, family, sotype, proto int) *socket.Socket {
	t.Helper()
	so, err := n.Socket(family, sotype, proto)
	if err != nil {
		t.Fatalf("socket(%d, %d, %d): %v", family, sotype, proto, err)
	}
	t.Cleanup(func() { so.Close() })
	return so
}

func sockaddr4(family uint16, a string, port uint16, n int) []byte {
	b := make([]byte, n)
	full := make([]byte, 16)
	binary.NativeEndian.PutUint16(full[0:2], family)
	binary.BigEndian.PutUint16(full[2:4], port)
	ip := netip.MustParseAddr(a).As4()
	copy(full[4:8], ip[:])
	copy(b, full)
	return b
}

func sockaddr6(family uint16, a string, port uint16, scope uint32, n int) []byte {
	b := make([]byte, n)
	full := make([]byte, 28)
	binary.NativeEndian.PutUint16(full[0:2], family)
	binary.BigEndian.PutUint16(full[2:4], port)
	ip := netip.MustParseAddr(a).As16()
	copy(full[8:24], ip[:])
	binary.NativeEndian.PutUint32(full[24:28], scope)
	copy(b, full)
	return b
}

func getInt(t *testing.T, so *socket.Socket, level, name int) int {
	t.Helper()
	var b [4]byte
	if _, err := so.GetSockOpt(level, name, b[:]); err != nil {
		t.Fatalf("getsockopt(%d, %d): %v", level, name, err)
	}
	v, _ := sockopt.Int(b[:])
	return v
}

func timeval(d time.Duration) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint64(b[0:8], uint64(d/time.Second))
	binary.NativeEndian.PutUint64(b[8:16], uint64((d%time.Second)/time.Microsecond))
	return b
}

// waitTimer waits until the fake clock has a timer due in d (a blocked
// call arming its SO_RCVTIMEO / SO_SNDTIMEO).
func waitTimer(t *testing.T, c *clock.Fake, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range c.Pending() {
			if p == d {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no timer of %v was armed; pending %v", d, c.Pending())
}

type result struct {
	n   int
	err error
}

// await returns the result of a call running in a goroutine, failing
// after 5 s.
func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("blocking call did not return")
		return result{}
	}
}

func recvAsync(so *socket.Socket, ctx context.Context, flags int) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := so.Recv(ctx, make([]byte, 64), flags)
		ch <- result{n, err}
	}()
	return ch
}

// ctx0 is the context of calls that are not interrupted.
var ctx0 = context.Background()
