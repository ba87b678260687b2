package udp_test

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/ipv4"
	"github.com/netprov/netprov/stack/ipv6"
	"github.com/netprov/netprov/stack/link/loopback"
	"github.com/netprov/netprov/stack/socket/sockopt"
	"github.com/netprov/netprov/stack/udp"
	"github.com/netprov/netprov/stack/waiter"
)

// testStack is a stack with IPv4, IPv6, UDP and lo (127.0.0.1/8, ::1).
type testStack struct {
	s   *stack.Stack
	udp *udp.Protocol
}

func newTestStack(t testing.TB, cfg *stack.Config) *testStack {
	t.Helper()
	s := stack.New(stack.Options{Config: cfg})
	ipv4.Register(s, ipv4.DefaultConfig())
	ipv6.Register(s, ipv6.DefaultConfig())
	p := udp.Register(s, udp.DefaultConfig())
	lo, err := s.AddNIC(loopback.New(loopback.Config{}), stack.NICOptions{Name: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1/8", "::1/128"} {
		if err := lo.AddAddress(netip.MustParsePrefix(a)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.Close() })
	return &testStack{s: s, udp: p}
}

func (ts *testStack) endpoint(t *testing.T, family int) stack.Endpoint {
	t.Helper()
	ep, err := ts.udp.NewEndpoint(family)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	return ep
}

func (ts *testStack) bound(t *testing.T, family int, addr string) stack.Endpoint {
	t.Helper()
	ep := ts.endpoint(t, family)
	if err := ep.Bind(netip.MustParseAddrPort(addr)); err != nil {
		t.Fatalf("bind %s: %v", addr, err)
	}
	return ep
}

func setInt(t *testing.T, ep stack.Endpoint, level, name, v int) {
	t.Helper()
	var b [4]byte
	sockopt.PutInt(b[:], v)
	if err := ep.SetSockOpt(level, name, b[:]); err != nil {
		t.Fatalf("setsockopt(%d, %d, %d): %v", level, name, v, err)
	}
}

func getInt(t *testing.T, ep stack.Endpoint, level, name int) int {
	t.Helper()
	var b [4]byte
	if _, err := ep.GetSockOpt(level, name, b[:]); err != nil {
		t.Fatalf("getsockopt(%d, %d): %v", level, name, err)
	}
	v, _ := sockopt.Int(b[:])
	return v
}

// waitFor waits (at most 5 s) until ep reports one of mask's events.
func waitFor(t *testing.T, ep stack.Endpoint, mask waiter.EventMask) {
	t.Helper()
	e, ch := waiter.ChannelEntry(mask)
	ep.EventQueue().Register(e)
	defer ep.EventQueue().Unregister(e)
	deadline := time.After(5 * time.Second)
	for ep.Readiness(mask)&mask == 0 {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for events %#x", mask)
		}
	}
}

// recv waits for a datagram and reads it.
func recv(t *testing.T, ep stack.Endpoint, n int) ([]byte, stack.ReadResult) {
	t.Helper()
	waitFor(t, ep, waiter.EventIn)
	buf := make([]byte, n)
	res, err := ep.Read(buf, stack.ReadOptions{})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:res.N], res
}

func send(t *testing.T, ep stack.Endpoint, p []byte, to string) {
	t.Helper()
	var o stack.WriteOptions
	if to != "" {
		o.To = netip.MustParseAddrPort(to)
	}
	if n, err := ep.Write(p, o); err != nil || n != len(p) {
		t.Fatalf("write to %q: n=%d err=%v", to, n, err)
	}
}

// settle waits until the loopback queue has delivered everything sent so
// far, by sending a marker to a socket of its own and receiving it.
func (ts *testStack) settle(t *testing.T) {
	t.Helper()
	m := ts.bound(t, unix.AF_INET, "127.0.0.1:0")
	send(t, m, []byte("marker"), m.LocalAddress().String())
	recv(t, m, 16)
}
