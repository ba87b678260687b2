package udp_test

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
)

// Semantics scenarios a-udp-initial-names and m-nodelay: getsockopt of a
// TCP option on an IPv4 UDP socket reaches do_ip_getsockopt, which
// answers any level but SOL_IP with EOPNOTSUPP (the kernel prints
// tcp_info=EOPNOTSUPP and udp_nodelay=EOPNOTSUPP); an unknown SOL_UDP
// option is ENOPROTOOPT (udp_lib_getsockopt), and on an IPv6 socket a
// foreign level is ENOPROTOOPT (ipv6_getsockopt).
func TestGetSockOptForeignLevel(t *testing.T) {
	ts := newTestStack(t, nil)
	v4 := ts.endpoint(t, unix.AF_INET)
	v6 := ts.endpoint(t, unix.AF_INET6)
	buf := make([]byte, 256)
	for _, c := range []struct {
		name       string
		family     int
		level, opt int
		want       error
	}{
		{"tcp_info on v4", unix.AF_INET, unix.SOL_TCP, unix.TCP_INFO, unix.EOPNOTSUPP},
		{"tcp_nodelay on v4", unix.AF_INET, unix.SOL_TCP, unix.TCP_NODELAY, unix.EOPNOTSUPP},
		{"made-up level on v4", unix.AF_INET, 9999, 1, unix.EOPNOTSUPP},
		{"ipv6 level on v4", unix.AF_INET, unix.SOL_IPV6, unix.IPV6_V6ONLY, unix.EOPNOTSUPP},
		{"unknown udp option", unix.AF_INET, unix.SOL_UDP, 9999, unix.ENOPROTOOPT},
		{"unknown ip option", unix.AF_INET, unix.SOL_IP, 9999, unix.ENOPROTOOPT},
		{"tcp_info on v6", unix.AF_INET6, unix.SOL_TCP, unix.TCP_INFO, unix.ENOPROTOOPT},
		{"made-up level on v6", unix.AF_INET6, 9999, 1, unix.ENOPROTOOPT},
	} {
		ep := v4
		if c.family == unix.AF_INET6 {
			ep = v6
		}
		if _, err := ep.GetSockOpt(c.level, c.opt, buf); err != c.want {
			t.Errorf("%s: getsockopt = %v, want %v", c.name, err, c.want)
		}
	}
	// setsockopt keeps ENOPROTOOPT for a foreign level (ip_setsockopt).
	if err := v4.SetSockOpt(unix.SOL_TCP, unix.TCP_NODELAY, []byte{1, 0, 0, 0}); err != unix.ENOPROTOOPT {
		t.Errorf("setsockopt(SOL_TCP) on UDP = %v, want ENOPROTOOPT", err)
	}
}

// Semantics scenario u-connect-port0: connect(2) to port 0 succeeds, but
// getpeername is ENOTCONN, since inet_getname refuses a zero inet_dport.
func TestConnectPortZeroHasNoPeerName(t *testing.T) {
	ts := newTestStack(t, nil)
	ep := ts.endpoint(t, unix.AF_INET)
	if err := ep.Connect(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatalf("connect to port 0 = %v, want success", err)
	}
	if a, err := ep.RemoteAddress(); err != unix.ENOTCONN {
		t.Fatalf("getpeername = %v, %v; want ENOTCONN", a, err)
	}
}

// Semantics scenario u-edestaddrreq: send on an unconnected socket without
// an address is EDESTADDRREQ, but inet_sendmsg has bound the socket to an
// ephemeral port first (inet_send_prepare), so getsockname shows it
// afterwards: the kernel prints send=EDESTADDRREQ sockname_after=0.0.0.0:EPH.
func TestFailedSendAutobinds(t *testing.T) {
	ts := newTestStack(t, nil)
	ep := ts.endpoint(t, unix.AF_INET)
	if _, err := ep.Write([]byte("x"), stack.WriteOptions{}); err != unix.EDESTADDRREQ {
		t.Fatalf("send without address = %v, want EDESTADDRREQ", err)
	}
	a := ep.LocalAddress()
	if !a.Addr().IsUnspecified() || a.Port() == 0 {
		t.Fatalf("getsockname after the failed send = %v, want 0.0.0.0 with an ephemeral port", a)
	}
	// EMSGSIZE and MSG_OOB are checked after the autobind too.
	ep2 := ts.endpoint(t, unix.AF_INET)
	if _, err := ep2.Write(make([]byte, 0x10000), stack.WriteOptions{To: netip.MustParseAddrPort("127.0.0.1:9")}); err != unix.EMSGSIZE {
		t.Fatalf("oversized send = %v, want EMSGSIZE", err)
	}
	if ep2.LocalAddress().Port() == 0 {
		t.Errorf("no port bound after the oversized send")
	}
}
