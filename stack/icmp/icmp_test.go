package icmp_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/icmp"
	"github.com/netprov/netprov/stack/ipv4"
	"github.com/netprov/netprov/stack/ipv6"
	"github.com/netprov/netprov/stack/link/loopback"
	"github.com/netprov/netprov/stack/socket/sockopt"
	"github.com/netprov/netprov/stack/waiter"
)

func newStack(t *testing.T, cfg icmp.Config) (*stack.Stack, *icmp.Protocol) {
	t.Helper()
	s := stack.New(stack.Options{})
	ipv4.Register(s, ipv4.DefaultConfig())
	ipv6.Register(s, ipv6.DefaultConfig())
	p := icmp.Register(s, cfg)
	lo, err := s.AddNIC(loopback.New(loopback.Config{}), stack.NICOptions{Name: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	lo.AddAddress(netip.MustParsePrefix("127.0.0.1/8"))
	lo.AddAddress(netip.MustParsePrefix("::1/128"))
	t.Cleanup(func() { s.Close() })
	return s, p
}

func echoRequest(seq uint16, payload string) []byte {
	b := make([]byte, 8+len(payload))
	b[0] = header.ICMPv4Echo
	binary.BigEndian.PutUint16(b[6:8], seq)
	copy(b[8:], payload)
	return b
}

func waitIn(t *testing.T, ep stack.Endpoint) {
	t.Helper()
	e, ch := waiter.ChannelEntry(waiter.EventIn)
	ep.EventQueue().Register(e)
	defer ep.EventQueue().Unregister(e)
	deadline := time.After(5 * time.Second)
	for ep.Readiness(waiter.EventIn) == 0 {
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("no echo reply")
		}
	}
}

func TestEchoIdentifierAndSequence(t *testing.T) {
	_, p := newStack(t, icmp.DefaultConfig())
	ep, err := p.V4().NewEndpoint(unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if err := ep.Bind(netip.MustParseAddrPort("127.0.0.1:4242")); err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Write(echoRequest(1, "x"), stack.WriteOptions{}); err != unix.EDESTADDRREQ {
		t.Errorf("send unconnected without address: %v, want EDESTADDRREQ", err)
	}
	if err := ep.Connect(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	for seq := uint16(1); seq <= 3; seq++ {
		if _, err := ep.Write(echoRequest(seq, "abc"), stack.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitIn(t, ep)
		buf := make([]byte, 64)
		res, err := ep.Read(buf, stack.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := header.ICMPv4(buf[:res.N])
		if m.Type() != header.ICMPv4EchoReply || m.Ident() != 4242 || m.Seq() != seq || string(m.Payload()) != "abc" {
			t.Fatalf("reply %x", buf[:res.N])
		}
	}
}

func TestRepliesForOtherIdentifiersAreDropped(t *testing.T) {
	_, p := newStack(t, icmp.DefaultConfig())
	ep, _ := p.V4().NewEndpoint(unix.AF_INET)
	defer ep.Close()
	if err := ep.Bind(netip.MustParseAddrPort("0.0.0.0:7")); err != nil {
		t.Fatal(err)
	}
	mk := func(ident uint16) *buffer.Packet {
		b := make([]byte, 8)
		header.ICMPv4Fields{Type: header.ICMPv4EchoReply, Ident: ident}.Emit(b, nil)
		return buffer.FromBytes(b)
	}
	ip := stack.IPInfo{Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1")}
	p.V4().HandlePacket(mk(8), ip)
	if ep.Readiness(waiter.EventIn) != 0 {
		t.Fatal("reply for identifier 8 reached the socket of identifier 7")
	}
	p.V4().HandlePacket(mk(7), ip)
	if ep.Readiness(waiter.EventIn) == 0 {
		t.Fatal("reply for identifier 7 was not queued")
	}
	// An IPv6 socket with the same identifier does not see IPv4 replies.
	ep6, _ := p.V6().NewEndpoint(unix.AF_INET6)
	defer ep6.Close()
	if err := ep6.Bind(netip.MustParseAddrPort("[::]:7")); err != unix.EADDRINUSE {
		t.Errorf("identifier shared across families: %v, want EADDRINUSE", err)
	}
}

func TestErrors(t *testing.T) {
	_, p := newStack(t, icmp.DefaultConfig())
	ep, _ := p.V4().NewEndpoint(unix.AF_INET)
	defer ep.Close()
	if err := ep.Connect(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	quote := echoRequest(1, "")
	binary.BigEndian.PutUint16(quote[4:6], ep.LocalAddress().Port())
	ip := stack.IPInfo{Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1")}
	p.V4().HandleError(stack.ICMPError{Kind: stack.ICMPHostUnreachable, Type: 3, Code: 1}, ip, quote)
	if ep.Readiness(waiter.EventErr) != 0 {
		t.Fatal("soft error without IP_RECVERR was reported")
	}
	var one [4]byte
	sockopt.PutInt(one[:], 1)
	if err := ep.SetSockOpt(unix.SOL_IP, unix.IP_RECVERR, one[:]); err != nil {
		t.Fatal(err)
	}
	p.V4().HandleError(stack.ICMPError{Kind: stack.ICMPHostUnreachable, Type: 3, Code: 1}, ip, quote)
	if _, err := ep.Read(make([]byte, 8), stack.ReadOptions{}); err != unix.EHOSTUNREACH {
		t.Fatalf("read after host unreachable with IP_RECVERR: %v", err)
	}

	ep6, _ := p.V6().NewEndpoint(unix.AF_INET6)
	defer ep6.Close()
	req6 := echoRequest(1, "")
	req6[0] = header.ICMPv6EchoRequest
	if _, err := ep6.Write(req6, stack.WriteOptions{To: netip.MustParseAddrPort("[::ffff:127.0.0.1]:0")}); err != unix.EINVAL {
		t.Errorf("ping6 to a v4-mapped address: %v, want EINVAL", err)
	}
	if _, err := ep6.Write(echoRequest(1, ""), stack.WriteOptions{To: netip.MustParseAddrPort("[::1]:0")}); err != unix.EINVAL {
		t.Errorf("ICMPv4 type on an ICMPv6 socket: %v, want EINVAL", err)
	}
	if _, err := p.V4().NewEndpoint(unix.AF_INET6); err != unix.EPROTONOSUPPORT {
		t.Errorf("AF_INET6 endpoint of the ICMPv4 transport: %v", err)
	}
	_, q := newStack(t, icmp.Config{Disabled: true})
	if _, err := q.V4().NewEndpoint(unix.AF_INET); err != unix.EACCES {
		t.Errorf("disabled echo sockets: %v, want EACCES", err)
	}
}
